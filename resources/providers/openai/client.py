"""OpenAI behind the provider interfaces: the LLM (structured JSON outputs), images and speech.

Uses the official ``openai`` SDK (``AsyncOpenAI``) with its own retries off; retry.py retries
408/409/429/5xx and connection errors with jittered backoff, honouring ``retry-after(-ms)`` and the
``x-ratelimit-reset-*`` headers, within bounded attempts and total wait. What cannot succeed is never
retried and fails with a message a user can act on: content-policy
rejections, bad keys, exhausted quota. Settings are mapped onto what each model accepts, and
combinations a model cannot do are refused before any call (pre-flight). An answer that cannot be used
(invalid JSON, a missing field, a picture or a sound that cannot be read) is a MalformedAnswer: OpenAI's
fault, not this machine's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
from openai.types import ImagesResponse
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError

from movie_assets.domain.blueprint import ProviderKind
from movie_assets.domain.words import Heard
from resources.providers.answers import check_media, decode_base64, download, one_line, unreadable
from resources.providers.base import (
    Answer,
    CallInfo,
    ErrorCategory,
    ImageProvider,
    Limit,
    LLMProvider,
    MalformedAnswer,
    Media,
    ModelParams,
    ProviderError,
    SpeechProvider,
    TextResult,
    Transcript,
    TranscriptionProvider,
    answered,
    limit_in,
)
from resources.providers.catalog import PROVIDER_MODELS
from resources.providers.openai.catalog import (
    IMAGE_SIZES,
    MAX_SPEECH_CHARS,
    OPENAI_SPEECH_PRICE_PER_1K_CHARS,
    OPENAI_TOKEN_PRICES,
    REFERENCE_IMAGE_MODELS,
    WORD_TIMESTAMP_MODELS,
    image_size,
    openai_image_usd,
    openai_transcription_usd,
    orientation,
)
from resources.providers.voices import openai_voice
from resources.runtime.limits import Throttle, held
from resources.runtime.media import BadMedia, check_mp3, fit_to_frame, sniff
from resources.runtime.retry import RetryPolicy, Verdict, wait_hint, with_retries
from resources.runtime.secrets import register_secret
from resources.runtime.slots import Slots

PROVIDER = "openai"
WHO = "OpenAI"  # the provider, as messages name it
T = TypeVar("T")


@dataclass
class OpenAISession:
    """One SDK client shared by the OpenAI providers of a run. The SDK's own retries are off: this
    session retries only what can succeed (see retry.py), so an exhausted quota is never retried."""

    api_key: str = field(repr=False)
    base_url: str | None = None
    timeout_s: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    throttle: Throttle | None = None  # in-flight and per-minute limits shared by every process
    model_throttles: dict[str, Throttle] = field(default_factory=dict)  # tighter limits of single models

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ProviderError(
                "OpenAI is configured for this producer but OPENAI_API_KEY is not set; set it, or route the "
                "producer to 'offline'", provider=PROVIDER, category=ErrorCategory.configuration,
                suggestion="set OPENAI_API_KEY, or route the producer to another provider (MOVIEGEN_PROVIDERS)",
            )
        register_secret(self.api_key)  # an answer echoing the key is redacted wherever it is stored or shown
        self.client = openai.AsyncOpenAI(api_key=self.api_key, base_url=self.base_url, timeout=self.timeout_s, max_retries=0)

    async def call(self, fn: Any, **kwargs: Any) -> tuple[Any, CallTrace]:
        started = time.monotonic()
        async def attempt() -> Any:
            # held per attempt, released while backing off
            async with held(self.model_throttles.get(kwargs.get("model", "")), self.throttle):
                return await fn(**kwargs)

        try:
            response, retries = await with_retries(attempt, classify, self.retry)
        except openai.OpenAIError as e:
            # Not chained: the SDK error's text is the raw answer (which may echo the key), and a chained
            # cause is kept in tracebacks and by Dagster. The ProviderError's message is redacted.
            error = map_error(e, retries=getattr(e, "retries", 0))
            error.retries, error.latency_s = getattr(e, "retries", 0), time.monotonic() - started
            raise error from None
        return response, CallTrace(time.monotonic() - started, retries)


def classify(e: Exception) -> Verdict:
    """Whether an OpenAI error can succeed on a later attempt, and how long OpenAI asks us to wait."""
    if isinstance(e, openai.APIStatusError):
        hint = wait_hint(e.response.headers)
        body = e.body if isinstance(e.body, dict) else {}
        code = body.get("code") or getattr(e, "code", None)
        if e.response.headers.get("x-should-retry") == "false" or code == "insufficient_quota":
            return Verdict(False)
        return Verdict(e.status_code in (408, 409, 429) or e.status_code >= 500, hint)
    return Verdict(isinstance(e, openai.APIConnectionError | openai.APITimeoutError))


@dataclass(frozen=True)
class CallTrace:
    latency_s: float
    retries: int


def map_error(e: openai.OpenAIError, retries: int = 0) -> ProviderError:
    """Turn an SDK error into a ProviderError whose message says what to do."""
    after = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
    body = getattr(e, "body", None) or {}
    code = (body.get("code") if isinstance(body, dict) else None) or getattr(e, "code", None)
    message = (body.get("message") if isinstance(body, dict) else None) or str(e)
    if isinstance(e, openai.RateLimitError) and code == "insufficient_quota":
        return ProviderError("OpenAI quota exhausted (insufficient_quota): add credit to the account or route this "
                             "producer to another provider", provider=PROVIDER, category=ErrorCategory.quota)
    if isinstance(e, openai.RateLimitError):
        return ProviderError(f"OpenAI rate limit{after}: {message}", provider=PROVIDER, category=ErrorCategory.rate_limit)
    if isinstance(e, openai.BadRequestError) and (
        code in ("moderation_blocked", "content_policy_violation") or "safety system" in message
    ):
        return ProviderError(f"rejected by the provider's safety system: edit the prompt ({message})",
                             provider=PROVIDER, category=ErrorCategory.content_policy)
    if isinstance(e, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderError(f"OpenAI refused the key ({message}): check OPENAI_API_KEY", provider=PROVIDER,
                             category=ErrorCategory.authentication,
                             suggestion="check OPENAI_API_KEY (and the key's permissions) and generate again")
    if isinstance(e, openai.NotFoundError) and (code == "model_not_found" or "model" in message.lower()):
        return ProviderError(f"OpenAI rejected the request: {message}", provider=PROVIDER,
                             category=ErrorCategory.configuration,
                             suggestion="route the producer to a model the key can use (MOVIEGEN_PROVIDERS) and generate again")
    if isinstance(e, openai.BadRequestError | openai.NotFoundError | openai.UnprocessableEntityError):
        # A size (or length) the model does not make is reducible: the next lower one may be made.
        return ProviderError(f"OpenAI rejected the request: {message}", provider=PROVIDER, category=ErrorCategory.bad_input,
                             limit=Limit.size if isinstance(body, dict) and body.get("param") == "size" else limit_in(message))
    if isinstance(e, openai.APITimeoutError):
        return ProviderError(f"OpenAI timed out{after}", provider=PROVIDER, category=ErrorCategory.outage, limit=Limit.timeout)
    if isinstance(e, openai.APIConnectionError):
        return ProviderError(f"cannot reach OpenAI{after}: {e}", provider=PROVIDER, category=ErrorCategory.outage)
    return ProviderError(f"OpenAI error{after}: {message}", provider=PROVIDER, category=ErrorCategory.outage)


def parsed(response: Any, expected: type[T]) -> T:
    """The body of a raw answer as the SDK's ``expected`` type; MalformedAnswer when it is not JSON of it."""
    try:
        body = response.parse()
    except (ValueError, TypeError) as e:  # json.JSONDecodeError is a ValueError
        raise MalformedAnswer(f"{WHO} answered with invalid JSON ({one_line(e)})", provider=PROVIDER) from None
    if not isinstance(body, expected):
        kind = response.headers.get("content-type") or "no content type"
        raise MalformedAnswer(f"{WHO} answered with {kind} instead of JSON: {sniff(response.content)}", provider=PROVIDER)
    return body


