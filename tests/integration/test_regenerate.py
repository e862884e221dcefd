"""Edit and regenerate: exactly what an edit touches is rebuilt; every revision stays readable.

Each case starts from a fully generated movie (n=3 segments, m=2 images) and counts the calls that
really reached the offline providers on the next generate (the engine counts calls it made).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from movie_assets.domain.blueprint import NodeKey, expand
from movie_assets.domain.edits import UNSET
from movie_assets.domain.errors import MovieBusy
from movie_assets.domain.request import RequestError
from movie_assets.interfaces import api
from movie_assets.movie_files.movies import load_movie_request
from movie_assets.orchestration.event_log import load_state
from movie_assets.orchestration.locks import generation_lock
from resources.storage import ArtifactStore
from tests.conftest import HomeSnapshot, local_file, small_request
from tests.contract import CONTRACT, N
from tests.staleness import dagster_partitions, stale_nodes, ui_marks


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> HomeSnapshot:
    def build(instance: dg.DagsterInstance, store: ArtifactStore) -> str:
        # Segment 2 is a text-to-video segment so that style edits reach a video producer too.
        movie = api.new_movie(instance, store, small_request(segments={"2": {"use_video": True}}), "rev")
        first = api.generate(instance, store, movie)
        assert first.success and first.revision == 1
        return movie

    return HomeSnapshot(tmp_path_factory.mktemp("regenerate") / "dagster_home", build)


@pytest.fixture
def home(generated: HomeSnapshot, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts from the generated movie (revision 1), restored."""
    return generated.restore(monkeypatch)


@pytest.fixture
def movie(generated: HomeSnapshot, home: Path) -> str:
    return generated.built


@pytest.mark.parametrize(("name", "edits", "calls"), CONTRACT, ids=[c[0] for c in CONTRACT])
def test_edit_rebuilds_exactly_what_depends_on_it(instance: dg.DagsterInstance, store, movie: str, name: str,
                                                  edits: list[tuple[str, Any]], calls: dict[str, int]) -> None:
    if edits:
        assert api.edit(instance, store, movie, edits).changes
    planned = api.plan(instance, store, movie)
    assert planned.provider_calls == calls  # the dry run predicts exactly the calls...
    # ...the UI marks exactly the existing partitions the plan rebuilds...
    assert ui_marks(instance, movie) == dagster_partitions(i.node for i in planned.items if i.reason != "missing")
    result = api.generate(instance, store, movie)
    assert result.success and result.provider_calls == calls  # ...that really reach the providers
    assert ui_marks(instance, movie) == set()
    assert result.revision == (2 if edits else 1)  # a generation that changes nothing records no revision
    again = api.generate(instance, store, movie)
    assert again.provider_calls == {} and again.revision == result.revision  # nothing is left to do
    blueprint = expand(load_movie_request(store, movie))
    assert stale_nodes(instance, movie, blueprint.nodes) == []  # Dagster agrees: everything is fresh


def test_look_edits_keep_the_users_fields_and_never_stale_an_off_look_segment(instance: dg.DagsterInstance, store,
                                                                              movie: str) -> None:
    api.edit(instance, store, movie, [("segments.1.look", False)])
    assert api.generate(instance, store, movie).success
    # A palette edit: the look is rebuilt without a call and keeps every other generated field.
    api.edit(instance, store, movie, [("look.palette", "ink black #101010, bone white #f4f1ea")])
    blueprint = expand(load_movie_request(store, movie))
    stale = set(stale_nodes(instance, movie, blueprint.nodes))
    assert NodeKey("look") in stale and not {k for k in stale if k.segment == 1}  # the off-look prompts read no look
    result = api.generate(instance, store, movie)
    assert result.success and "LookProducer" not in result.provider_calls and not {k for k in result.built if "[01" in k}
    assert stale_nodes(instance, movie, blueprint.nodes) == []  # Dagster agrees, the off-look segment included
    look = api.look(instance, store, movie)
    assert look.edited == ["palette"] and look.look["lighting"] == look.look["generated"]["lighting"]
    # A new style asks for a new look; the user's palette stays.
    api.edit(instance, store, movie, [("image_style", "watercolor")])
    assert api.plan(instance, store, movie).provider_calls["LookProducer"] == 1
    assert api.generate(instance, store, movie).success
    restyled = api.look(instance, store, movie).look
    assert restyled["palette"] == "ink black #101010, bone white #f4f1ea" and restyled["lighting"] != look.look["lighting"]


