"""Settings read from the environment, typed and validated: which provider (and model) each producer
calls -- the one switch between offline and real providers --, model parameters, and the offline
providers' simulated latency.

Read into one ``Settings`` value per process (``Settings.from_env``, ``current()``); unset means
everything offline. The value
is a comma-separated list of ``PRODUCER=PROVIDER[:MODEL]``; ``*`` stands for every producer a
provider can serve::

    MOVIEGEN_PROVIDERS="ScriptProducer=openai:gpt-4.1-mini,TextToImageProducer=openai:gpt-image-1"
    MOVIEGEN_PROVIDERS="*=openai"          # every producer OpenAI can serve; the rest stays offline

A model is ``owner/name`` on Replicate (``TextToVideoProducer=replicate:minimax/video-01``).
Keys never go here: they are ``OPENAI_API_KEY`` / ``REPLICATE_API_TOKEN`` on the provider resources.

Per-producer model parameters come from ``MOVIEGEN_MODEL_PARAMS``, a JSON object of producer ->
parameters passed to the model as they are (the model's own names)::

    MOVIEGEN_MODEL_PARAMS='{"TextToImageProducer": {"quality": "high"}, "ScriptProducer": {"temperature": 0.4}}'

They are part of the producer's code version: changing them makes exactly that producer's
artifacts stale. Parameters the request itself decides (prompt, size, voice, ...) cannot be set.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from movie_assets.domain.blueprint import PRODUCERS, ProviderKind
from movie_assets.domain.request import Strategy
from resources.providers.catalog import DEBUG_OVERLAY_KINDS, PROVIDER_MODELS, offline_model

PRODUCER_KINDS: dict[str, ProviderKind] = {name: p.kind for name, p in PRODUCERS.items()}


class LatencyProfile(enum.StrEnum):
    """How long offline calls take: instantly, the brief's median latency of each producer's call
    (``ProducerDecl.latency_s``), or that scaled."""

    none = "none"
    median = "median"
    scaled = "scaled"

    def seconds(self, producer: str, scale: float = 1.0) -> float:
        if self is LatencyProfile.none:
            return 0.0
        return PRODUCERS[producer].latency_s * (scale if self is LatencyProfile.scaled else 1.0)


class RoutingError(ValueError):
    pass


@dataclass(frozen=True)
class Route:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


# Producers whose route follows another's unless named on their own: the narration's word timings come from
# the provider that spoke it (offline: the voice's own alignments, no call; OpenAI: whisper-1; Replicate:
# its whisper model), so one speech route gives captions timed from that speech.
FOLLOWS = {"NarrationTimingProducer": "AudioProducer"}


def parse_routes(text: str | None) -> dict[str, Route]:
    """Every producer's route; errors name the entry and what is allowed."""
    routes = {p: Route("offline", PROVIDER_MODELS["offline"][k]) for p, k in PRODUCER_KINDS.items()}
    named: set[str] = set()
    for entry in (e.strip() for e in (text or "").split(",")):
        if not entry:
            continue
        if "=" not in entry:
            raise RoutingError(f"MOVIEGEN_PROVIDERS entry {entry!r}: expected PRODUCER=PROVIDER[:MODEL]")
        producer, target = (x.strip() for x in entry.split("=", 1))
        provider, _, model = target.partition(":")
        if provider not in PROVIDER_MODELS:
            raise RoutingError(f"MOVIEGEN_PROVIDERS entry {entry!r}: unknown provider {provider!r}; "
                               f"allowed: {', '.join(PROVIDER_MODELS)}")
        if producer == "*":
            for p, kind in PRODUCER_KINDS.items():
                if kind in PROVIDER_MODELS[provider] and p not in FOLLOWS:
                    routes[p] = Route(provider, model or PROVIDER_MODELS[provider][kind])
            continue
        if producer not in PRODUCER_KINDS:
            raise RoutingError(f"MOVIEGEN_PROVIDERS entry {entry!r}: unknown producer {producer!r}; "
                               f"allowed: *, {', '.join(PRODUCER_KINDS)}")
        kind = PRODUCER_KINDS[producer]
        if kind not in PROVIDER_MODELS[provider]:
            able = [p for p, kinds in PROVIDER_MODELS.items() if kind in kinds]
            raise RoutingError(f"MOVIEGEN_PROVIDERS entry {entry!r}: {provider} has no {kind} models; "
                               f"{producer} can use: {', '.join(able)}")
        routes[producer] = Route(provider, model or PROVIDER_MODELS[provider][kind])
        named.add(producer)
    for producer, leader in FOLLOWS.items():
        if producer not in named:
            provider = routes[leader].provider
            routes[producer] = Route(provider, PROVIDER_MODELS[provider][PRODUCER_KINDS[producer]])
    return routes


