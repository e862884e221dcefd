"""Replicate behind the provider interfaces: images, text-to-video, image-to-video, music, speech.

Uses the official ``replicate`` SDK. A prediction is created (``Prefer: wait``; the answer is a 201
that may still be running), then polled until it is terminal; its output files are downloaded at
once (Replicate deletes them after an hour) and conformed to the frame: exact size, exact length.
The SDK never retries a create, so creates are retried here on 429 and 5xx (bounded, jittered);
the SDK retries polls itself. Failed predictions whose error is a safety filter are not retried.
An answer that cannot be used (a prediction's JSON, no output, an output that cannot be downloaded or
read) is a MalformedAnswer: Replicate's fault, not this machine's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from math import gcd
from typing import Any

import httpx
import replicate
from replicate.exceptions import ReplicateError

from movie_assets.domain.blueprint import ProviderKind
from movie_assets.domain.words import Heard
from resources.providers.answers import check_media, download, one_line
from resources.providers.base import (
    Answer,
    CallInfo,
    ErrorCategory,
    ImageProvider,
    Limit,
    MalformedAnswer,
    Media,
    ModelParams,
    MusicProvider,
    ProviderError,
    SpeechProvider,
    Transcript,
    TranscriptionProvider,
    VideoCapability,
    VideoProvider,
    answered,
    limit_in,
)
from resources.providers.catalog import PROVIDER_MODELS
from resources.providers.replicate.catalog import REPLICATE_PRICES, VIDEO_MODELS
from resources.providers.voices import kokoro_voice
from resources.runtime.limits import Throttle, held
from resources.runtime.media import check_mp3, fit_to_frame, mp3_duration_ms, run_ffmpeg
from resources.runtime.retry import RetryPolicy, Verdict, with_retries
from resources.runtime.secrets import register_secret

PROVIDER = "replicate"
API_URL = "https://api.replicate.com"  # the SDK's default base URL
TERMINAL = {"succeeded", "failed", "canceled"}

FLUX_ASPECTS = {"1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"}


def classify(e: Exception) -> Verdict:
    if isinstance(e, ReplicateError):
        wait = None
        m = re.search(r"~?(\d+)\s*s", e.detail or "")
        if e.status == 429 and m:
            wait = float(m.group(1))
        return Verdict(e.status is not None and (e.status == 429 or e.status >= 500), wait)
    return Verdict(isinstance(e, httpx.TransportError))


async def _reading(answer: Awaitable[Any]) -> Any:
    """A prediction the SDK reads from an answer; MalformedAnswer when the answer is no prediction's JSON
    (the SDK raises json's or pydantic's ValueError, or a TypeError for JSON of another shape)."""
    try:
        return await answer
    except (ValueError, TypeError) as e:
        raise MalformedAnswer(f"Replicate answered with a prediction that cannot be read ({one_line(e)})",
                              provider=PROVIDER) from None


def _aspect(width: int, height: int) -> str:
    g = gcd(width, height)
    w, h = width // g, height // g
    known = {(16, 9): "16:9", (9, 16): "9:16", (1, 1): "1:1", (4, 3): "4:3", (3, 4): "3:4"}
    if (w, h) in known:
        return known[(w, h)]
    ratio = width / height
    return min(FLUX_ASPECTS, key=lambda a: abs(int(a.split(":")[0]) / int(a.split(":")[1]) - ratio))


@dataclass
class ReplicateSession:
    api_token: str = field(repr=False)
    base_url: str | None = None
    timeout_s: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    throttle: Throttle | None = None
    model_throttles: dict[str, Throttle] = field(default_factory=dict)  # tighter limits of single models
    poll_s: float = 0.5
    max_wait_s: float = 900.0

    def __post_init__(self) -> None:
        if not self.api_token:
            raise ProviderError(
                "Replicate is configured for this producer but REPLICATE_API_TOKEN is not set; set it, or route "
                "the producer to 'offline'", provider=PROVIDER, category=ErrorCategory.configuration,
                suggestion="set REPLICATE_API_TOKEN, or route the producer to another provider (MOVIEGEN_PROVIDERS)",
            )
        register_secret(self.api_token)  # an answer echoing the token is redacted wherever it is stored or shown
        kwargs: dict[str, Any] = {"api_token": self.api_token, "timeout": self.timeout_s}
        if self.base_url:
            kwargs["base_url"] = self.base_url
        self.client = replicate.Client(**kwargs)

    async def predict(self, model: str, input: dict[str, Any], kind: str) -> Answer:
        """Create a prediction, wait for it, download its outputs and check that each is a readable ``kind``
        ("image", "audio", "video"): its answer, to keep (``answered``)."""
        started = time.monotonic()
        prediction, retries = await self._finished(model, input)
        who = f"Replicate's {model} prediction {prediction.id}"
        outputs = prediction.output if isinstance(prediction.output, list) else [prediction.output]
        files = [await download(o, who, kind, PROVIDER, self.timeout_s) for o in outputs if o]
        if not files:
            raise MalformedAnswer(f"{who} answered without output", provider=PROVIDER)
        for data in files:
            await asyncio.to_thread(check_media, data, kind, who, PROVIDER)
        call = CallInfo(PROVIDER, model, time.monotonic() - started, REPLICATE_PRICES.get(model, 0.0), prediction.id, retries)
        return Answer(tuple(files), call)

    async def predict_value(self, model: str, input: dict[str, Any]) -> Answer:
        """A prediction whose output is a value, not files (a transcription): its answer is the output as
        JSON, to keep (``answered``)."""
        started = time.monotonic()
        prediction, retries = await self._finished(model, input)
        if prediction.output is None:
            raise MalformedAnswer(f"Replicate's {model} prediction {prediction.id} answered without output", provider=PROVIDER)
        call = CallInfo(PROVIDER, model, time.monotonic() - started, REPLICATE_PRICES.get(model, 0.0), prediction.id, retries)
        return Answer((json.dumps(prediction.output).encode(),), call)

    async def _finished(self, model: str, input: dict[str, Any]) -> tuple[Any, int]:
        """Create a prediction and wait until it succeeded (and the retries its create took); a failed or
        canceled one is a ProviderError."""

        async def create() -> Any:
            async def post() -> Any:
                return await _reading(self.client.models.predictions.async_create(model=model, input=input, wait=True))

            async with held(self.model_throttles.get(model), self.throttle):
                return await post()

        try:
            prediction, retries = await with_retries(create, classify, self.retry)
            deadline = time.monotonic() + self.max_wait_s
            while prediction.status not in TERMINAL:
                if time.monotonic() > deadline:
                    await prediction.async_cancel()
                    raise ProviderError(f"{model} prediction {prediction.id} did not finish in {self.max_wait_s:.0f} s; "
                                        "it was canceled", provider=PROVIDER, category=ErrorCategory.outage, limit=Limit.timeout)
                await asyncio.sleep(self.poll_s)
                prediction = await _reading(self.client.predictions.async_get(prediction.id))
        # Not chained: the SDK error's text is the raw answer (which may echo the token), and a chained
        # cause is kept in tracebacks and by Dagster. The ProviderError's message is redacted.
        except ReplicateError as e:
            error = _map_error(e, model, getattr(e, "retries", 0))
            error.retries = getattr(e, "retries", 0)
            raise error from None
        except httpx.TransportError as e:
            retries = getattr(e, "retries", 0)
            after = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
            raise ProviderError(f"cannot reach Replicate at {self.base_url or API_URL}{after}: {one_line(e)}", provider=PROVIDER,
                                category=ErrorCategory.outage) from None
        if prediction.status == "failed":
            error = str(prediction.error or "failed")
            if re.search(r"nsfw|safety|sensitive|flagged", error, re.IGNORECASE):
                raise ProviderError(f"rejected by the provider's safety system: edit the prompt ({error})",
                                    provider=PROVIDER, category=ErrorCategory.content_policy)
            # A model out of GPU memory, or refusing the size or length asked, may make less (recovery).
            raise ProviderError(f"{model} prediction {prediction.id} failed: {error}", provider=PROVIDER,
                                category=ErrorCategory.outage, limit=limit_in(error))
        if prediction.status == "canceled":
            raise ProviderError(f"{model} prediction {prediction.id} was canceled", provider=PROVIDER,
                                category=ErrorCategory.outage)
        return prediction, retries


def _map_error(e: ReplicateError, model: str, retries: int) -> ProviderError:
    after = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
    detail = e.detail or e.title or str(e)
    if e.status in (401, 403):
        return ProviderError(f"Replicate refused the token ({detail}): check REPLICATE_API_TOKEN", provider=PROVIDER,
                             category=ErrorCategory.authentication,
                             suggestion="check REPLICATE_API_TOKEN (and the token's permissions) and generate again")
    if e.status == 402:
        return ProviderError(f"Replicate billing: {detail}", provider=PROVIDER, category=ErrorCategory.quota)
    if e.status == 429:
        return ProviderError(f"Replicate rate limit{after}: {detail}", provider=PROVIDER, category=ErrorCategory.rate_limit)
    if e.status is not None and 400 <= e.status < 500:
        return ProviderError(f"Replicate rejected the request for {model}: {detail}", provider=PROVIDER,
                             category=ErrorCategory.bad_input, limit=limit_in(detail))
    return ProviderError(f"Replicate error{after}: {detail}", provider=PROVIDER, category=ErrorCategory.outage)


def conform_video(mp4: bytes, width: int, height: int, seconds: int) -> bytes:
    """Scale and crop to the exact frame, and hold the last frame to the exact length."""
    vf = (f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},"
          f"tpad=stop_mode=clone:stop_duration={seconds},fps=25,format=yuv420p")
    return run_ffmpeg(["-i", "in.mp4", "-vf", vf, "-t", str(seconds), "-an", "-c:v", "libx264", "-preset", "veryfast",
                       "-crf", "23", "-movflags", "+faststart"], {"in.mp4": mp4}, "out.mp4")


def conform_audio(audio: bytes, seconds: int) -> bytes:
    """Loop or cut a track to exactly ``seconds``, with a short fade out, as MP3."""
    af = f"asetpts=N/SR/TB,apad,atrim=0:{seconds},afade=t=out:st={max(0, seconds - 2)}:d=2"
    return run_ffmpeg(["-stream_loop", "-1", "-i", "in.audio", "-t", str(seconds), "-af", af, "-ar", "44100",
                       "-codec:a", "libmp3lame", "-b:a", "128k"], {"in.audio": audio}, "out.mp3")


class ReplicateImages(ImageProvider, ModelParams):
    name = PROVIDER
    default_model = PROVIDER_MODELS[PROVIDER][ProviderKind.images]
    decided = frozenset({"prompt", "aspect_ratio", "num_outputs"})

    def asked_size(self, width: int, height: int) -> str:
        """What the model is asked for at this frame: an aspect ratio (a lower frame asks it nothing less)."""
        return _aspect(width, height)

    def preflight(self, width: int, height: int) -> str:
        """The aspect ratio the model is asked for (refused before any call when it has none)."""
        aspect = _aspect(width, height)
        if aspect not in FLUX_ASPECTS:
            raise ProviderError(f"{self.model} cannot make {width}x{height} ({aspect}); it makes {', '.join(sorted(FLUX_ASPECTS))}",
                                provider=PROVIDER, category=ErrorCategory.configuration)
        return aspect

    async def generate(self, prompt: str, *, style: str, width: int, height: int, label: str, seed: int = 0,
                       references: Sequence[bytes] = ()) -> Media:
        """``seed``: the take; flux takes it as its ``seed`` (take 0 sends none, as before takes). flux-schnell
        takes no reference images: ``references`` are not sent (``extra["references"]`` says so)."""
        aspect = self.preflight(width, height)
        inputs = self._merge({"output_format": "png"}, {"prompt": f"{prompt}. Style: {style}.", "aspect_ratio": aspect, "num_outputs": 1,
                                                       **({"seed": seed} if seed else {})})
        answer = await answered(lambda: self.session.predict(self.model, inputs, "image"))
        png = await self._local(fit_to_frame, answer.files[0], width, height)
        extra: dict[str, Any] = {"aspect_ratio": aspect, **({"references": f"not taken by {self.model}"} if references else {})}
        return Media(png, "png", "image/png", answer.call, width=width, height=height, extra=extra)


def short_side(width: int, height: int) -> str:
    """A frame's size name (``720p``): its short side."""
    return f"{min(width, height)}p"


