"""The one place that touches Dagster's private APIs: events a build step records about partitions
other than its own outputs (planned partitions, failures), the tags of a multi-partition key, and a run
submitted to the run queue from outside the UI (the service's generations).

Dagster 1.13 has no public API for these: the UI's own queries and Dagster's executor use them.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as CheckTarget,
)
from dagster._core.definitions.events import (
    AssetMaterializationFailure,
    AssetMaterializationFailureReason,
    AssetMaterializationFailureType,
)
from dagster._core.definitions.partitions.utils.multi import get_tags_from_multi_partition_key
from dagster._core.definitions.repository_definition import SINGLETON_REPOSITORY_NAME
from dagster._core.events import AssetMaterializationPlannedData
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.run_coordinator import QueuedRunCoordinator

from resources.runtime.secrets import TEXT_LIMIT, redact


def report_planned(context: dg.AssetExecutionContext, asset: dg.AssetKey, partition: str) -> None:
    """Record that this run is about to build a partition: if the run fails before materializing
    it, the partition shows as failed (the UI and ``event_log.load_state`` read it so)."""
    record_planned(context.instance, context.run, _step_key(context), asset, partition)


def record_planned(instance: dg.DagsterInstance, run: dg.DagsterRun, step_key: str, asset: dg.AssetKey,
                   partition: str) -> None:
    """The planned event of ``report_planned``, recorded for ``run``'s step ``step_key``."""
    instance.report_dagster_event(
        dg.DagsterEvent.build_asset_materialization_planned_event(
            run.job_name, step_key, AssetMaterializationPlannedData(asset, partition=partition),
        ),
        run_id=run.run_id,
    )


def report_failed(context: dg.AssetExecutionContext, asset: dg.AssetKey, partition: str, message: str,
                  upstream: bool, category: str = "", suggestion: str = "") -> None:
    """A failed partition, stored where the event log supports it (Dagster+); on OSS storage the
    planned event plus the failed run is what marks it failed. Texts are stored secrets redacted."""
    message, suggestion = redact(message, TEXT_LIMIT), redact(suggestion, TEXT_LIMIT)
    failure = AssetMaterializationFailure(
        asset_key=asset, partition=partition, failure_type=AssetMaterializationFailureType.FAILED,
        reason=AssetMaterializationFailureReason.FAILED_TO_MATERIALIZE, description=message,
        metadata={"error": message, "upstream": upstream, "category": category, "suggestion": suggestion},
    )
    context.instance.report_dagster_event(
        dg.DagsterEvent.build_asset_failed_to_materialize_event(context.run.job_name, _step_key(context), failure),
        run_id=context.run.run_id,
    )


def multi_partition_tags(partition: str | dg.MultiPartitionKey) -> dict[str, str]:
    """The per-dimension tags Dagster puts on a multi-partition materialization."""
    return dict(get_tags_from_multi_partition_key(partition)) if isinstance(partition, dg.MultiPartitionKey) else {}


def check_target(storage_id: int, run_id: str, timestamp: float) -> CheckTarget:
    """The materialization a run-less check evaluation is about (the UI shows it with that materialization)."""
    return CheckTarget(storage_id=storage_id, run_id=run_id, timestamp=timestamp)


def _step_key(context: dg.AssetExecutionContext) -> str:
    return context.op_execution_context.node_handle.name


def submit_queued_run(instance: dg.DagsterInstance, job: dg.JobDefinition, recon: Any, location_name: str,
                      run_config: dict[str, Any], tags: dict[str, str]) -> str:
    """Create a run of ``job`` (a job of the code location ``location_name`` in the workspace the daemon
    loads) and submit it to the instance's run coordinator, as the UI's Launch does (dagster-graphql's
    ``create_valid_pipeline_run``): the daemon dequeues it and its run launcher starts it in that code
    location. The origin names the location only (``RegisteredCodeLocationOrigin``): the daemon looks it
    up by name in its own workspace. Needs the QueuedRunCoordinator (dagster_home/dagster.yaml): other
    coordinators launch at once, which needs a workspace this process does not load."""
    if not isinstance(instance.run_coordinator, QueuedRunCoordinator):
        raise ValueError(f"the instance's run coordinator is {type(instance.run_coordinator).__name__}; the service "
                         "submits runs to the QueuedRunCoordinator (dagster_home/dagster.yaml, docs/deployment.md)")
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(location_name), SINGLETON_REPOSITORY_NAME),
                             job.name)
    run = instance.create_run_for_job(job, run_config=run_config, tags=tags, remote_job_origin=origin,
                                      job_code_origin=recon.get_python_origin(), status=dg.DagsterRunStatus.NOT_STARTED)
    instance.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type] # the queued coordinator only enqueues
    return run.run_id