def test_an_approved_reference_goes_to_exactly_the_shots_that_name_it(instance: dg.DagsterInstance, store, movie: str) -> None:
    # The offline writer names The Witness in the close-up and group shots: images 00_1, 01_0 and 01_1 here
    # (segment 2 is a text-to-video segment: a clip takes no reference picture).
    approved = api.approve(instance, store, movie, "segment_image[00_1]", "The Witness")
    assert [c.path for c in approved.changes] == ["look.references.The Witness.node", "look.references.The Witness.version"]
    planned = api.plan(instance, store, movie)
    assert planned.provider_calls == {"TextToImageProducer": 2}  # not the approved picture itself
    result = api.generate(instance, store, movie)
    assert result.success and result.provider_calls == planned.provider_calls
    images = [NodeKey("segment_image", 1, 0), NodeKey("segment_image", 1, 1)]
    records = load_state(instance, movie, images).records
    assert all(records[k].metadata.get("references") == 1 for k in images), {k: records[k].metadata for k in images}
    with pytest.raises(RequestError, match="not a recurring character or place"):
        api.approve(instance, store, movie, "segment_image[00_1]", "Nobody")
    with pytest.raises(RequestError, match="not a picture that can be a reference"):
        api.approve(instance, store, movie, "music", "The Witness")
    with pytest.raises(RequestError, match="not a picture that can be a reference"):
        api.approve(instance, store, movie, "segment_image[", "The Witness")
    with pytest.raises(RequestError, match=r"does not name 'The Crossroads'.*segment_image\[00_0\]"):
        api.approve(instance, store, movie, "segment_image[00_1]", "The Crossroads")  # a close-up of The Witness
    dropped = api.edit(instance, store, movie, [("look.references.The Witness", UNSET)])
    assert load_movie_request(store, movie).look is None and dropped.changes  # nothing left of the edit
    assert api.generate(instance, store, movie).provider_calls == {}  # the pictures made before come back


def test_staleness_after_an_edit_is_exactly_the_direct_dependents(instance: dg.DagsterInstance, store, movie: str) -> None:
    api.edit(instance, store, movie, [("voice_id", "onyx"), ("segments.0.image_prompts.0", "a map of 1861")])
    blueprint = expand(load_movie_request(store, movie))
    direct = {NodeKey("segment_audio", i) for i in range(N)} | {NodeKey("image_prompt", 0)}  # segment 0's prompts
    assert set(stale_nodes(instance, movie, blueprint.nodes)) == direct  # what the Dagster UI shows
    items = {i.node: (i.reason, i.cause) for i in api.plan(instance, store, movie).items}
    stale = {k for k, (reason, _) in items.items() if reason == "stale"}
    assert stale == {str(k) for k in direct if k.asset != "image_prompt"} | {"image_prompt[00_0]"}  # the image itself
    assert dagster_partitions(stale) == {str(k) for k in direct}
    assert items["segment_audio[00]"][1] == "changed: voice"
    assert items["segment_image[00_0]"][0] == "upstream" and items["timeline"][0] == "upstream"


def test_identical_rebuild_stops_the_cascade(instance: dg.DagsterInstance, store, movie: str) -> None:
    """A narration override equal to the script's line rebuilds the narration, whose content is
    unchanged: nothing below it is rebuilt and no provider is called, and the plan knows it (its dry
    run evaluates the override, which costs nothing)."""
    key = NodeKey("segment_narration", 1)
    before = load_state(instance, movie, [key]).records[key].version
    line = json.loads(local_file(load_state(instance, movie, [NodeKey("script")]).records[NodeKey("script")].uri).read_text())["narration"][1]
    api.edit(instance, store, movie, [("segments.1.narration", line)])
    planned = api.plan(instance, store, movie)
    assert {i.node: i.reason for i in planned.items} == {"segment_narration[01]": "stale"}
    assert planned.provider_calls == {} and planned.estimated_cost_usd == 0
    result = api.generate(instance, store, movie)
    assert result.provider_calls == {} and result.built == ["segment_narration[01]"] and result.skipped == []
    assert load_state(instance, movie, [key]).records[key].version == before
    assert api.plan(instance, store, movie).items == []


def test_setting_the_current_value_changes_nothing(instance: dg.DagsterInstance, store, movie: str) -> None:
    request = load_movie_request(store, movie)
    result = api.edit(instance, store, movie, [("voice_id", request.voice_id), ("image_style", request.image_style.value)])
    assert result.changes == [] and result.seq is None
    assert api.plan(instance, store, movie).items == []