class ReplicateVideo(VideoProvider, ModelParams):
    name = PROVIDER
    default_model = PROVIDER_MODELS[PROVIDER][ProviderKind.video]
    decided = frozenset({"prompt", "first_frame_image", "image", "resolution", "seed"})

    def asked_size(self, width: int, height: int) -> str:
        """What the model is asked for at this frame: Wan2.2 a resolution (480p or 720p); another model makes
        its own size whatever the frame (the clip is conformed to it after)."""
        if self.model.startswith("wan-video/"):
            return "480p" if min(width, height) <= 480 else "720p"
        return self.model

    def preflight(self, call: str, width: int, height: int, seconds: int) -> VideoCapability | None:
        """Refuse, before any call, a clip the model cannot make (its row in replicate/catalog.py): the call
        (t2v, i2v, ti2v), the frame's size, the length. A model the catalog does not know is not checked."""
        capability = VIDEO_MODELS.get(self.model)
        problem = capability.problem(self.model, call, short_side(width, height), seconds) if capability else None
        if problem:
            raise ProviderError(problem, provider=PROVIDER, category=ErrorCategory.configuration,
                                suggestion="route the producer to a model that makes it (MOVIEGEN_PROVIDERS), or change the "
                                           "request (video_mode, size)")
        return capability

    async def _clip(self, call: str, prompt: str, image: bytes | None, width: int, height: int, seconds: int, seed: int) -> Media:
        capability = self.preflight(call, width, height, seconds)
        decided: dict[str, Any] = {"prompt": prompt}
        first = "data:image/png;base64," + base64.b64encode(image).decode() if image is not None else None
        if self.model.startswith("wan-video/"):
            # Wan2.2: ``image`` (optional: with it, TI2V), ``resolution`` 480p or 720p.
            defaults: dict[str, Any] = {}
            decided["resolution"] = self.asked_size(width, height)
            if first:
                decided["image"] = first
        else:
            defaults = {"prompt_optimizer": True}
            if first:
                decided["first_frame_image"] = first
        if seed and capability is not None and capability.seed:
            decided["seed"] = seed
        answer = await answered(lambda: self.session.predict(self.model, self._merge(defaults, decided), "video"))
        mp4 = await self._local(conform_video, answer.files[0], width, height, seconds)
        extra = {"video_call": call, **({"seed": f"not taken by {self.model}: a new call"} if seed and not (capability and capability.seed) else {})}
        return Media(mp4, "mp4", "video/mp4", answer.call, width=width, height=height, duration_ms=seconds * 1000, extra=extra)

    # minimax/video-01 has no seed input: a new take (``seed``) is simply a new call.
    async def text_to_video(self, prompt: str, *, style: str, width: int, height: int, seconds: int, label: str,
                            seed: int = 0) -> Media:
        return await self._clip("t2v", f"{prompt}. Style: {style}.", None, width, height, seconds, seed)

    async def image_to_video(self, image: bytes, prompt: str, *, width: int, height: int, seconds: int, label: str,
                             seed: int = 0) -> Media:
        return await self._clip("i2v", prompt, image, width, height, seconds, seed)

    async def text_image_to_video(self, image: bytes, prompt: str, *, style: str, width: int, height: int, seconds: int,
                                  label: str, seed: int = 0) -> Media:
        if not prompt.strip() or not image:
            raise ProviderError("text+image-to-video needs both a prompt and an image", provider=PROVIDER,
                                category=ErrorCategory.bad_input)
        return await self._clip("ti2v", f"{prompt}. Style: {style}.", image, width, height, seconds, seed)


