"""The offline providers make real media: speech, exact-size pictures, 10 s clips, music beds."""

from __future__ import annotations

import asyncio
import io
import re
import wave

import numpy as np
import pytest
from PIL import Image

from resources.providers.base import ProviderError
from resources.providers.offline.media import (
    OfflineImages,
    OfflineMusic,
    OfflineVideo,
    PiperSpeech,
    draw_picture,
    headline,
    shot_type,
    voice_rate,
    word_timings,
)
from resources.providers.offline.pictures import paint, text_area
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
    assert media.extra["voice"] == "es+m3" and mp3_duration_ms(media.data) > 1000
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


def _frame_at(mp4: bytes, seconds: float) -> np.ndarray:
    png = run_ffmpeg(["-ss", str(seconds), "-i", "in.mp4", "-frames:v", "1"], {"in.mp4": mp4}, "f.png")
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)


def test_a_ti2v_clip_starts_on_the_image_and_ends_on_the_text() -> None:
    """Text+image-to-video takes both: the clip opens on the starting image (as image-to-video does) and
    ends on the picture of the text, which image-to-video never shows; without a prompt it is refused."""
    video = OfflineVideo()
    still = asyncio.run(OfflineImages().generate("a red barn at dawn", style="cinematic", width=640, height=360, label="s"))
    text = "a steam train crossing a bridge"
    ti2v = asyncio.run(video.text_image_to_video(still.data, text, style="cinematic", width=640, height=360, seconds=10, label="t"))
    i2v = asyncio.run(video.image_to_video(still.data, text, width=640, height=360, seconds=10, label="t"))
    assert mp4_info(ti2v.data) == (640, 360, 10000)
    assert np.abs(_frame_at(ti2v.data, 0.5) - _frame_at(i2v.data, 0.5)).mean() < 2  # the same start: the image...
    # ...and ends on the picture of the text, moving as that picture would (its motion starts at the dissolve, 5 s in)
    picture = asyncio.run(video.image_to_video(draw_picture(text, "cinematic", 640, 360, "t")[0], text, width=640, height=360,
                                               seconds=10, label="t"))
    end = _frame_at(ti2v.data, 9.9)
    assert np.abs(end - _frame_at(picture.data, 4.9)).mean() < 4 < np.abs(end - _frame_at(i2v.data, 9.9)).mean()
    with pytest.raises(ProviderError, match="needs both a prompt and an image"):
        asyncio.run(video.text_image_to_video(still.data, "  ", style="cinematic", width=640, height=360, seconds=10, label="t"))


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


# --- Word timings from the offline narrator ---------------------------------------------------------

