"""The next build, shown where Dagster UI users look (its own staleness shows only the first hop).

Each time a movie's plan changes (registration, edit, re-roll, pick, look, approve, generation) the
plan is recorded three ways:

* an observation of the movie's ``timeline`` partition carrying the whole plan (table and JSON);
* on every partition the plan rebuilds although it exists (an edit's consequences, a failure, damage),
  an observation whose ``next_build`` says why, with the call and its estimated cost; a partition the
  previous plan marked and this one does not gets ``next_build: up to date``. Partitions never built
  carry no mark: the UI already shows them missing;
* per artifact asset, an evaluation of its ``up_to_date`` check over every movie's latest plan: WARN
  (yellow on the asset graph) with the partitions, reasons, calls and cost while a build is due,
  passed once nothing of that asset is planned.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import dagster as dg
from dagster import DagsterEventType

from movie_assets.domain.blueprint import ARTIFACTS, NodeKey
from movie_assets.domain.plan import Plan, PlanItem, Reason
from movie_assets.orchestration.events import CheckTarget, check_target
from partitions import MOVIE_DIM, SEGMENT_DIM, node_partition

UP_TO_DATE = "up_to_date"  # every artifact asset's check: does the next build rebuild any of its partitions?
MARK = "next_build"  # the metadata key of a partition's mark
CLEAR = "up to date"  # the mark of a partition no longer in the plan
PLAN_ASSET = dg.AssetKey("timeline")  # the asset whose movie partition carries the whole plan
_CAUSE_LIMIT = 160
_TABLE_ROWS = 200

warnings.filterwarnings("ignore", category=dg.PreviewWarning, module=__name__)

CHECK_KEYS = [dg.AssetCheckKey(dg.AssetKey(name), UP_TO_DATE) for name in ARTIFACTS]


def _cell(text: str) -> str:
    return text[:_CAUSE_LIMIT].replace("|", "/").replace("\n", " ")


def plan_summary(plan: Plan) -> tuple[str, dict[str, Any]]:
    """What the next generate will rebuild, for the Dagster UI: a description and metadata listing
    every partition the plan rebuilds, why, and what it costs; ``planned`` holds the items as JSON
    (what the ``up_to_date`` checks of every asset are evaluated from)."""
    rows = [f"| `{i.node}` | {i.reason} | {'call' if i.calls_provider else '-'} | ${i.cost_usd:.4f} | {_cell(i.cause)} |"
            for i in plan.items[:_TABLE_ROWS]]
    more = f"\n\n…and {len(plan.items) - _TABLE_ROWS} more" if len(plan.items) > _TABLE_ROWS else ""
    table = "| partition | reason | call | est. cost | why |\n|---|---|---|---|---|\n" + "\n".join(rows) + more if rows else "up to date"
    calls = sum(plan.provider_calls.values())
    description = (f"{len(plan.items)} partition(s) to rebuild, {calls} provider call(s), estimated "
                   f"${plan.estimated_cost_usd:.4f}: run `moviegen generate {plan.movie}` or launch generate_movie "
                   f"for {plan.movie}" if plan.items else "up to date: a generate would build nothing")
    planned = [[i.asset, i.partition, i.reason, i.cause[:_CAUSE_LIMIT], i.calls_provider, i.cost_usd, i.node] for i in plan.items]
    return description, {
        "plan": description, "to_rebuild": dg.MetadataValue.md(table), "partitions_to_rebuild": len(plan.items),
        "provider_calls": dg.MetadataValue.json(plan.provider_calls), "estimated_cost_usd": float(plan.estimated_cost_usd),
        "problems": dg.MetadataValue.json(plan.problems), "budget": dg.MetadataValue.json(plan.budget),
        "planned": dg.MetadataValue.json(planned),
    }


def _marked(movie: str, items: Iterable[PlanItem]) -> dict[tuple[str, str], list[PlanItem]]:
    """The plan's partitions that exist and will be rebuilt (never-built ones show as missing already), by
    Dagster partition (a segment's images share one)."""
    out: dict[tuple[str, str], list[PlanItem]] = {}
    for i in items:
        if i.reason != Reason.missing:
            out.setdefault((i.asset, str(node_partition(movie, NodeKey.parse(i.node)))), []).append(i)
    return out


# Observations have no undeprecated reader by storage id in Dagster 1.13 other than this one.
warnings.filterwarnings("ignore", message=".*fetch_observations.*", category=DeprecationWarning)


def latest_plans(instance: dg.DagsterInstance, movies: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each movie's latest recorded plan (the metadata of its timeline partition's latest observation)."""
    ids = instance.get_latest_storage_id_by_partition(PLAN_ASSET, DagsterEventType.ASSET_OBSERVATION, set(movies))
    if not ids:
        return {}
    records = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=PLAN_ASSET, storage_ids=list(ids.values())),
                                          limit=len(ids)).records
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        observation = r.event_log_entry.asset_observation
        if r.partition_key is not None and observation is not None:
            out[r.partition_key] = {k: getattr(v, "value", v) for k, v in observation.metadata.items()}
    return out


def _planned_items(metadata: dict[str, Any]) -> list[list[Any]]:
    planned = metadata.get("planned")
    return planned if isinstance(planned, list) else []


def record_plan(instance: dg.DagsterInstance, plan: Plan, *, evaluate: bool = True) -> Plan:
    """Record a movie's plan on the UI: the timeline observation, the partitions' marks and (``evaluate``)
    the ``up_to_date`` evaluations of every asset over every movie's latest plan."""
    previous = latest_plans(instance, [plan.movie]).get(plan.movie, {})
    before: dict[tuple[str, str], str] = {}
    for asset, _, reason, *_, node in (item + [None] * (7 - len(item)) for item in _planned_items(previous)):
        if reason != Reason.missing and node:
            key = (asset, str(node_partition(plan.movie, NodeKey.parse(node))))
            before[key] = ", ".join(filter(None, [before.get(key), reason]))
    now = _marked(plan.movie, plan.items)
    _, metadata = plan_summary(plan)
    for (asset, partition), items in now.items():
        mark = _mark(plan.movie, items)
        if asset != PLAN_ASSET.path[-1] and (before.get((asset, partition)) != mark[MARK] or "planned" not in previous):
            _observe(instance, asset, partition, plan.movie, mark)
    for asset, partition in before.keys() - now.keys():
        if asset != PLAN_ASSET.path[-1]:
            _observe(instance, asset, partition, plan.movie, {MARK: CLEAR})
    # The timeline partition's own mark is on the plan's observation (its latest).
    timeline = now.get((PLAN_ASSET.path[-1], plan.movie))
    metadata |= _mark(plan.movie, timeline) if timeline is not None else {MARK: CLEAR}
    instance.report_runless_asset_event(dg.AssetObservation(PLAN_ASSET, partition=plan.movie, metadata=metadata))
    if evaluate:
        for evaluation in evaluations(instance):
            instance.report_runless_asset_event(evaluation)
    return plan


def _mark(movie: str, items: list[PlanItem]) -> dict[str, Any]:
    """A partition's mark: why the next build rebuilds it (a segment's images: each image's reason)."""
    return {MARK: ", ".join(i.reason for i in items), "why": "; ".join(f"{i.node}: {i.cause}" for i in items)[:1000],
            "provider_calls": sum(1 for i in items if i.calls_provider),
            "estimated_cost_usd": round(sum(float(i.cost_usd) for i in items), 6),
            "to_build": f"run `moviegen generate {movie}` or launch generate_movie for {movie}"}


def _observe(instance: dg.DagsterInstance, asset: str, partition: str, movie: str, metadata: dict[str, Any]) -> None:
    key = dg.MultiPartitionKey(dict(zip((MOVIE_DIM, SEGMENT_DIM), partition.split("|"), strict=True))) if "|" in partition else partition
    instance.report_runless_asset_event(dg.AssetObservation(dg.AssetKey(asset), partition=key, metadata={"movie": movie, **metadata}))


def evaluations(instance: dg.DagsterInstance, movies: Iterable[str] | None = None,
                only: set[dg.AssetCheckKey] | None = None) -> Iterator[dg.AssetCheckEvaluation]:
    """Every artifact asset's ``up_to_date`` evaluation over the latest plans of ``movies`` (default: all)."""
    if movies is None:
        movies = instance.get_dynamic_partitions("movies")
    plans = latest_plans(instance, movies)
    by_asset: dict[str, list[tuple[str, list[Any]]]] = {name: [] for name in ARTIFACTS}
    for movie in sorted(plans):
        for item in _planned_items(plans[movie]):
            if item and item[0] in by_asset:
                by_asset[item[0]].append((movie, item))
    for name, items in by_asset.items():
        key = dg.AssetCheckKey(dg.AssetKey(name), UP_TO_DATE)
        if only is not None and key not in only:
            continue
        yield _evaluation(key, items, _latest_materialization(instance, key.asset_key))


def _latest_materialization(instance: dg.DagsterInstance, asset: dg.AssetKey) -> CheckTarget | None:
    """What an evaluation targets: the asset's latest materialization (the UI shows an evaluation with the
    materialization it targets; by time alone it would compare whole seconds with a fraction)."""
    records = instance.fetch_materializations(asset, limit=1).records
    if not records:
        return None
    r = records[0]
    return check_target(r.storage_id, r.run_id, r.timestamp)


def _evaluation(key: dg.AssetCheckKey, items: list[tuple[str, list[Any]]],
                target: CheckTarget | None) -> dg.AssetCheckEvaluation:
    per_movie: dict[str, int] = {}
    for movie, _ in items:
        per_movie[movie] = per_movie.get(movie, 0) + 1
    calls = sum(1 for _, item in items if item[4])
    cost = round(sum(float(item[5]) for _, item in items), 6)
    rows = [f"| {movie} | `{item[1]}` | {item[2]} | {'call' if item[4] else '-'} | ${float(item[5]):.4f} | {_cell(str(item[3]))} |"
            for movie, item in items[:_TABLE_ROWS]]
    if items:
        movies = ", ".join(f"{m} ({n})" for m, n in per_movie.items())
        description = (f"{len(items)} partition(s) to rebuild in the next build of {movies}; {calls} provider call(s), "
                       f"estimated ${cost:.4f}. Build: `moviegen generate MOVIE` or launch generate_movie for the movie")
    else:
        description = "up to date: the next build rebuilds none of its partitions"
    table = "| movie | partition | reason | call | est. cost | why |\n|---|---|---|---|---|---|\n" + "\n".join(rows)
    return dg.AssetCheckEvaluation(
        asset_key=key.asset_key, check_name=UP_TO_DATE, passed=not items, severity=dg.AssetCheckSeverity.WARN,
        description=description, target_materialization_data=target,
        metadata={"partitions_to_rebuild": len(items), "movies": dg.MetadataValue.json(per_movie),
                  "provider_calls": calls, "estimated_cost_usd": cost,
                  "to_rebuild": dg.MetadataValue.md(table if items else "up to date")},
    )
