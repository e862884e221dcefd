"""Input versions: what each built partition consumed, per dependency asset, as one hash.

When a partition is built, the hash of the data versions it read from each dependency asset (its
upstream artifact partitions, and the user-input values) is recorded in its materialization as
``dagster/input_data_version/<asset>``. A partition is stale when recomputing those hashes from the
current state gives a different answer: the same rule Dagster applies per partition, computed here
in one pass from the catalog, without a query per partition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from .blueprint import ARTIFACTS, INPUTS, Blueprint, Level, NodeKey, input_values
from .request import MovieRequest


def value_version(value: dict) -> str:
    """Data version of a user input's value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _combine(parts: list[tuple[str, str | None]]) -> str:
    text = "\n".join(f"{k}={v or 'missing'}" for k, v in sorted(parts))
    return hashlib.sha256(text.encode()).hexdigest()


def input_versions(blueprint: Blueprint, key: NodeKey, artifact_version: Callable[[NodeKey], str | None]) -> dict[str, str]:
    """Per dependency asset of ``key``: a hash of the versions it reads now."""
    request: MovieRequest = blueprint.request
    node = blueprint.nodes[key]
    decl = ARTIFACTS[key.asset]
    out: dict[str, str] = {}
    for dep_asset in decl.deps:
        out[dep_asset] = _combine([(str(d), artifact_version(d)) for d in node.deps if d.asset == dep_asset])
    for name in decl.inputs:
        level = INPUTS[name].level
        segment = key.segment if level is not Level.movie else None
        image = key.image if level is Level.image else None
        out[name] = value_version(input_values(request, name, segment, image))
    return out


def changed_inputs(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """The dependency assets whose consumed versions differ (all of them when nothing was recorded)."""
    if not recorded:
        return sorted(current)
    return sorted(name for name in current if recorded.get(name) != current[name])


def cache_relpath(movie: str, key: NodeKey, consumed: dict[str, str], code_version: str) -> str:
    """Where the build cache remembers the artifact made from exactly these inputs."""
    digest = hashlib.sha256(json.dumps([consumed, code_version], sort_keys=True).encode()).hexdigest()
    return f"movies/{movie}/cache/{key.asset}/{key.partition_suffix or '_'}/{digest[:32]}.json"
