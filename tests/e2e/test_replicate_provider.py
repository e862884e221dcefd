"""The Replicate providers through the real SDK against a local server speaking its protocol."""

from __future__ import annotations

import asyncio

import pytest

from resources.providers.base import ProviderError
from resources.providers.replicate.client import (
    ReplicateImages,
    ReplicateMusic,
    ReplicateSession,
    ReplicateSpeech,
    ReplicateVideo,
)
from resources.runtime.media import mp3_duration_ms, mp4_info, png_size
from resources.runtime.retry import RetryPolicy
from tests.servers.replicate_server import THROTTLED, FakeReplicate


@pytest.fixture
def server():
    with FakeReplicate() as s:
        yield s


def session(server: FakeReplicate, **kw: object) -> ReplicateSession:
    return ReplicateSession(api_token="r8_test", base_url=server.base_url, poll_s=0.01, **kw)  # type: ignore[arg-type]


def test_image_prediction_created_polled_downloaded_and_fitted(server: FakeReplicate) -> None:
    media = asyncio.run(ReplicateImages(session(server)).generate("a lighthouse", style="anime", width=854, height=480, label="x"))
    assert png_size(media.data) == (854, 480) and media.extra["aspect_ratio"] == "16:9"
    (path, body), = server.creates()
    assert path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert body["input"]["aspect_ratio"] == "16:9" and body["input"]["output_format"] == "png"
    assert media.call.request_id in server.predictions and media.call.cost_usd == 0.003
    gets = [r for r in server.requests if r[0] == "GET"]
    assert len(gets) == 2  # polled until terminal


def test_video_and_music_are_conformed_to_the_segment(server: FakeReplicate) -> None:
    video = ReplicateVideo(session(server))
    clip = asyncio.run(video.image_to_video(b"\x89PNG-start", "slow pan", width=640, height=480, seconds=10, label="x"))
    assert mp4_info(clip.data) == (640, 480, 10000)
    assert server.creates()[-1][1]["input"]["first_frame_image"].startswith("data:image/png;base64,")
    music = asyncio.run(ReplicateMusic(session(server)).generate("calm strings", seconds=40))
    assert abs(mp3_duration_ms(music.data) - 40000) < 200
    assert server.creates()[-1][1]["input"]["duration"] == 30


def test_throttled_creates_are_retried_here(server: FakeReplicate) -> None:
    server.create_script.extend([THROTTLED, THROTTLED])
    media = asyncio.run(ReplicateSpeech(session(server)).synthesize("Hello", voice_id="af_bella", language="en",
                                                                    emotion=None, max_ms=10000))
    assert media.call.retries == 2 and len(server.creates()) == 3 and media.duration_ms > 1000


def test_safety_failure_is_not_retried_and_other_failures_name_the_prediction(server: FakeReplicate) -> None:
    server.fail_prediction_when(lambda model, inp: "FORBIDDEN" in inp.get("prompt", ""), "NSFW content detected")
    with pytest.raises(ProviderError, match="rejected by the provider's safety system") as e:
        asyncio.run(ReplicateImages(session(server)).generate("FORBIDDEN", style="anime", width=640, height=480, label="x"))
    assert not e.value.retryable and len(server.creates()) == 1
    server.create_script.extend([THROTTLED] * 5)
    with pytest.raises(ProviderError, match="rate limit after 2 retries"):
        asyncio.run(ReplicateImages(session(server, retry=RetryPolicy(max_attempts=3, base_s=0.01)))
                    .generate("x", style="anime", width=640, height=480, label="x"))


def test_preflight_and_missing_token(server: FakeReplicate) -> None:
    speech = ReplicateSpeech(session(server))
    for voice, language, message in [
        ("nova", "en", "has no voice 'nova' for language 'en'; allowed: narrator, female, male, af_heart"),
        ("af_bella", "es", "has no voice 'af_bella' for language 'es'; allowed: narrator, female, male, ef_dora"),
        ("narrator", "de", "does not speak 'de'"),
    ]:
        with pytest.raises(ProviderError, match=message):
            asyncio.run(speech.synthesize("Hi", voice_id=voice, language=language, emotion=None, max_ms=10000))
    with pytest.raises(ProviderError, match="prompt come.s. from the movie request"):
        ReplicateImages(session(server), params={"prompt": "x"})
    assert server.requests == []
    with pytest.raises(ProviderError, match="REPLICATE_API_TOKEN is not set"):
        ReplicateSession(api_token="")


def test_portable_voice_per_language_and_model_parameters(server: FakeReplicate) -> None:
    asyncio.run(ReplicateSpeech(session(server)).synthesize("Hola", voice_id="male", language="es", emotion=None, max_ms=10000))
    assert server.creates()[-1][1]["input"]["voice"] == "em_alex"
    asyncio.run(ReplicateImages(session(server), params={"go_fast": False, "output_format": "webp"})
                .generate("a map", style="anime", width=640, height=360, label="x"))
    sent = server.creates()[-1][1]["input"]
    assert (sent["go_fast"], sent["output_format"], sent["aspect_ratio"]) == (False, "webp", "16:9")