def test_removing_an_override_goes_back_to_the_generated_prompt(instance: dg.DagsterInstance, store, movie: str) -> None:
    key = NodeKey("image_prompt", 0, 1)
    before = load_state(instance, movie, [key]).records[key].version
    api.edit(instance, store, movie, [("segments.0.image_prompts.1", "a hand-written prompt")])
    assert api.generate(instance, store, movie).provider_calls == {"TextToImageProducer": 1}
    api.edit(instance, store, movie, [("segments.0.image_prompts.1", UNSET)])
    assert "image_prompts" not in load_movie_request(store, movie).overrides(0).model_dump(exclude_defaults=True)
    planned = api.plan(instance, store, movie)  # exact: the prompt and then the image are build-cache hits
    assert planned.provider_calls == {} and {i.node for i in planned.items if "reused" in i.cause} == {
        "image_prompt[00_1]", "segment_image[00_1]"}
    back = api.generate(instance, store, movie)
    # Undoing an edit is free: the prompt and the image made earlier from exactly these inputs are reused.
    assert back.provider_calls == {} and back.success
    assert load_state(instance, movie, [key]).records[key].version == before
    image = NodeKey("segment_image", 0, 1)
    assert "made earlier by offline" in load_state(instance, movie, [image]).records[image].metadata["reused"]


def test_bad_edit_is_refused_and_changes_nothing(instance: dg.DagsterInstance, store, movie: str) -> None:
    request = load_movie_request(store, movie)
    for edits, expected in [
        ([("images_per_segment", 9)], "images_per_segment: got 9"),
        ([("segments.7.narration", "x")], "segments.7: segment index 7 is out of range"),
        ([("colour", "red")], "colour: not an editable path"),
        ([("duration_seconds", 35)], "duration_seconds: got 35"),
    ]:
        with pytest.raises(RequestError, match=expected):
            api.edit(instance, store, movie, edits)
    assert load_movie_request(store, movie) == request
    assert api.plan(instance, store, movie).items == []


def test_failed_partition_is_retried_alone_after_an_edit(instance: dg.DagsterInstance, store, movie: str) -> None:
    api.edit(instance, store, movie, [("segments.1.image_prompts.0", "FAILME lighthouse")])
    failed = api.generate(instance, store, movie, resource_config={"images": {"fail_when": "FAILME"}})
    assert list(failed.failed) == ["segment_image[01_0]"]
    errors = json.loads(local_file(failed.timeline).read_text())["errors"]
    assert [(e["partition"], e["reason"]) for e in errors] == [("rev|01_0", "failed")]
    assert errors[0]["message"].endswith("the previous version is used")  # the movie stays complete
    retried = api.generate(instance, store, movie)
    assert retried.provider_calls == {"TextToImageProducer": 1} and retried.success


def test_every_revision_stays_readable(instance: dg.DagsterInstance, store, movie: str) -> None:
    api.edit(instance, store, movie, [("voice_id", "onyx")])
    api.generate(instance, store, movie)
    api.edit(instance, store, movie, [("assembly_strategy", "cut")])
    api.generate(instance, store, movie)
    revisions = api.history(instance, store, movie)
    assert [r.revision for r in revisions] == [1, 2, 3]
    assert [[c["path"] for c in r.changes] for r in revisions] == [[], ["voice_id"], ["assembly_strategy"]]
    assert [r.calls for r in revisions] == [16, N, 0]  # the first with the research
    timelines = [api.load_timeline(instance, store, movie, r.revision) for r in revisions]
    assert [t["assemblyStrategy"] for t in timelines] == ["ken_burns", "ken_burns", "cut"]
    for revision, timeline in zip(revisions, timelines, strict=True):
        media = [c["src"] for track in timeline["tracks"] for c in track["clips"] if "src" in c]
        assert media and all(local_file(uri).exists() for uri in media)  # nothing was overwritten or deleted
        manifest_uris = {store.uri(m["uri"]) for m in api.revision(instance, store, movie, revision.revision).manifest.values()}
        assert set(media) <= manifest_uris
    audio_1 = {c["src"] for c in timelines[0]["tracks"][1]["clips"]}
    audio_2 = {c["src"] for c in timelines[1]["tracks"][1]["clips"]}
    assert audio_1.isdisjoint(audio_2)  # a new voice: new files beside the old ones
    with pytest.raises(FileNotFoundError, match="no revision 9; revisions: 1 to 3"):
        api.timeline_uri(instance, store, movie, 9)