def parse_params(text: str | None, routes: dict[str, Route]) -> dict[str, dict[str, object]]:
    """Producer -> model parameters; errors name the producer and what is allowed."""
    if not (text or "").strip():
        return {}
    try:
        data = json.loads(text)  # type: ignore[arg-type]
    except json.JSONDecodeError as e:
        raise RoutingError(f"MOVIEGEN_MODEL_PARAMS is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise RoutingError("MOVIEGEN_MODEL_PARAMS: expected a JSON object of PRODUCER -> {parameter: value}")
    params: dict[str, dict[str, object]] = {}
    for producer, values in data.items():
        if producer not in PRODUCER_KINDS:
            raise RoutingError(f"MOVIEGEN_MODEL_PARAMS: unknown producer {producer!r}; allowed: {', '.join(PRODUCER_KINDS)}")
        if not isinstance(values, dict):
            raise RoutingError(f"MOVIEGEN_MODEL_PARAMS.{producer}: expected an object of parameter -> value, got {values!r}")
        route = routes[producer]
        if route.provider == "offline" and values:
            raise RoutingError(f"MOVIEGEN_MODEL_PARAMS.{producer}: {producer} runs offline, which takes no model "
                               "parameters; route it to a provider in MOVIEGEN_PROVIDERS first")
        params[producer] = values
    return params


def params_fingerprint(params: dict[str, object]) -> str:
    """A short, stable fingerprint of a producer's parameters, for its code version."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10] if params else ""


def env_int(name: str, default: int) -> int:
    """A limit (not a secret) from the environment when set, else the default."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name}={value!r}: expected a whole number of 1 or more")
    return int(value)


def offline_latency_from_env() -> dict[str, object]:
    """Offline providers' simulated latency from MOVIEGEN_OFFLINE_LATENCY (none, median, scaled) and
    MOVIEGEN_OFFLINE_LATENCY_SCALE, for demos and benchmarks of runs no one configures by hand (sensor)."""
    value = os.environ.get("MOVIEGEN_OFFLINE_LATENCY", "").strip()
    if not value:
        return {}
    allowed = [p.value for p in LatencyProfile]
    if value not in allowed:
        raise ValueError(f"MOVIEGEN_OFFLINE_LATENCY={value!r}: allowed: {', '.join(allowed)}")
    scale = os.environ.get("MOVIEGEN_OFFLINE_LATENCY_SCALE", "").strip()
    try:
        return {"latency": LatencyProfile(value), **({"latency_scale": float(scale)} if scale else {})}
    except ValueError:
        raise ValueError(f"MOVIEGEN_OFFLINE_LATENCY_SCALE={scale!r}: expected a number above 0") from None


OFFLINE_MAX_SIZES = ("480p", "720p", "1080p")


def offline_max_size_from_env() -> str:
    """MOVIEGEN_OFFLINE_MAX_SIZE: fault injection for trying recovery with reduced settings offline: the
    offline pictures and clips fail above this size as a local model out of GPU memory would ("" : unset).
    Not a setting: it never changes a code version, only whether a call fails (docs/providers.md)."""
    value = os.environ.get("MOVIEGEN_OFFLINE_MAX_SIZE", "").strip()
    if value and value not in OFFLINE_MAX_SIZES:
        raise ValueError(f"MOVIEGEN_OFFLINE_MAX_SIZE={value!r}: allowed: {', '.join(OFFLINE_MAX_SIZES)} (or unset)")
    return value


