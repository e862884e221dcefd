"""Metrics of a movie's builds, from its run reports (and spending, from the budget ledger): for a user
(``moviegen status --json``) and for Prometheus (the OpenMetrics text format, ``moviegen metrics``).

Every build run leaves a report (``movies/<id>/runs/<run id>.json``, :mod:`movie_assets.movie_files.reports`);
:func:`movie_metrics` adds up all of a movie's reports:

* per route (producer, provider, model), per producer and per provider: provider ``calls`` made,
  ``cached`` (build cache hits: the artifact came back with no call), ``fallbacks`` (offline
  placeholders), ``retries``, ``cost_usd`` and the ``latency`` of the calls (count, sum, max, p50, p95
  by nearest rank). A cache hit is not a call: its latency, retries and cost do not count;
* failures per error category (per movie, and per producer where the failed node has one: a failed
  node records no call, so its provider is not known);
* the runs' totals: reports, built, failed, skipped, seconds, cost, when the last build ended.

A report from before the per-call entries (no ``calls``) still counts its ``provider_calls`` per
producer and its ``cost_usd``, under provider and model ``unknown``.

Reading is bounded: a report that is not valid JSON, has the wrong shape or is larger than
:data:`MAX_REPORT_BYTES` is skipped and counted in ``unreadable_reports``; it never fails the reading.

:func:`openmetrics` renders the metrics of some movies, and the ledger's spending, in the OpenMetrics
text format with ``prometheus_client`` (a custom collector in a registry of its own; nothing global).
The values are totals over the reports on storage, so counters only grow while reports are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST
from prometheus_client.openmetrics.exposition import generate_latest as _generate_openmetrics

from movie_assets.domain.blueprint import ARTIFACTS
from movie_assets.movie_files.layout import runs_folder
from movie_assets.movie_files.reports import RunReport
from resources.runtime.budget import Ledger, day_start
from resources.storage import ArtifactStore

MAX_REPORT_BYTES = 16 * 1024 * 1024  # a report larger than this is not read (a 30 x 5 movie's is ~100 kB)
UNKNOWN = "unknown"  # provider or model of a report without per-call entries; category of a failure without one
QUANTILES = (0.5, 0.95)
OPENMETRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST  # the Content-Type of openmetrics()' text, for a /metrics endpoint


@dataclass
class Latency:
    """Latencies of calls in seconds: count, sum, max and quantiles (nearest rank over every sample)."""

    samples: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def sum_s(self) -> float:
        return math.fsum(self.samples)

    @property
    def max_s(self) -> float | None:
        return max(self.samples) if self.samples else None

    def quantile(self, q: float) -> float | None:
        """The smallest sample that at least ``q`` of the samples are at or below (None without samples)."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "sum_s": round(self.sum_s, 6), "max_s": self.max_s,
                "p50_s": self.quantile(0.5), "p95_s": self.quantile(0.95)}


@dataclass
class CallStats:
    """What calls of one route, producer, provider or movie did."""

    calls: int = 0  # provider calls made (cache hits are not calls)
    failed_calls: int = 0  # calls that reached the provider and failed for good (their retries count too)
    cached: int = 0  # nodes the build cache gave back
    fallbacks: int = 0  # nodes whose artifact is an offline placeholder
    retries: int = 0
    cost_usd: float = 0.0
    latency: Latency = field(default_factory=Latency)
    failures: dict[str, int] = field(default_factory=dict)  # error category -> failed nodes

    def add(self, other: CallStats) -> None:
        self.calls += other.calls
        self.failed_calls += other.failed_calls
        self.cached += other.cached
        self.fallbacks += other.fallbacks
        self.retries += other.retries
        self.cost_usd += other.cost_usd
        self.latency.samples.extend(other.latency.samples)
        for category, n in other.failures.items():
            self.failures[category] = self.failures.get(category, 0) + n

    def to_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "failed_calls": self.failed_calls, "cached": self.cached, "fallbacks": self.fallbacks, "retries": self.retries,
                "cost_usd": round(self.cost_usd, 6), "latency": self.latency.to_json(),
                "failures": dict(sorted(self.failures.items()))}


Route = tuple[str, str, str]  # (producer, provider, model)


