"""The Replicate providers through the real SDK against a local server speaking its protocol."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from resources.providers.base import SUGGESTIONS, ErrorCategory, ProviderError
from resources.providers.replicate.client import (
    ReplicateImages,
    ReplicateMusic,
    ReplicateSession,
    ReplicateSpeech,
    ReplicateVideo,
)
from resources.runtime.media import mp3_duration_ms, mp4_info, png_size
from resources.runtime.retry import RetryPolicy
from tests.servers.replicate_server import (
    INVALID_JSON,
    NO_OUTPUT,
    NOT_MEDIA,
    THROTTLED,
    TRUNCATED,
    URL_404,
    URL_PAGE,
    URL_UNREACHABLE,
    FakeReplicate,
    closed_port,
)


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


# One call of each producer kind Replicate serves: (model, what its answer is, the call).
CALLS: dict[str, tuple[str, str, Callable[[ReplicateSession], Any]]] = {
    "images": ("black-forest-labs/flux-schnell", "an image",
               lambda s: ReplicateImages(s).generate("a lighthouse", style="anime", width=640, height=360, label="x")),
    "video": ("minimax/video-01", "a video",
              lambda s: ReplicateVideo(s).text_to_video("a slow pan", style="anime", width=640, height=360, seconds=3, label="x")),
    "music": ("meta/musicgen", "audio", lambda s: ReplicateMusic(s).generate("calm strings", seconds=5)),
    "speech": ("jaaari/kokoro-82m", "audio",
               lambda s: ReplicateSpeech(s).synthesize("Hello", voice_id="af_bella", language="en", emotion=None, max_ms=10000)),
}


def outage(server: FakeReplicate, kind: str, **kw: object) -> ProviderError:
    """The ProviderError of one call of ``kind``: an outage of Replicate's (retry later), one line."""
    with pytest.raises(ProviderError) as e:
        asyncio.run(CALLS[kind][2](session(server, **kw)))
    assert (e.value.category, e.value.retryable, e.value.provider) == (ErrorCategory.outage, True, "replicate")
    assert e.value.suggestion == SUGGESTIONS[ErrorCategory.outage] and "\n" not in str(e.value), str(e.value)
    return e.value


@pytest.mark.parametrize(("kind", "fault", "why"), [
    ("images", NOT_MEDIA, "not an image: text '<html>"),
    ("images", TRUNCATED, "truncated PNG"),
    ("video", NOT_MEDIA, "not a video file: text '<html>"),
    ("video", TRUNCATED, "truncated"),
    ("music", NOT_MEDIA, "not an audio file: text '<html>"),
    ("music", TRUNCATED, "truncated MP3"),
    ("speech", NOT_MEDIA, "not an audio file: text '<html>"),
    ("speech", TRUNCATED, "truncated MP3"),
    ("images", URL_PAGE, "not an image: text '<html>"),
])
def test_an_output_that_cannot_be_read_is_the_providers_fault(server: FakeReplicate, kind: str, fault: str, why: str) -> None:
    """A prediction that succeeded with a page where the media goes, or its file cut short: an outage of
    Replicate's naming the model, the prediction and what was wrong (never this machine's fault)."""
    model, what, _ = CALLS[kind]
    server.malform_when(lambda m, inp: True, fault)
    message = str(outage(server, kind))
    assert re.match(rf"Replicate's {model} prediction p\w+ answered with {what} that cannot be read \({re.escape(why)}", message), message
    assert len(server.creates()) == 1  # not made again at once: the next generate does


