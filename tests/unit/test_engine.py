"""The build engine with in-memory providers: every node once, predicted calls, in-flight limits,
failures that stay local, the upstream cascade stopping on identical content, and the build cache."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import pytest

from movie_assets.builder.code_versions import code_versions
from movie_assets.builder.engine import Built
from movie_assets.builder.timeline import validate_timeline
from movie_assets.domain.blueprint import ARTIFACTS, PRODUCERS, Blueprint, NodeKey, ProviderKind, call_group
from movie_assets.domain.look import shot_of
from movie_assets.domain.plan import Reason, reasons
from movie_assets.domain.records import MovieState
from movie_assets.movie_files.layout import cache_path
from resources.settings import current
from tests.unit.fakes import MOVIE, Fakes, blueprint_of, new_store, run_engine, small_request

SCRIPT = NodeKey("script")
TIMELINE = NodeKey("timeline")


def forget_cache(tmp_path: Path, key: NodeKey) -> None:
    """Drop the build cache's entries of one node (so rebuilding it really calls its provider)."""
    folder = tmp_path / "artifacts" / cache_path(MOVIE, key.asset, key.partition_suffix, "x").rsplit("/", 1)[0]
    assert folder.is_dir(), folder
    shutil.rmtree(folder)


def assert_tiles_segment(clips: list[dict], segment: int) -> None:
    """The visual clips of a segment cover its 10 s exactly, one after another (a gap may be shown as a
    placeholder, never as a hole in time)."""
    at = segment * 10000
    for c in clips:
        assert c["startMs"] == at and c["durationMs"] > 0
        at += c["durationMs"]
    assert at == (segment + 1) * 10000


def test_small_movie_builds_every_node_once_with_the_predicted_calls(tmp_path: Path) -> None:
    request = small_request()
    bp = blueprint_of(request)
    store, fakes = new_store(tmp_path), Fakes()
    run = run_engine(store, fakes, bp)

    assert len(bp.nodes) == 22  # with the research, the look and the narration's timings
    assert Counter(e.key for e in run.events) == Counter(list(bp.nodes)), "every node emitted exactly once"
    assert set(run.built) == set(bp.nodes) and not run.failed and not run.skipped
    assert sorted(run.summary.built) == sorted(bp.nodes)
    predicted = bp.calls(bp.nodes)
    assert predicted == Counter({"ResearchProducer": 1, "ScriptProducer": 1, "LookProducer": 1, "TextToMusicPromptProducer": 1, "MusicProducer": 1, "AudioProducer": 2,
                                 "TextToImagePromptProducer": 2, "TextToImageProducer": 4})
    assert fakes.calls == predicted
    assert run.summary.calls == predicted
    assert abs(run.summary.cost_usd - 0.01 * sum(predicted.values())) < 1e-9
    assert fakes.asked_for == [set(predicted)], "clients are made for exactly the producers that call"

    for key, built in run.built.items():
        rec = built.record
        assert built.reason == "missing" and built.changed
        assert rec.version == hashlib.sha256(built.produced.data).hexdigest()
        assert store.read(rec.uri) == built.produced.data
        # Its reference is its path under the store's root, the same wherever the store is.
        assert rec.uri == f"movies/{MOVIE}/{key.asset}/{key.partition_suffix or '_'}/{rec.version[:16]}.{built.produced.ext}"
    image = run.built[NodeKey("segment_image", 1, 0)]
    assert image.record.metadata == {"width": 854, "height": 480}
    assert image.produced.preview is not None and image.produced.preview[:2] == b"\xff\xd8", "a JPEG thumbnail of the PNG"
    assert run.built[NodeKey("segment_audio", 0)].record.metadata["duration_ms"] > 0

    timeline = run.value(TIMELINE)
    validate_timeline(timeline)
    assert timeline["errors"] == []
    assert timeline["durationMs"] == 20000 and (timeline["width"], timeline["height"]) == (854, 480)


