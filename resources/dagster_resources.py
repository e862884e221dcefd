"""The Dagster resources: provider clients (offline by default), connections and artifact storage,
configured from the environment (``resources.settings``).

One resource per provider kind (``llm``, ``speech``, ``images``, ``video``, ``music``), each choosing
its implementation by ``provider`` and carrying its own limit on calls in flight. The same resource
keys are used in every environment.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

import dagster as dg
from pydantic import Field

from movie_assets.domain.blueprint import ProviderKind
from resources.providers.base import ErrorCategory, ProviderError
from resources.providers.offline.media import OfflineImages, OfflineLLM, OfflineMusic, OfflineVideo, PiperSpeech
from resources.providers.offline.timing import OfflineTranscription
from resources.providers.pricing import estimate_call_usd
from resources.runtime.limits import make_throttle, parse_model_limits
from resources.runtime.retry import RetryPolicy
from resources.runtime.secrets import register_secret
from resources.runtime.slots import Slots
from resources.settings import (
    PRODUCER_KINDS,
    LatencyProfile,
    Settings,
    current,
    env_int,
    offline_latency_from_env,
    offline_max_size_from_env,
)
from resources.storage import ArtifactStore


class ArtifactStoreResource(dg.ConfigurableResource):
    """Where artifacts live: a local folder, or ``s3://bucket/prefix`` (from MOVIEGEN_STORAGE)."""

    root: str = Field(default="", description="Local folder or s3://bucket/prefix; empty: MOVIEGEN_STORAGE, "
                                              "else $DAGSTER_HOME/artifacts.")
    endpoint_url: str = Field(default="", description="S3-compatible endpoint (empty: AWS_ENDPOINT_URL or AWS).")
    region_name: str = Field(default="", description="S3 region (empty: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1).")
    aws_access_key_id: str = Field(default="", description="From AWS_ACCESS_KEY_ID (empty: the AWS credential chain).")
    aws_secret_access_key: str = Field(default="", description="From AWS_SECRET_ACCESS_KEY (empty: the AWS credential chain).")
    link_seconds: int = Field(default=0, ge=0, le=604800, description="Lifetime of presigned links "
                                                                     "(empty: MOVIEGEN_LINK_SECONDS, else 86400; S3 allows at most 7 days).")
    public_url: str = Field(default="", description="Base URL of a public bucket: links are PUBLIC_URL/KEY instead of "
                                                    "presigned (empty: MOVIEGEN_PUBLIC_URL).")

    def store(self) -> ArtifactStore:
        register_secret(self.aws_secret_access_key)  # redacted from every message stored or shown
        return ArtifactStore(root=self.root, endpoint_url=self.endpoint_url, region_name=self.region_name,
                             aws_access_key_id=self.aws_access_key_id, aws_secret_access_key=self.aws_secret_access_key,
                             link_seconds=self.link_seconds, public_url=self.public_url)


class _ConnectionResource(dg.ConfigurableResource):
    """A provider connection's limits and retries (shared by every process on this machine)."""

    base_url: str = Field(default="", description="A proxy or compatible service; empty for the provider's own API.")
    timeout_s: float = Field(default=60.0, gt=0, description="Timeout of one HTTP request.")
    max_attempts: int = Field(default=4, ge=1, description="Attempts per call, for what can succeed on retry.")
    max_total_wait_s: float = Field(default=120.0, ge=0, description="Most time spent waiting between attempts of one call.")
    max_in_flight: int = Field(default=8, ge=1, description="Most calls in flight at once, across every process on this machine.")
    requests_per_minute: int = Field(default=300, ge=1, description="Most requests per minute, across every process on this machine.")
    model_limits: dict[str, str] = Field(
        default_factory=dict,
        description="Model -> 'IN_FLIGHT/PER_MINUTE' for models with tighter limits than the provider (MOVIEGEN_MODEL_LIMITS).",
    )

    def _limits(self, key: str):  # noqa: ANN202
        models = {}
        for model, value in self.model_limits.items():
            in_flight, _, rpm = value.partition("/")
            models[model] = make_throttle(f"{key}:{model}", int(in_flight), int(rpm))
        return (RetryPolicy(max_attempts=self.max_attempts, max_total_wait_s=self.max_total_wait_s),
                make_throttle(key, self.max_in_flight, self.requests_per_minute), models)


