"""Generation through Dagster for real: files, sizes, durations, metadata, data versions, timeline."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg
import jsonschema
import pytest

from movie_assets.domain.blueprint import ARTIFACTS, INPUTS, NodeKey, expand
from movie_assets.interfaces import api
from movie_assets.movie_files.movies import load_movie_request, save_movie_request
from movie_assets.orchestration.event_log import load_state
from movie_assets.orchestration.registry import observe_inputs
from partitions import node_partition
from resources.runtime.media import mp3_duration_ms, mp4_info, png_size
from resources.storage import ArtifactStore
from tests.conftest import REPO, HomeSnapshot, local_file, new_home, small_request
from tests.staleness import dagster_partitions, stale_nodes, ui_marks

MIXED = {"segments": {"1": {"use_video": True}, "2": {"use_video": True, "is_image_to_video": True}}}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> HomeSnapshot:
    def build(instance: dg.DagsterInstance, store: ArtifactStore) -> tuple[str, api.GenerateResult]:
        movie = api.new_movie(instance, store, small_request(**MIXED), "mixed")
        return movie, api.generate(instance, store, movie)

    return HomeSnapshot(tmp_path_factory.mktemp("pipeline") / "dagster_home", build)


@pytest.fixture
def home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tests of the generated mixed movie start from it (made once for the module, restored for each
    test: some change it); the others from an empty home."""
    if "generated" in request.fixturenames:
        return request.getfixturevalue("mixed").restore(monkeypatch)
    path = new_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(path))
    return path


@pytest.fixture
def generated(mixed: HomeSnapshot, home: Path) -> tuple[str, api.GenerateResult]:
    return mixed.built


def test_mixed_movie_is_built_exactly_as_planned(instance: dg.DagsterInstance, store) -> None:
    movie = api.new_movie(instance, store, small_request(**MIXED), "mixed")
    planned = api.plan(instance, store, movie)
    assert {i.reason for i in planned.items} == {"missing"}
    result = api.generate(instance, store, movie)
    assert result.success, result.failed
    assert result.provider_calls == planned.provider_calls
    assert result.provider_calls == {
        "AudioProducer": 3, "ImageToVideoProducer": 1, "ImageToVideoPromptProducer": 1, "LookProducer": 1, "MusicProducer": 1,
        "ResearchProducer": 1,
        "ScriptProducer": 1, "StartingImageProducer": 1, "TextToImageProducer": 2, "TextToImagePromptProducer": 1,
        "TextToMusicPromptProducer": 1, "TextToVideoProducer": 1, "TextToVideoPromptProducer": 1,
    }
    blueprint = expand(load_movie_request(store, movie))
    state = load_state(instance, movie, blueprint.nodes)
    assert set(state.records) == set(blueprint.nodes) and not state.failures
    for key, rec in state.records.items():
        data = local_file(rec.uri).read_bytes()
        assert hashlib.sha256(data).hexdigest() == rec.version, key
        assert rec.version[:16] in rec.uri
        assert rec.metadata["data_version"] == rec.version
    for s in range(3):  # the offline voice's own word timings, with no call (none counted above)
        timing, audio = state.records[NodeKey("narration_timing", s)], state.records[NodeKey("segment_audio", s)]
        assert timing.metadata["timing"] == "alignment"
        assert json.loads(local_file(timing.uri).read_text())["words"] == json.loads(audio.metadata["words"])
    width, height = 854, 480
    for key in [NodeKey("segment_image", 0, 0), NodeKey("segment_image", 0, 1), NodeKey("starting_image", 2)]:
        assert png_size(local_file(state.records[key].uri).read_bytes()) == (width, height)
    for key in [NodeKey("text_to_video_clip", 1), NodeKey("image_to_video_clip", 2)]:
        assert mp4_info(local_file(state.records[key].uri).read_bytes()) == (width, height, 10000)
    for i in range(3):
        ms = mp3_duration_ms(local_file(state.records[NodeKey("segment_audio", i)].uri).read_bytes())
        assert 2000 < ms <= 10100
    music_ms = mp3_duration_ms(local_file(state.records[NodeKey("music")].uri).read_bytes())
    assert abs(music_ms - 30000) < 200
    image = state.records[NodeKey("segment_image", 0, 1)].metadata
    assert image["provider"] == "offline" and image["model"] and image["prompt"]
    # The segment's partition shows both of its pictures.
    (shown,) = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey("segment_image"),
                                                                     asset_partitions=["mixed|00"]), limit=1).records
    assert shown.event_log_entry.asset_materialization.metadata["preview"].value.count("data:image/jpeg") == 2  # type: ignore[union-attr]
    assert state.records[NodeKey("script")].metadata["title"]


