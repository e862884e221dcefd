"""The offline providers make real media: speech, exact-size pictures, 10 s clips, music beds."""

from __future__ import annotations

import asyncio
import io
import wave

import numpy as np
import pytest

from resources.providers.base import ProviderError
from resources.providers.offline.media import (
    OfflineImages,
    OfflineMusic,
    OfflineVideo,
    PiperSpeech,
    voice_rate,
)
from resources.runtime.media import mp3_duration_ms, mp4_info, png_size, run_ffmpeg
from resources.settings import LatencyProfile


def decode_mp3(data: bytes) -> np.ndarray:
    wav = run_ffmpeg(["-i", "in.mp3", "-ac", "1", "-ar", "16000"], {"in.mp3": data}, "out.wav")
    with wave.open(io.BytesIO(wav)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768


def test_speech_is_real_audio_and_fits_its_segment() -> None:
    speech = PiperSpeech()
    text = "The war began in eighteen sixty one and changed the country forever."
    media = asyncio.run(speech.synthesize(text, voice_id="nova", language="en", emotion=None, max_ms=10000))
    samples = decode_mp3(media.data)
    assert 2000 < mp3_duration_ms(media.data) <= 10100
    assert float(np.sqrt(np.mean(samples**2))) > 0.02  # not silence
    long_text = " ".join(["A very long narration that keeps going and going."] * 6)
    fitted = asyncio.run(speech.synthesize(long_text, voice_id="nova", language="en", emotion=None, max_ms=10000))
    assert fitted.extra["length_scale"] < voice_rate("nova", None)  # spoken faster to fit


def test_speech_in_spanish_and_unknown_language() -> None:
    speech = PiperSpeech()
    media = asyncio.run(speech.synthesize("La guerra civil cambió el país.", voice_id="x", language="es", emotion=None, max_ms=10000))
    assert media.extra["espeak_voice"] == "es" and mp3_duration_ms(media.data) > 1000
    with pytest.raises(ProviderError, match="no voice for language 'zz'"):
        asyncio.run(speech.synthesize("hola", voice_id="x", language="zz", emotion=None, max_ms=10000))


def test_voice_mapping_is_deterministic() -> None:
    assert voice_rate("alloy", None) == voice_rate("alloy", None)
    assert 0.9 < voice_rate("anything-at-all", "excited") < 1.1


@pytest.mark.parametrize("size", [(854, 480), (720, 1280), (1080, 1080), (640, 480)])
def test_images_have_the_exact_size(size: tuple[int, int]) -> None:
    media = asyncio.run(OfflineImages().generate("a lighthouse at dusk", style="watercolor", width=size[0], height=size[1], label="t"))
    assert png_size(media.data) == size


def test_video_clips_are_ten_seconds_at_the_requested_size() -> None:
    video = OfflineVideo()
    clip = asyncio.run(video.text_to_video("slow push-in over a harbour", style="cinematic", width=480, height=854, seconds=10, label="t"))
    assert mp4_info(clip.data) == (480, 854, 10000)
    still = asyncio.run(OfflineImages().generate("harbour", style="anime", width=640, height=480, label="s"))
    animated = asyncio.run(video.image_to_video(still.data, "pan left", width=640, height=480, seconds=10, label="t"))
    assert mp4_info(animated.data) == (640, 480, 10000)


def test_music_bed_lasts_the_movie() -> None:
    media = asyncio.run(OfflineMusic().generate("calm piano", seconds=40))
    assert abs(mp3_duration_ms(media.data) - 40000) < 200
    assert float(np.abs(decode_mp3(media.data)).max()) > 0.1


def test_latency_profile_counts_work_toward_the_median() -> None:
    import time

    images = OfflineImages(latency_s=LatencyProfile.scaled.seconds("TextToImageProducer", 0.02))  # 30 s * 0.02 = 0.6 s
    started = time.monotonic()
    asyncio.run(images.generate("x", style="anime", width=320, height=240, label="t"))
    assert time.monotonic() - started >= 0.6  # the simulated median latency, scaled