class OpenAIResource(_ConnectionResource):
    """The OpenAI connection: key and base URL from OPENAI_API_KEY / OPENAI_BASE_URL."""

    api_key: str = Field(default="", description="Set from the OPENAI_API_KEY environment variable.")
    timeout_s: float = 120.0

    def session(self):  # noqa: ANN201 - imported lazily: offline runs never load the SDK
        from resources.providers.openai.client import OpenAISession  # noqa: PLC0415 - SDK loads when routed to

        retry, throttle, models = self._limits("openai")
        return OpenAISession(self.api_key, self.base_url or None, self.timeout_s, retry, throttle, models)


class ReplicateResource(_ConnectionResource):
    """The Replicate connection: token and base URL from REPLICATE_API_TOKEN / REPLICATE_BASE_URL.
    Its limits count prediction creates (Replicate allows 600 a minute)."""

    api_token: str = Field(default="", description="Set from the REPLICATE_API_TOKEN environment variable.")
    requests_per_minute: int = 600
    poll_s: float = Field(default=0.5, gt=0, description="Seconds between polls of a running prediction.")
    max_wait_s: float = Field(default=900.0, gt=0, description="A prediction still running after this long is canceled.")

    def session(self):  # noqa: ANN201 - imported lazily: offline runs never load the SDK
        from resources.providers.replicate.client import ReplicateSession  # noqa: PLC0415 - SDK loads when routed to

        retry, throttle, models = self._limits("replicate")
        return ReplicateSession(self.api_token, self.base_url or None, self.timeout_s, retry, throttle, models,
                                self.poll_s, self.max_wait_s)


class _ProviderResource(dg.ConfigurableResource):
    routes: dict[str, str] = Field(
        default_factory=dict,
        description="Producer -> 'provider:model' for producers not on the offline provider (from MOVIEGEN_PROVIDERS).",
    )
    params: dict[str, str] = Field(
        default_factory=dict,
        description="Producer -> JSON object of model parameters (from MOVIEGEN_MODEL_PARAMS).",
    )
    max_in_flight: int = Field(default=256, ge=1, description="Most calls in flight at once.")
    latency: LatencyProfile = Field(
        default=LatencyProfile.none,
        description="Offline only: 'none', 'median' (the brief's median latency per call) or 'scaled'.",
    )
    latency_scale: float = Field(default=1.0, gt=0, description="Offline only: factor for 'scaled'.")
    fail_when: str = Field(
        default="", description="Offline only: fail every call whose input contains this text (to try failure handling).",
    )
    debug_overlay: bool = Field(
        default=False, description="Offline pictures and clips only: draw the developer's marks (MOVIEGEN_DEBUG_OVERLAY).",
    )
    max_size: str = Field(
        default="", pattern=r"^(|480p|720p|1080p)$",
        description="Offline pictures and clips only: fail every picture or clip above this size (480p, 720p, 1080p) as a "
                    "local model out of GPU memory would (to try recovery with reduced settings: docs/providers.md; "
                    "MOVIEGEN_OFFLINE_MAX_SIZE).",
    )

    _offline: type = OfflineLLM

    def offline(self, local_slots: Slots | asyncio.Semaphore | None, latency_s: float = 0.0, fail_when: str = "",  # noqa: ANN201
                max_size: str = ""):
        """The kind's offline client: no simulated latency and no fault injection unless given."""
        return self._offline(latency_s, local_slots, fail_when, self.debug_overlay, max_size)

    def client(self, producer: str, local_slots: Slots | asyncio.Semaphore | None,
               connections: dict[str, dg.ConfigurableResource] | None = None,
               sessions: dict[str, object] | None = None):  # noqa: ANN201
        """The client ``producer`` is routed to. Sessions are shared between producers of a run."""
        route = self.routes.get(producer, "offline")
        provider, _, model = route.partition(":")
        if provider == "offline":
            return self.offline(local_slots, self.latency.seconds(producer, self.latency_scale), self.fail_when, self.max_size)
        connection = (connections or {}).get(provider)
        if connection is None:
            raise ProviderError(f"provider {provider!r} is not configured; allowed: offline, openai, replicate",
                                provider=provider, category=ErrorCategory.configuration)
        sessions = sessions if sessions is not None else {}
        if provider not in sessions:
            sessions[provider] = connection.session()  # type: ignore[attr-defined]
        make = getattr(self, f"_{provider}", None)
        if make is None:
            raise ProviderError(f"{provider} does not serve {type(self).__name__}", provider=provider,
                                category=ErrorCategory.configuration)
        return make(sessions[provider], model, json.loads(self.params.get(producer, "{}")), local_slots)


