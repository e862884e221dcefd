"""Dagster's own staleness verdict for materialized partitions (the one the UI shows), which tests
compare with ``moviegen plan``'s (computed in one pass from recorded input versions), and the marks
of the next build that the plan leaves on partitions."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg
from dagster._core.asset_graph_view.asset_graph_view import (
    AssetGraphView,
    TemporalContext,
)
from dagster._core.definitions.data_version import (
    CachingStaleStatusResolver,
    StaleStatus,
)
from dagster._time import get_current_datetime

from movie_assets.definitions import defs
from movie_assets.domain.blueprint import ARTIFACTS, NodeKey
from movie_assets.orchestration.marks import CLEAR, MARK
from partitions import partition_key


def stale_resolver(instance: dg.DagsterInstance) -> CachingStaleStatusResolver:
    graph = defs().resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance, asset_graph=graph,
    )
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


def dagster_partitions(nodes: Iterable[NodeKey | str]) -> set[str]:
    """Nodes as the Dagster partitions they are in, written as nodes: a segment's images are one partition
    of an image asset (``segment_image[03_1]`` -> ``segment_image[03]``)."""
    keys = (NodeKey.parse(n) if isinstance(n, str) else n for n in nodes)
    return {str(NodeKey(k.asset, k.segment)) for k in keys}


def stale_nodes(instance: dg.DagsterInstance, movie: str, keys: Iterable[NodeKey]) -> list[NodeKey]:
    """The materialized partitions that Dagster reports STALE (a dependency or code version changed), as
    nodes (an image asset's: its segment, ``NodeKey(asset, segment)``)."""
    partitions = sorted({NodeKey(k.asset, k.segment) for k in keys})
    if not partitions:
        return []
    resolver = stale_resolver(instance)
    return [k for k in partitions
            if resolver.get_status(dg.AssetKey(k.asset), partition_key(movie, k.segment)) is StaleStatus.STALE]


def ui_marks(instance: dg.DagsterInstance, movie: str) -> set[str]:
    """The movie's partitions whose latest observation marks them for the next build (what the asset's
    partition view shows), as node strings."""
    marked: set[str] = set()
    for asset in ARTIFACTS:
        records = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset)), limit=10_000,
                                              ascending=False).records
        seen: set[str] = set()
        for r in records:
            partition = r.partition_key
            if partition is None or partition in seen or partition.split("|", 1)[0] != movie:
                continue
            seen.add(partition)
            metadata = r.event_log_entry.asset_observation.metadata  # type: ignore[union-attr]
            mark = metadata.get(MARK)
            if mark is not None and mark.value != CLEAR:
                marked.add(str(NodeKey.from_partition(asset, partition)))
    return marked