@dataclass
class StrategyStats:
    """The build runs of one strategy (sequential, parallel, adaptive; ``unrecorded`` before strategies)."""

    runs: int = 0
    seconds: float = 0.0  # wall time of the runs
    critical_path_s: float = 0.0  # their critical paths at the brief's median latencies
    local_slots_mean: float = 0.0  # time-weighted mean of local slots in use, summed over runs (divided when shown)
    local_capacity_min: int | None = None
    local_capacity_max: int | None = None

    def add(self, other: StrategyStats) -> None:
        self.runs += other.runs
        self.seconds += other.seconds
        self.critical_path_s += other.critical_path_s
        self.local_slots_mean += other.local_slots_mean
        for bound, pick in (("local_capacity_min", min), ("local_capacity_max", max)):
            mine, theirs = getattr(self, bound), getattr(other, bound)
            setattr(self, bound, theirs if mine is None else mine if theirs is None else pick(mine, theirs))

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "seconds": round(self.seconds, 3), "critical_path_s": round(self.critical_path_s, 3),
                # wall time against the critical path: meaningful with real providers or simulated latency
                "ratio": round(self.seconds / self.critical_path_s, 3) if self.critical_path_s else None,
                "local_slots_in_use_mean": round(self.local_slots_mean / self.runs, 3) if self.runs else None,
                "local_slots_min": self.local_capacity_min, "local_slots_max": self.local_capacity_max}


@dataclass
class MovieMetrics:
    """All of a movie's build runs added up (from its run reports)."""

    movie: str
    runs: int = 0  # reports read
    unreadable_reports: int = 0  # reports skipped: not valid JSON, wrong shape, or too large
    built: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    cost_usd: float = 0.0  # what the runs' reports say they spent
    last_build_time: float | None = None  # unix time the latest build ended (None: no report says)
    routes: dict[Route, CallStats] = field(default_factory=dict)
    # Failures per producer (of the failed node's asset) and error category; derived nodes have no producer.
    producer_failures: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # error category -> failed nodes, every node
    strategies: dict[str, StrategyStats] = field(default_factory=dict)  # strategy -> its runs

    def route(self, producer: str, provider: str, model: str) -> CallStats:
        return self.routes.setdefault((producer, provider, model), CallStats())

    @property
    def by_producer(self) -> dict[str, CallStats]:
        out = self._grouped(lambda r: r[0])
        for producer, categories in self.producer_failures.items():
            out.setdefault(producer, CallStats()).add(CallStats(failures=categories))
        return dict(sorted(out.items()))

    @property
    def by_provider(self) -> dict[str, CallStats]:
        return dict(sorted(self._grouped(lambda r: r[1]).items()))

    @property
    def by_producer_provider(self) -> dict[tuple[str, str], CallStats]:
        return dict(sorted(self._grouped(lambda r: (r[0], r[1])).items()))

    @property
    def totals(self) -> CallStats:
        total = CallStats()
        for stats in self.routes.values():
            total.add(stats)
        total.failures = dict(self.failures)
        return total

    def _grouped(self, key: Any) -> dict[Any, CallStats]:
        out: dict[Any, CallStats] = {}
        for route, stats in self.routes.items():
            out.setdefault(key(route), CallStats()).add(stats)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "movie": self.movie, "runs": self.runs, "unreadable_reports": self.unreadable_reports,
            "built": self.built, "failed": self.failed, "skipped": self.skipped, "seconds": round(self.seconds, 3),
            "cost_usd": round(self.cost_usd, 6), "last_build_time": self.last_build_time,
            "totals": self.totals.to_json(),
            "producers": {k: v.to_json() for k, v in self.by_producer.items()},
            "providers": {k: v.to_json() for k, v in self.by_provider.items()},
            "routes": [{"producer": p, "provider": pr, "model": m, **self.routes[(p, pr, m)].to_json()}
                       for p, pr, m in sorted(self.routes)],
            "strategies": {k: v.to_json() for k, v in sorted(self.strategies.items())},
        }


# --- reading the reports -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Call:
    node: str
    producer: str
    provider: str
    model: str
    latency_s: float | None
    retries: int
    cost_usd: float
    cached: bool
    fallback: bool
    failed: bool = False


def _producer_of(node: str) -> str | None:
    """The producer of a node (``segment_image[03_2]`` -> its asset's producer; None when derived)."""
    decl = ARTIFACTS.get(node.split("[", 1)[0])
    return decl.producer if decl is not None else None


