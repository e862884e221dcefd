"""The Python API behind the ``moviegen`` CLI, usable by a hosted service as well.

Every function takes a ``DagsterInstance`` (``DagsterInstance.get()`` respects DAGSTER_HOME) and an
``ArtifactStore``; generations run through Dagster as one run of the ``movie_build`` step.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository

from resources import ArtifactStore
from resources.providers import LatencyProfile

from .assets import BUILD_STEPS
from .blueprint import (
    ARTIFACTS,
    Blueprint,
    Level,
    NodeKey,
    call_group,
    expand,
)
from .catalog import MovieState, load_state
from .codeversions import ARTIFACT_CODE_VERSIONS
from .edits import EditResult, edit_movie, list_edits
from .engine import Reason
from .locks import IN_PROCESS, KIND_TAG, MOVIE_TAG, generation_lock
from .movies import MovieNotFound, load_movie_request, movie_exists, register_movie
from .progress import (
    add_listener,
    empty_report,
    read_run_failures,
    read_run_report,
    remove_listener,
)
from .request import MovieRequest, load_request
from .revisions import get_revision, list_revisions, write_revision
from .versions import cache_relpath, changed_inputs, input_versions


@dataclass
class PlanItem:
    node: str
    asset: str
    partition: str
    reason: str
    cause: str
    producer: str | None
    calls_provider: bool


@dataclass
class Plan:
    movie: str
    items: list[PlanItem]
    provider_calls: dict[str, int]
    critical_path_s: float
    total_nodes: int
    estimated_cost_usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _require(instance: dg.DagsterInstance, movie: str) -> None:
    if not movie_exists(instance, movie):
        raise MovieNotFound(movie)


def new_movie(instance: dg.DagsterInstance, store: ArtifactStore, request: MovieRequest | str, movie: str | None = None) -> str:
    """Register a movie from a request (or a request file path) and return its id."""
    req = load_request(request) if isinstance(request, str) else request
    return register_movie(instance, store, req, movie)


def _reasons(blueprint: Blueprint, state: MovieState) -> dict[NodeKey, tuple[str, str]]:
    """Why each node must be built: (reason, cause). Staleness is computed in one pass from the
    catalog (see versions.py); nodes below anything rebuilt are planned as ``upstream``."""
    reasons: dict[NodeKey, tuple[str, str]] = {}

    def version(d: NodeKey) -> str | None:
        rec = state.records.get(d)
        return rec.version if rec else None

    for key in blueprint.order:
        rec = state.records.get(key)
        if key in state.failures:
            reasons[key] = (Reason.failed, state.failures[key].message)
        elif rec is None:
            reasons[key] = (Reason.missing, "never built")
        elif rec.code_version != ARTIFACT_CODE_VERSIONS[key.asset]:
            reasons[key] = (Reason.stale, f"code version {rec.code_version} -> {ARTIFACT_CODE_VERSIONS[key.asset]}")
        else:
            changed = changed_inputs(rec.input_versions, input_versions(blueprint, key, version))
            if changed:
                reasons[key] = (Reason.stale, "changed: " + ", ".join(changed))
    for key in blueprint.downstream(list(reasons)):
        reasons.setdefault(key, (Reason.upstream, "an upstream artifact is rebuilt"))
    return reasons


def plan(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> Plan:
    """What a generation would build and why; a dry run that calls no provider."""
    _require(instance, movie)
    blueprint = expand(load_movie_request(store, movie))
    state = load_state(instance, movie, blueprint.nodes, lambda run_id: read_run_failures(store, movie, run_id))
    return _plan(movie, blueprint, state, store)


def _plan(movie: str, blueprint: Blueprint, state: MovieState, store: ArtifactStore) -> Plan:
    reasons = _reasons(blueprint, state)
    reused = _reusable(movie, blueprint, state, store, reasons)
    items = [
        PlanItem(str(k), k.asset, k.partition_key(movie), reasons[k][0],
                 reasons[k][1] + ("; reused: made before from identical inputs" if k in reused else ""),
                 ARTIFACTS[k.asset].producer, call_group(blueprint.request, k) is not None and k not in reused)
        for k in blueprint.order if k in reasons
    ]
    keys = [k for k in blueprint.order if k in reasons and k not in reused]
    calls = dict(sorted(blueprint.calls(keys).items()))
    return Plan(movie, items, calls, blueprint.critical_path_s(keys), len(blueprint.nodes),
                estimate_cost(calls, *blueprint.request.frame))


def _reusable(movie: str, blueprint: Blueprint, state: MovieState, store: ArtifactStore,
              reasons: dict[NodeKey, tuple[str, str]]) -> set[NodeKey]:
    """Planned nodes whose inputs are known now (none of their dependencies is rebuilt) and which the
    build cache already holds: they will be reused with no call. Deeper nodes are counted as calls,
    so the plan's calls are an upper bound."""
    out = set()
    for key, (reason, _) in reasons.items():
        if reason == Reason.upstream or call_group(blueprint.request, key) is None:
            continue
        if any(d in reasons for d in blueprint.nodes[key].deps):
            continue
        consumed = input_versions(blueprint, key, lambda d: (r.version if (r := state.records.get(d)) else None))
        if store.exists(cache_relpath(movie, key, consumed, ARTIFACT_CODE_VERSIONS[key.asset])):
            out.add(key)
    return out


