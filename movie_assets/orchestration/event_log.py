"""What exists for a movie, read from Dagster's event log (the single source of truth): the catalog.

For every artifact partition: the latest materialization (data version, reference, metadata) and whether a
failure was recorded after it. Queries fetch the latest storage id per partition per asset, then the
records by id, so the cost does not grow with the number of revisions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import dagster as dg
from dagster import DagsterEventType, DagsterRunStatus

from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.records import ArtifactRecord, FailureRecord, MovieState
from partitions import node_partition

INPUT_VERSION_TAG = "dagster/input_data_version/"


def _plain_metadata(md: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in md.items():
        out[k] = getattr(v, "value", v)
    return out


def _reference(metadata: dict[str, Any]) -> str:
    """Where a materialization's artifact is: its ``path`` under the store's root; records made before
    have only the absolute ``uri`` (the store re-roots it when the home was copied or moved since)."""
    return str(metadata.get("path") or metadata.get("uri") or "")


# Planned events have no undeprecated reader in Dagster 1.13; this one is what the UI's own queries use.
warnings.filterwarnings("ignore", message=".*fetch_planned_materializations.*", category=DeprecationWarning)

_FETCH = {
    DagsterEventType.ASSET_MATERIALIZATION: "fetch_materializations",
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED: "fetch_planned_materializations",
}


def _latest(instance: dg.DagsterInstance, asset: str, event_type: DagsterEventType, partitions: set[str]) -> dict[str, Any]:
    ids = instance.get_latest_storage_id_by_partition(dg.AssetKey(asset), event_type, partitions)
    if not ids:
        return {}
    fetch = getattr(instance, _FETCH[event_type])
    result = fetch(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), storage_ids=list(ids.values())), limit=len(ids))
    return {r.partition_key: r for r in result.records if r.partition_key is not None}


def load_state(instance: dg.DagsterInstance, movie: str, nodes: Iterable[NodeKey],
               failure_messages: Callable[[str], dict[str, dict[str, str]]] | None = None) -> MovieState:
    """The latest record of each node, and which nodes failed since their latest materialization.

    A node failed when a run planned it (Dagster's ASSET_MATERIALIZATION_PLANNED event, which the
    UI uses the same way) after its latest materialization and that run ended in failure. The error
    (message, category, suggestion) comes from ``failure_messages(run_id)`` (the build's run report)
    when available.
    """
    runs: dict[str, bool] = {}
    messages: dict[str, dict[str, dict[str, str]]] = {}

    def run_failed(run_id: str) -> bool:
        if run_id not in runs:
            run = instance.get_run_by_id(run_id)
            runs[run_id] = run is not None and run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
        return runs[run_id]

    def errors_of(run_id: str) -> dict[str, dict[str, str]]:
        if run_id not in messages:
            messages[run_id] = failure_messages(run_id) if failure_messages else {}
        return messages[run_id]

    by_asset: dict[str, list[NodeKey]] = {}
    for k in nodes:
        by_asset.setdefault(k.asset, []).append(k)
    state = MovieState(movie)
    for asset, keys in by_asset.items():
        # A Dagster partition per node, except images: one per segment, holding the segment's images.
        in_partition: dict[str, list[NodeKey]] = {}
        for k in keys:
            in_partition.setdefault(str(node_partition(movie, k)), []).append(k)
        mats = _latest(instance, asset, DagsterEventType.ASSET_MATERIALIZATION, set(in_partition))
        planned = _latest(instance, asset, DagsterEventType.ASSET_MATERIALIZATION_PLANNED, set(in_partition))
        for partition, rec in mats.items():
            event = rec.event_log_entry.asset_materialization
            tags = event.tags or {}
            metadata = _plain_metadata(dict(event.metadata))
            if IMAGES in metadata:  # an image asset's segment: each image's own record, and the images that failed
                for image in metadata[IMAGES]:
                    key = NodeKey(asset, image["segment"], image["image"])
                    state.records[key] = ArtifactRecord(
                        key=key, version=image["version"], uri=image["path"], storage_id=rec.storage_id, run_id=rec.run_id,
                        timestamp=rec.timestamp, metadata=image["metadata"], input_versions=image["inputs"],
                        code_version=image["code_version"])
                for node, error in (metadata.get(FAILED_IMAGES) or {}).items():
                    key = NodeKey.parse(node)  # its previous record, if any, stays listed above
                    state.failures[key] = FailureRecord(key, rec.storage_id, rec.run_id, error.get("message", ""),
                                                        error.get("category", ""), error.get("suggestion", ""))
                continue
            key = NodeKey.from_partition(asset, partition)
            state.records[key] = ArtifactRecord(
                key=key, version=tags.get("dagster/data_version", ""), uri=_reference(metadata),
                storage_id=rec.storage_id, run_id=rec.run_id, timestamp=rec.timestamp, metadata=metadata,
                input_versions={k.removeprefix(INPUT_VERSION_TAG): v for k, v in tags.items() if k.startswith(INPUT_VERSION_TAG)},
                code_version=tags.get("dagster/code_version", ""),
            )
        for partition, rec in planned.items():
            mat = mats.get(partition)
            if mat is not None and mat.storage_id > rec.storage_id:
                continue
            if run_failed(rec.run_id):
                errors = errors_of(rec.run_id)
                for key in in_partition[partition]:
                    # A segment's images share the planned event: those its report names failed (all of them
                    # when the run stopped before writing its report).
                    if key not in state.failures and (key.image is None or not errors or str(key) in errors):
                        state.failures[key] = planned_failure(key, rec.storage_id, rec.run_id, errors)
    return state


IMAGES = "images"  # an image asset's materialization: each image of the segment (version, path, inputs, metadata)
FAILED_IMAGES = "failed_images"  # and the images of the segment its run failed to build (node -> error)


def planned_failure(key: NodeKey, storage_id: int, run_id: str, errors: dict[str, dict[str, str]]) -> FailureRecord:
    """A partition that a failed run planned and did not build: the run's error for it (``errors``, from
    its report), or that the run failed before it was built."""
    error = errors.get(str(key)) or {"message": f"run {run_id} failed before this artifact was built",
                                     "category": "local", "suggestion": ""}
    return FailureRecord(key, storage_id, run_id, error.get("message", ""), error.get("category", ""),
                         error.get("suggestion", ""))
