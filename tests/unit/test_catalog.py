"""The catalog kept between reads (orchestration/event_log.py ``_Kept``): a repeated read of an unchanged movie
asks the event log one question, and whatever a run records or how it ends afterwards is in the next read and
the next plan (a kept answer that misses it is stale: these tests fail then). A real SQLite instance; the
events are the ones a build run records (planned, materialized, the run failing)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import sqlalchemy

from movie_assets.domain.blueprint import NodeKey, expand
from movie_assets.domain.records import MovieState
from movie_assets.interfaces import api
from movie_assets.orchestration.event_log import load_state
from movie_assets.orchestration.events import record_planned
from partitions import node_partition
from resources.storage import ArtifactStore
from tests.conftest import small_request


@contextmanager
def counted() -> Iterator[list[str]]:
    """Every SQL statement any engine executes meanwhile (Dagster's SQLite storage opens one per query)."""
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", seen)


def start_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    return instance.add_run(dg.DagsterRun(job_name="build", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED))


def plan_partition(instance: dg.DagsterInstance, run: dg.DagsterRun, movie: str, key: NodeKey) -> None:
    """What a build step records before building a partition (orchestration/events.py ``report_planned``)."""
    record_planned(instance, run, "build", dg.AssetKey(key.asset), str(node_partition(movie, key)))


def materialize(instance: dg.DagsterInstance, movie: str, key: NodeKey, version: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=key.asset, partition=str(node_partition(movie, key)), tags={"dagster/data_version": version},
        metadata={"path": f"movies/{movie}/{key.asset}/_/{version}.json"}))


def state(instance: dg.DagsterInstance, movie: str) -> MovieState:
    return load_state(instance, movie, expand(small_request()).nodes)


def reason(plan: api.Plan, key: NodeKey) -> str | None:
    return next((i.reason for i in plan.items if i.node == str(key)), None)


def test_a_repeated_read_asks_one_question(instance: dg.DagsterInstance) -> None:
    movie, order = "quiet", expand(small_request()).order
    materialize(instance, movie, order[0], "v1")
    for key in {k.asset: k for k in reversed(order)}.values():  # every asset has records: each is read
        materialize(instance, "another", key, "v1")
    with counted() as cold:
        before = state(instance, movie)
    with counted() as warm:
        again = state(instance, movie)
    with counted() as one_question:
        instance.get_asset_records([dg.AssetKey(a) for a in {k.asset for k in expand(small_request()).nodes}])
    assert again.records == before.records and again.failures == before.failures
    assert len(warm) == len(one_question), warm  # the assets' records in one call, nothing per asset
    assert len(cold) > 4 * len(one_question), cold


def test_what_a_run_records_after_a_read_is_in_the_next_read(instance: dg.DagsterInstance) -> None:
    movie, other = "kept", "other"
    first, second = expand(small_request()).order[:2]
    assert state(instance, movie).records == {}
    materialize(instance, movie, first, "v1")
    assert state(instance, movie).records[first].version == "v1"
    assert state(instance, movie).records[first].version == "v1"  # kept
    materialize(instance, movie, first, "v2")
    assert state(instance, movie).records[first].version == "v2"
    # Another movie's record of the same asset changes the asset's record: read again, this movie's stays.
    materialize(instance, other, first, "w1")
    assert state(instance, movie).records[first].version == "v2"
    assert state(instance, other).records[first].version == "w1"

    # A run plans the second node: nothing failed while it runs, whatever was read before.
    run = start_run(instance)
    plan_partition(instance, run, movie, second)
    assert second not in state(instance, movie).failures
    assert second not in state(instance, movie).failures
    # It ends in failure: no asset event is recorded, yet the next read shows the node failed.
    instance.report_run_failed(run)
    failed = state(instance, movie).failures[second]
    assert failed.run_id == run.run_id and run.run_id in failed.message
    assert second in state(instance, movie).failures  # kept now: the run has ended
    # A later run builds it: failed no more.
    rebuild = start_run(instance)
    plan_partition(instance, rebuild, movie, second)
    assert second not in state(instance, movie).failures
    materialize(instance, movie, second, "v1")
    after = state(instance, movie)
    assert second not in after.failures and after.records[second].version == "v1"


def test_the_plan_follows_a_run_that_fails_after_it(instance: dg.DagsterInstance, store: ArtifactStore) -> None:
    movie = api.new_movie(instance, store, small_request(), "planned")
    first = expand(small_request()).order[0]
    assert reason(api.plan(instance, store, movie), first) == "missing"
    run = start_run(instance)
    plan_partition(instance, run, movie, first)
    assert reason(api.plan(instance, store, movie), first) == "missing"  # the run is still building it
    instance.report_run_failed(run)
    assert reason(api.plan(instance, store, movie), first) == "failed"
    materialize(instance, movie, first, "v1")
    assert reason(api.plan(instance, store, movie), first) != "failed"  # recorded after the failure


def test_what_a_running_run_plans_after_a_read_is_in_the_next_read(instance: dg.DagsterInstance) -> None:
    movie, order = "running", expand(small_request()).order
    one, two = next((a, b) for a in order for b in order if a.asset == b.asset and a.segment is not None
                    and b.segment is not None and a.segment < b.segment)
    run = start_run(instance)
    plan_partition(instance, run, movie, one)  # the asset's last run is this one from now on
    assert state(instance, movie).failures == {}
    plan_partition(instance, run, movie, two)  # the same last run: the asset's record is unchanged
    assert state(instance, movie).failures == {}
    instance.report_run_failed(run)
    assert set(state(instance, movie).failures) == {one, two}