class LLMResource(_ProviderResource):
    """Writes the script and every prompt."""

    max_in_flight: int = 64
    _offline: type = OfflineLLM

    def _openai(self, session: object, model: str, params: dict, local: Slots | asyncio.Semaphore | None):  # noqa: ANN202
        from resources.providers.openai.client import OpenAILLM  # noqa: PLC0415

        return OpenAILLM(session, model, params)  # type: ignore[arg-type]  # an answer needs no local work


class SpeechResource(_ProviderResource):
    """Speaks the narration of each segment."""

    _offline: type = PiperSpeech

    def _openai(self, session: object, model: str, params: dict, local: Slots | asyncio.Semaphore | None):  # noqa: ANN202
        from resources.providers.openai.client import OpenAISpeech  # noqa: PLC0415

        return OpenAISpeech(session, model, params, local)  # type: ignore[arg-type]

    def _replicate(self, session: object, model: str, params: dict, local: Slots | asyncio.Semaphore | None):  # noqa: ANN202
        from resources.providers.replicate.client import ReplicateSpeech  # noqa: PLC0415

        return ReplicateSpeech(session, model, params, local)  # type: ignore[arg-type]


class ImagesResource(_ProviderResource):
    """Draws segment images and starting images."""

    _offline: type = OfflineImages

    def _openai(self, session: object, model: str, params: dict, local: Slots | asyncio.Semaphore | None):  # noqa: ANN202
        from resources.providers.openai.client import OpenAIImages  # noqa: PLC0415

        return OpenAIImages(session, model, params, local)  # type: ignore[arg-type]

    def _replicate(self, session: object, model: str, params: dict, local: Slots | asyncio.Semaphore | None):  # noqa: ANN202
        from resources.providers.replicate.client import ReplicateImages  # noqa: PLC0415

        return ReplicateImages(session, model, params, local)  # type: ignore[arg-type]


class VideoResource(_ProviderResource):
    """Makes text-to-video and image-to-video clips."""

    _offline: type = OfflineVideo

    def _replicate(self, session: object, model: str, params: dict, local: Slots | asyncio.Semaphore | None):  # noqa: ANN202
        from resources.providers.replicate.client import ReplicateVideo  # noqa: PLC0415

        return ReplicateVideo(session, model, params, local)  # type: ignore[arg-type]


class MusicResource(_ProviderResource):
    """Makes the music track."""

    _offline: type = OfflineMusic

    def _replicate(self, session: object, model: str, params: dict, local: Slots | asyncio.Semaphore | None):  # noqa: ANN202
        from resources.providers.replicate.client import ReplicateMusic  # noqa: PLC0415

        return ReplicateMusic(session, model, params, local)  # type: ignore[arg-type]


class TranscriptionResource(_ProviderResource):
    """Hears when each word of the narration is spoken (a transcription with word timestamps). Routed
    like the speech unless named on its own (resources/settings.py ``FOLLOWS``); offline it makes no call."""

    _offline: type = OfflineTranscription

    def _openai(self, session: object, model: str, params: dict, local: Slots | asyncio.Semaphore | None):  # noqa: ANN202
        from resources.providers.openai.client import OpenAITranscription  # noqa: PLC0415

        return OpenAITranscription(session, model, params, local)  # type: ignore[arg-type]

    def _replicate(self, session: object, model: str, params: dict, local: Slots | asyncio.Semaphore | None):  # noqa: ANN202
        from resources.providers.replicate.client import ReplicateTranscription  # noqa: PLC0415

        return ReplicateTranscription(session, model, params, local)  # type: ignore[arg-type]


# One resource per provider kind, under the kind's name.
KIND_RESOURCES: dict[ProviderKind, type[_ProviderResource]] = {
    ProviderKind.llm: LLMResource, ProviderKind.speech: SpeechResource, ProviderKind.images: ImagesResource,
    ProviderKind.video: VideoResource, ProviderKind.music: MusicResource, ProviderKind.transcription: TranscriptionResource,
}


def _env_secret(name: str) -> str | dg.EnvVar:
    """An EnvVar when the variable is set, else empty: offline runs need no key, and a producer
    routed to a provider whose key is missing fails before any call with a clear message."""
    return dg.EnvVar(name) if os.environ.get(name) else ""


