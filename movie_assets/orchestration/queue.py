"""Generations through Dagster's run queue: a run of the ``generate_movie`` job for the movie's partition,
submitted to the instance's run coordinator (QueuedRunCoordinator), which the daemon dequeues and its run
launcher starts -- the same generation sequence as ``moviegen generate`` (steps.generation_events), run
wherever the deployment runs runs. And what a run did, read back from Dagster's event log as progress.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any

import dagster as dg

from movie_assets.domain.blueprint import Level, NodeKey
from movie_assets.domain.errors import MovieBusy
from movie_assets.domain.request import Strategy
from movie_assets.orchestration import events
from movie_assets.orchestration.jobs import GENERATE_JOB
from movie_assets.orchestration.locks import KIND_TAG, MOVIE_TAG
from movie_assets.orchestration.specs import BUILD_STEPS

# A function of the code location that returns the generate_movie job (as BUILD_JOB_RECONSTRUCTOR).
GENERATE_JOB_RECONSTRUCTOR = ("movie_assets.definitions", "generate_job")
LOCATION_NAME = "moviegen"  # workspace.yaml's code location, where the daemon launches the run
QUEUED_KIND = "queued"  # KIND_TAG of a generation submitted to the queue (the service)

ACTIVE = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@functools.cache
def _generate_job() -> tuple[Any, dg.JobDefinition]:
    recon = dg.build_reconstructable_job(*GENERATE_JOB_RECONSTRUCTOR)
    return recon, recon.get_definition()


def active_runs(instance: dg.DagsterInstance, movie: str) -> list[str]:
    """Runs of the movie queued or running (any kind: queued, in-process, sensor, UI), oldest first."""
    records = instance.get_run_records(dg.RunsFilter(tags={MOVIE_TAG: movie}, statuses=ACTIVE))
    return [r.dagster_run.run_id for r in sorted(records, key=lambda r: r.create_timestamp)]


def submit_generation(instance: dg.DagsterInstance, movie: str, *, budget_usd: float | None = None,
                      allow_over_budget: bool = False, strategy: Strategy | str | None = None,
                      tags: dict[str, str] | None = None) -> str:
    """Queue a generation of ``movie`` and return its run id; MovieBusy (with the run's id) when one is
    queued or running already. The run plans when it starts, so it builds what the movie needs then."""
    busy = active_runs(instance, movie)
    if busy:
        raise MovieBusy(f"movie {movie!r} is being generated already (run {busy[0]}); follow that run, or generate "
                        "again when it has finished")
    recon, job = _generate_job()
    config = {"generation": True, "budget_usd": budget_usd, "allow_over_budget": allow_over_budget,
              "strategy": Strategy(strategy).value if strategy else ""}
    run_config = {"ops": {BUILD_STEPS[Level.movie]: {"config": config}}}
    run_tags = {**(tags or {}), MOVIE_TAG: movie, KIND_TAG: QUEUED_KIND, "dagster/partition": movie}
    assert job.name == GENERATE_JOB
    return events.submit_queued_run(instance, job, recon, LOCATION_NAME, run_config, run_tags)


@dataclass
class RunProgress:
    """A run as its event log tells it: status, the partitions its build planned and those it recorded."""

    run_id: str
    movie: str
    status: str
    planned: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)  # step failures' messages (secrets redacted by the step)
    created: float = 0.0
    finished: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"done": len(self.built), "total": len(self.planned)}


_TYPES = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, dg.DagsterEventType.ASSET_MATERIALIZATION,
          dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_DEQUEUED,
          dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.RUN_START, dg.DagsterEventType.RUN_SUCCESS,
          dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED}


def movie_run(instance: dg.DagsterInstance, movie: str, run_id: str) -> dg.DagsterRun | None:
    """The run if it is one of ``movie``'s (None otherwise: a run of another movie is not this one's)."""
    run = instance.get_run_by_id(run_id)
    return run if run is not None and run.tags.get(MOVIE_TAG) == movie else None


def movie_runs(instance: dg.DagsterInstance, movie: str, limit: int = 50) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags={MOVIE_TAG: movie}), limit=limit))


def node_of(asset_key: dg.AssetKey, partition: str | None) -> str:
    key = asset_key.to_user_string()
    return str(NodeKey.from_partition(key, partition)) if partition else key


def read_events(instance: dg.DagsterInstance, run_id: str, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """The run's events since ``cursor`` that say how it goes, as plain values, and the cursor after them:
    ``{"type": "planned" | "built" | "failed" | "status", ...}``. Planned partitions are the build step's
    (after its start): Dagster's own, logged when the run is made, name every asset the job could build."""
    connection = instance.get_records_for_run(run_id, cursor=cursor, of_type=_TYPES)
    out: list[dict[str, Any]] = []
    started = cursor is not None
    for record in connection.records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            started = True
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            data = event.event_specific_data
            partition = getattr(data, "partition", None)
            if partition is not None and started:
                out.append({"type": "planned", "node": node_of(data.asset_key, str(partition)), "at": entry.timestamp})  # type: ignore[union-attr]
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            m = entry.asset_materialization
            if m is not None:
                out.append({"type": "built", "node": node_of(m.asset_key, str(m.partition) if m.partition else None),
                            "at": entry.timestamp})
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            error = getattr(event.event_specific_data, "error", None)
            message = (error.message if error is not None else "step failed").strip().splitlines()
            out.append({"type": "failed", "message": message[-1] if message else "step failed", "at": entry.timestamp})
        else:
            out.append({"type": "status", "status": kind.value.removeprefix("RUN_").removeprefix("PIPELINE_"),
                        "at": entry.timestamp})
    return out, connection.cursor


def progress(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunProgress:
    """Where a run stands, from its event log."""
    events_, _ = read_events(instance, run.run_id)
    planned = list(dict.fromkeys(e["node"] for e in events_ if e["type"] == "planned"))
    built = list(dict.fromkeys(e["node"] for e in events_ if e["type"] == "built"))
    record = instance.get_run_record_by_id(run.run_id)
    return RunProgress(run.run_id, run.tags.get(MOVIE_TAG, ""), run.status.value, planned, built,
                       [e["message"] for e in events_ if e["type"] == "failed"],
                       record.create_timestamp.timestamp() if record else 0.0, run.status in FINISHED)


def generate_job_loaded() -> None:
    """Load the generate_movie job now (a service does it at start, not in its first generate request)."""
    _generate_job()
