"""Generations: one sequence for every way a generation starts -- lock, open the movie once, plan,
build the plan in one Dagster run, record the revision and the plan after it (``Generation``).

The in-process path (``moviegen generate``, the Python API) plans here and hands the opened movie
and its plan to the build step it runs in this process (``Handoff``), so the step builds exactly that
plan without opening the movie again; the ``generate_movie`` job (sensor and UI) runs the same
sequence inside its build step. After the build, the state is the opened state plus what the build
recorded: nothing is read back.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from movie_assets.builder.budget import caps_for, settle_orphans, standing
from movie_assets.builder.code_versions import code_versions
from movie_assets.builder.engine import BuildSummary, predict
from movie_assets.builder.preflight import preflight
from movie_assets.builder.progress import add_listener, remove_listener
from movie_assets.builder.verify import find_damaged
from movie_assets.domain import pace
from movie_assets.domain.blueprint import ARTIFACTS, RENDER_ARTIFACTS, Blueprint, Level, NodeKey, expand
from movie_assets.domain.errors import OverBudget, PreflightFailed
from movie_assets.domain.plan import Plan, make_plan, movie_matches_timeline
from movie_assets.domain.records import MovieState
from movie_assets.domain.request import MovieRequest, Strategy
from movie_assets.movie_files.edits_log import list_edits
from movie_assets.movie_files.movies import load_movie_request
from movie_assets.movie_files.reports import RunReport, failures_in, read_run_failures, read_run_report
from movie_assets.movie_files.revisions import Revision, latest_revision, write_revision
from movie_assets.orchestration.event_log import load_state, planned_failure
from movie_assets.orchestration.locks import IN_PROCESS, KIND_TAG, MOVIE_TAG, generation_lock
from movie_assets.orchestration.marks import record_plan
from movie_assets.orchestration.registry import add_segment_keys, require_movie
from movie_assets.orchestration.specs import BUILD_STEPS
from resources.providers.base import UNEXPECTED
from resources.providers.pricing import estimate_call_usd
from resources.runtime import scratch
from resources.runtime.budget import make_ledger
from resources.runtime.secrets import TEXT_LIMIT, redact
from resources.settings import PRODUCER_KINDS, LatencyProfile, Settings, current
from resources.storage import ArtifactStore

# A function of the code location that returns the asset job every build run executes.
BUILD_JOB_RECONSTRUCTOR = ("movie_assets.definitions", "build_job")

log = logging.getLogger("moviegen.generation")


@dataclass(frozen=True)
class OpenMovie:
    """A movie read once for a command: its request, expanded blueprint and what exists."""

    movie: str
    request: MovieRequest
    blueprint: Blueprint
    state: MovieState
    settings: Settings = field(default_factory=Settings)


def open_movie(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, render: bool | None = None,
               verify: bool = False, settings: Settings | None = None, known: bool = False) -> OpenMovie:
    """``render``: include the rendered movie (default: the settings', MOVIEGEN_RENDER, on unless set to
    off). Every recorded artifact is checked to be there with its recorded size; ``verify``: also that
    its content still hashes to its data version (reads every file). What fails is ``state.damaged``.
    ``known``: the caller already checked that the movie exists."""
    settings = settings if settings is not None else current()
    if not known:
        require_movie(instance, movie)
    request = load_movie_request(store, movie)
    blueprint = expand(request, render=settings.render if render is None else render)
    state = load_state(instance, movie, blueprint.nodes, lambda run_id: read_run_failures(store, movie, run_id))
    state.damaged = find_damaged(store, movie, state.records.values(), full=verify)
    return OpenMovie(movie, request, blueprint, state, settings)


def estimate_cost(calls: dict[str, int], width: int, height: int, settings: Settings | None = None) -> float:
    """Calls times the estimated price of a typical call of the provider and model each producer is
    routed to, at the movie's frame and with its configured model parameters (offline: 0)."""
    settings = settings if settings is not None else current()
    routes, params = settings.routes, settings.params
    total = 0.0
    for producer, count in calls.items():
        route = routes[producer]
        total += count * estimate_call_usd(route.provider, PRODUCER_KINDS[producer], route.model, width=width,
                                           height=height, params=params.get(producer), producer=producer)
    return round(total, 6)