def test_second_concurrent_generate_refuses(instance: dg.DagsterInstance, store, movie: str) -> None:
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with generation_lock(instance, movie):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(5)
        with pytest.raises(MovieBusy, match="is being generated by pid.*or pass --wait SECONDS"):
            api.generate(instance, store, movie)
    finally:
        release.set()
        t.join()
    assert api.generate(instance, store, movie, wait_s=5).success


def _plan_observation(instance: dg.DagsterInstance, movie: str) -> dict[str, Any]:
    """The metadata of the latest plan recorded on the movie's timeline partition (what the UI shows)."""
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("timeline"), asset_partitions=[movie]), limit=1, ascending=False).records
    assert records, f"no plan recorded for {movie}"
    return {k: v.value for k, v in records[0].event_log_entry.asset_observation.metadata.items()}


def test_the_ui_shows_the_whole_plan_right_after_an_edit(instance: dg.DagsterInstance, store, movie: str) -> None:
    """Dagster's staleness shows one hop (only the prompt is unsynced); the plan recorded on the
    movie's timeline partition shows every partition the next generate rebuilds, with its reason, as
    soon as the edit is made."""
    api.edit(instance, store, movie, [("segments.0.image_prompts.1", "a quiet battlefield at dawn")])
    blueprint = expand(load_movie_request(store, movie))
    assert stale_nodes(instance, movie, blueprint.nodes) == [NodeKey("image_prompt", 0)]  # segment 0's prompts
    shown = _plan_observation(instance, movie)
    planned = api.plan(instance, store, movie)
    assert shown["partitions_to_rebuild"] == len(planned.items) == 4
    for item in planned.items:
        assert f"`{item.node}` | {item.reason}" in shown["to_rebuild"]
    api.generate(instance, store, movie)
    assert _plan_observation(instance, movie)["partitions_to_rebuild"] == 0
    assert stale_nodes(instance, movie, blueprint.nodes) == []  # observations leave Dagster's staleness alone


