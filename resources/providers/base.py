"""Provider interfaces and the typed results they return.

Each provider kind (LLM, speech, image, video, music) is an interface with several implementations:
the built-in offline one (a product feature: real media, no keys, no network) and real providers.
Producers talk to these interfaces only; resources pick the implementation from configuration.
"""

from __future__ import annotations

import abc
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


class ProviderError(Exception):
    """A provider call failed. ``retryable`` says whether trying again later can succeed."""

    def __init__(self, message: str, *, provider: str, retryable: bool = True):
        super().__init__(message)
        self.provider = provider
        self.retryable = retryable


class ModelParams:
    """A provider client for one model, with the producer's configured model parameters
    (MOVIEGEN_MODEL_PARAMS) merged into every call.

    ``decided`` are the inputs the request decides (prompt, size, voice, ...): configuring one is
    refused when the client is made, before any call. Other inputs the client sends by default
    (an output format, a prompt optimizer) can be overridden."""

    name: str = ""  # the provider
    default_model: str = ""
    decided: frozenset[str] = frozenset()

    def __init__(self, session: Any, model: str | None = None, params: dict[str, Any] | None = None):
        self.session, self.model = session, model or self.default_model
        self.params = dict(params or {})
        clash = sorted(set(self.params) & self.decided)
        if clash:
            raise ProviderError(f"MOVIEGEN_MODEL_PARAMS for {self.model}: {', '.join(clash)} come(s) from the movie "
                                f"request and cannot be configured; configurable are the model's other inputs",
                                provider=self.name, retryable=False)

    def _merge(self, defaults: dict[str, Any], decided: dict[str, Any]) -> dict[str, Any]:
        return {**defaults, **self.params, **decided}


@dataclass(frozen=True)
class CallInfo:
    """What one provider call cost: shown as metadata on the artifact it produced."""

    provider: str
    model: str
    latency_s: float
    cost_usd: float = 0.0
    request_id: str | None = None
    retries: int = 0


@dataclass(frozen=True)
class Media:
    """A media file produced by a provider."""

    data: bytes
    ext: str
    mime: str
    call: CallInfo
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    preview: bytes | None = None  # a small JPEG, when the provider has the picture at hand anyway


@dataclass(frozen=True)
class TextResult:
    value: BaseModel
    call: CallInfo


class Script(BaseModel):
    title: str
    summary: str
    narration: list[str]


class ImagePrompts(BaseModel):
    prompts: list[str]


class MusicPrompt(BaseModel):
    prompt: str


class DirectionPrompt(BaseModel):
    direction: str


class ImageToVideoPrompts(BaseModel):
    direction: str
    starting_image_prompt: str


async def simulate_latency(started: float, latency_s: float) -> None:
    """Wait out the rest of a call's simulated latency (work already done counts toward it)."""
    remaining = latency_s - (time.monotonic() - started)
    if remaining > 0:
        await asyncio.sleep(remaining)


class LLMProvider(abc.ABC):
    """Structured text generation: the script and every prompt."""

    name: str

    @abc.abstractmethod
    async def generate(self, task: str, prompt: str, schema: type[BaseModel], context: dict[str, Any]) -> TextResult:
        """Answer ``prompt`` with JSON matching ``schema``. ``context`` holds the same facts, structured."""


class SpeechProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def synthesize(self, text: str, *, voice_id: str, language: str, emotion: str | None, max_ms: int) -> Media:
        """Speak ``text``; offline voices try to fit it into ``max_ms``."""


class ImageProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def generate(self, prompt: str, *, style: str, width: int, height: int, label: str) -> Media:
        """A picture of exactly ``width`` × ``height`` pixels."""


class VideoProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def text_to_video(self, prompt: str, *, style: str, width: int, height: int, seconds: int, label: str) -> Media:
        """A clip of ``seconds`` from a text prompt."""

    @abc.abstractmethod
    async def image_to_video(self, image: bytes, prompt: str, *, width: int, height: int, seconds: int, label: str) -> Media:
        """A clip of ``seconds`` animating ``image``."""


class MusicProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def generate(self, prompt: str, *, seconds: int) -> Media:
        """A music track of ``seconds``."""