def test_only_the_movies_partitions_exist_and_all_are_fresh(instance: dg.DagsterInstance, generated) -> None:
    movie, _ = generated
    assert instance.get_materialized_partitions(dg.AssetKey("segment_image")) == {"mixed|00"}  # its two images
    assert instance.get_materialized_partitions(dg.AssetKey("segment_audio")) == {"mixed|00", "mixed|01", "mixed|02"}
    assert instance.get_materialized_partitions(dg.AssetKey("text_to_video_clip")) == {"mixed|01"}
    blueprint = expand(load_movie_request(api.ArtifactStore(), movie))
    assert stale_nodes(instance, movie, blueprint.nodes) == []


def test_a_movie_alone_has_exactly_the_partitions_it_builds(instance: dg.DagsterInstance, generated) -> None:
    """No partition that can never be built: every artifact asset has exactly the movie's partitions of it
    (with rendering on: the render assets are the movie's too), its video assets only its video segments."""
    movie, _ = generated
    from movie_assets.definitions import defs

    blueprint = expand(load_movie_request(api.ArtifactStore(), movie), render=True)
    graph = defs().resolve_asset_graph()
    for name in ARTIFACTS:
        partitions_def = graph.get(dg.AssetKey(name)).partitions_def
        assert partitions_def is not None
        has = set(partitions_def.get_partition_keys(dynamic_partitions_store=instance))
        assert has == {str(node_partition(movie, k)) for k in blueprint.nodes if k.asset == name}, name
    for name in INPUTS:  # every partition of every user input is observed: none shows missing
        partitions_def = graph.get(dg.AssetKey(name)).partitions_def
        assert partitions_def is not None
        observed = {r.partition_key for r in instance.fetch_observations(dg.AssetKey(name), limit=1000).records}
        assert set(partitions_def.get_partition_keys(dynamic_partitions_store=instance)) == observed, name