def test_every_visual_mode_calls_each_producer_as_predicted(tmp_path: Path) -> None:
    request = small_request(duration_seconds=30, segments={1: {"use_video": True},
                                                           2: {"use_video": True, "is_image_to_video": True}})
    bp = blueprint_of(request)
    fakes = Fakes()
    run = run_engine(new_store(tmp_path), fakes, bp)

    assert not run.failed and set(run.built) == set(bp.nodes)
    assert fakes.calls == bp.calls(bp.nodes) == Counter({
        "ResearchProducer": 1, "ScriptProducer": 1, "LookProducer": 1, "TextToMusicPromptProducer": 1, "MusicProducer": 1, "AudioProducer": 3,
        "TextToImagePromptProducer": 1, "TextToImageProducer": 2, "TextToVideoPromptProducer": 1,
        "TextToVideoProducer": 1, "ImageToVideoPromptProducer": 1, "StartingImageProducer": 1, "ImageToVideoProducer": 1,
    })
    modes = [run.value(NodeKey("segment_visuals", i))["mode"] for i in range(3)]
    assert modes == ["image_only", "video_by_text", "video_by_image"]
    clips = [c["asset"] for c in run.value(TIMELINE)["tracks"][0]["clips"]]
    assert clips == ["segment_image", "segment_image", "text_to_video_clip", "image_to_video_clip"]


def test_image_in_flight_limit_holds(tmp_path: Path) -> None:
    # Each image call waits until two are in flight at once: overlap is certain, not a matter of timing.
    fakes = Fakes(in_flight={ProviderKind.images: 2}, gates={ProviderKind.images: 2})
    run = run_engine(new_store(tmp_path), fakes, blueprint_of(small_request(duration_seconds=30)))

    assert not run.failed
    assert fakes.calls["TextToImageProducer"] == 6
    assert fakes.concurrency[ProviderKind.images].max == 2


def test_llm_limit_of_one_holds_with_shared_image_prompt_calls(tmp_path: Path) -> None:
    # The m image prompts of a segment share one call holding one slot: a limit of 1 must not deadlock.
    request = small_request(duration_seconds=30, images_per_segment=3)
    bp = blueprint_of(request)
    fakes = Fakes(in_flight={ProviderKind.llm: 1})
    run = run_engine(new_store(tmp_path), fakes, bp)

    assert not run.failed and set(run.built) == set(bp.nodes)
    assert fakes.concurrency[ProviderKind.llm].max == 1
    assert fakes.calls["TextToImagePromptProducer"] == 3


def test_failed_image_fails_only_itself_and_the_timeline_lists_the_gap(tmp_path: Path) -> None:
    bp = blueprint_of(small_request())
    bad = NodeKey("segment_image", 1, 0)
    fakes = Fakes(fail=lambda producer, detail: producer == "TextToImageProducer" and shot_of(detail) == "seg 1 picture 0")
    run = run_engine(new_store(tmp_path), fakes, bp)

    assert set(run.failed) == {bad}
    assert not run.failed[bad].upstream and "refused" in run.failed[bad].message
    assert set(run.built) == set(bp.nodes) - {bad}
    assert fakes.calls["TextToImageProducer"] == 4

    visuals = run.value(NodeKey("segment_visuals", 1))
    assert [c["partition"] for c in visuals["clips"]] == [f"{MOVIE}|01_1"]
    assert visuals["errors"] == [{"asset": "segment_image", "partition": f"{MOVIE}|01_0", "reason": "failed",
                                  "message": run.failed[bad].message, "category": "outage",
                                  "suggestion": "retry later: `moviegen generate civil-war` rebuilds only what failed"}]
    timeline = run.value(TIMELINE)
    validate_timeline(timeline)
    assert timeline["errors"] == visuals["errors"]
    seg1 = [c for c in timeline["tracks"][0]["clips"] if c["segment"] == 1]
    assert [c["partition"] for c in seg1 if c.get("version")] == [f"{MOVIE}|01_1"], "only the pictures that exist"
    assert_tiles_segment(seg1, 1)


