"""Dagster resources: provider clients (offline by default) and artifact storage.

One resource per provider kind (``llm``, ``speech``, ``images``, ``video``, ``music``), each choosing
its implementation by ``provider`` and carrying its own limit on calls in flight. The same resource
keys are used in every environment.
"""

from __future__ import annotations

import asyncio
import os

import dagster as dg
from pydantic import Field

from .offline import OfflineImages, OfflineLLM, OfflineMusic, OfflineVideo, PiperSpeech
from .providers import (
    ImageProvider,
    LatencyProfile,
    LLMProvider,
    MusicProvider,
    ProviderError,
    SpeechProvider,
    VideoProvider,
)
from .storage import ArtifactStore

__all__ = [
    "ArtifactStore",
    "ImagesResource",
    "LLMResource",
    "MusicResource",
    "ProviderError",
    "SpeechResource",
    "VideoResource",
    "default_resources",
    "local_work_slots",
]


def local_work_slots() -> int:
    """How many CPU-heavy local jobs (rendering, encoding, local models) may run at once."""
    return max(1, os.cpu_count() or 1)


class _ProviderResource(dg.ConfigurableResource):
    provider: str = Field(default="offline", description="Which implementation to call: 'offline'.")
    max_in_flight: int = Field(default=256, ge=1, description="Most calls in flight at once.")
    latency: LatencyProfile = Field(
        default=LatencyProfile.none,
        description="Offline only: 'none', 'median' (the brief's median latency per call) or 'scaled'.",
    )
    latency_scale: float = Field(default=1.0, gt=0, description="Offline only: factor for 'scaled'.")
    usd_per_call: float = Field(default=0.0, ge=0, description="Estimated price of one call, for plans (offline: 0).")
    fail_when: str = Field(
        default="", description="Offline only: fail every call whose input contains this text (to try failure handling).",
    )

    _offline: type = OfflineLLM

    def _check_provider(self) -> None:
        if self.provider != "offline":
            raise ProviderError(
                f"provider {self.provider!r} is not available for {type(self).__name__}; allowed: 'offline'",
                provider=self.provider, retryable=False,
            )

    def client(self, local_slots: asyncio.Semaphore | None = None):  # noqa: ANN201
        self._check_provider()
        return self._offline(self.latency, self.latency_scale, local_slots, self.fail_when)


class LLMResource(_ProviderResource):
    """Writes the script and every prompt."""

    max_in_flight: int = 64
    _offline: type = OfflineLLM

    def client(self, local_slots: asyncio.Semaphore | None = None) -> LLMProvider:
        return super().client(local_slots)


class SpeechResource(_ProviderResource):
    """Speaks the narration of each segment."""

    _offline: type = PiperSpeech

    def client(self, local_slots: asyncio.Semaphore | None = None) -> SpeechProvider:
        return super().client(local_slots)


class ImagesResource(_ProviderResource):
    """Draws segment images and starting images."""

    _offline: type = OfflineImages

    def client(self, local_slots: asyncio.Semaphore | None = None) -> ImageProvider:
        return super().client(local_slots)


class VideoResource(_ProviderResource):
    """Makes text-to-video and image-to-video clips."""

    _offline: type = OfflineVideo

    def client(self, local_slots: asyncio.Semaphore | None = None) -> VideoProvider:
        return super().client(local_slots)


class MusicResource(_ProviderResource):
    """Makes the music track."""

    _offline: type = OfflineMusic

    def client(self, local_slots: asyncio.Semaphore | None = None) -> MusicProvider:
        return super().client(local_slots)


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources of the default (offline, local disk) environment."""
    return {
        "store": ArtifactStore(),
        "llm": LLMResource(),
        "speech": SpeechResource(),
        "images": ImagesResource(),
        "video": VideoResource(),
        "music": MusicResource(),
    }