def strict_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of a pydantic model in the strict form structured outputs require."""
    js = schema.model_json_schema()
    for obj in [js, *js.get("$defs", {}).values()]:  # nested models (the look's characters) too
        obj["additionalProperties"] = False
        obj["required"] = list(obj.get("properties", {}))
        obj.pop("title", None)
    return js


class OpenAILLM(LLMProvider, ModelParams):
    name = PROVIDER
    default_model = PROVIDER_MODELS[PROVIDER][ProviderKind.llm]
    decided = frozenset({"model", "messages", "response_format", "n", "stream"})

    def __init__(self, session: OpenAISession, model: str | None = None, params: dict[str, Any] | None = None,
                 repair_attempts: int = 1):
        super().__init__(session, model, params)
        self.repair_attempts = repair_attempts

    async def generate(self, task: str, prompt: str, schema: type[BaseModel], context: dict[str, Any]) -> TextResult:
        messages: list[dict[str, str]] = [
            {"role": "system", "content": "You write material for short explainer movies. Answer with JSON only."},
            {"role": "user", "content": prompt},
        ]
        latency, retries, tokens_in, tokens_out, request_id = 0.0, 0, 0, 0, None
        for attempt in range(self.repair_attempts + 1):
            response, trace = await self.session.call(
                self.session.client.chat.completions.with_raw_response.create,
                **self._merge({}, {"model": self.model, "messages": messages, "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": schema.__name__, "schema": strict_schema(schema), "strict": True}}}),
            )
            request_id = response.headers.get("x-request-id")
            completion = parsed(response, ChatCompletion)
            latency, retries = latency + trace.latency_s, retries + trace.retries
            usage = completion.usage  # the SDK builds answers unvalidated: every field may be missing
            tokens_in += getattr(usage, "prompt_tokens", 0) or 0
            tokens_out += getattr(usage, "completion_tokens", 0) or 0
            try:
                message = completion.choices[0].message
                refusal, content = message.refusal, message.content or ""
            except (TypeError, IndexError, AttributeError):
                raise MalformedAnswer(f"{WHO} answered without a message (no choices)", provider=PROVIDER) from None
            if refusal:
                raise ProviderError(f"rejected by the provider's safety system: edit the prompt ({refusal})",
                                    provider=PROVIDER, category=ErrorCategory.content_policy)
            try:
                value = schema.model_validate_json(content)
                break
            except ValidationError as e:
                if attempt == self.repair_attempts:
                    raise MalformedAnswer(f"{WHO} ({self.model}) answered with content that does not match {schema.__name__} "
                                          f"after {attempt + 1} attempt(s): {e.errors()[0]['msg']}", provider=PROVIDER) from None
                messages += [
                    {"role": "assistant", "content": content},
                    {"role": "user", "content": f"That answer does not match the schema ({e.errors()[0]['msg']}). "
                                                "Answer again with JSON that matches it exactly."},
                ]
        price_in, price_out = OPENAI_TOKEN_PRICES.get(self.model, (0.0, 0.0))
        cost = tokens_in * price_in + tokens_out * price_out
        return TextResult(value, CallInfo(PROVIDER, self.model, latency, round(cost, 6), request_id, retries))


class OpenAIImages(ImageProvider, ModelParams):
    name = PROVIDER
    default_model = PROVIDER_MODELS[PROVIDER][ProviderKind.images]
    decided = frozenset({"model", "prompt", "size", "n", "response_format", "image"})

    def __init__(self, session: OpenAISession, model: str | None = None, params: dict[str, Any] | None = None,
                 local: Slots | asyncio.Semaphore | None = None):
        super().__init__(session, model, params, local)
        if self.model not in IMAGE_SIZES:
            raise ProviderError(f"unknown OpenAI image model {self.model!r}; allowed: {', '.join(IMAGE_SIZES)}",
                                provider=PROVIDER, category=ErrorCategory.configuration)

    def asked_size(self, width: int, height: int) -> str:
        """The size OpenAI is asked for at this frame (recovery lowers the frame only where this changes)."""
        return str(image_size(self.model, width, height))

    def preflight(self, width: int, height: int) -> str:
        size = image_size(self.model, width, height)
        if size is None:
            raise ProviderError(f"{self.model} cannot make {orientation(width, height)} images ({width}x{height}); it makes "
                                f"{', '.join(IMAGE_SIZES[self.model])} only: choose another aspect_ratio or image model",
                                provider=PROVIDER, category=ErrorCategory.configuration)
        return size

    async def generate(self, prompt: str, *, style: str, width: int, height: int, label: str, seed: int = 0,
                       references: Sequence[bytes] = ()) -> Media:
        """OpenAI images take no seed: a new take (``seed``) is simply a new call. ``references`` go to the
        edits endpoint as ``image[]`` where the model takes reference images (gpt-image-1)."""
        size = self.preflight(width, height)
        decided: dict[str, Any] = {"model": self.model, "prompt": f"{prompt}. Style: {style}.", "size": size, "n": 1}
        if self.model.startswith("dall-e"):
            decided["response_format"] = "b64_json"
        used = bool(references) and self.model in REFERENCE_IMAGE_MODELS
        if used:
            decided["image"] = [(f"reference-{k}.png", data, "image/png") for k, data in enumerate(references)]
        kwargs = self._merge({}, decided)
        images = self.session.client.images.with_raw_response

        async def ask() -> Answer:
            response, trace = await self.session.call(images.edit if used else images.generate, **kwargs)
            result = parsed(response, ImagesResponse)
            try:
                item = result.data[0]  # type: ignore[index]
                b64, url = item.b64_json, item.url
            except (TypeError, IndexError, AttributeError):
                raise MalformedAnswer(f"{WHO} answered without an image (no data)", provider=PROVIDER) from None
            if b64 or not url:
                raw = decode_base64(b64, WHO, "image", PROVIDER)
            else:
                raw = await download(url, WHO, "image", PROVIDER, self.session.timeout_s)
            await asyncio.to_thread(check_media, raw, "image", WHO, PROVIDER)  # never keep an answer that is no picture
            return Answer((raw,), CallInfo(PROVIDER, self.model, trace.latency_s, openai_image_usd(self.model, size, self.params),
                                           response.headers.get("x-request-id"), trace.retries))

        answer = await answered(ask)  # kept before it waits for a local slot
        png = await self._local(fit_to_frame, answer.files[0], width, height)
        extra: dict[str, Any] = {"provider_size": size}
        if references:
            extra["references"] = len(references) if used else f"not taken by {self.model}"
        return Media(png, "png", "image/png", answer.call, width=width, height=height, extra=extra)


class OpenAISpeech(SpeechProvider, ModelParams):
    name = PROVIDER
    default_model = PROVIDER_MODELS[PROVIDER][ProviderKind.speech]
    decided = frozenset({"model", "voice", "input", "response_format"})

    def preflight(self, text: str, voice_id: str, language: str) -> str:
        """The OpenAI voice for the request's voice (refused before any call when there is none)."""
        voice = openai_voice(self.model, voice_id, language)
        if len(text) > MAX_SPEECH_CHARS:
            raise ProviderError(f"narration of {len(text)} characters is longer than OpenAI speech accepts "
                                f"({MAX_SPEECH_CHARS})", provider=PROVIDER, category=ErrorCategory.bad_input)
        return voice

    async def synthesize(self, text: str, *, voice_id: str, language: str, emotion: str | None, max_ms: int,
                         seed: int = 0) -> Media:
        """OpenAI speech takes no seed: a new take (``seed``) is simply a new call."""
        voice = self.preflight(text, voice_id, language)
        defaults: dict[str, Any] = {}
        if emotion and self.model not in ("tts-1", "tts-1-hd"):
            defaults["instructions"] = f"Speak with a {emotion} tone."
        kwargs = self._merge(defaults, {"model": self.model, "voice": voice, "input": text, "response_format": "mp3"})

        async def ask() -> Answer:
            response, trace = await self.session.call(self.session.client.audio.speech.with_raw_response.create, **kwargs)
            try:
                check_mp3(response.content)  # asked for MP3 (response_format is decided, not configurable)
            except BadMedia as e:
                raise unreadable(WHO, "audio", str(e), PROVIDER) from None
            cost = len(text) / 1000 * OPENAI_SPEECH_PRICE_PER_1K_CHARS.get(self.model, 0.0)
            return Answer((response.content,), CallInfo(PROVIDER, self.model, trace.latency_s, round(cost, 6),
                                                        response.headers.get("x-request-id"), trace.retries))

        answer = await answered(ask)
        audio = answer.files[0]
        return Media(audio, "mp3", "audio/mpeg", answer.call, duration_ms=check_mp3(audio), extra={"voice": voice})