def plan_of(opened: OpenMovie, store: ArtifactStore, budget_usd: float | None = None) -> Plan:
    """What a generation would build and why, the calls it will make and what they cost against the
    budget caps, and what would make them fail for sure (pre-flight); calls no provider.
    ``budget_usd``: the movie's cap for this generation (default: the request's, else the setting)."""
    width, height = opened.request.frame
    settings = opened.settings
    plan = make_plan(opened.movie, opened.blueprint, opened.state, code_versions(settings),
                     lambda targets: predict(opened.movie, opened.blueprint, opened.state, store, targets, settings),
                     lambda calls: estimate_cost(calls, width, height, settings))
    caps = caps_for(opened.movie, opened.request, budget_usd)
    if caps:
        plan.budget = [s.to_json() for s in standing(make_ledger(), opened.movie, caps)]
    if plan.provider_calls:
        plan.problems = preflight(plan.provider_calls, settings.routes, settings.params, opened.request)
    speaking = sorted({k.segment for k in plan.targets if k.asset == "segment_audio" and k.segment is not None})
    plan.warnings = pace.narration_warnings(opened.request, speaking)
    return plan


def plan_movie(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, render: bool | None = None,
               budget_usd: float | None = None, verify: bool = False) -> Plan:
    settle_orphaned_calls(instance, store)  # the standing the plan shows is what a generation would find
    return plan_of(open_movie(instance, store, movie, render, verify), store, budget_usd)