def test_timeline_matches_schema_and_artifacts(instance: dg.DagsterInstance, store, generated) -> None:
    movie, result = generated
    timeline = json.loads(local_file(result.timeline).read_text())
    schema = json.loads((REPO / "docs" / "timeline.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(timeline)
    assert (timeline["width"], timeline["height"], timeline["durationMs"], timeline["fps"]) == (854, 480, 30000, 30)
    tracks = {t["name"]: t["clips"] for t in timeline["tracks"]}
    assert [t["name"] for t in timeline["tracks"]] == ["visual", "narration", "captions", "music"]
    assert timeline["errors"] == []
    state = load_state(instance, movie, expand(load_movie_request(store, movie)).nodes)
    for clip in tracks["visual"] + tracks["narration"] + tracks["music"]:
        key = NodeKey.from_partition(clip["asset"], clip["partition"])
        assert clip["version"] == state.records[key].version and clip["src"] == state.records[key].uri
        # The catalog reads a record's path under the root (metadata `path`); `uri` is for the UI only.
        assert clip["src"] == state.records[key].metadata["path"] == store.rel_of(state.records[key].metadata["uri"])
        assert clip["id"].endswith("@" + clip["version"][:12])
    for i in range(3):
        visual = [c for c in tracks["visual"] if c["segment"] == i]
        assert sum(c["durationMs"] for c in visual) == 10000 and visual[0]["startMs"] == i * 10000
    assert [c["type"] for c in tracks["visual"]] == ["image", "image", "video", "video"]
    assert tracks["visual"][0]["effect"]["type"] == "ken_burns"
    assert len(tracks["narration"]) == 3 and tracks["captions"]
    assert len(tracks["music"][0]["ducking"]) == 3


def test_second_generate_calls_nothing(instance: dg.DagsterInstance, store, generated) -> None:
    movie, first = generated
    again = api.generate(instance, store, movie)
    assert again.run_id is None and again.provider_calls == {} and again.timeline == first.timeline


def test_failed_partition_is_isolated_and_retried_alone(instance: dg.DagsterInstance, store,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEGEN_FALLBACK", "off")
    request = small_request(segments={"1": {"image_prompts": {"1": "a lighthouse FAILME at night"}}})
    movie = api.new_movie(instance, store, request, "flaky")
    result = api.generate(instance, store, movie, resource_config={"images": {"fail_when": "FAILME"}})
    assert not result.success
    assert list(result.failed) == ["segment_image[01_1]"] and "refused" in result.failed["segment_image[01_1]"]
    assert result.errors["segment_image[01_1]"]["category"] == "bad_input" and result.fallbacks == []
    assert len(result.built) == len(expand(request).nodes) - 1  # everything else is kept, timeline included
    timeline = json.loads(local_file(result.timeline).read_text())
    assert timeline["errors"] == [{"asset": "segment_image", "partition": "flaky|01_1", "reason": "failed",
                                   "message": result.failed["segment_image[01_1]"], "category": "bad_input",
                                   "suggestion": result.errors["segment_image[01_1]"]["suggestion"]}]
    # The failed picture's slot is a visible placeholder (timeline format 2), the other picture stays.
    assert [c["type"] for c in timeline["tracks"][0]["clips"] if c["segment"] == 1] == ["image", "placeholder"]
    status = api.status(instance, store, movie)
    assert list(status.failures) == ["segment_image[01_1]"]
    planned = {i.node: i.reason for i in api.plan(instance, store, movie).items}
    assert planned == {"segment_image[01_1]": "failed", "segment_visuals[01]": "upstream", "timeline": "upstream"}
    retry = api.generate(instance, store, movie)
    assert retry.success and retry.provider_calls == {"TextToImageProducer": 1}
    assert json.loads(local_file(retry.timeline).read_text())["errors"] == []
    assert local_file(result.timeline).exists()  # the earlier timeline stays readable


def test_a_placeholder_stands_in_for_a_failed_picture_until_the_provider_works(instance: dg.DagsterInstance, store) -> None:
    """Seed behaviour: a picture whose provider fails for good gets an offline placeholder, marked as
    such; the partition still counts as failed, so the next generate calls the provider again and
    replaces exactly the placeholder."""
    request = small_request(segments={"1": {"image_prompts": {"1": "a lighthouse FAILME at night"}}})
    movie = api.new_movie(instance, store, request, "stand-in")
    result = api.generate(instance, store, movie, resource_config={"images": {"fail_when": "FAILME"}})
    key = "segment_image[01_1]"
    assert not result.success and list(result.failed) == [key] and result.fallbacks == [key]
    assert "placeholder" in result.failed[key] and result.errors[key]["category"] == "bad_input"
    assert len(result.built) == len(expand(request).nodes)  # the placeholder too: the movie is complete
    assert result.provider_calls.get("TextToImageProducer") == 5  # the placeholder is no provider call
    timeline = json.loads(local_file(result.timeline).read_text())
    clips = [c for c in timeline["tracks"][0]["clips"] if c["segment"] == 1]
    assert [c["type"] for c in clips] == ["image", "image"] and [c.get("fallback") for c in clips] == [None, True]
    errors = [e for e in timeline["errors"] if e["partition"] == "stand-in|01_1"]
    assert [e["reason"] for e in errors] == ["placeholder"] and errors[0]["category"] == "bad_input"
    assert errors[0]["suggestion"].startswith("edit the request (moviegen edit stand-in --set ...)")  # the category's own
    placeholder = load_state(instance, movie, [NodeKey("segment_image", 1, 1)]).records[NodeKey("segment_image", 1, 1)]
    assert placeholder.metadata["fallback"] is True and "refused" in placeholder.metadata["fallback_for"]
    status = api.status(instance, store, movie)
    assert list(status.placeholders) == [key] and status.to_build == 3
    assert status.errors[key]["category"] == "bad_input" and "replaces the placeholder" in status.errors[key]["suggestion"]
    assert {a.asset: a.failed for a in status.assets}["segment_image"] == 1 and key in status.failures  # still failed
    planned = {i.node: i.reason for i in api.plan(instance, store, movie).items}
    assert planned == {key: "failed", "segment_visuals[01]": "upstream", "timeline": "upstream"}
    retry = api.generate(instance, store, movie)  # the provider works again
    assert retry.success and retry.provider_calls == {"TextToImageProducer": 1} and retry.fallbacks == []
    assert json.loads(local_file(retry.timeline).read_text())["errors"] == []
    real = load_state(instance, movie, [NodeKey("segment_image", 1, 1)]).records[NodeKey("segment_image", 1, 1)]
    assert real.version != placeholder.version and not real.metadata.get("fallback")
    assert api.plan(instance, store, movie).items == []


def test_input_edit_makes_exactly_its_dependents_stale(instance: dg.DagsterInstance, store, generated) -> None:
    movie, _ = generated
    request = load_movie_request(store, movie)
    edited = request.model_copy(update={"segments": {**request.segments, 0: request.overrides(0).model_copy(update={"narration": "A new first line."})}})
    save_movie_request(store, movie, edited)
    observe_inputs(instance, movie, edited, known=None)
    blueprint = expand(edited)
    assert stale_nodes(instance, movie, blueprint.nodes) == [NodeKey("segment_narration", 0)]


def test_partition_run_like_the_ui(instance: dg.DagsterInstance, store, generated) -> None:
    """A run of selected partitions (the UI's Materialize, `dg launch`) builds what the movie's plan rebuilds
    among them and their upstream -- nothing more, nothing up to date again -- and leaves the rest marked."""
    movie, _ = generated
    from movie_assets.definitions import defs

    job = defs().resolve_implicit_global_asset_job_def()
    audio = dg.AssetKey("segment_audio")
    fresh = job.execute_in_process(instance=instance, asset_selection=[audio], partition_key=f"{movie}|01")
    assert fresh.success and fresh.get_asset_materialization_events() == []  # up to date: not built again
    api.edit(instance, store, movie, [("segments.1.narration", "A brand new line about the war.")])
    planned = {i.node for i in api.plan(instance, store, movie).items}
    run = job.execute_in_process(instance=instance, asset_selection=[audio], partition_key=f"{movie}|01")
    assert run.success
    built = {str(NodeKey.from_partition(e.asset_key.to_user_string(), str(e.partition)))
             for e in run.get_asset_materialization_events()}
    assert built == {"segment_narration[01]", "segment_audio[01]"}  # the selection and what it needs
    assert ui_marks(instance, movie) == dagster_partitions(i.node for i in api.plan(instance, store, movie).items)
    assert {i.node for i in api.plan(instance, store, movie).items} == planned - built
    # Its up_to_date check reports the plan after the run: nothing of segment_audio is left to rebuild.
    (evaluation,) = [e.asset_check_evaluation_data for e in run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
                     and e.asset_check_evaluation_data.check_name == "up_to_date"]  # type: ignore[union-attr]
    assert evaluation.passed
    # Segment 07 exists in no registered movie: Dagster has no such partition (nothing to launch).
    with pytest.raises(dg.DagsterUnknownPartitionError):
        job.execute_in_process(instance=instance, asset_selection=[audio], partition_key=f"{movie}|07")
    # Segment 04 of this 3-segment movie exists once a 5-segment movie is registered: refused before anything
    # is built, naming the partitions this movie has, and no check of the artifact reports on it.
    api.new_movie(instance, store, small_request(duration_seconds=50), "longer")
    outside = job.execute_in_process(instance=instance, asset_selection=[audio], partition_key=f"{movie}|04", raise_on_error=False)
    assert not outside.success and outside.get_asset_materialization_events() == []
    failure = next(e for e in outside.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message  # type: ignore[union-attr]
    assert f"{movie}|04: not partitions of movie {movie!r}" in message
    assert f"segment_audio: {movie}|00, {movie}|01, {movie}|02" in message and "nothing was built" in message
    checks = [e.asset_check_evaluation_data.check_name for e in outside.all_events  # type: ignore[union-attr]
              if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert "narration_fits_segment" not in checks


def test_checks_alone_evaluate_what_exists(instance: dg.DagsterInstance, store, generated) -> None:
    """The checks' "Execute all" (checks selected, no partition) evaluates them on every movie's artifacts and
    builds nothing."""
    movie, _ = generated
    from movie_assets.definitions import defs

    job = defs().resolve_implicit_global_asset_job_def()
    key = dg.AssetKey("segment_audio")
    checks = {dg.AssetCheckKey(key, "narration_fits_segment"), dg.AssetCheckKey(key, "up_to_date")}
    run = job.get_subset(asset_selection=set(), asset_check_selection=checks).execute_in_process(instance=instance)
    assert run.success and run.get_asset_materialization_events() == []
    results = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data  # type: ignore[union-attr]
               for e in run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert set(results) == {"narration_fits_segment", "up_to_date"}
    assert results["narration_fits_segment"].metadata["partitions_checked"].value == 3
    assert results["up_to_date"].passed
