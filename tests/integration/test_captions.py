"""Captions timed from the speech with a provider's voice: the narration is spoken through OpenAI's
protocol (the local server speaks with Piper and keeps Piper's own alignment of what it said), heard
again by a planned, priced and cached whisper-1 transcription with word timestamps, and the movie's
captions land within one frame of Piper's timings of the same words."""

from __future__ import annotations

import json
from collections.abc import Iterator

import dagster as dg
import pytest

from movie_assets.domain.blueprint import NodeKey, expand
from movie_assets.interfaces import api
from movie_assets.movie_files.movies import load_movie_request
from movie_assets.orchestration.event_log import load_state
from tests.conftest import local_file, small_request
from tests.e2e.test_openai_provider import piper_speaks
from tests.servers.openai_server import FakeOpenAI, error

FRAME_MS = 1000 / 30
TRANSCRIPTIONS = "/v1/audio/transcriptions"
REFUSED = error(400, "Audio file might be corrupted or unsupported", "invalid_request_error")  # not retried


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """Only the narration on OpenAI: the timings follow it to whisper-1; everything else offline."""
    with FakeOpenAI() as s:
        s.speak = piper_speaks
        s.mishear = {"war": "wore"}
        monkeypatch.setenv("MOVIEGEN_PROVIDERS", "AudioProducer=openai")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
        yield s


def captions_by_segment(timeline: dict) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for page in next(t for t in timeline["tracks"] if t["name"] == "captions")["clips"]:
        out.setdefault(page["segment"], []).extend(page["words"])
    return out


def test_captions_with_openai_speech_are_timed_from_the_speech(instance: dg.DagsterInstance, store, server: FakeOpenAI,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    movie = api.new_movie(instance, store, small_request(duration_seconds=20, images_per_segment=1), "heard")
    planned = api.plan(instance, store, movie)
    assert planned.provider_calls["AudioProducer"] == planned.provider_calls["NarrationTimingProducer"] == 2
    costs = {i.node: i.cost_usd for i in planned.items}
    assert costs["narration_timing[00]"] == pytest.approx(10 / 60 * 0.006)  # whisper-1: $0.006 a minute, 10 s at most
    assert planned.estimated_cost_usd == pytest.approx(2 * 0.15 * 0.012 + 2 * 10 / 60 * 0.006)

    result = api.generate(instance, store, movie)
    assert result.success, result.failed
    assert result.provider_calls == planned.provider_calls
    heard = server.calls(TRANSCRIPTIONS)
    assert len(heard) == 2 and {c.body["model"] for c in heard} == {"whisper-1"}
    spoken = {c.body["input"]: c for c in server.calls("/v1/audio/speech")}
    assert len(spoken) == 2

    timeline = json.loads(local_file(result.timeline).read_text())
    assert timeline["errors"] == []
    request = load_movie_request(store, movie)
    state = load_state(instance, movie, expand(request).nodes)
    for segment, words in captions_by_segment(timeline).items():
        audio = state.records[NodeKey("segment_audio", segment)]
        piper = server.spoken[audio.version]  # Piper's own alignment of this very audio (its data version is its hash)
        assert [w["text"] for w in words] == [w["text"] for w in piper]  # the script's words ("war", not "wore")
        start = segment * 10_000
        for mine, theirs in zip(words, piper, strict=True):
            assert abs(mine["startMs"] - start - theirs["startMs"]) <= FRAME_MS, (mine, theirs)
            assert abs(mine["endMs"] - start - theirs["endMs"]) <= FRAME_MS, (mine, theirs)
        timing = state.records[NodeKey("narration_timing", segment)]
        assert timing.metadata["timing"] == "transcription" and timing.metadata["interpolated"] == 0

    again = api.generate(instance, store, movie)  # cached: nothing to build, no call
    assert again.provider_calls == {} and len(server.calls(TRANSCRIPTIONS)) == 2

    # A narration edit re-runs exactly what reads it: the narration, its audio and timing, the segment's
    # picture prompt and picture, and the timeline (its captions); one more speech and one more transcription.
    api.edit(instance, store, movie, [("segments.1.narration", "A brand new line about the war and its end.")])
    edited = api.plan(instance, store, movie)
    changed = {NodeKey("segment_narration", 1)}
    assert {NodeKey.parse(i.node) for i in edited.items} == expand(request).downstream(changed)
    assert {i.node for i in edited.items if i.calls_provider} == {"segment_audio[01]", "narration_timing[01]", "image_prompt[01_0]",
                                                         "segment_image[01_0]"}
    rebuilt = api.generate(instance, store, movie)
    assert rebuilt.success and rebuilt.provider_calls == edited.provider_calls
    assert {str(k) for k in rebuilt.built} == {i.node for i in edited.items}
    assert len(server.calls(TRANSCRIPTIONS)) == 3
    after = captions_by_segment(json.loads(local_file(rebuilt.timeline).read_text()))
    assert " ".join(w["text"] for w in after[1]) == "A brand new line about the war and its end."
    assert after[0] == captions_by_segment(timeline)[0]


def test_a_failed_transcription_falls_back_to_estimated_captions_until_it_works(
        instance: dg.DagsterInstance, store, server: FakeOpenAI) -> None:
    server.fail_when(TRANSCRIPTIONS, lambda body: True, REFUSED)
    movie = api.new_movie(instance, store, small_request(duration_seconds=10, images_per_segment=1), "unheard")
    result = api.generate(instance, store, movie)
    key = "narration_timing[00]"
    assert list(result.failed) == [key] and result.fallbacks == [key], result.errors  # the movie is complete nevertheless
    timeline = json.loads(local_file(result.timeline).read_text())
    assert [e["reason"] for e in timeline["errors"]] == ["placeholder"] and timeline["errors"][0]["asset"] == "narration_timing"
    words = captions_by_segment(timeline)[0]
    assert words and words[-1]["endMs"] <= 10_000  # captions estimated over the spoken audio
    record = load_state(instance, movie, [NodeKey("narration_timing", 0)]).records[NodeKey("narration_timing", 0)]
    assert record.metadata["timing"] == "estimate" and record.metadata["fallback"] is True
    server.rules.clear()  # the provider works again: the next generate calls it again
    retry = api.generate(instance, store, movie)
    assert retry.success and retry.provider_calls == {"NarrationTimingProducer": 1} and retry.fallbacks == []
    assert json.loads(local_file(retry.timeline).read_text())["errors"] == []

