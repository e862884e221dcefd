"""Plans: what a generation must build and why, computed in one pass from what exists.

A partition is built when it is missing, failed since its latest build, stale (the hash of what it
would read now differs from what it read, or its code version changed), or downstream of something
rebuilt (``upstream``: skipped at build time when that rebuild yields identical content). A node
whose exact inputs the build cache already holds is reused without a call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from movie_assets.domain.blueprint import ARTIFACTS, RENDER_ARTIFACTS, Blueprint, NodeKey, call_group
from movie_assets.domain.inputs import changed_inputs, input_versions
from movie_assets.domain.records import MovieState


class Reason:
    missing = "missing"
    stale = "stale"
    failed = "failed"
    upstream = "upstream"  # an upstream artifact is rebuilt in the same generation
    requested = "requested"  # asked for explicitly (a UI/CLI run of that partition)


@dataclass
class PlanItem:
    node: str
    asset: str
    partition: str
    reason: str
    cause: str
    producer: str | None
    calls_provider: bool


@dataclass
class Plan:
    movie: str
    items: list[PlanItem]
    provider_calls: dict[str, int]
    critical_path_s: float
    total_nodes: int
    estimated_cost_usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def targets(self) -> dict[NodeKey, str]:
        """Node -> reason, for the build."""
        return {NodeKey.parse(i.node): i.reason for i in self.items}


def reasons(blueprint: Blueprint, state: MovieState, code_versions: Mapping[str, str]) -> dict[NodeKey, tuple[str, str]]:
    """Why each node must be built: (reason, cause)."""
    out: dict[NodeKey, tuple[str, str]] = {}
    for key in blueprint.order:
        rec = state.records.get(key)
        if key in state.failures:
            out[key] = (Reason.failed, state.failures[key].message)
        elif rec is None:
            out[key] = (Reason.missing, "never built")
        elif rec.code_version != code_versions[key.asset]:
            out[key] = (Reason.stale, f"code version {rec.code_version} -> {code_versions[key.asset]}")
        else:
            changed = changed_inputs(rec.input_versions, input_versions(blueprint, key, state.version))
            if changed:
                out[key] = (Reason.stale, "changed: " + ", ".join(changed))
    for key in blueprint.downstream(list(out)):
        out.setdefault(key, (Reason.upstream, "an upstream artifact is rebuilt"))
    return out


def movie_matches_timeline(blueprint: Blueprint, state: MovieState, code_versions: Mapping[str, str]) -> bool:
    """Whether the rendered movie was made from the current timeline: every render node exists and
    was built from exactly what it would read now (a render that failed or never ran leaves an older
    movie behind, which must not pass for this timeline's)."""
    render = [k for k in blueprint.order if k.asset in RENDER_ARTIFACTS]
    for key in render:
        rec = state.records.get(key)
        if rec is None or key in state.failures or rec.code_version != code_versions[key.asset]:
            return False
        if changed_inputs(rec.input_versions, input_versions(blueprint, key, state.version)):
            return False
    return bool(render)


def make_plan(movie: str, blueprint: Blueprint, state: MovieState, code_versions: Mapping[str, str],
              cached: Callable[[NodeKey, dict[str, str]], bool],
              estimate_cost: Callable[[dict[str, int]], float]) -> Plan:
    """The plan of a generation. ``cached(key, consumed)`` tells whether the build cache holds the
    artifact made from exactly these input versions; ``estimate_cost`` prices provider calls."""
    why = reasons(blueprint, state, code_versions)
    reused = set()
    # Nodes whose inputs are known now (none of their dependencies is rebuilt) and which the build
    # cache holds are reused with no call. Deeper nodes count as calls: an upper bound.
    for key, (reason, _) in why.items():
        if reason == Reason.upstream or call_group(blueprint.request, key) is None:
            continue
        if any(d in why for d in blueprint.nodes[key].deps):
            continue
        if cached(key, input_versions(blueprint, key, state.version)):
            reused.add(key)
    items = [
        PlanItem(str(k), k.asset, k.partition_key(movie), why[k][0],
                 why[k][1] + ("; reused: made before from identical inputs" if k in reused else ""),
                 ARTIFACTS[k.asset].producer, call_group(blueprint.request, k) is not None and k not in reused)
        for k in blueprint.order if k in why
    ]
    keys = [k for k in blueprint.order if k in why and k not in reused]
    calls = dict(sorted(blueprint.calls(keys).items()))
    return Plan(movie, items, calls, blueprint.critical_path_s(keys), len(blueprint.nodes), estimate_cost(calls))