def _producer_label(node: str) -> str:
    """What a call entry without a producer is counted under: the node's producer, else its asset (a
    derived node the build cache gave back, such as a render), else ``unknown``."""
    return _producer_of(node) or node.split("[", 1)[0] or UNKNOWN


def _text(entry: dict[str, Any], key: str, default: str) -> str:
    value = entry.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected text, got {value!r}")
    return value


def _number(entry: dict[str, Any], key: str, default: float | None) -> float | None:
    value = entry.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{key}: expected a finite number of 0 or more, got {value!r}")
    return float(value)


def _flag(entry: dict[str, Any], key: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    return value


def _parse_call(entry: Any) -> _Call:
    if not isinstance(entry, dict):
        raise ValueError(f"a call entry is not an object: {entry!r}")
    node = _text(entry, "node", "")
    retries = _number(entry, "retries", 0.0)
    assert retries is not None
    if retries != int(retries):
        raise ValueError(f"retries: expected a whole number, got {retries!r}")
    cost = _number(entry, "cost_usd", 0.0)
    assert cost is not None
    return _Call(node=node, producer=_text(entry, "producer", _producer_label(node)),
                 provider=_text(entry, "provider", UNKNOWN), model=_text(entry, "model", UNKNOWN),
                 latency_s=_number(entry, "latency_s", None), retries=int(retries), cost_usd=cost,
                 cached=_flag(entry, "cached"), fallback=_flag(entry, "fallback"), failed=_flag(entry, "failed"))


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what}: expected a list of text")
    return value


def _parse_report(data: bytes) -> tuple[RunReport, list[_Call]]:
    """A report and its calls, checked; ValueError when it is not a report."""
    raw = json.loads(data)
    if not isinstance(raw, dict):
        raise ValueError("a run report is not an object")
    report = RunReport.from_json(raw)
    for what in ("built", "skipped", "fallbacks"):
        _strings(getattr(report, what), what)
    for what in ("failed", "errors", "provider_calls"):
        if not isinstance(getattr(report, what), dict):
            raise ValueError(f"{what}: expected an object")
    if not all(isinstance(v, dict) for v in report.errors.values()):
        raise ValueError("errors: expected an object per node")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in report.provider_calls.values()):
        raise ValueError("provider_calls: expected a count per producer")
    for what in ("cost_usd", "seconds", "time"):
        _number({what: getattr(report, what)}, what, 0.0)
    if not isinstance(report.calls, list):
        raise ValueError("calls: expected a list")
    if not isinstance(report.strategy, str) or not isinstance(report.slots, dict) or \
            not isinstance(report.slots.get("local", {}), dict):
        raise ValueError("strategy, slots: expected text and an object")
    _number({"critical_path_s": report.critical_path_s}, "critical_path_s", 0.0)
    _number(report.slots.get("local", {}), "mean_in_use", 0.0)
    return report, [_parse_call(c) for c in report.calls]


def _add_report(m: MovieMetrics, report: RunReport, calls: list[_Call]) -> None:
    m.runs += 1
    m.built += len(report.built)
    m.failed += len(report.failed)
    m.skipped += len(report.skipped)
    m.seconds += float(report.seconds or 0.0)
    m.cost_usd += float(report.cost_usd or 0.0)
    if report.time:
        m.last_build_time = max(m.last_build_time or 0.0, float(report.time))
    m.strategies.setdefault(str(report.strategy or "unrecorded"), StrategyStats()).add(_strategy_stats(report))
    fallback_nodes = set()
    for call in calls:
        stats = m.route(call.producer, call.provider, call.model)
        if call.fallback:
            stats.fallbacks += 1
            fallback_nodes.add(call.node)
        if call.cached:
            stats.cached += 1
            continue
        if call.failed:
            stats.failed_calls += 1
        else:
            stats.calls += 1
        stats.retries += call.retries
        stats.cost_usd += call.cost_usd
        if call.latency_s is not None:
            stats.latency.add(call.latency_s)
    for node in report.fallbacks:  # a placeholder the calls do not list
        if node not in fallback_nodes:
            m.route(_producer_label(node), UNKNOWN, UNKNOWN).fallbacks += 1
    if not calls:  # a report from before the per-call entries: calls per producer, one cost
        for producer, n in report.provider_calls.items():
            if n:
                m.route(producer, UNKNOWN, UNKNOWN).calls += n
        if report.cost_usd:
            m.route(UNKNOWN, UNKNOWN, UNKNOWN).cost_usd += float(report.cost_usd)
    for node in {*report.failed, *report.errors}:
        category = str(report.errors.get(node, {}).get("category") or UNKNOWN)
        m.failures[category] = m.failures.get(category, 0) + 1
        producer = _producer_of(node)
        if producer is not None:
            per = m.producer_failures.setdefault(producer, {})
            per[category] = per.get(category, 0) + 1