class ReplicateMusic(MusicProvider, ModelParams):
    name = PROVIDER
    default_model = PROVIDER_MODELS[PROVIDER][ProviderKind.music]
    decided = frozenset({"prompt", "duration"})

    async def generate(self, prompt: str, *, seconds: int, seed: int = 0) -> Media:
        """``seed``: the take; musicgen takes it as its ``seed`` (take 0 sends none, as before takes)."""
        inputs = self._merge({"output_format": "mp3", "model_version": "stereo-melody-large"},
                            {"prompt": prompt, "duration": min(seconds, 30), **({"seed": seed} if seed else {})})
        answer = await answered(lambda: self.session.predict(self.model, inputs, "audio"))
        mp3 = await self._local(conform_audio, answer.files[0], seconds)
        return Media(mp3, "mp3", "audio/mpeg", answer.call, duration_ms=seconds * 1000)


class ReplicateSpeech(SpeechProvider, ModelParams):
    name = PROVIDER
    default_model = PROVIDER_MODELS[PROVIDER][ProviderKind.speech]
    decided = frozenset({"text", "voice"})

    def preflight(self, text: str, voice_id: str, language: str) -> str:
        """The model's voice for the request's voice (refused before any call when there is none)."""
        return kokoro_voice(self.model, voice_id, language) if self.model == "jaaari/kokoro-82m" else voice_id

    async def synthesize(self, text: str, *, voice_id: str, language: str, emotion: str | None, max_ms: int,
                         seed: int = 0) -> Media:
        """kokoro has no seed input: a new take (``seed``) is a new call, which it may answer identically."""
        voice = self.preflight(text, voice_id, language)
        inputs = self._merge({"speed": 1.0}, {"text": text, "voice": voice})
        answer = await answered(lambda: self.session.predict(self.model, inputs, "audio"))
        mp3 = await self._local(run_ffmpeg, ["-i", "in.audio", "-ar", "44100", "-codec:a", "libmp3lame", "-b:a", "128k"],
                                {"in.audio": answer.files[0]}, "out.mp3")
        return Media(mp3, "mp3", "audio/mpeg", answer.call, duration_ms=mp3_duration_ms(mp3), extra={"voice": voice})


