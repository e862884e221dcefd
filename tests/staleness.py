"""Dagster's own staleness verdict for materialized partitions (the one the UI shows), which tests
compare with ``moviegen plan``'s (computed in one pass from recorded input versions)."""

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
from movie_assets.domain.blueprint import NodeKey
from partitions import partition_key


def stale_resolver(instance: dg.DagsterInstance) -> CachingStaleStatusResolver:
    graph = defs().resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance, asset_graph=graph,
    )
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


def stale_nodes(instance: dg.DagsterInstance, movie: str, keys: Iterable[NodeKey]) -> list[NodeKey]:
    """The materialized nodes that Dagster reports STALE (a dependency or code version changed)."""
    keys = list(keys)
    if not keys:
        return []
    resolver = stale_resolver(instance)
    out = []
    for key in keys:
        pk = partition_key(movie, key.segment, key.image)
        if resolver.get_status(dg.AssetKey(key.asset), pk) is StaleStatus.STALE:
            out.append(key)
    return out