class RenderEngine(enum.StrEnum):
    """What renders the movie's video chunks: Remotion (the product's renderer: Node, Chromium and
    renderer/node_modules) or ffmpeg (fast, no browser). The soundtrack is mixed by ffmpeg's side
    either way, and chunks of one movie always come from one engine (it is part of their code version)."""

    remotion = "remotion"
    ffmpeg = "ffmpeg"


RENDERER_DIR = Path(__file__).resolve().parents[1] / "renderer"
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def chromium_path() -> str | None:
    configured = os.environ.get("MOVIEGEN_BROWSER", "").strip()
    if configured:
        return configured if Path(configured).is_file() else None
    return next((p for p in CHROMIUM_PATHS if Path(p).exists()), None)


def remotion_missing() -> list[str]:
    """What Remotion rendering needs and this machine lacks (empty: it can render)."""
    missing = []
    if shutil.which("node") is None:
        missing.append("Node.js 18 or newer (`node` on PATH)")
    if not (RENDERER_DIR / "node_modules" / "@remotion" / "renderer").is_dir():
        missing.append(f"the renderer's packages (`make renderer`, i.e. `npm ci` in {RENDERER_DIR})")
    if chromium_path() is None:
        missing.append("Chromium (`apt-get install chromium`, or MOVIEGEN_BROWSER=/path/to/chrome)")
    return missing


def parse_render_engine(value: str | None) -> RenderEngine:
    """MOVIEGEN_RENDER_ENGINE: remotion, ffmpeg, or auto (the default), which is Remotion on every
    machine: the engine is part of the chunks' code version, so it is a setting, never a guess from what
    the importing process finds installed (a webserver without Chromium and a worker with it must agree
    on what is stale). A machine that cannot run Remotion fails its render with what is missing; set
    ``MOVIEGEN_RENDER_ENGINE=ffmpeg`` for every process of such a deployment (`make demo` does)."""
    value = (value or "").strip() or "auto"
    if value == "auto":
        return RenderEngine.remotion
    try:
        return RenderEngine(value)
    except ValueError:
        raise ValueError(f"MOVIEGEN_RENDER_ENGINE={value!r}: allowed: auto, remotion, ffmpeg") from None


def _on_off(name: str, value: str | None, default: str = "on") -> bool:
    value = (value or "").strip().lower() or default
    if value not in ("on", "off"):
        raise ValueError(f"{name}={value!r}: allowed: on, off")
    return value == "on"


def usd_from_env(name: str) -> float | None:
    """An amount in USD from the environment (a budget cap), None when unset."""
    value = os.environ.get(name, "").strip().removeprefix("$")
    if not value:
        return None
    try:
        amount = float(value)
    except ValueError:
        amount = -1.0
    if not amount >= 0 or amount == float("inf"):
        raise ValueError(f"{name}={value!r}: expected an amount in USD of 0 or more, e.g. 5 or 0.50")
    return amount


def budget_from_env() -> tuple[float | None, float | None]:
    """(per-movie cap, per-instance cap per UTC day) in USD: MOVIEGEN_MOVIE_BUDGET_USD (a movie's
    request field ``budget_usd`` wins) and MOVIEGEN_DAILY_BUDGET_USD. Unset: no cap."""
    return usd_from_env("MOVIEGEN_MOVIE_BUDGET_USD"), usd_from_env("MOVIEGEN_DAILY_BUDGET_USD")


# The environment variables the settings are made of: two processes with the same values have the same
# settings, whatever else differs between their machines.
SETTINGS_VARIABLES = ("MOVIEGEN_PROVIDERS", "MOVIEGEN_MODEL_PARAMS", "MOVIEGEN_RENDER_ENGINE", "MOVIEGEN_RENDER",
                      "MOVIEGEN_FALLBACK", "MOVIEGEN_STRATEGY", "MOVIEGEN_MEDIA_URL", "MOVIEGEN_DEBUG_OVERLAY")