def settle_orphaned_calls(instance: dg.DagsterInstance, store: ArtifactStore) -> None:
    """Settle the budget reservations killed generations left open (builder/budget.py ``settle_orphans``):
    of a process of this machine that has ended, or of a run that has ended; a call whose answer was kept
    at what it cost, the others (in flight or waiting when the process died) at 0."""

    def run_ended(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        return run is not None and run.is_finished  # a run this instance does not know may still be running

    settled = settle_orphans(make_ledger(), store, run_ended)
    if settled:
        log.info("budget: settled %d reservation(s) left open by generations that stopped: %s", len(settled),
                 ", ".join(f"{u.reservation.node} ${cost:.4f} (was ${u.reservation.estimate_usd:.4f} reserved)" for u, cost in settled))


def check_plan(plan: Plan, allow_over_budget: bool = False) -> None:
    """Refuse a generation before any call: PreflightFailed when a call cannot succeed, OverBudget
    when the estimate exceeds what a cap has left (unless allowed: then calls are sent until the cap
    is reached, and what is left is reported ``not built: budget``)."""
    if plan.problems:
        raise PreflightFailed(plan.problems)
    over = plan.over_budget
    if over is not None and not allow_over_budget:
        raise OverBudget(
            f"{plan.movie}: the plan's estimated cost ${plan.estimated_cost_usd:.4f} exceeds what the {over['scope']} "
            f"budget has left (${over['remaining_usd']:.4f} of ${over['limit_usd']:.4f}, {over['period']}); nothing was "
            "sent. Raise the budget (--budget, the request's budget_usd, MOVIEGEN_MOVIE_BUDGET_USD / "
            "MOVIEGEN_DAILY_BUDGET_USD) or generate with --allow-over-budget to build what the budget allows",
            plan.estimated_cost_usd, over["remaining_usd"], over["scope"])


@dataclass
class Handoff:
    """What an in-process generation hands the build step it runs in this same process (the movie it
    opened and the targets it planned), and what the step hands back (the build's summary)."""

    opened: OpenMovie
    targets: dict[NodeKey, str]
    summary: BuildSummary | None = None


_HANDOFFS: dict[str, Handoff] = {}


def hand_off(handoff: Handoff) -> str:
    """Keep a handoff for the build step of a run in this process; the token goes in the run config."""
    token = uuid.uuid4().hex
    _HANDOFFS[token] = handoff
    return token


def handed(token: str) -> Handoff | None:
    """The handoff of this token (None: the step runs in another process, which opens the movie itself)."""
    return _HANDOFFS.get(token) if token else None


def state_after(opened: OpenMovie, targets: dict[NodeKey, str], summary: BuildSummary, run_id: str | None,
                report: RunReport) -> MovieState:
    """The movie's state after a build of ``targets``: the opened state with what the build recorded, as
    ``load_state`` will read it back. When the run failed, every target it did not record is failed (the
    run planned it; a planned partition with no materialization after a failed run is failed)."""
    state = MovieState(opened.movie, dict(opened.state.records), dict(opened.state.failures), dict(opened.state.damaged))
    for key, record in summary.records.items():
        state.records[key] = dataclasses.replace(record, run_id=run_id or "")
        state.failures.pop(key, None)
        state.damaged.pop(key, None)
    if report.failed and run_id is not None:
        errors = failures_in(report)
        for key in targets:
            if key not in summary.records:
                state.failures[key] = planned_failure(key, 0, run_id, errors)
    return state


class Generation:
    """One generation of a movie, the same sequence for the CLI, the API, the sensor and a UI launch:
    (the caller holds the movie's lock) ``open_and_plan`` opens the movie once (request, blueprint, what
    exists, integrity) and plans; the caller builds ``plan.targets`` in one run; ``finish`` records the
    revision and the plan after it from the opened state and what the build recorded."""

    def __init__(self, instance: dg.DagsterInstance, store: ArtifactStore, movie: str, *, settings: Settings | None = None,
                 render: bool | None = None, verify: bool = False, budget_usd: float | None = None, known: bool = False):
        self.instance, self.store, self.movie = instance, store, movie
        self.settings = settings if settings is not None else current()
        self.render, self.verify, self.budget_usd, self.known = render, verify, budget_usd, known
        self.opened: OpenMovie | None = None
        self.plan: Plan | None = None

    def open_and_plan(self) -> Plan:
        settle_orphaned_calls(self.instance, self.store)  # before the plan reads what the caps have left
        self.opened = open_movie(self.instance, self.store, self.movie, self.render, self.verify, self.settings, self.known)
        # The segment keys the build's partitions need (a movie registered before they existed has none yet).
        add_segment_keys(self.instance, self.opened.request, self.opened.blueprint.nodes)
        self.plan = plan_of(self.opened, self.store, self.budget_usd)
        return self.plan

    def finish(self, run_id: str | None, report: RunReport, summary: BuildSummary | None) -> Revision:
        """Record the revision this generation leaves, and the plan after it where the UI shows it."""
        opened, plan = self.opened, self.plan
        assert opened is not None and plan is not None
        if plan.items and summary is None:  # the build left no summary (it stopped early): read what it recorded
            state = load_state(self.instance, self.movie, opened.blueprint.nodes,
                               lambda run: read_run_failures(self.store, self.movie, run))
        else:
            state = state_after(opened, plan.targets, summary or BuildSummary(), run_id, report)
        after = dataclasses.replace(opened, state=state)
        rendered = movie_matches_timeline(opened.blueprint, state, code_versions(self.settings)) and not any(
            NodeKey.parse(node).asset in RENDER_ARTIFACTS for node in report.failed)
        revision = write_revision(self.store, self.movie, blueprint=opened.blueprint, state=state, run_id=run_id,
                                  report=report, edits=list_edits(self.store, self.movie), rendered=rendered)
        # An edit made while this generation ran has its own plan: the plan after is then the edited movie's.
        if load_movie_request(self.store, self.movie) != opened.request:
            after = open_movie(self.instance, self.store, self.movie, self.render, settings=self.settings, known=True)
        record_plan(self.instance, plan_of(after, self.store))
        return revision


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
    movie_video: str | None = None
    skipped: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    errors: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> message, category, suggestion
    fallbacks: list[str] = field(default_factory=list)  # nodes an offline placeholder stands in for
    degraded: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> from, to, reason: made at reduced settings
    retried: dict[str, str] = field(default_factory=dict)  # node -> why and what was reduced: a chunk rendered again with less
    budget: list[dict[str, Any]] = field(default_factory=list)  # each cap after the generation
    new_revision: bool = True  # False: nothing changed, ``revision`` is the latest one
    warnings: dict[str, str] = field(default_factory=dict)  # node -> what its check found (WARN or ERROR) in this run

    def to_json(self) -> dict[str, Any]:
        return {
            "movie": self.movie,
            "revision": self.revision,
            "run_id": self.run_id,
            "success": self.success,
            "provider_calls": self.provider_calls,
            "built": len(self.built),
            "skipped": len(self.skipped),
            "new_revision": self.new_revision,
            "failed": [{"node": k, "error": v, **{f: self.errors.get(k, {}).get(f, "") for f in ("category", "suggestion")},
                        "placeholder": k in self.fallbacks} for k, v in self.failed.items()],
            "degraded": [{"node": k, **v} for k, v in self.degraded.items()],
            "retried": [{"node": k, "render_retry": v} for k, v in self.retried.items()],
            "timeline": self.timeline,
            "movie_video": self.movie_video,
            "cost_usd": round(self.cost_usd, 6),
            "budget": self.budget,
            "seconds": round(self.seconds, 3),
            "warnings": [{"node": k, "problem": v} for k, v in self.warnings.items()],
        }


def generate(
    instance: dg.DagsterInstance,
    store: ArtifactStore,
    movie: str,
    *,
    latency: LatencyProfile | str | None = None,
    latency_scale: float | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    on_progress: Callable[[str, Any], None] | None = None,
    resource_config: dict[str, dict[str, Any]] | None = None,
    wait_s: float = 0.0,
    render: bool | None = None,
    budget_usd: float | None = None,
    allow_over_budget: bool = False,
    verbose: bool = False,
    verify: bool = False,
    strategy: Strategy | str | None = None,
) -> GenerateResult:
    """Build what the plan shows in one Dagster run and record a new revision.

    One generation of a movie at a time: a concurrent one waits up to ``wait_s`` seconds, then
    raises MovieBusy. Nothing planned means no run (and no provider call); a generation that changed
    nothing records no new revision (``GenerateResult.revision`` is then the latest one).

    Before any call: PreflightFailed when a call cannot succeed, OverBudget when the estimate exceeds
    a cap's remaining budget (``budget_usd`` overrides the movie's cap; ``allow_over_budget`` builds
    what the budget allows instead). During the build every call is charged against the caps.

    An artifact whose file is missing or truncated (or, with ``verify``, whose content changed) is
    rebuilt: from the build cache when an intact copy exists, else by its provider.
    """
    started = time.monotonic()
    scratch.sweep()  # scratch folders and child processes a killed generation left behind
    require_movie(instance, movie)
    with generation_lock(instance, movie, wait_s):
        generation = Generation(instance, store, movie, render=render, verify=verify, budget_usd=budget_usd, known=True)
        plan = generation.open_and_plan()
        opened = generation.opened
        assert opened is not None
        check_plan(plan, allow_over_budget)
        if on_plan:
            on_plan(plan)
        run_id, success, report, summary = None, True, RunReport(movie=movie), None
        if plan.items:
            handoff = Handoff(opened, plan.targets)
            run_id, success, report = build_movie(instance, store, movie, plan, latency, latency_scale, on_progress,
                                                  resource_config, budget_usd, verbose, strategy, handoff)
            summary = handoff.summary
        previous = latest_revision(store, movie)
        revision = generation.finish(run_id, report, summary)
    caps = caps_for(movie, opened.request, budget_usd)
    return GenerateResult(
        movie=movie, run_id=run_id, success=success and not report.failed,
        provider_calls=report.provider_calls, built=report.built, failed=report.failed,
        timeline=store.uri(revision.timeline) if revision.timeline else None,
        movie_video=store.uri(revision.movie_video) if revision.movie_video else None, seconds=time.monotonic() - started,
        revision=revision.revision,
        skipped=report.skipped, cost_usd=float(report.cost_usd), errors=report.errors, fallbacks=report.fallbacks,
        degraded=report.degraded, retried=report.retried, budget=[b.to_json() for b in standing(make_ledger(), movie, caps)] if caps else [],
        new_revision=previous is None or previous.revision != revision.revision,
        warnings=report.checks,
    )


def build_movie(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, plan: Plan,
                latency: LatencyProfile | str | None, latency_scale: float | None,
                on_progress: Callable[[str, Any], None] | None,
                resource_config: dict[str, dict[str, Any]] | None,
                budget_usd: float | None = None, verbose: bool = False,
                strategy: Strategy | str | None = None, handoff: Handoff | None = None) -> tuple[str, bool, RunReport]:
    """One in-process run of the movie-level build step that builds every planned node (``handoff``: the
    opened movie and the plan's targets, which the step builds without opening the movie again; it puts
    the build's summary there)."""
    provider_config = {k: v for k, v in {"latency": LatencyProfile(latency).value if latency else None, "latency_scale": latency_scale}.items() if v is not None}
    resources: dict[str, Any] = {}
    for name in ("llm", "speech", "images", "video", "music"):
        config = provider_config | (resource_config or {}).get(name, {})
        if config:
            resources[name] = {"config": config}
    for name, config in (resource_config or {}).items():
        if name not in resources and config:
            resources[name] = {"config": config}
    run_config = {
        "ops": {BUILD_STEPS[Level.movie]: {"config": {"movie": movie, "nodes": {i.node: i.reason for i in plan.items},
                                                        "budget_usd": budget_usd,
                                                        "strategy": Strategy(strategy).value if strategy else "",
                                                        "handoff": hand_off(handoff) if handoff else ""}}},
        "resources": resources,
        # The run's events go to the event log (and the UI) as always. The console gets them with
        # ``verbose``; otherwise nothing: the CLI prints one line per failed partition instead of
        # Dagster's step-failure tracebacks.
        "loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}},
    }
    # One run of the movie-level step for the movie's partition; it builds every level's partitions
    # (see docs/architecture.md). The timeline is downstream of everything, so it is always planned.
    selection = sorted({dg.AssetKey(i.asset) for i in plan.items if ARTIFACTS[i.asset].level is Level.movie},
                       key=lambda k: k.to_user_string())
    if on_progress:
        add_listener(on_progress)
    try:
        # The subset names its checks: the ones the build step evaluates, not the up_to_date checks (given only
        # asset keys, Dagster would add every check of those assets, and plan and skip the up_to_date ones).
        checks = {dg.AssetCheckKey(key, ARTIFACTS[key.to_user_string()].check.name) for key in selection  # type: ignore[union-attr]
                  if ARTIFACTS[key.to_user_string()].check is not None}
        job = dg.build_reconstructable_job(*BUILD_JOB_RECONSTRUCTOR).get_subset(asset_selection=set(selection),
                                                                               asset_check_selection=checks)
        result = dg.execute_job(job, instance, run_config=run_config, raise_on_error=False,
                                tags={MOVIE_TAG: movie, KIND_TAG: IN_PROCESS, "dagster/partition": movie})
    finally:
        if on_progress:
            remove_listener(on_progress)
        if handoff is not None:
            _HANDOFFS.pop(run_config["ops"][BUILD_STEPS[Level.movie]]["config"]["handoff"], None)
    report = read_run_report(store, movie, result.run_id)
    if report is None:
        report = RunReport(movie=movie, run_id=result.run_id)
        if not result.success:
            failure = next((e for e in result.all_events if e.is_step_failure), None)
            message = failure.event_specific_data.error.message if failure else "run failed"  # type: ignore[union-attr]
            message = redact(message, TEXT_LIMIT)  # kept in the revision and shown: never a secret
            report.failed = {"movie_build": message.strip().splitlines()[-1] if message.strip() else "run failed"}
            report.errors = {"movie_build": {"message": report.failed["movie_build"], "category": "local",
                                             "suggestion": UNEXPECTED,
                                             "detail": message}}
    return result.run_id, result.success, report


def report_plan(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> Plan:
    """Plan the movie and record the plan (after an edit or a registration)."""
    return record_plan(instance, plan_movie(instance, store, movie))