def test_damaged_artifacts_are_noticed_and_rebuilt_with_nothing_else(instance: dg.DagsterInstance, store, movie: str) -> None:
    """An image truncated, a narration MP3 deleted and the timeline JSON cut short on disk: the plan
    names them `damaged`, the generation rebuilds exactly them (the image and the audio by their
    provider, the timeline for free), and nothing below them, whose content is unchanged."""
    state = load_state(instance, movie, expand(load_movie_request(store, movie)).nodes)
    image, audio, timeline = NodeKey("segment_image", 1, 0), NodeKey("segment_audio", 2), NodeKey("timeline")
    path = local_file(state.records[image].uri)
    path.write_bytes(path.read_bytes()[:100])
    local_file(state.records[audio].uri).unlink()
    text = local_file(state.records[timeline].uri).read_bytes()
    local_file(state.records[timeline].uri).write_bytes(text[: len(text) // 2])
    planned = api.plan(instance, store, movie)
    reasons = {i.node: i.reason for i in planned.items}
    assert {n for n, r in reasons.items() if r == "damaged"} == {str(image), str(audio), str(timeline)}
    assert "100 bytes" in next(i.cause for i in planned.items if i.node == str(image))
    assert planned.provider_calls == {"TextToImageProducer": 1, "AudioProducer": 1}
    assert set(api.status(instance, store, movie).damaged) == {str(image), str(audio), str(timeline)}
    result = api.generate(instance, store, movie)
    assert result.success and result.provider_calls == {"TextToImageProducer": 1, "AudioProducer": 1}
    assert set(result.built) == {str(image), str(audio), str(timeline)}  # the rest was kept: identical content
    after = load_state(instance, movie, [image, audio, timeline]).records
    assert all(after[k].uri == state.records[k].uri and after[k].version == state.records[k].version for k in after)
    assert json.loads(local_file(after[timeline].uri).read_bytes()) == json.loads(text)
    assert api.verify(instance, store, movie).damaged == {} and api.plan(instance, store, movie).items == []
    assert stale_nodes(instance, movie, expand(load_movie_request(store, movie)).nodes) == []


def test_changed_content_is_found_by_a_full_verify(instance: dg.DagsterInstance, store, movie: str) -> None:
    """A byte flipped in an image keeps its size: the quick check misses it, `verify` (hashes) finds
    it, and `generate --verify` rebuilds it (its build-cache entry points at the same damaged file, so
    the provider is called)."""
    key = NodeKey("segment_image", 0, 1)
    rec = load_state(instance, movie, [key]).records[key]
    data = bytearray(local_file(rec.uri).read_bytes())
    data[len(data) // 2] ^= 0xFF
    local_file(rec.uri).write_bytes(bytes(data))
    assert api.plan(instance, store, movie).items == []  # same size: the quick check cannot tell
    found = api.verify(instance, store, movie)
    assert found.full and list(found.damaged) == [str(key)] and "content changed" in found.damaged[str(key)]
    assert api.verify(instance, store, movie, full=False).damaged == {}
    planned = api.plan(instance, store, movie, verify=True)
    assert {i.node for i in planned.items if i.reason == "damaged"} == {str(key)}
    assert planned.provider_calls == {"TextToImageProducer": 1}
    result = api.generate(instance, store, movie, verify=True)
    assert result.success and result.provider_calls == {"TextToImageProducer": 1} and result.built == [str(key)]
    assert api.verify(instance, store, movie).damaged == {}


def test_a_damaged_request_or_revision_is_a_clear_error_with_a_repair(
        instance: dg.DagsterInstance, store, movie: str, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from movie_assets.domain.errors import StoredFileDamaged
    from movie_assets.interfaces import cli
    from movie_assets.movie_files.layout import request_path, revision_path
    from movie_assets.movie_files.revisions import damaged_revisions

    api.edit(instance, store, movie, [("voice_id", "onyx")])
    request = local_file(store.uri(request_path(movie)))
    request.write_bytes(b"\x00\xff{binary garbage")
    with pytest.raises(StoredFileDamaged, match=r"stored request .*request\.json is damaged .*moviegen repair rev"):
        api.status(instance, store, movie)
    assert cli.main(["status", movie]) == cli.EXIT_DAMAGED
    err = capsys.readouterr().err
    assert err.startswith("error: movie 'rev': its stored request") and "Traceback" not in err
    assert api.repair(instance, store, movie) == "restored the request of movie 'rev' as of edit 1"
    assert load_movie_request(store, movie).voice_id == "onyx"  # the edit survived
    with pytest.raises(ValueError, match="intact; nothing to repair"):
        api.repair(instance, store, movie)
    request.unlink()  # gone altogether: still damaged (the movie is registered), not "no such movie"
    with pytest.raises(StoredFileDamaged, match="the file is missing"):
        api.plan(instance, store, movie)
    assert api.repair(instance, store, movie).endswith("as of edit 1")
    assert api.plan(instance, store, movie).provider_calls == {"AudioProducer": N}
    # No intact copy left: the user gives the request.
    for copy in local_file(store.uri(f"movies/{movie}/requests")).iterdir():
        copy.write_text("{")
    request.write_text("[]")
    with pytest.raises(StoredFileDamaged, match="no intact copy"):
        api.repair(instance, store, movie)
    api.repair(instance, store, movie, small_request(segments={"2": {"use_video": True}}))
    assert api.plan(instance, store, movie).items == []  # the request as it was built

    # A lost edit entry: the next edit still gets a number of its own.
    assert api.edit(instance, store, movie, [("voice_id", "echo")]).seq == 2
    local_file(store.uri(f"movies/{movie}/edits/000001.json")).unlink()
    assert api.edit(instance, store, movie, [("voice_id", small_request().voice_id)]).seq == 3

    # A revision cut short: history lists the others, the next revision gets the next number.
    local_file(store.uri(revision_path(movie, 1))).write_text('{"revision": 1, "ti')
    assert api.history(instance, store, movie) == [] and list(damaged_revisions(store, movie)) == [1]
    assert cli.main(["history", movie]) == 0 and "revision 1:" in capsys.readouterr().err
    api.edit(instance, store, movie, [("voice_id", "onyx")])
    assert api.generate(instance, store, movie).revision == 2
    assert [r.revision for r in api.history(instance, store, movie)] == [2]


def test_reroll_makes_one_new_take_and_pick_goes_back_for_free(instance: dg.DagsterInstance, store, movie: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A re-roll of one image rebuilds that image alone (one call, same prompt, other bytes) and what
    reads it; picking the first take again costs nothing (a build-cache hit) and restores its version."""
    from movie_assets.interfaces import cli

    key, node = NodeKey("segment_image", 1, 1), "segment_image[01_1]"
    first = load_state(instance, movie, [key]).records[key]
    nodes = expand(load_movie_request(store, movie)).nodes

    rerolled = api.reroll(instance, store, movie, node)
    assert (rerolled.previous, rerolled.take) == (0, 1)
    assert [(c.path, c.old, c.new) for c in rerolled.edit.changes] == [("segments.1.image_takes.1", None, 1)]
    assert stale_nodes(instance, movie, nodes) == [NodeKey("segment_image", 1)]  # Dagster agrees: the image's segment
    items = {i.node: (i.reason, i.cause, i.calls_provider) for i in rerolled.plan.items}
    assert items[node] == ("stale", "changed: image_take", True)
    assert {n for n, (reason, _, _) in items.items() if reason != "upstream"} == {node}
    assert {n for n, (_, _, call) in items.items() if call} == {node}
    assert rerolled.plan.provider_calls == {"TextToImageProducer": 1}
    made = api.generate(instance, store, movie)
    assert made.success and made.provider_calls == {"TextToImageProducer": 1}
    second = load_state(instance, movie, [key]).records[key]
    assert second.version != first.version and local_file(second.uri).read_bytes() != local_file(first.uri).read_bytes()
    assert api.plan(instance, store, movie).items == [] and stale_nodes(instance, movie, nodes) == []

    picked = api.pick(instance, store, movie, node, 0)
    assert [(c.path, c.old, c.new) for c in picked.edit.changes] == [("segments.1.image_takes.1", 1, None)]
    assert load_movie_request(store, movie).to_document() == small_request(segments={"2": {"use_video": True}}).to_document()
    assert stale_nodes(instance, movie, nodes) == [NodeKey("segment_image", 1)]
    assert picked.plan.provider_calls == {} and picked.plan.estimated_cost_usd == 0
    assert "reused" in {i.node: i.cause for i in picked.plan.items}[node]
    back = api.generate(instance, store, movie)
    assert back.success and back.provider_calls == {}
    assert load_state(instance, movie, [key]).records[key].version == first.version  # the original image again
    assert api.plan(instance, store, movie).items == [] and stale_nodes(instance, movie, nodes) == []

    listed = api.takes(instance, store, movie, node)
    assert listed.requested == 0
    assert [(t.take, t.current, t.free, t.made_by) for t in listed.takes] == [
        (0, True, True, "offline:offline-pillow-2"), (1, False, True, "offline:offline-pillow-2")]
    assert cli.main(["takes", movie, node]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{movie}: {node}, take 0 requested; 2 made"
    assert out[1].startswith(" * take 0 ") and out[1].endswith("current") and out[2].endswith("pick: free")
    # The next re-roll is a take never made: one more than the highest made so far.
    assert cli.main(["reroll", movie, node]) == 0
    assert "take 0 -> 2" in capsys.readouterr().out
    assert cli.main(["takes", movie, "segment_image[02_0]"]) == cli.EXIT_INVALID  # segment 2 makes a video
    assert "not a node of movie 'rev' with takes" in capsys.readouterr().err


def test_reroll_of_audio_music_and_a_clip_plans_one_call_each(instance: dg.DagsterInstance, store, movie: str) -> None:
    nodes = expand(load_movie_request(store, movie)).nodes
    for node, producer in [("segment_audio[00]", "AudioProducer"), ("music", "MusicProducer"),
                           ("text_to_video_clip[02]", "TextToVideoProducer")]:
        rerolled = api.reroll(instance, store, movie, node)
        assert rerolled.take == 1 and rerolled.plan.provider_calls == {producer: 1}, node
        assert [str(k) for k in stale_nodes(instance, movie, nodes)] == [node]
        api.pick(instance, store, movie, node, 0)  # back: nothing to build
        assert api.plan(instance, store, movie).items == []


def test_a_cut_cache_copy_is_not_promised_as_free(instance: dg.DagsterInstance, store, movie: str) -> None:
    """Undoing an edit reuses what the build cache holds, unless that file was cut short since: then the
    plan counts the call the build will make (the build hashes what it reuses)."""
    key = NodeKey("segment_image", 0, 1)
    original = load_state(instance, movie, [key]).records[key]
    api.edit(instance, store, movie, [("segments.0.image_prompts.1", "a hand-written prompt")])
    assert api.generate(instance, store, movie).provider_calls == {"TextToImageProducer": 1}
    path = local_file(original.uri)
    path.write_bytes(path.read_bytes()[:500])  # no record points at it now: only the cache does
    api.edit(instance, store, movie, [("segments.0.image_prompts.1", UNSET)])
    planned = api.plan(instance, store, movie)
    assert planned.provider_calls == {"TextToImageProducer": 1}
    assert api.generate(instance, store, movie).provider_calls == planned.provider_calls
    assert local_file(load_state(instance, movie, [key]).records[key].uri).stat().st_size == original.metadata["bytes"]


def test_switching_a_segment_between_i2v_and_ti2v_rebuilds_its_clip_and_what_reads_it(
        instance: dg.DagsterInstance, store, movie: str) -> None:
    """Image-to-video and text+image-to-video share the segment's prompt and starting image: switching
    between them rebuilds exactly the clip (one call: the other kind) and what reads it; auto, with a
    starting image given and a model that makes TI2V at 480p, is TI2V (nothing to rebuild)."""
    clip = NodeKey("image_to_video_clip", 1)
    assert api.edit(instance, store, movie, [("segments.1.use_video", True), ("segments.1.video_mode", "image")]).changes
    made = api.generate(instance, store, movie)
    assert made.success and made.provider_calls == {"ImageToVideoPromptProducer": 1, "StartingImageProducer": 1,
                                                    "ImageToVideoProducer": 1}
    i2v = load_state(instance, movie, [clip]).records[clip]
    assert i2v.metadata["video_mode"] == "i2v"
    nodes = expand(load_movie_request(store, movie)).nodes

    assert api.edit(instance, store, movie, [("segments.1.video_mode", "text_and_image")]).changes
    assert stale_nodes(instance, movie, nodes) == [clip]  # Dagster agrees: the clip alone read the mode
    planned = api.plan(instance, store, movie)
    items = {i.node: (i.reason, i.cause) for i in planned.items}
    assert items.pop("image_to_video_clip[01]") == ("stale", "changed: video_mode")
    assert planned.provider_calls == {"ImageToVideoProducer": 1}
    assert all(reason == "upstream" for reason, _ in items.values()) and "segment_visuals[01]" in items
    assert not any(n.startswith(("starting_image", "image_to_video_prompt", "segment_visuals[00]")) for n in items)
    made = api.generate(instance, store, movie)
    assert made.success and made.provider_calls == {"ImageToVideoProducer": 1}
    ti2v = load_state(instance, movie, [clip]).records[clip]
    assert ti2v.metadata["video_mode"] == "ti2v" and ti2v.version != i2v.version
    assert api.generate(instance, store, movie).provider_calls == {}

    # auto: the segment gives a starting image (its prompt); the offline model makes TI2V at 480p.
    assert api.edit(instance, store, movie, [("segments.1.video_mode", "auto"),
                                             ("segments.1.starting_image_prompt", "a lone cannon on a hill")]).changes
    planned = api.plan(instance, store, movie)
    assert planned.provider_calls == {"StartingImageProducer": 1, "ImageToVideoProducer": 1}
    made = api.generate(instance, store, movie)
    assert made.success and made.provider_calls == planned.provider_calls
    assert load_state(instance, movie, [clip]).records[clip].metadata["video_mode"] == "ti2v"
    assert api.plan(instance, store, movie).items == []


def _picture(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (300, 200)) -> Path:
    from PIL import Image

    Image.new("RGB", size, colour).save(path, "PNG")
    return path


def test_your_own_picture_replaces_one_slot_and_its_bytes_decide_what_is_rebuilt(
        instance: dg.DagsterInstance, store, movie: str, tmp_path: Path) -> None:
    """A picture of the user's for one slot: no call for it, the timeline's clip is made from it; other bytes
    rebuild exactly that slot's chain (plan == generate); the same bytes (also from another path) nothing;
    removing it goes back to the generated picture for free (a build-cache hit)."""
    key = NodeKey("segment_image", 1, 0)
    generated = load_state(instance, movie, [key]).records[key].version
    pic = _picture(tmp_path / "pic.png", (200, 30, 30))
    assert api.edit(instance, store, movie, [("segments.1.image_files.0", str(pic))]).changes
    planned = api.plan(instance, store, movie)
    item = next(i for i in planned.items if i.node == str(key))
    assert planned.provider_calls == {} and planned.estimated_cost_usd == 0
    assert not item.calls_provider and item.cost_usd == 0 and "your file pic.png (no call)" in item.cause
    assert ui_marks(instance, movie) == dagster_partitions(i.node for i in planned.items if i.reason != "missing")
    result = api.generate(instance, store, movie)
    assert result.success and result.provider_calls == {}
    assert sorted(result.built) == sorted(i.node for i in planned.items)
    record = load_state(instance, movie, [key]).records[key]
    assert record.version != generated and record.metadata["source"] == "your file" and record.metadata["file"] == "pic.png"
    assert (record.metadata["width"], record.metadata["height"]) == (854, 480)  # fitted to the 480p frame
    clip_src = {c["src"] for t in api.load_timeline(instance, store, movie)["tracks"] for c in t["clips"] if "src" in c}
    assert store.uri(record.uri) in clip_src  # the timeline shows the user's picture
    assert api.generate(instance, store, movie).built == []  # a second generate builds nothing

    # Other bytes at the same path: exactly the slot's chain again, as planned.
    _picture(pic, (30, 30, 200))
    assert api.edit(instance, store, movie, [("segments.1.image_files.0", str(pic))]).changes
    planned = api.plan(instance, store, movie)
    rebuilt = {i.node for i in planned.items}
    assert planned.provider_calls == {} and {"segment_image[01_0]", "segment_visuals[01]", "timeline"} <= rebuilt
    assert not any(n.startswith(("segment_image[00", "segment_image[01_1]", "image_prompt", "segment_audio")) for n in rebuilt)
    again = api.generate(instance, store, movie)
    assert again.provider_calls == {} and set(again.built) == rebuilt
    assert api.plan(instance, store, movie).items == []

    # The same bytes from another path: the request notes where it came from, nothing is rebuilt.
    copy = tmp_path / "copy.png"
    copy.write_bytes(pic.read_bytes())
    api.edit(instance, store, movie, [("segments.1.image_files.0", str(copy))])
    assert api.plan(instance, store, movie).items == []
    assert api.edit(instance, store, movie, [("segments.1.image_files.0", str(copy))]).changes == []

    # Removed: the generated picture again, from the build cache (no call).
    api.edit(instance, store, movie, [("segments.1.image_files.0", UNSET)])
    back = api.generate(instance, store, movie)
    assert back.provider_calls == {} and load_state(instance, movie, [key]).records[key].version == generated
    assert stale_nodes(instance, movie, expand(load_movie_request(store, movie)).nodes) == []


def test_a_bad_file_is_refused_by_an_edit_and_changes_nothing(instance: dg.DagsterInstance, store, movie: str,
                                                              tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_text("this is not a picture at all")
    before = load_movie_request(store, movie)
    with pytest.raises(RequestError) as refused:
        api.edit(instance, store, movie, [("segments.1.image_files.0", str(fake))])
    assert refused.value.problems == [f"edit rejected, nothing changed: segments.1.image_files.0: {str(fake)!r}: it is text "
                                      "'this is not a picture at all', not a picture; allowed: pictures (PNG, JPEG, WebP)"]
    assert load_movie_request(store, movie) == before and api.plan(instance, store, movie).items == []


def test_your_music_reads_no_music_prompt(instance: dg.DagsterInstance, store, movie: str, tmp_path: Path) -> None:
    """With your own music the music reads no prompt: a music prompt edit rebuilds the prompt and nothing
    below it, in the plan, the build and Dagster's view alike."""
    import numpy as np

    from resources.runtime.media import wav_bytes

    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes(0.2 * np.sin(np.arange(8000 * 4) * 2 * np.pi * 330 / 8000), 8000))
    api.edit(instance, store, movie, [("music_file", str(song))])
    first = api.generate(instance, store, movie)
    assert first.success and first.provider_calls == {} and set(first.built) == {"music", "timeline"}
    music = load_state(instance, movie, [NodeKey("music")]).records[NodeKey("music")]
    assert music.metadata["source"] == "your file" and 29_900 <= music.metadata["duration_ms"] <= 30_100  # padded to 30 s
    api.edit(instance, store, movie, [("music_prompt", "slow solo cello")])
    planned = api.plan(instance, store, movie)
    assert [i.node for i in planned.items] == ["music_prompt"] and planned.provider_calls == {}
    blueprint = expand(load_movie_request(store, movie))
    assert stale_nodes(instance, movie, blueprint.nodes) == [NodeKey("music_prompt")]  # not the music
    assert api.generate(instance, store, movie).built == ["music_prompt"]
    assert stale_nodes(instance, movie, blueprint.nodes) == []
