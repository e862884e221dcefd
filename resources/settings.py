"""Settings read from the environment, typed and validated: which provider (and model) each producer
calls -- the one switch between offline and real providers --, model parameters, and the offline
providers' simulated latency.

Read from ``MOVIEGEN_PROVIDERS`` when the definitions load; unset means everything offline. The value
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
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from movie_assets.domain.blueprint import PRODUCERS, ProviderKind
from resources.providers.catalog import PROVIDER_MODELS

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


def parse_routes(text: str | None) -> dict[str, Route]:
    """Every producer's route; errors name the entry and what is allowed."""
    routes = {p: Route("offline", PROVIDER_MODELS["offline"][k]) for p, k in PRODUCER_KINDS.items()}
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
                if kind in PROVIDER_MODELS[provider]:
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
    return routes


def routes_from_env() -> dict[str, Route]:
    return parse_routes(os.environ.get("MOVIEGEN_PROVIDERS"))


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


def params_from_env(routes: dict[str, Route] | None = None) -> dict[str, dict[str, object]]:
    return parse_params(os.environ.get("MOVIEGEN_MODEL_PARAMS"), routes if routes is not None else routes_from_env())


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


def render_engine_from_env() -> RenderEngine:
    """MOVIEGEN_RENDER_ENGINE: remotion, ffmpeg, or auto (the default: Remotion where it can run, else
    ffmpeg)."""
    value = os.environ.get("MOVIEGEN_RENDER_ENGINE", "auto").strip() or "auto"
    if value == "auto":
        return RenderEngine.ffmpeg if remotion_missing() else RenderEngine.remotion
    try:
        return RenderEngine(value)
    except ValueError:
        raise ValueError(f"MOVIEGEN_RENDER_ENGINE={value!r}: allowed: auto, remotion, ffmpeg") from None


def render_enabled_from_env() -> bool:
    """MOVIEGEN_RENDER=off leaves the rendered movie out of generations (the timeline is still made)."""
    value = os.environ.get("MOVIEGEN_RENDER", "on").strip().lower() or "on"
    if value not in ("on", "off"):
        raise ValueError(f"MOVIEGEN_RENDER={value!r}: allowed: on, off")
    return value == "on"


def fallback_enabled_from_env() -> bool:
    """MOVIEGEN_FALLBACK=off: a partition whose provider fails for good stays a gap instead of getting an
    offline placeholder (on by default: the movie stays watchable and marks what is a placeholder)."""
    value = os.environ.get("MOVIEGEN_FALLBACK", "on").strip().lower() or "on"
    if value not in ("on", "off"):
        raise ValueError(f"MOVIEGEN_FALLBACK={value!r}: allowed: on, off")
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
