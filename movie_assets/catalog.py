"""What exists for a movie, read from Dagster's event log (the single source of truth).

For every artifact partition: the latest materialization (data version, URI, metadata) and whether a
failure was recorded after it. Queries fetch the latest storage id per partition per asset, then the
records by id, so the cost does not grow with the number of revisions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster import DagsterEventType, EventRecordsFilter

from .blueprint import ARTIFACTS, INPUTS, NodeKey



@dataclass(frozen=True)
class ArtifactRecord:
    key: NodeKey
    version: str
    uri: str
    storage_id: int
    run_id: str
    timestamp: float
    metadata: dict[str, Any]


@dataclass(frozen=True)
class FailureRecord:
    key: NodeKey
    storage_id: int
    run_id: str
    message: str


@dataclass
class MovieState:
    movie: str
    records: dict[NodeKey, ArtifactRecord] = field(default_factory=dict)
    failures: dict[NodeKey, FailureRecord] = field(default_factory=dict)
    input_versions: dict[tuple[str, str], str] = field(default_factory=dict)


def _plain_metadata(md: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in md.items():
        out[k] = getattr(v, "value", v)
    return out


def _partitions(movie: str, nodes: Iterable[NodeKey]) -> set[str]:
    return {k.partition_key(movie) for k in nodes}


def _latest(instance: dg.DagsterInstance, asset: str, event_type: DagsterEventType, partitions: set[str]) -> dict[str, Any]:
    ids = instance.get_latest_storage_id_by_partition(dg.AssetKey(asset), event_type, partitions)
    if not ids:
        return {}
    result = instance.get_event_records(
        EventRecordsFilter(event_type=event_type, asset_key=dg.AssetKey(asset), storage_ids=list(ids.values())),
        limit=len(ids),
    )
    return {r.partition_key: r for r in result if r.partition_key is not None}


def load_state(instance: dg.DagsterInstance, movie: str, nodes: Iterable[NodeKey]) -> MovieState:
    """The latest record and any later failure of each of these nodes."""
    by_asset: dict[str, list[NodeKey]] = {}
    for k in nodes:
        by_asset.setdefault(k.asset, []).append(k)
    state = MovieState(movie)
    for asset, keys in by_asset.items():
        parts = _partitions(movie, keys)
        mats = _latest(instance, asset, DagsterEventType.ASSET_MATERIALIZATION, parts)
        fails = _latest(instance, asset, DagsterEventType.ASSET_FAILED_TO_MATERIALIZE, parts)
        for partition, rec in mats.items():
            event = rec.event_log_entry.asset_materialization
            key = NodeKey.from_partition(asset, partition)
            tags = event.tags or {}
            metadata = _plain_metadata(dict(event.metadata))
            state.records[key] = ArtifactRecord(
                key=key, version=tags.get("dagster/data_version", ""), uri=str(metadata.get("uri", "")),
                storage_id=rec.storage_id, run_id=rec.run_id, timestamp=rec.timestamp, metadata=metadata,
            )
        for partition, rec in fails.items():
            key = NodeKey.from_partition(asset, partition)
            mat = state.records.get(key)
            if mat is not None and mat.storage_id > rec.storage_id:
                continue
            data = rec.event_log_entry.dagster_event.asset_failed_to_materialize_data  # type: ignore[union-attr]
            failure = data.asset_materialization_failure
            message = failure.description or str(_plain_metadata(dict(failure.metadata)).get("error", "failed"))
            state.failures[key] = FailureRecord(key, rec.storage_id, rec.run_id, message)
    return state


def load_input_versions(instance: dg.DagsterInstance, movie: str, partitions: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    """Latest observed data version of each user-input partition: {(input, partition): version}."""
    out: dict[tuple[str, str], str] = {}
    for name, parts in partitions.items():
        assert name in INPUTS
        recs = _latest(instance, name, DagsterEventType.ASSET_OBSERVATION, parts)
        for partition, rec in recs.items():
            obs = rec.event_log_entry.asset_observation
            out[(name, partition)] = (obs.tags or {}).get("dagster/data_version", "")
    return out


def all_asset_names() -> list[str]:
    return list(ARTIFACTS)
