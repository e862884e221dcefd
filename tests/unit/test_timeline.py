"""The timeline: caption timing, and assemble_timeline on a small movie built with in-memory providers
(schema, visual tiling, clip ids tied to artifact versions, music ducking, gaps)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from movie_assets.builder.recipes import RECIPES
from movie_assets.builder.timeline import (
    MUSIC_DUCKED_VOLUME,
    assemble_timeline,
    caption_chunks,
    clip_id,
    validate_timeline,
)
from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.records import ArtifactRecord
from movie_assets.domain.request import SEGMENT_MS, MovieRequest
from tests.unit.fakes import MOVIE, Fakes, Run, blueprint_of, hand_context, new_store, run_engine, small_request


def tracks(timeline: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {t["name"]: t["clips"] for t in timeline["tracks"]}


def assert_contiguous(chunks: list[tuple[int, int, str]], start: int, duration: int) -> None:
    at = start
    for s, length, _ in chunks:
        assert isinstance(s, int) and isinstance(length, int) and length >= 1
        assert s == at
        at = s + length
    assert at == start + duration, "the last chunk ends when the narration does"


# -- captions


def test_caption_chunks_are_integer_contiguous_and_end_with_the_speech() -> None:
    words = [f"w{k}" for k in range(30)]
    words[0], words[5], words[29] = "**The**", "_Union_", "`end`"
    text = "# " + " ".join(words)
    chunks = caption_chunks(text, 10000, 7000)

    assert [len(c[2].split()) for c in chunks] == [12, 12, 6]
    assert [(s, length) for s, length, _ in chunks] == [(10000, 2800), (12800, 2800), (15600, 1400)]
    assert_contiguous(chunks, 10000, 7000)
    joined = " ".join(c[2] for c in chunks)
    assert not any(ch in joined for ch in "*_#`[]>")
    assert joined.split()[:1] == ["The"] and "Union" in joined and joined.endswith("end")


def test_caption_chunks_respect_max_words() -> None:
    chunks = caption_chunks("one two three four five six seven", 0, 1000, max_words=3)
    assert [c[2] for c in chunks] == ["one two three", "four five six", "seven"]
    assert_contiguous(chunks, 0, 1000)
    assert caption_chunks("a [link](x) here", 500, 900) == [(500, 900, "a link(x) here")]


@pytest.mark.parametrize("n_words", [1, 5, 12, 13, 24, 25, 37, 60, 170])
def test_caption_chunks_timing_holds_for_spoken_lengths(n_words: int) -> None:
    text = " ".join(f"word{k}" for k in range(n_words))
    for duration in range(1000, SEGMENT_MS + 1, 97):
        chunks = caption_chunks(text, 20000, duration)
        assert all(len(c[2].split()) <= 12 for c in chunks)
        assert sum(len(c[2].split()) for c in chunks) == n_words
        assert_contiguous(chunks, 20000, duration)


def test_caption_chunks_of_nothing() -> None:
    assert caption_chunks("", 0, 5000) == []
    assert caption_chunks("** __ ##", 0, 5000) == []
    assert caption_chunks("some words", 0, 0) == []


# -- assemble_timeline


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A small movie (2 segments × 2 images) built once with in-memory providers."""
    return run_engine(new_store(tmp_path_factory.mktemp("movie")), Fakes(), blueprint_of(small_request()))


def timeline_of(request: MovieRequest, run: Run, records: dict[NodeKey, ArtifactRecord],
                values: dict[NodeKey, Any] | None = None, failures: dict[NodeKey, str] | None = None) -> dict[str, Any]:
    ctx = hand_context(request, records=records, values=values, failures=failures, store=run.engine.store)
    return asyncio.run(assemble_timeline(ctx))


def test_timeline_of_a_small_movie(movie: Run) -> None:
    timeline = movie.value(NodeKey("timeline"))
    validate_timeline(timeline)
    t = tracks(timeline)
    assert timeline["fps"] == 30 and timeline["durationMs"] == 20000 and timeline["durationInFrames"] == 600
    assert timeline["title"] == movie.value(NodeKey("script"))["title"] and timeline["errors"] == []

    # Visual clips tile each 10 s segment exactly, in the order of segment_visuals.
    for i in range(2):
        clips = [c for c in t["visual"] if c["segment"] == i]
        assert [c["partition"] for c in clips] == [f"{MOVIE}|{i:02d}_{j}" for j in range(2)]
        assert clips[0]["startMs"] == i * SEGMENT_MS
        assert all(a["startMs"] + a["durationMs"] == b["startMs"] for a, b in zip(clips, clips[1:], strict=False))
        assert sum(c["durationMs"] for c in clips) == SEGMENT_MS
        for c in clips:
            rec = movie.built[NodeKey.parse(f"segment_image[{c['partition'].split('|')[1]}]")].record
            assert (c["version"], c["src"]) == (rec.version, rec.uri)
            assert c["id"] == clip_id("segment_image", c["partition"].split("|")[1], rec.version)
    assert [c["effect"]["type"] for c in t["visual"]] == ["ken_burns"] * 4
    assert all(c["transitionIn"] == {"type": "cut", "durationMs": 0} for c in t["visual"])

    # Narration: one clip per segment, as long as the audio; captions inside it; music ducked under it.
    audio = [movie.built[NodeKey("segment_audio", i)].record for i in range(2)]
    assert [(c["startMs"], c["durationMs"], c["version"]) for c in t["narration"]] == [
        (i * SEGMENT_MS, audio[i].metadata["duration_ms"], audio[i].version) for i in range(2)]
    for clip in t["narration"]:
        caps = [c for c in t["captions"] if c["segment"] == clip["segment"]]
        assert caps[0]["startMs"] == clip["startMs"]
        assert caps[-1]["startMs"] + caps[-1]["durationMs"] == clip["startMs"] + clip["durationMs"]
    assert "**" not in " ".join(c["text"] for c in t["captions"])
    (music,) = t["music"]
    assert (music["startMs"], music["durationMs"]) == (0, 20000)
    assert music["ducking"] == [{"startMs": c["startMs"], "endMs": c["startMs"] + c["durationMs"], "volume": MUSIC_DUCKED_VOLUME}
                                for c in t["narration"]]
    ids = [c["id"] for track in t.values() for c in track]
    assert len(ids) == len(set(ids))