# The languages a request may be in, as incredibly-fast-whisper names them.
WHISPER_LANGUAGES = {"en": "english", "es": "spanish", "fr": "french", "de": "german", "it": "italian", "pt": "portuguese"}


class ReplicateTranscription(TranscriptionProvider, ModelParams):
    """The words of an audio file with when each is spoken: incredibly-fast-whisper with
    ``timestamp="word"`` (its ``chunks`` are the words, each with its ``[start, end]`` in seconds)."""

    name = PROVIDER
    default_model = PROVIDER_MODELS[PROVIDER][ProviderKind.transcription]
    decided = frozenset({"audio", "task", "language", "timestamp"})

    async def transcribe(self, audio: bytes, *, ext: str, language: str, prompt: str) -> Transcript:
        mime = "audio/mpeg" if ext == "mp3" else f"audio/{ext}"
        inputs = self._merge({"batch_size": 24, "diarise_audio": False}, {
            "audio": f"data:{mime};base64,{base64.b64encode(audio).decode()}", "task": "transcribe",
            "language": WHISPER_LANGUAGES.get(language, "None"), "timestamp": "word"})
        duration_ms = check_mp3(audio) if ext == "mp3" else None

        async def ask() -> Answer:
            answer = await self.session.predict_value(self.model, inputs)
            chunks(answer.files[0], self.model)  # never keep an answer that has no words to time
            return answer

        answer = await answered(ask)
        text, words = chunks(answer.files[0], self.model)
        return Transcript(text, words, answer.call, duration_ms)


def chunks(body: bytes, model: str) -> tuple[str, tuple[Heard, ...]]:
    """The text and the timed words of a whisper prediction's output (``chunks`` of ``{text, timestamp:
    [start, end]}`` in seconds; an end whisper left open is the start); MalformedAnswer when it is not one."""
    try:
        data = json.loads(body)
        words = []
        for c in data["chunks"]:
            start, end = c["timestamp"]
            words.append(Heard(str(c["text"]).strip(), float(start) * 1000, float(end if end is not None else start) * 1000))
        return str(data.get("text") or ""), tuple(words)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise MalformedAnswer(f"Replicate's {model} answered with a transcription without word timestamps ({one_line(e)})",
                              provider=PROVIDER) from None