def estimate_cost(calls: dict[str, int], width: int, height: int) -> float:
    """Calls times the estimated price of a typical call of the provider and model each producer is
    routed to, at the movie's frame and with its configured model parameters (resources/pricing.py);
    offline calls cost nothing unless ``usd_per_call`` says so."""
    from resources.pricing import estimate_call_usd
    from resources.routing import PRODUCER_KINDS, params_from_env, routes_from_env

    from .definitions import defs

    routes = routes_from_env()
    params = params_from_env(routes)
    total = 0.0
    for producer, count in calls.items():
        route, kind = routes[producer], PRODUCER_KINDS[producer]
        price = estimate_call_usd(route.provider, kind, route.model, width=width, height=height,
                                  params=params.get(producer))
        if route.provider == "offline":
            price = float(getattr(defs.resources[kind], "usd_per_call", 0.0))
        total += count * price
    return round(total, 6)


@dataclass
class GenerateResult:
    movie: str
    run_id: str | None
    success: bool
    provider_calls: dict[str, int]
    built: list[str]
    failed: dict[str, str]
    timeline: str | None
    seconds: float
    revision: int | None = None
    skipped: list[str] = field(default_factory=list)
    cost_usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "movie": self.movie,
            "revision": self.revision,
            "run_id": self.run_id,
            "success": self.success,
            "provider_calls": self.provider_calls,
            "built": len(self.built),
            "skipped": len(self.skipped),
            "failed": [{"node": k, "error": v} for k, v in self.failed.items()],
            "timeline": self.timeline,
            "cost_usd": round(self.cost_usd, 6),
            "seconds": round(self.seconds, 3),
        }


def _recon_job() -> Any:
    repo = ReconstructableRepository.for_module("movie_assets.definitions", "defs")
    return repo.get_reconstructable_job("__ASSET_JOB")


def generate(
    instance: dg.DagsterInstance,
    store: ArtifactStore,
    movie: str,
    *,
    latency: LatencyProfile | None = None,
    latency_scale: float | None = None,
    on_progress: Callable[[str, Any], None] | None = None,
    resource_config: dict[str, dict[str, Any]] | None = None,
    wait_s: float = 0.0,
) -> GenerateResult:
    """Build what the plan shows in one Dagster run and record a new revision.

    One generation of a movie at a time: a concurrent one waits up to ``wait_s`` seconds, then
    raises MovieBusy. Nothing planned means no run (and no provider call), but still a revision.
    """
    started = time.monotonic()
    with generation_lock(instance, movie, wait_s):
        p = plan(instance, store, movie)
        run_id, success, report = None, True, empty_report()
        if p.items:
            run_id, success, report = _run_build(instance, store, movie, p, latency, latency_scale, on_progress, resource_config)
        revision = record_revision(instance, store, movie, run_id, report)
    return GenerateResult(
        movie=movie, run_id=run_id, success=success and not report["failed"],
        provider_calls=report["provider_calls"], built=report["built"], failed=report["failed"],
        timeline=revision["timeline"], seconds=time.monotonic() - started, revision=revision["revision"],
        skipped=report.get("skipped", []), cost_usd=float(report.get("cost_usd", 0.0)),
    )


def record_revision(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, run_id: str | None,
                    report: dict[str, Any]) -> dict[str, Any]:
    """Record the revision a generation leaves: the artifact versions the movie now uses."""
    blueprint = expand(load_movie_request(store, movie))
    state = load_state(instance, movie, blueprint.nodes)
    return write_revision(store, movie, blueprint=blueprint, state=state, run_id=run_id, report=report,
                          edits=list_edits(store, movie))


