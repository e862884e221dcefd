"""Plans: what a generation must build and why, computed in one pass from what exists.

A partition is built when it is missing, failed since its latest build (or an offline placeholder
stands in for it), degraded (made at reduced settings after its call failed at full ones), damaged (its stored file is gone, truncated or changed), stale (the hash of what it would read now differs from what it read, or its code
version changed), or downstream of something rebuilt (``upstream``). A dry run of the build then
settles what costs nothing: an override or derived artifact rebuilt into identical content stops the
cascade, and a node whose exact inputs the build cache holds is reused without a call, so the plan
counts exactly the calls the build will make.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from movie_assets.domain.blueprint import ARTIFACTS, RENDER_ARTIFACTS, Blueprint, NodeKey, call_group, own_file
from movie_assets.domain.inputs import changed_inputs, input_versions
from movie_assets.domain.records import MovieState


class Reason:
    missing = "missing"
    stale = "stale"
    failed = "failed"
    damaged = "damaged"  # its stored artifact is missing, truncated or changed since it was built
    upstream = "upstream"  # an upstream artifact is rebuilt in the same generation
    requested = "requested"  # asked for explicitly (a UI/CLI run of that partition)
    degraded = "degraded"  # made at reduced settings after a call failed at full ones: tried at full settings again


@dataclass
class PlanItem:
    node: str
    asset: str
    partition: str
    reason: str
    cause: str
    producer: str | None
    calls_provider: bool
    # The estimated price of its call (a call shared by several partitions, e.g. a segment's image prompts,
    # split among them), at the prices the budget ledger reserves; 0 without a call.
    cost_usd: float = 0.0
    layer: int = 0  # its Kahn layer in the movie's graph: it depends only on partitions of earlier layers
    # The longest remaining path of provider latency from it to the end of the build (s): the build starts
    # ready partitions with the highest priority first.
    priority: float = 0.0


@dataclass
class Plan:
    movie: str
    items: list[PlanItem]
    provider_calls: dict[str, int]
    critical_path_s: float
    total_nodes: int
    estimated_cost_usd: float = 0.0
    # Each budget cap: scope, limit_usd, spent_usd, remaining_usd, period (see builder/budget.py).
    budget: list[dict[str, Any]] = field(default_factory=list)
    # What would make calls fail for sure (pre-flight): producer, route, message, category, suggestion.
    problems: list[dict[str, str]] = field(default_factory=list)
    # What a check will warn about in what it builds, foreseen (a narration too short or too long for its
    # segment): node, check, message, suggestion. The generation goes ahead.
    warnings: list[dict[str, str]] = field(default_factory=list)

    @property
    def over_budget(self) -> dict[str, Any] | None:
        """The first cap the estimate exceeds, or None."""
        return next((b for b in self.budget if self.estimated_cost_usd > b["remaining_usd"] + 1e-9), None)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "over_budget": self.over_budget}

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
        elif key in state.damaged:
            out[key] = (Reason.damaged, state.damaged[key])
        elif rec is not None and rec.metadata.get("fallback"):
            out[key] = (Reason.failed, f"an offline placeholder stands in: {rec.metadata.get('fallback_for') or 'the provider failed'}")
        elif rec is not None and rec.metadata.get("degraded"):
            m = rec.metadata
            out[key] = (Reason.degraded, f"degraded: retry at full settings (made at {m.get('degraded_to')}, not "
                                         f"{m.get('degraded_from')}: {m.get('degraded_reason') or 'the provider failed at full settings'})")
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


@dataclass(frozen=True)
class Prediction:
    """What a build of some targets would do, found by a dry run that calls no provider: the nodes it
    would build (the rest are skipped: everything they read turned out unchanged), those it would
    take from the build cache, those that would call a provider, and the calls per producer."""

    built: frozenset[NodeKey]
    reused: frozenset[NodeKey]
    calling: frozenset[NodeKey]
    calls: dict[str, int]
    # The artifact each reused node would be taken from (its reference): a pick of an earlier take, an
    # undone edit. ``moviegen prune`` keeps them, as the build will read them.
    held: dict[NodeKey, str] = field(default_factory=dict)


def make_plan(movie: str, blueprint: Blueprint, state: MovieState, code_versions: Mapping[str, str],
              predict: Callable[[dict[NodeKey, str]], Prediction],
              estimate_cost: Callable[[dict[str, int]], float]) -> Plan:
    """The plan of a generation: the nodes ``reasons`` gives, as a dry run of the build
    (``predict``) resolves them. What costs nothing is evaluated (user overrides, derived artifacts,
    build-cache hits), so a node whose inputs turn out unchanged drops out and the calls counted are
    the calls the build will make."""
    why = reasons(blueprint, state, code_versions)
    predicted = predict({k: r for k, (r, _) in why.items()}) if why else Prediction(frozenset(), frozenset(), frozenset(), {})
    kept = [k for k in blueprint.order if k in why and k in predicted.built]
    group_of = {k: call_group(blueprint.request, k) for k in kept if k in predicted.calling}
    sharing = Counter(group_of.values())
    price = {g[0]: estimate_cost({g[0]: 1}) for g in sharing if g is not None}

    def cost(k: NodeKey) -> float:
        g = group_of.get(k)
        return round(price[g[0]] / sharing[g], 6) if g is not None else 0.0

    def yours(k: NodeKey) -> str:
        own = own_file(blueprint.request, k)
        return f"; your file {own.name} (no call)" if own is not None else ""

    items = [
        PlanItem(str(k), k.asset, k.partition_key(movie), why[k][0],
                 why[k][1] + yours(k) + ("; reused: made before from identical inputs" if k in predicted.reused else ""),
                 ARTIFACTS[k.asset].producer, k in predicted.calling, cost(k), blueprint.layer[k], blueprint.priority[k])
        for k in kept
    ]
    calls = dict(sorted(predicted.calls.items()))
    working = [k for k in kept if k not in predicted.reused]
    return Plan(movie, items, calls, blueprint.critical_path_s(working), len(blueprint.nodes), estimate_cost(calls))
