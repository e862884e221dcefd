"""What exists for a movie, read from Dagster's event log (the single source of truth): the catalog.

For every artifact partition: the latest materialization (data version, reference, metadata) and whether a
failure was recorded after it. Queries fetch the latest storage id per partition per asset, then the
records by id, so the cost does not grow with the number of revisions.

What was read is kept per instance (``_Kept``) and used again while the asset's record in the event log
(``instance.get_asset_records``, one query for all of a movie's assets) says that nothing was recorded for
that asset since: a repeated read of an unchanged movie costs that one query instead of four per asset.
When something was recorded, only the latest storage ids are read again, and only the records whose id
changed are fetched (another movie's build of the same asset fetches nothing).
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections import OrderedDict
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


def _latest(instance: dg.DagsterInstance, asset: str, event_type: DagsterEventType, partitions: set[str],
            known: dict[str, Any] | None = None) -> dict[str, Any]:
    """The latest record of each partition; those of ``known`` (read before) whose storage id is still the
    latest are not fetched again."""
    ids = instance.get_latest_storage_id_by_partition(dg.AssetKey(asset), event_type, partitions)
    known = known or {}
    out = {p: known[p] for p, i in ids.items() if p in known and known[p].storage_id == i}
    missing = [i for p, i in ids.items() if p not in out]
    if missing:
        fetch = getattr(instance, _FETCH[event_type])
        result = fetch(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), storage_ids=missing), limit=len(missing))
        out.update({r.partition_key: r for r in result.records if r.partition_key is not None})
    return out


# What identifies everything the event log holds for an asset: its latest materialization (any partition),
# the run that last planned or materialized it, and when it was last wiped. Dagster updates the asset's row
# in the transaction that stores the event (SQLite) or right after it (PostgreSQL), so a read that finds
# the same fingerprint as a kept one finds no event recorded since.
Fingerprint = tuple[int | None, str | None, float | None]


def _fingerprints(instance: dg.DagsterInstance, assets: Iterable[str]) -> dict[str, Fingerprint]:
    """Each asset with any event recorded (an asset without a row has no events at all), in one call."""
    names = {dg.AssetKey(a): a for a in assets}
    out: dict[str, Fingerprint] = {}
    for record in instance.get_asset_records(list(names)):
        entry = record.asset_entry
        details = entry.asset_details
        out[names[entry.asset_key]] = (entry.last_materialization_storage_id, entry.last_run_id,
                                                 details.last_wipe_timestamp if details else None)
    return out


class _Kept:
    """The latest materialization and planned records of an asset's partitions, per instance, with the
    fingerprint they were read under and whether they are final: the asset's last run had ended, since a
    run still running may record more planned events of the asset without changing its record (it stays the
    last run). Final records with an unchanged fingerprint are used as they are; while the last run runs,
    their materializations are (a materialization changes the fingerprint) and the planned events are read
    again; otherwise they tell which records need not be fetched again (same storage id). Whether a planned partition failed is not kept: the run's
    status is read each time (a run ending records no asset event)."""

    MAX = 2048  # (asset, partitions) entries per instance, least recently used dropped first

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_instance: weakref.WeakKeyDictionary[dg.DagsterInstance, OrderedDict[Any, Any]] = weakref.WeakKeyDictionary()

    def get(self, instance: dg.DagsterInstance, key: tuple[str, frozenset[str]]) -> Any:
        """(fingerprint, final, materializations, planned) or None."""
        with self._lock:
            kept = self._by_instance.get(instance)
            entry = kept.get(key) if kept is not None else None
            if entry is not None:
                kept.move_to_end(key)  # type: ignore[union-attr]
            return entry

    def put(self, instance: dg.DagsterInstance, key: tuple[str, frozenset[str]], value: Any) -> None:
        with self._lock:
            kept = self._by_instance.setdefault(instance, OrderedDict())
            kept[key] = value
            kept.move_to_end(key)
            while len(kept) > self.MAX:
                kept.popitem(last=False)


_kept = _Kept()


def _asset_events(instance: dg.DagsterInstance, asset: str, partitions: set[str], fingerprint: Fingerprint | None,
                  run_of: Callable[[str], dg.DagsterRun | None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The latest materialization and planned records of the asset's ``partitions`` (by partition)."""
    if fingerprint is None:  # nothing was ever recorded for the asset
        return {}, {}
    key = (asset, frozenset(partitions))
    kept = _kept.get(instance, key)
    unchanged = kept is not None and kept[0] == fingerprint
    if unchanged and kept[1]:
        return kept[2], kept[3]
    # Whether the last run has ended is read before the records: what it records until then is in them.
    last_run = run_of(fingerprint[1]) if fingerprint[1] else None
    final = last_run is None or last_run.is_finished  # a run the instance does not know records nothing more
    if unchanged:  # no materialization since (the fingerprint holds the latest): only planned events may be new
        mats = kept[2]
    else:
        mats = _latest(instance, asset, DagsterEventType.ASSET_MATERIALIZATION, partitions, kept[2] if kept else None)
    planned = _latest(instance, asset, DagsterEventType.ASSET_MATERIALIZATION_PLANNED, partitions, kept[3] if kept else None)
    _kept.put(instance, key, (fingerprint, final, mats, planned))
    return mats, planned


def load_state(instance: dg.DagsterInstance, movie: str, nodes: Iterable[NodeKey],
               failure_messages: Callable[[str], dict[str, dict[str, str]]] | None = None) -> MovieState:
    """The latest record of each node, and which nodes failed since their latest materialization.

    A node failed when a run planned it (Dagster's ASSET_MATERIALIZATION_PLANNED event, which the
    UI uses the same way) after its latest materialization and that run ended in failure. The error
    (message, category, suggestion) comes from ``failure_messages(run_id)`` (the build's run report)
    when available.
    """
    runs: dict[str, dg.DagsterRun | None] = {}
    messages: dict[str, dict[str, dict[str, str]]] = {}

    def run_of(run_id: str) -> dg.DagsterRun | None:
        if run_id not in runs:
            runs[run_id] = instance.get_run_by_id(run_id)
        return runs[run_id]

    def run_failed(run_id: str) -> bool:
        run = run_of(run_id)
        return run is not None and run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)

    def errors_of(run_id: str) -> dict[str, dict[str, str]]:
        if run_id not in messages:
            messages[run_id] = failure_messages(run_id) if failure_messages else {}
        return messages[run_id]

    by_asset: dict[str, list[NodeKey]] = {}
    for k in nodes:
        by_asset.setdefault(k.asset, []).append(k)
    state = MovieState(movie)
    fingerprints = _fingerprints(instance, by_asset)  # before the records: what is recorded after it changes them
    for asset, keys in by_asset.items():
        # A Dagster partition per node, except images: one per segment, holding the segment's images.
        in_partition: dict[str, list[NodeKey]] = {}
        for k in keys:
            in_partition.setdefault(str(node_partition(movie, k)), []).append(k)
        mats, planned = _asset_events(instance, asset, set(in_partition), fingerprints.get(asset), run_of)
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