def default_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """The resources, routed per producer (MOVIEGEN_PROVIDERS), with the same keys in every setup."""
    settings = settings if settings is not None else current()
    routes, params = settings.routes, settings.params
    model_limits = parse_model_limits(os.environ.get("MOVIEGEN_MODEL_LIMITS"))
    latency = offline_latency_from_env()
    max_size = offline_max_size_from_env()

    def limits_of(provider: str) -> dict[str, str]:
        return {m: f"{n}/{rpm}" for m, (n, rpm) in model_limits.get(provider, {}).items()}

    def kind_routes(kind: ProviderKind) -> dict[str, str]:
        return {p: str(r) for p, r in routes.items() if PRODUCER_KINDS[p] == kind and r.provider != "offline"}

    def kind_params(kind: ProviderKind) -> dict[str, str]:
        return {p: json.dumps(v, sort_keys=True) for p, v in params.items() if PRODUCER_KINDS[p] == kind and v}

    return {
        "store": ArtifactStoreResource(aws_access_key_id=_env_secret("AWS_ACCESS_KEY_ID"),
                                       aws_secret_access_key=_env_secret("AWS_SECRET_ACCESS_KEY")),
        "openai": OpenAIResource(
            api_key=_env_secret("OPENAI_API_KEY"), base_url=_env_secret("OPENAI_BASE_URL"),
            max_in_flight=env_int("MOVIEGEN_OPENAI_MAX_IN_FLIGHT", 8),
            requests_per_minute=env_int("MOVIEGEN_OPENAI_RPM", 300),
            max_attempts=env_int("MOVIEGEN_OPENAI_MAX_ATTEMPTS", 4), model_limits=limits_of("openai"),
        ),
        "replicate": ReplicateResource(
            api_token=_env_secret("REPLICATE_API_TOKEN"), base_url=_env_secret("REPLICATE_BASE_URL"),
            max_in_flight=env_int("MOVIEGEN_REPLICATE_MAX_IN_FLIGHT", 8),
            requests_per_minute=env_int("MOVIEGEN_REPLICATE_RPM", 600),
            max_attempts=env_int("MOVIEGEN_REPLICATE_MAX_ATTEMPTS", 4), model_limits=limits_of("replicate"),
        ),
        **{kind.value: cls(routes=kind_routes(kind), params=kind_params(kind), debug_overlay=settings.debug_overlay, **latency,
                           **({"max_size": max_size} if max_size and kind in (ProviderKind.images, ProviderKind.video) else {}))
           for kind, cls in KIND_RESOURCES.items()},
    }


@dataclass
class ProviderClients:
    """The provider resources of a run, as the build engine asks for them: the client each producer
    is routed to, and each kind's limit on calls in flight."""

    llm: LLMResource
    speech: SpeechResource
    images: ImagesResource
    video: VideoResource
    music: MusicResource
    transcription: TranscriptionResource
    openai: OpenAIResource | None = None
    replicate: ReplicateResource | None = None

    def in_flight(self, kind: ProviderKind) -> int:
        return getattr(self, kind.value).max_in_flight

    def for_producers(self, producers: set[str], local: Slots | asyncio.Semaphore) -> dict[str, Any]:
        """The client each producer is routed to; a missing key fails here, before any call."""
        sessions: dict[str, object] = {}
        connections = {name: r for name, r in (("openai", self.openai), ("replicate", self.replicate)) if r is not None}
        return {p: getattr(self, PRODUCER_KINDS[p].value).client(p, local, connections, sessions) for p in sorted(producers)}

    def fallback(self, producer: str, local: Slots | asyncio.Semaphore) -> Any:
        """The offline client that makes a placeholder for ``producer`` (no simulated latency, no fault
        injection: it stands in for a provider that failed)."""
        return getattr(self, PRODUCER_KINDS[producer].value).offline(local)

    def price(self, producer: str, width: int, height: int) -> tuple[str, str, float]:
        """(provider, model, estimated USD) of one typical call of ``producer`` as routed in this run:
        what a call reserves in the budget before it is sent (plans use the same estimate)."""
        resource = getattr(self, PRODUCER_KINDS[producer].value)
        provider, _, model = resource.routes.get(producer, "offline").partition(":")
        params = json.loads(resource.params.get(producer, "{}"))
        return provider, model, estimate_call_usd(provider, PRODUCER_KINDS[producer], model, width=width, height=height,
                                                  params=params, producer=producer)