class OpenAITranscription(TranscriptionProvider, ModelParams):
    """The words of an audio file with when each is spoken: ``audio.transcriptions.create`` with
    ``response_format="verbose_json"`` and ``timestamp_granularities=["word"]`` (whisper-1), charged per
    minute of audio."""

    name = PROVIDER
    default_model = PROVIDER_MODELS[PROVIDER][ProviderKind.transcription]
    decided = frozenset({"model", "file", "response_format", "timestamp_granularities", "language", "prompt"})

    def preflight(self) -> None:
        if self.model not in WORD_TIMESTAMP_MODELS:
            raise ProviderError(f"{self.model} answers without word timestamps; captions need them: route "
                                f"NarrationTimingProducer to openai:{', openai:'.join(sorted(WORD_TIMESTAMP_MODELS))}",
                                provider=PROVIDER, category=ErrorCategory.configuration)

    async def transcribe(self, audio: bytes, *, ext: str, language: str, prompt: str) -> Transcript:
        self.preflight()
        kwargs = self._merge({}, {"model": self.model, "file": (f"narration.{ext}", audio, f"audio/{'mpeg' if ext == 'mp3' else ext}"),
                                  "response_format": "verbose_json", "timestamp_granularities": ["word"],
                                  "language": language, "prompt": prompt})
        duration_ms = check_mp3(audio) if ext == "mp3" else 0

        async def ask() -> Answer:
            response, trace = await self.session.call(self.session.client.audio.transcriptions.with_raw_response.create, **kwargs)
            heard_words(response.content)  # never keep an answer that has no words to time
            return Answer((response.content,), CallInfo(PROVIDER, self.model, trace.latency_s,
                                                        openai_transcription_usd(self.model, duration_ms),
                                                        response.headers.get("x-request-id"), trace.retries))

        answer = await answered(ask)
        text, words = heard_words(answer.files[0])
        return Transcript(text, words, answer.call, duration_ms)


def heard_words(body: bytes) -> tuple[str, tuple[Heard, ...]]:
    """The text and the timed words of a verbose_json transcription (seconds, as OpenAI answers them);
    MalformedAnswer when it is not one."""
    try:
        data = json.loads(body)
    except ValueError as e:  # json.JSONDecodeError, or bytes that are no text
        raise MalformedAnswer(f"{WHO} answered with invalid JSON ({one_line(e)})", provider=PROVIDER) from None
    try:
        words = tuple(Heard(str(w["word"]), float(w["start"]) * 1000, float(w["end"]) * 1000) for w in data["words"])
    except (ValueError, TypeError, KeyError) as e:
        raise MalformedAnswer(f"{WHO} answered with a transcription without word timestamps ({one_line(e)})",
                              provider=PROVIDER) from None
    return str(data.get("text") or ""), words