def test_crossfade_strategy(movie: Run) -> None:
    request = small_request(assembly_strategy="crossfade")
    timeline = timeline_of(request, movie, movie.state.records)
    visual = tracks(timeline)["visual"]
    assert timeline["assemblyStrategy"] == "crossfade"
    assert visual[0]["transitionIn"] == {"type": "cut", "durationMs": 0}
    assert all(c["transitionIn"] == {"type": "crossfade", "durationMs": 500} for c in visual[1:])
    assert all(c["effect"] == {"type": "none"} for c in visual)


def test_dissolve_is_a_transition_a_request_may_ask_for(movie: Run) -> None:
    """Refused by request validation before it existed; now a noise dissolve of 800 ms into every clip."""
    request = small_request(transition="dissolve", segments={"1": {"transition": "wipe"}})
    timeline = timeline_of(request, movie, movie.state.records)
    validate_timeline(timeline)
    visual = tracks(timeline)["visual"]
    assert [c["transitionIn"]["type"] for c in visual[1:]] == [
        "wipe" if c["segment"] == 1 and c["startMs"] == SEGMENT_MS else "dissolve" for c in visual[1:]]
    assert {c["transitionIn"]["durationMs"] for c in visual[1:] if c["transitionIn"]["type"] == "dissolve"} == {800}


def test_one_new_artifact_version_changes_exactly_its_clip_id(movie: Run) -> None:
    request = movie.engine.request
    records = dict(movie.state.records)
    before = timeline_of(request, movie, records)
    assert before == movie.value(NodeKey("timeline")), "the hand-built context gives the engine's timeline"

    key = NodeKey("segment_image", 1, 0)
    old_version = records[key].version
    records[key] = dataclasses.replace(records[key], version="f" * 64, uri=records[key].uri + ".new")
    visuals = asyncio.run(RECIPES["segment_visuals"](hand_context(request, records=records), NodeKey("segment_visuals", 1)))
    after = timeline_of(request, movie, records, values={NodeKey("segment_visuals", 1): visuals.value})
    validate_timeline(after)

    old, new = tracks(before), tracks(after)
    changed = [(a["id"], b["id"]) for a, b in zip(old["visual"], new["visual"], strict=True) if a["id"] != b["id"]]
    assert changed == [(clip_id("segment_image", "01_0", old_version), "segment_image:01_0@ffffffffffff")]
    for name in ("narration", "captions", "music"):
        assert old[name] == new[name]


def test_gaps_leave_errors_and_a_valid_timeline(movie: Run) -> None:
    request = movie.engine.request
    records = {k: r for k, r in movie.state.records.items() if k not in (NodeKey("music"), NodeKey("segment_audio", 1))}
    failures = {NodeKey("segment_narration", 0): "boom"}
    timeline = timeline_of(request, movie, records, failures=failures)
    validate_timeline(timeline)
    t = tracks(timeline)

    assert timeline["errors"] == [
        {"asset": "segment_narration", "partition": f"{MOVIE}|00", "reason": "failed",
         "message": "boom; the previous version is used"},
        {"asset": "segment_audio", "partition": f"{MOVIE}|01", "reason": "missing", "message": "not generated yet"},
        {"asset": "music", "partition": MOVIE, "reason": "missing", "message": "not generated yet"},
    ]
    assert t["music"] == [] and [c["segment"] for c in t["narration"]] == [0]
    seg1 = [c for c in t["captions"] if c["segment"] == 1]
    assert seg1[0]["startMs"] == SEGMENT_MS and seg1[-1]["startMs"] + seg1[-1]["durationMs"] == 2 * SEGMENT_MS, \
        "without audio, the captions of a segment span it"
    assert len(t["visual"]) == 4


def test_long_narration_audio_is_clamped_to_its_segment(movie: Run) -> None:
    records = dict(movie.state.records)
    key = NodeKey("segment_audio", 0)
    records[key] = dataclasses.replace(records[key], metadata={"duration_ms": 12500})
    narration = tracks(timeline_of(movie.engine.request, movie, records))["narration"]
    assert narration[0]["durationMs"] == SEGMENT_MS and narration[1]["startMs"] == SEGMENT_MS


def test_schema_rejects_a_broken_timeline(movie: Run) -> None:
    timeline = movie.value(NodeKey("timeline"))
    broken = {**timeline, "durationMs": 12345}
    with pytest.raises(jsonschema.ValidationError):
        validate_timeline(broken)
    bad_clip = {**tracks(timeline)["visual"][0], "startMs": 1.5}
    broken = {**timeline, "tracks": [{"name": "visual", "clips": [bad_clip]}, *timeline["tracks"][1:]]}
    with pytest.raises(jsonschema.ValidationError):
        validate_timeline(broken)


def test_timeline_of_a_portrait_movie(tmp_path: Path) -> None:
    run = run_engine(new_store(tmp_path), Fakes(), blueprint_of(small_request(duration_seconds=10, aspect_ratio="9:16")))
    timeline = run.value(NodeKey("timeline"))
    validate_timeline(timeline)
    assert (timeline["width"], timeline["height"]) == (480, 854)
    assert [c["durationMs"] for c in tracks(timeline)["visual"]] == [5000, 5000]