def _run_build(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, p: Plan,
               latency: LatencyProfile | None, latency_scale: float | None,
               on_progress: Callable[[str, Any], None] | None,
               resource_config: dict[str, dict[str, Any]] | None) -> tuple[str, bool, dict[str, Any]]:
    provider_config = {k: v for k, v in {"latency": latency.value if latency else None, "latency_scale": latency_scale}.items() if v is not None}
    resources: dict[str, Any] = {}
    for name in ("llm", "speech", "images", "video", "music"):
        config = provider_config | (resource_config or {}).get(name, {})
        if config:
            resources[name] = {"config": config}
    for name, config in (resource_config or {}).items():
        if name not in resources and config:
            resources[name] = {"config": config}
    run_config = {
        "ops": {BUILD_STEPS[Level.movie]: {"config": {"movie": movie, "nodes": {i.node: i.reason for i in p.items}}}},
        "resources": resources,
        # The run's events go to the event log (and the UI) as always; the console only gets warnings.
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }
    # One run of the movie-level step for the movie's partition; it builds every level's partitions
    # (see docs/architecture.md). The timeline is downstream of everything, so it is always planned.
    selection = sorted({dg.AssetKey(i.asset) for i in p.items if ARTIFACTS[i.asset].level is Level.movie},
                       key=lambda k: k.to_user_string())
    if on_progress:
        add_listener(on_progress)
    try:
        result = dg.execute_job(
            _recon_job(), instance, run_config=run_config, asset_selection=selection,
            tags={MOVIE_TAG: movie, KIND_TAG: IN_PROCESS, "dagster/partition": movie}, raise_on_error=False,
        )
    finally:
        if on_progress:
            remove_listener(on_progress)
    report = read_run_report(store, movie, result.run_id)
    if report is None:
        report = empty_report()
        if not result.success:
            failure = next((e for e in result.all_events if e.is_step_failure), None)
            report["failed"] = {"movie_build": failure.event_specific_data.error.message if failure else "run failed"}  # type: ignore[union-attr]
    return result.run_id, result.success, report


def history(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> list[dict[str, Any]]:
    """Every revision of a movie, oldest first, without the manifests."""
    _require(instance, movie)
    return [{k: v for k, v in r.items() if k != "manifest"} for r in list_revisions(store, movie)]


def timeline_uri(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, revision: int | None = None) -> str | None:
    """The latest timeline, or the timeline of revision N."""
    _require(instance, movie)
    if revision is not None:
        return get_revision(store, movie, revision)["timeline"]
    state = load_state(instance, movie, [NodeKey("timeline")])
    rec = state.records.get(NodeKey("timeline"))
    return rec.uri if rec else None


def load_timeline(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, revision: int | None = None,
                  *, links: bool = False) -> dict[str, Any]:
    """The stored timeline (its ``src`` are stable artifact URIs). ``links``: every ``src`` replaced by
    a URL a render host can fetch (on S3: presigned for the store's ``link_seconds``, or public)."""
    uri = timeline_uri(instance, store, movie, revision)
    if uri is None:
        raise FileNotFoundError(f"movie {movie!r} has no timeline yet: run `moviegen generate {movie}`")
    timeline = json.loads(store.read(uri))
    if links:
        for track in timeline["tracks"]:
            for clip in track["clips"]:
                if "src" in clip:
                    clip["src"] = store.link(clip["src"])
    return timeline


def edit(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, edits: list[tuple[str, Any]]) -> EditResult:
    """Apply edits (PATH, VALUE or UNSET) to a movie's request; see edits.py."""
    _require(instance, movie)
    return edit_movie(instance, store, movie, edits)


@dataclass
class AssetStatus:
    asset: str
    needed: int
    done: int
    failed: int
    missing: int


@dataclass
class Status:
    movie: str
    request: dict[str, Any]
    assets: list[AssetStatus]
    failures: dict[str, str]
    timeline: str | None
    to_build: int
    revisions: int = 0
    cost_usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def status(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> Status:
    _require(instance, movie)
    request = load_movie_request(store, movie)
    blueprint = expand(request)
    state = load_state(instance, movie, blueprint.nodes, lambda run_id: read_run_failures(store, movie, run_id))
    needed = Counter(k.asset for k in blueprint.nodes)
    done = Counter(k.asset for k in blueprint.nodes if k in state.records)
    failed = Counter(k.asset for k in blueprint.nodes if k in state.failures)
    assets = [AssetStatus(a, needed[a], done[a], failed[a], needed[a] - done[a]) for a in ARTIFACTS if needed[a]]
    timeline = state.records.get(NodeKey("timeline"))
    revisions = list_revisions(store, movie)
    return Status(movie, request.to_document(), assets, {str(k): f.message for k, f in state.failures.items()},
                  timeline.uri if timeline else None, len(_plan(movie, blueprint, state, store).items),
                  len(revisions), round(sum(r["cost_usd"] for r in revisions), 6))