def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def test_speech_says_when_each_word_is_spoken() -> None:
    text = "The war began in 1861, and it changed the country forever. Nobody who lived through it forgot."
    media = asyncio.run(PiperSpeech().synthesize(text, voice_id="onyx", language="en", emotion=None, max_ms=10000))
    words = media.extra["words"]
    assert media.extra["word_timing"] == "alignment"  # Piper's phoneme alignments, not the estimate
    assert [w["text"] for w in words] == text.split()  # one per word as written: "1861," and "forever." included
    duration = media.duration_ms
    assert duration is not None and abs(mp3_duration_ms(media.data) - duration) < 100
    previous_end = 0
    for w in words:
        assert set(w) == {"text", "startMs", "endMs"}
        assert all(isinstance(w[k], int) for k in ("startMs", "endMs"))
        assert previous_end <= w["startMs"] < w["endMs"] <= duration
        previous_end = w["endMs"]
    assert words[3]["endMs"] - words[3]["startMs"] < 300 < words[4]["endMs"] - words[4]["startMs"]  # "in" is short; "1861," long
    second_half = words[len(words) // 2]
    assert second_half["startMs"] > 0.3 * duration  # roughly proportional through the narration
    assert words[-1]["endMs"] > 0.85 * duration

    # The voice is loud inside the words and quiet in the pauses between sentences and after the last word.
    samples, per_ms = decode_mp3(media.data), 16
    inside = np.zeros(len(samples), dtype=bool)
    for w in words:
        inside[w["startMs"] * per_ms : w["endMs"] * per_ms] = True
    pauses = [(a["endMs"], b["startMs"]) for a, b in zip(words, words[1:], strict=False) if b["startMs"] - a["endMs"] >= 80]
    pauses.append((words[-1]["endMs"], len(samples) // per_ms))
    quiet = np.concatenate([samples[a * per_ms : b * per_ms] for a, b in pauses])
    assert len(pauses) >= 2 and len(quiet) > 0.05 * 16000
    assert _rms(samples[inside]) > 0.05 > 10 * _rms(quiet)


def test_word_timings_follow_audio_spoken_faster_to_fit() -> None:
    text = " ".join(["A very long narration that keeps going and going."] * 4)
    speech = PiperSpeech()
    normal = asyncio.run(speech.synthesize(text, voice_id="nova", language="en", emotion=None, max_ms=60000))
    fitted = asyncio.run(speech.synthesize(text, voice_id="nova", language="en", emotion=None, max_ms=7000))
    assert fitted.extra["length_scale"] < normal.extra["length_scale"]
    for media in (normal, fitted):
        words = media.extra["words"]
        assert [w["text"] for w in words] == text.split()
        assert words[-1]["endMs"] <= media.duration_ms
        assert words[-1]["endMs"] > 0.85 * media.duration_ms  # timings of the audio actually returned
    ratio = fitted.extra["words"][-1]["endMs"] / normal.extra["words"][-1]["endMs"]
    assert abs(ratio - fitted.duration_ms / normal.duration_ms) < 0.05


def test_word_timings_in_another_language_and_deterministic() -> None:
    text = "La guerra civil cambió el país para siempre."
    speech = PiperSpeech()
    a = asyncio.run(speech.synthesize(text, voice_id="x", language="es", emotion=None, max_ms=10000))
    b = asyncio.run(speech.synthesize(text, voice_id="x", language="es", emotion=None, max_ms=10000))
    assert [w["text"] for w in a.extra["words"]] == text.split()
    assert a.extra["words"] == b.extra["words"] and a.data == b.data


def test_phonemes_are_grouped_into_the_words_as_written() -> None:
    # Espeak merges "of the" into one spoken word and turns "1861" into several; punctuation and
    # spaces are pauses. Sample rate 1000: samples are milliseconds.
    words = ["of", "the", "1861,", "—", "war."]
    expected = [["ʌ", "v"], ["ð", "ə"], ["w", "ˈ", "ʌ", "n", " ", "e", "ɪ", "t", ","], [], ["w", "ˈ", "ɔ", "ɹ", "."]]
    spoken = ["ʌ", "v", "ð", "ə", " ", "w", "ʌ", "n", " ", "e", "ɪ", "t", ",", " ", "w", "ˈ", "ɔ", "ː", "ɹ", "."]
    timed, t = [], 100
    for p in spoken:
        length = 80 if p in ",." else 10
        timed.append((p, t, t + length))
        t += length
    result = word_timings(words, expected, timed, 1000)
    assert result == [
        {"text": "of", "startMs": 100, "endMs": 120},
        {"text": "the", "startMs": 120, "endMs": 140},
        {"text": "1861,", "startMs": 150, "endMs": 220},
        {"text": "—", "startMs": 310, "endMs": 310},  # nothing spoken: an empty span where the next word starts
        {"text": "war.", "startMs": 310, "endMs": 360},  # the pause after "1861," is a gap
    ]


# --- Explainer pictures -----------------------------------------------------------------------------

FRAMES = [(854, 480), (1280, 720), (1920, 1080), (480, 854), (720, 720)]
LONG_PROMPT = ("wide establishing shot of To understand the American Civil War, we start with the world around it: "
               "the people, the places and the pressures that set everything in motion; cinematic still, dramatic "
               "lighting, shallow depth of field, film grain; context: A 5-segment explainer about the american civil war")


@pytest.mark.parametrize("size", FRAMES)
def test_pictures_have_the_exact_size_no_debug_marks_and_text_inside(size: tuple[int, int]) -> None:
    w, h = size
    x0, y0, x1, y1 = text_area(w, h)
    for prompt in (LONG_PROMPT, "harbour", "map of Pneumonoultramicroscopicsilicovolcanoconiosis Supercalifragilisticexpialidocious"):
        picture = paint(prompt, "cinematic", w, h, "Segment 03 · Image 1")
        assert png_size(picture.png) == size and picture.preview[:2] == b"\xff\xd8"
        drawn = " ".join(text for text, _ in picture.text_boxes)
        assert "SEGMENT" not in drawn.upper() and "CINEMATIC" not in drawn.upper()  # no label, style or take
        for text, (bx0, by0, bx1, by1) in picture.text_boxes:
            assert x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1, (size, text)
        assert "context" not in drawn.lower() and "lighting" not in drawn.lower()  # never the whole prompt
    assert paint("map of Pneumonoultramicroscopicsilicovolcanoconiosis", "cinematic", w, h).text_boxes  # cut to fit, not dropped


def test_storyboard_frames_are_deterministic_and_differ_by_prompt() -> None:
    a = draw_picture("a lighthouse at dusk", "watercolor", 1280, 720, "Segment 01 · Image 1")
    assert a == draw_picture("a lighthouse at dusk", "watercolor", 1280, 720, "Segment 01 · Image 1")
    b = draw_picture("soldiers marching through a snowy forest", "watercolor", 1280, 720, "Segment 01 · Image 1")
    assert a[0] != b[0]
    pixels = [np.asarray(Image.open(io.BytesIO(x[0])).convert("L"), dtype=np.float32) for x in (a, b)]
    assert float(np.abs(pixels[0] - pixels[1]).mean()) > 5  # a different picture, not just different text


def test_headline_is_a_few_key_words_of_the_prompt() -> None:
    cases = {
        "a lighthouse at dusk": "Lighthouse at Dusk",
        "A cinematic close-up portrait of Abraham Lincoln delivering the Gettysburg Address in 1863, dramatic lighting, no text":
            "Abraham Lincoln · Gettysburg Address",
        "Tall ships sailing into Boston harbour at dawn, anime style, vibrant colours": "Tall Ships · Boston Harbour",
        LONG_PROMPT: "American Civil War · People",
    }
    for prompt, expected in cases.items():
        assert headline(prompt) == expected
    prompt_words = {w.lower() for w in re.findall(r"[\w'’-]+", LONG_PROMPT)}
    for prompt in [*cases, LONG_PROMPT, "map-like overview of trade routes across the Mediterranean Sea; editorial illustration"]:
        words = [w for w in headline(prompt).split() if w != "·"]
        assert 1 <= len([w for w in words if w[0].isupper()]) <= 5 and len(words) <= 6
        source = {w.lower() for w in re.findall(r"[\w'’-]+", prompt)}
        assert all(w.lower() in source for w in words)  # taken from the prompt
        assert all(w[0].isupper() or w in ("at", "of", "and", "in", "on") for w in words)  # Title Case
        assert not {w.lower() for w in words} & {"cinematic", "style", "text", "lighting", "shot", "context", "the", "a"}
    assert prompt_words  # sanity
    assert headline("") and headline("the of and")  # never empty


def test_shot_type_is_read_from_the_prompt_or_derived() -> None:
    assert shot_type("Extreme close-up of a weathered hand") == "Extreme close-up"
    assert shot_type("close-up detail of a map") == "Close-up"
    assert shot_type("Aerial view of the Mississippi River") == "Aerial shot"
    assert shot_type(LONG_PROMPT) == "Establishing shot"
    assert shot_type("a portrait of a queen") == "Portrait"
    assert shot_type("a lighthouse at dusk") == shot_type("a lighthouse at dusk")  # derived, deterministic


def test_image_media_carries_headline_and_shot() -> None:
    media = asyncio.run(OfflineImages().generate(LONG_PROMPT, style="cinematic", width=854, height=480, label="Segment 01 · Image 1"))
    assert media.extra == {"headline": "American Civil War · People", "shot": "Establishing shot", "scene": "city"}
    assert (media.width, media.height) == (854, 480) and media.preview


def test_a_new_take_is_visibly_different_and_take_0_is_what_was_made_before() -> None:
    """Takes (re-rolls): another seed is another picture, music motif and reading; take 0 the same bytes as ever."""
    args = ("a lighthouse at dusk", "watercolor", 640, 360, "Segment 01 · Image 1")
    first, again = draw_picture(*args), draw_picture(*args, 0)
    assert first == again
    pixels = [np.asarray(Image.open(io.BytesIO(draw_picture(*args, take)[0])), dtype=np.float32) for take in (0, 1, 2)]
    assert draw_picture(*args, 1) == draw_picture(*args, 1)  # a take is reproducible
    for other in pixels[1:]:
        assert float(np.abs(other - pixels[0]).mean()) > 4  # visibly another picture, not a few pixels
    image = asyncio.run(OfflineImages().generate(args[0], style=args[1], width=640, height=360, label=args[4], seed=1))
    assert image.data == draw_picture(*args, 1)[0]

    music = OfflineMusic()
    beds = [decode_mp3(asyncio.run(music.generate("calm piano", seconds=10, seed=take)).data) for take in (0, 1)]
    assert beds[0].tobytes() == decode_mp3(asyncio.run(music.generate("calm piano", seconds=10)).data).tobytes()
    n = min(len(beds[0]), len(beds[1]))
    assert abs(float(np.corrcoef(beds[0][:n], beds[1][:n])[0, 1])) < 0.5  # another key, tempo or motif

    rates = [voice_rate("nova", None, take) for take in range(6)]
    assert rates[0] == voice_rate("nova", None) and all(0.02 <= abs(r / rates[0] - 1) <= 0.071 for r in rates[1:])
    speech = PiperSpeech()
    text = "The war began in eighteen sixty one."
    readings = [asyncio.run(speech.synthesize(text, voice_id="nova", language="en", emotion=None, max_ms=10000, seed=take))
                for take in (0, 1)]
    assert readings[0].data != readings[1].data and readings[0].extra["length_scale"] != readings[1].extra["length_scale"]