def _strategy_stats(report: RunReport) -> StrategyStats:
    local = report.slots.get("local", {})  # checked by _parse_report

    def whole(key: str) -> int | None:
        value = local.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return StrategyStats(1, float(report.seconds or 0.0), float(report.critical_path_s or 0.0),
                         float(local.get("mean_in_use") or 0.0), whole("capacity_min"), whole("capacity_max"))


def strategy_totals(all_metrics: Iterable[MovieMetrics]) -> dict[str, StrategyStats]:
    """Per strategy, the runs of every movie added up."""
    out: dict[str, StrategyStats] = {}
    for m in all_metrics:
        for name, stats in m.strategies.items():
            out.setdefault(name, StrategyStats()).add(stats)
    return dict(sorted(out.items()))


def movie_metrics(store: ArtifactStore, movie: str) -> MovieMetrics:
    """All of a movie's run reports added up. A report that cannot be read as one (not valid JSON, wrong
    shape, larger than :data:`MAX_REPORT_BYTES`) is skipped and counted in ``unreadable_reports``."""
    m = MovieMetrics(movie)
    folder = runs_folder(movie)
    for name in store.list(folder):
        if not name.endswith(".json"):
            continue
        try:
            data = store.read(f"{folder}/{name}")
        except FileNotFoundError:  # removed since it was listed
            continue
        try:
            if len(data) > MAX_REPORT_BYTES:
                raise ValueError(f"larger than {MAX_REPORT_BYTES} bytes")
            report, calls = _parse_report(data)
        except (ValueError, TypeError, AttributeError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            m.unreadable_reports += 1
            continue
        _add_report(m, report, calls)
    return m


# --- OpenMetrics --------------------------------------------------------------------------------------

def _counter(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]], unit: str = "") -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels, unit=unit)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _gauge(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]], unit: str = "") -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels, unit=unit)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _latency_summary(all_metrics: list[MovieMetrics]) -> Metric:
    labels = ["movie", "producer", "provider"]
    family = SummaryMetricFamily("moviegen_call_latency", "Latency of provider calls (cache hits excluded); "
                                 "quantiles by nearest rank over every call in the movie's run reports",
                                 labels=labels, unit="seconds")
    for m in all_metrics:
        for (producer, provider), stats in m.by_producer_provider.items():
            lat = stats.latency
            if not lat.count:
                continue
            values = dict(zip(labels, [m.movie, producer, provider], strict=True))
            for q in QUANTILES:
                family.add_sample(family.name, {**values, "quantile": str(q)}, lat.quantile(q))
            family.add_metric(list(values.values()), lat.count, lat.sum_s)
    return family