def test_outputs_that_are_missing_or_cannot_be_downloaded(server: FakeReplicate) -> None:
    server.malform_when(lambda m, inp: True, NO_OUTPUT)
    assert re.fullmatch(r"Replicate's meta/musicgen prediction p\w+ answered without output", str(outage(server, "music")))
    server.malform_rules[:] = [(lambda m, inp: True, URL_404)]
    assert re.fullmatch(rf"Replicate's minimax/video-01 prediction p\w+ answered with an output URL that cannot be downloaded: "
                        rf"{server.base_url}/files/p\w+ \(404 Not Found\)", str(outage(server, "video")))
    server.malform_rules[:] = [(lambda m, inp: True, URL_UNREACHABLE)]
    message = str(outage(server, "images"))
    assert re.fullmatch(r"cannot download the output of Replicate's black-forest-labs/flux-schnell prediction p\w+ from "
                        r"http://127\.0\.0\.1:\d+/files/p\w+: All connection attempts failed", message), message


def test_a_prediction_that_cannot_be_read_or_an_unreachable_replicate(server: FakeReplicate) -> None:
    server.create_script.append(INVALID_JSON)
    message = str(outage(server, "speech"))
    assert message.startswith("Replicate answered with a prediction that cannot be read (") and len(server.creates()) == 1
    closed = f"http://127.0.0.1:{closed_port()}"
    unreachable = ReplicateSession(api_token="r8_test", base_url=closed, poll_s=0.01, retry=RetryPolicy(max_attempts=2, base_s=0.01))
    with pytest.raises(ProviderError) as e:
        asyncio.run(CALLS["images"][2](unreachable))
    assert (e.value.category, e.value.retryable) == (ErrorCategory.outage, True)
    assert str(e.value) == f"cannot reach Replicate at {closed} after 1 retry: All connection attempts failed"


def test_ti2v_sends_the_image_and_the_text_and_what_a_model_cannot_make_is_refused_before_any_call(
        server: FakeReplicate) -> None:
    wan = ReplicateVideo(session(server), "wan-video/wan-2.2-5b-fast")
    clip = asyncio.run(wan.text_image_to_video(b"\x89PNG-start", "a steam train on a bridge, slow push-in", style="anime",
                                               width=854, height=480, seconds=10, label="x", seed=2))
    assert mp4_info(clip.data) == (854, 480, 10000) and clip.extra["video_call"] == "ti2v"
    (path, body), = server.creates()
    assert path == "/v1/models/wan-video/wan-2.2-5b-fast/predictions"
    sent = body["input"]
    assert sent["image"].startswith("data:image/png;base64,") and sent["prompt"].startswith("a steam train on a bridge")
    assert (sent["resolution"], sent["seed"]) == ("480p", 2)  # wan takes a seed: the take
    before = len(server.requests)
    for call, message in [
        (lambda: wan.image_to_video(b"\x89PNG", "pan", width=854, height=480, seconds=10, label="x"),
         "wan-video/wan-2.2-5b-fast cannot make image-to-video; it makes text-to-video, text[+]image-to-video"),
        (lambda: wan.text_image_to_video(b"\x89PNG", "a train", style="anime", width=1920, height=1080, seconds=10, label="x"),
         "cannot make 1080p clips; it makes 480p, 720p"),
        (lambda: wan.text_image_to_video(b"\x89PNG", " ", style="anime", width=854, height=480, seconds=10, label="x"),
         "needs both a prompt and an image"),
        (lambda: ReplicateVideo(session(server)).text_to_video("x", style="anime", width=1280, height=720, seconds=30, label="x"),
         "minimax/video-01 makes clips of 6 s: a 30 s clip would hold its last frame over 10 s"),
    ]:
        with pytest.raises(ProviderError, match=message) as e:
            asyncio.run(call())
        assert e.value.category in (ErrorCategory.configuration, ErrorCategory.bad_input)
    assert len(server.requests) == before  # refused before any call
    # minimax takes no seed: a take is a new call, and the clip says so.
    minimax = asyncio.run(ReplicateVideo(session(server)).text_image_to_video(
        b"\x89PNG-start", "a train", style="anime", width=1280, height=720, seconds=10, label="x", seed=3))
    sent = server.creates()[-1][1]["input"]
    assert "seed" not in sent and sent["first_frame_image"].startswith("data:image/png;base64,")
    assert minimax.extra["seed"] == "not taken by minimax/video-01: a new call"