def test_an_error_not_a_providers_is_one_line_with_its_traceback_as_its_detail(tmp_path: Path,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    """A failure that is not a provider's (a tool, a bug) is recorded as one line with its category; its
    traceback is the failure's detail (for --verbose and the run's Dagster log), never a log warning of
    its own (which Python would print on stderr, --verbose or not)."""
    bad = NodeKey("segment_image", 1, 0)

    def crash(producer: str, detail: str) -> bool:
        if producer == "TextToImageProducer" and shot_of(detail) == "seg 1 picture 0":
            raise RuntimeError("the tool failed\nits last messages")
        return False

    with caplog.at_level(logging.DEBUG, logger="moviegen"):
        run = run_engine(new_store(tmp_path), Fakes(fail=crash), blueprint_of(small_request()))
    failed = run.failed[bad]
    assert (failed.message, failed.category, failed.upstream) == ("RuntimeError: the tool failed", "local", False)
    assert failed.detail.startswith("Traceback (most recent call last)") and "its last messages" in failed.detail
    assert run.summary.errors[bad] == {"message": failed.message, "category": "local", "suggestion": failed.suggestion,
                                       "detail": failed.detail}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert set(run.failed) == {bad}  # and every other node was built


def test_failed_shared_prompt_call_fails_its_prompts_and_their_images_only(tmp_path: Path) -> None:
    bp = blueprint_of(small_request())
    fakes = Fakes(fail=lambda producer, detail: producer == "TextToImagePromptProducer" and detail == "image_prompts:0")
    run = run_engine(new_store(tmp_path), fakes, bp)

    prompts = {NodeKey("image_prompt", 0, j) for j in range(2)}
    images = {NodeKey("segment_image", 0, j) for j in range(2)}
    assert set(run.failed) == prompts | images
    assert all(not run.failed[k].upstream for k in prompts)
    assert all(run.failed[k].upstream and "upstream image_prompt[00_" in run.failed[k].message for k in images)
    assert fakes.calls["TextToImagePromptProducer"] == 2, "one (failed) call for segment 0, one for segment 1"
    assert {a.name for a in ARTIFACTS.values() if a.tolerant} <= {k.asset for k in run.built}
    assert set(run.built) == set(bp.nodes) - prompts - images

    visuals = run.value(NodeKey("segment_visuals", 0))
    assert visuals["clips"] == []
    assert [e["partition"] for e in visuals["errors"]] == [f"{MOVIE}|00_0", f"{MOVIE}|00_1"]
    timeline = run.value(TIMELINE)
    validate_timeline(timeline)
    assert {e["partition"] for e in timeline["errors"]} == {f"{MOVIE}|00_0", f"{MOVIE}|00_1"}
    assert [c for c in timeline["tracks"][0]["clips"] if c["segment"] == 0 and c.get("version")] == []
    assert_tiles_segment([c for c in timeline["tracks"][0]["clips"] if c["segment"] == 1], 1)


def test_upstream_nodes_are_skipped_when_the_rebuild_is_identical(tmp_path: Path) -> None:
    bp = blueprint_of(small_request())
    store = new_store(tmp_path)
    first = run_engine(store, Fakes(), bp)
    forget_cache(tmp_path, SCRIPT)  # the script is really made again, by the same (deterministic) LLM

    targets = {SCRIPT: Reason.requested} | {k: Reason.upstream for k in bp.downstream([SCRIPT]) - {SCRIPT}}
    assert len(targets) == len(bp.nodes) - 1  # all but the research, which the script reads
    fakes = Fakes()
    second = run_engine(store, fakes, bp, state=first.state, targets=targets)

    assert fakes.calls == Counter({"ScriptProducer": 1})
    assert set(second.built) == {SCRIPT} and not second.built[SCRIPT].changed
    assert second.built[SCRIPT].record.version == first.built[SCRIPT].record.version
    assert set(second.skipped) == set(bp.nodes) - {SCRIPT, NodeKey("research")}
    assert not second.failed


def test_the_cascade_stops_where_a_rebuild_yields_identical_content(tmp_path: Path) -> None:
    bp = blueprint_of(small_request())
    store = new_store(tmp_path)
    first = run_engine(store, Fakes(), bp)
    forget_cache(tmp_path, SCRIPT)

    # A new title only: narration, music prompt and image prompts come out the same, so what reads them is skipped.
    targets = {SCRIPT: Reason.requested} | {k: Reason.upstream for k in bp.downstream([SCRIPT]) - {SCRIPT}}
    fakes = Fakes(salt={"ScriptProducer": "take 2"})
    second = run_engine(store, fakes, bp, state=first.state, targets=targets)

    assert not second.failed
    assert second.built[SCRIPT].changed
    # The image prompts' question (summary, narration, the look's names) is the same: answered before, no call.
    assert fakes.calls == Counter({"ScriptProducer": 1, "LookProducer": 1, "TextToMusicPromptProducer": 1})
    rebuilt_same = {NodeKey("music_prompt"), NodeKey("look"), *(NodeKey("segment_narration", i) for i in range(2)),
                    *(NodeKey("image_prompt", i, j) for i in range(2) for j in range(2))}
    assert set(second.built) == {SCRIPT, TIMELINE} | rebuilt_same
    assert all(not second.built[k].changed for k in rebuilt_same)
    assert set(second.skipped) == set(bp.nodes) - set(second.built) - {NodeKey("research")}
    assert {k.asset for k in second.skipped} == {"music", "segment_audio", "narration_timing", "segment_image", "segment_visuals"}
    assert second.value(TIMELINE)["title"].endswith("(take 2)")


def test_build_cache_reuses_every_artifact_without_a_call(tmp_path: Path) -> None:
    bp = blueprint_of(small_request())
    store = new_store(tmp_path)
    first = run_engine(store, Fakes(), bp)

    fakes = Fakes()
    second = run_engine(store, fakes, bp, state=MovieState(MOVIE))

    assert fakes.calls == Counter() and fakes.log == []
    assert second.summary.calls == Counter() and second.summary.cost_usd == 0
    assert set(second.built) == set(bp.nodes) and not second.failed
    for key, built in second.built.items():
        assert built.record.version == first.built[key].record.version, key
        assert built.record.uri == first.built[key].record.uri
        assert built.produced.call is None
        if call_group(bp.request, key, frozenset(PRODUCERS)) is not None:  # offline: the timings make no call
            assert built.produced.meta["reused"].startswith("made earlier by fake:"), key
    assert second.built[NodeKey("segment_image", 0, 1)].produced.preview is not None
    assert second.value(TIMELINE) == first.value(TIMELINE)


def test_build_cache_reuses_only_what_was_made_from_identical_inputs(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    run_engine(store, Fakes(), blueprint_of(small_request()))

    fakes = Fakes()
    restyled = blueprint_of(small_request(image_style="watercolor"))  # read by the look, image prompts and images only
    run = run_engine(store, fakes, restyled, state=MovieState(MOVIE))

    assert not run.failed
    assert fakes.calls == Counter({"LookProducer": 1, "TextToImagePromptProducer": 2, "TextToImageProducer": 4})


def test_a_failed_rebuild_keeps_the_previous_version_in_the_timeline(tmp_path: Path) -> None:
    bp = blueprint_of(small_request())
    store = new_store(tmp_path)
    first = run_engine(store, Fakes(), bp)
    key = NodeKey("segment_image", 0, 1)
    forget_cache(tmp_path, key)

    fakes = Fakes(fail=lambda producer, detail: producer == "TextToImageProducer")
    targets = {key: Reason.requested, NodeKey("segment_visuals", 0): Reason.upstream, TIMELINE: Reason.upstream}
    second = run_engine(store, fakes, bp, state=first.state, targets=targets)

    assert set(second.failed) == {key} and fakes.calls == Counter({"TextToImageProducer": 1})
    visuals = second.value(NodeKey("segment_visuals", 0))
    previous = [first.built[NodeKey("segment_image", 0, j)].record.version for j in range(2)]
    assert [c["version"] for c in visuals["clips"]] == previous
    assert len(visuals["errors"]) == 1 and visuals["errors"][0]["message"].endswith("; the previous version is used")
    timeline = second.value(TIMELINE)
    assert timeline["errors"] == visuals["errors"]
    assert timeline["tracks"][0]["clips"] == first.value(TIMELINE)["tracks"][0]["clips"]
    assert isinstance(second.built[TIMELINE], Built) and second.built[TIMELINE].changed


def plan_targets(bp: Blueprint, state: MovieState) -> dict[NodeKey, str]:
    """What a generation would build, and why (domain/plan.py's reasons)."""
    return {k: why for k, (why, _) in reasons(bp, state, code_versions(current())).items()}


def test_undoing_an_edit_whose_image_failed_clears_the_error_from_the_timeline(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    original = blueprint_of(small_request())
    edited = blueprint_of(small_request(segments={0: {"image_prompts": {1: "a cavalry charge"}}}))
    key = NodeKey("segment_image", 0, 1)
    first = run_engine(store, Fakes(), original)

    # The edit's new picture fails: the timeline keeps the previous picture and says so.
    failing = Fakes(fail=lambda producer, detail: shot_of(detail) == "a cavalry charge")
    second = run_engine(store, failing, edited, state=first.state, targets=plan_targets(edited, first.state))
    assert set(second.failed) == {key}
    assert [e["partition"] for e in second.value(TIMELINE)["errors"]] == [f"{MOVIE}|00_1"]

    # The edit is undone: the previous picture is what the original inputs made (the build cache has it).
    planned = plan_targets(original, second.state)
    assert planned[key] == Reason.failed
    assert planned[NodeKey("segment_visuals", 0)] == planned[TIMELINE] == Reason.upstream
    fakes = Fakes()
    third = run_engine(store, fakes, original, state=second.state, targets=planned)
    assert not third.failed and fakes.calls == Counter()
    assert third.state.records[key].version == first.built[key].record.version and key not in third.state.failures

    latest = json.loads(store.read(third.state.records[TIMELINE].uri))
    assert latest["errors"] == [], f"the movie's timeline still lists {latest['errors']}"