# Where `moviegen media` serves artifacts by default: loopback only, beside the Dagster UI's 3000.
DEFAULT_MEDIA_URL = "http://127.0.0.1:3070"


def parse_media_url(value: str | None) -> str:
    """MOVIEGEN_MEDIA_URL: the base URL of the media server (`moviegen media`, or the service) that the
    UI's artifact links point to (``BASE/artifacts/PATH``); ``off``: no links. Metadata only: it never
    changes what is built."""
    value = (value or "").strip() or DEFAULT_MEDIA_URL
    if value == "off":
        return ""
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value) or len(value) > 500:
        raise ValueError(f"MOVIEGEN_MEDIA_URL={value[:100]!r}: expected http(s)://HOST[:PORT][/PATH] or off")
    return value.rstrip("/")


def parse_strategy(value: str | None, name: str = "MOVIEGEN_STRATEGY") -> Strategy:
    value = (value or "").strip() or Strategy.adaptive.value
    try:
        return Strategy(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: allowed: {', '.join(s.value for s in Strategy)}") from None


@dataclass(frozen=True)
class Settings:
    """The settings of this process as one value: read from the environment in one place
    (``Settings.from_env``) and passed down. Code versions, routes and the render engine are functions
    of these fields only."""

    providers: str = ""
    model_params: str = ""
    render_engine: RenderEngine = RenderEngine.remotion
    render: bool = True
    fallback: bool = True
    strategy: Strategy = Strategy.adaptive
    media_url: str = DEFAULT_MEDIA_URL
    # For developers: the offline pictures and clips carry their label, take, style, scene, thirds and
    # the text-safe area (MOVIEGEN_DEBUG_OVERLAY=on). Another offline model, so another code version.
    debug_overlay: bool = False

    def __post_init__(self) -> None:
        self.params  # noqa: B018 - validates routes and parameters when the settings are made

    @functools.cached_property
    def routes(self) -> Mapping[str, Route]:
        routes = parse_routes(self.providers)
        if self.debug_overlay:
            for producer, route in routes.items():
                kind = PRODUCER_KINDS[producer]
                if route.provider == "offline" and route.model == PROVIDER_MODELS["offline"].get(kind) and kind in DEBUG_OVERLAY_KINDS:
                    routes[producer] = Route("offline", offline_model(kind, debug_overlay=True))
        return routes

    @functools.cached_property
    def params(self) -> Mapping[str, dict[str, object]]:
        return parse_params(self.model_params, dict(self.routes))

    @staticmethod
    def from_env(environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of an environment (default: this process's); errors name the variable."""
        env = os.environ if environ is None else environ
        return Settings(
            providers=env.get("MOVIEGEN_PROVIDERS", ""), model_params=env.get("MOVIEGEN_MODEL_PARAMS", ""),
            render_engine=parse_render_engine(env.get("MOVIEGEN_RENDER_ENGINE")),
            render=_on_off("MOVIEGEN_RENDER", env.get("MOVIEGEN_RENDER")),
            fallback=_on_off("MOVIEGEN_FALLBACK", env.get("MOVIEGEN_FALLBACK")),
            strategy=parse_strategy(env.get("MOVIEGEN_STRATEGY")),
            media_url=parse_media_url(env.get("MOVIEGEN_MEDIA_URL")),
            debug_overlay=_on_off("MOVIEGEN_DEBUG_OVERLAY", env.get("MOVIEGEN_DEBUG_OVERLAY"), default="off"),
        )


@functools.lru_cache(maxsize=16)
def _settings_of(values: tuple[tuple[str, str | None], ...]) -> Settings:
    return Settings.from_env({k: v for k, v in values if v is not None})


def current() -> Settings:
    """This process's settings. Resolved once per environment: a process whose environment does not
    change (every real one) resolves them once; a test that changes a variable gets the new value."""
    return _settings_of(tuple((k, os.environ.get(k)) for k in SETTINGS_VARIABLES))