class _Collector:
    """The families of :func:`openmetrics`, computed once (a registry of its own collects once)."""

    def __init__(self, all_metrics: list[MovieMetrics], ledger: Ledger | None):
        self.all_metrics, self.ledger = all_metrics, ledger

    def collect(self) -> Iterator[Metric]:
        ms = self.all_metrics
        yield _counter("moviegen_runs", "Build runs that left a readable report", ["movie"],
                       (([m.movie], m.runs) for m in ms))
        yield _gauge("moviegen_unreadable_reports", "Run reports skipped: not valid JSON, wrong shape or too large",
                     ["movie"], (([m.movie], m.unreadable_reports) for m in ms))
        yield _counter("moviegen_nodes_built", "Nodes (artifact partitions) built", ["movie"],
                       (([m.movie], m.built) for m in ms))
        yield _counter("moviegen_nodes_skipped", "Nodes skipped: upstream rebuilt with identical content", ["movie"],
                       (([m.movie], m.skipped) for m in ms))
        yield _counter("moviegen_build", "Time spent in build runs", ["movie"],
                       (([m.movie], m.seconds) for m in ms), unit="seconds")
        yield _gauge("moviegen_last_build_timestamp", "When the movie's latest build ended (unix time)", ["movie"],
                     (([m.movie], m.last_build_time) for m in ms if m.last_build_time is not None), unit="seconds")
        yield _counter("moviegen_provider_calls", "Provider calls made (cache hits are not calls)",
                       ["movie", "producer", "provider", "model"],
                       (([m.movie, *route], s.calls) for m in ms for route, s in sorted(m.routes.items()) if s.calls))
        yield _counter("moviegen_cache_hits", "Nodes the build cache gave back without a provider call",
                       ["movie", "producer"],
                       (([m.movie, p], s.cached) for m in ms for p, s in m.by_producer.items() if s.cached))
        yield _counter("moviegen_fallbacks", "Nodes whose artifact is an offline placeholder", ["movie", "producer"],
                       (([m.movie, p], s.fallbacks) for m in ms for p, s in m.by_producer.items() if s.fallbacks))
        yield _counter("moviegen_failed_calls", "Provider calls that failed for good (after their retries)",
                       ["movie", "producer", "provider"],
                       (([m.movie, *k], s.failed_calls) for m in ms for k, s in m.by_producer_provider.items() if s.failed_calls))
        yield _counter("moviegen_call_retries", "Retries of provider calls, of those that failed for good too",
                       ["movie", "producer", "provider"],
                       (([m.movie, *k], s.retries) for m in ms for k, s in m.by_producer_provider.items()
                        if s.calls or s.failed_calls))
        yield _counter("moviegen_provider_cost_usd", "What provider calls cost (cache hits cost nothing)",
                       ["movie", "provider"],
                       (([m.movie, p], s.cost_usd) for m in ms for p, s in m.by_provider.items() if s.calls or s.cost_usd),
                       unit="usd")
        yield _latency_summary(ms)
        yield _gauge("moviegen_call_latency_max", "The longest provider call", ["movie", "producer", "provider"],
                     (([m.movie, *k], s.latency.max_s) for m in ms for k, s in m.by_producer_provider.items()
                      if s.latency.count), unit="seconds")
        totals = strategy_totals(ms)
        yield _counter("moviegen_strategy_runs", "Build runs per strategy", ["strategy"],
                       (([k], s.runs) for k, s in totals.items()))
        yield _counter("moviegen_strategy_build", "Wall time of build runs per strategy", ["strategy"],
                       (([k], s.seconds) for k, s in totals.items()), unit="seconds")
        yield _counter("moviegen_strategy_critical_path", "Critical paths (median latencies) of build runs per strategy",
                       ["strategy"], (([k], s.critical_path_s) for k, s in totals.items()), unit="seconds")
        yield _counter("moviegen_failures", "Failed nodes per error category", ["movie", "category"],
                       (([m.movie, c], n) for m in ms for c, n in sorted(m.failures.items())))
        if self.ledger is not None:
            yield from self._budget(self.ledger, [m.movie for m in ms])

    @staticmethod
    def _budget(ledger: Ledger, movies: list[str]) -> Iterator[Metric]:
        yield _gauge("moviegen_budget_spent_usd", "Spending in the budget ledger (settled, plus open reservations at "
                     "their estimate): this UTC day, or all time", ["scope"],
                     [(["day"], ledger.spent(since=day_start())), (["all"], ledger.spent())], unit="usd")
        per_movie = ledger.per_movie()
        yield _gauge("moviegen_budget_movie_spent_usd", "A movie's spending in the budget ledger, all time", ["movie"],
                     (([movie], per_movie.get(movie, 0.0)) for movie in movies), unit="usd")
        open_ = ledger.unsettled()
        yield _gauge("moviegen_budget_unsettled_usd", "Open reservations at their estimate: calls in flight, or of "
                     "processes that died before settling", [], [([], math.fsum(u.reservation.estimate_usd for u in open_))],
                     unit="usd")
        yield _gauge("moviegen_budget_unsettled_reservations", "Open reservations in the budget ledger", [],
                     [([], len(open_))])


def openmetrics(store: ArtifactStore, movies: list[str], ledger: Ledger | None) -> str:
    """The metrics of these movies (and the ledger's spending, when given) in the OpenMetrics text format,
    ending with ``# EOF``. Serve it with :data:`OPENMETRICS_CONTENT_TYPE`."""
    all_metrics = [movie_metrics(store, movie) for movie in dict.fromkeys(movies)]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(all_metrics, ledger))
    return _generate_openmetrics(registry).decode("utf-8")
