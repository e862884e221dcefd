"""The Python API behind the ``moviegen`` CLI, usable by a hosted service as well.

Every function takes a ``DagsterInstance`` (``open_instance()``: DAGSTER_HOME's, safe when several
processes open a new home at once) and an ``ArtifactStore``; generations run through Dagster as one run of
the ``movie_build`` step.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import dagster as dg

from movie_assets.domain.blueprint import ARTIFACTS, NodeKey
from movie_assets.domain.plan import Plan
from movie_assets.domain.request import MovieRequest, load_request
from movie_assets.orchestration import registry
from movie_assets.orchestration.editing import EditResult, edit_movie, repair_movie_request
from movie_assets.orchestration.event_log import load_state
from movie_assets.orchestration.generation import GenerateResult, open_movie, plan_of, report_plan
from movie_assets.orchestration.generation import generate as _generate
from movie_assets.orchestration.locks import open_instance
from movie_assets.orchestration.registry import require_movie
from movie_assets.store.metrics import movie_metrics
from movie_assets.store.revisions import Revision, get_revision, list_revisions
from resources.runtime.budget import day_start, make_ledger
from resources.storage import ArtifactStore

__all__ = ["GenerateResult", "Plan", "Revision", "Status", "edit", "generate", "history", "list_movies", "load_timeline",
           "load_request", "new_movie", "open_instance", "plan", "repair",
           "verify", "revision", "status", "timeline_uri"]

generate = _generate


def new_movie(instance: dg.DagsterInstance, store: ArtifactStore, request: MovieRequest | str, movie: str | None = None) -> str:
    """Register a movie from a request (or a request file path) and return its id."""
    req = load_request(request) if isinstance(request, str) else request
    movie_id = registry.register_movie(instance, store, req, movie)
    report_plan(instance, store, movie_id)  # the UI shows what the first generate will build
    return movie_id


def list_movies(instance: dg.DagsterInstance) -> list[str]:
    return registry.list_movies(instance)


def plan(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, budget_usd: float | None = None,
         verify: bool = False) -> Plan:
    """What a generation would build and why, the calls it will make, their estimated cost against
    the budget caps and what would make them fail (pre-flight); a dry run that calls no provider.
    Damaged artifacts (missing, truncated; with ``verify`` also changed content) are rebuilt."""
    return plan_of(open_movie(instance, store, movie, verify=verify), store, budget_usd)


@dataclass
class Verification:
    movie: str
    checked: int  # recorded artifacts checked
    full: bool  # content hashes compared (else existence and size)
    damaged: dict[str, str]  # node -> what is wrong with its file

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, full: bool = True) -> Verification:
    """Check every artifact the movie records: its file is there with its recorded size and (``full``)
    its content still hashes to its data version. ``generate`` rebuilds what is damaged."""
    opened = open_movie(instance, store, movie, verify=full)
    return Verification(movie, len(opened.state.records), full,
                        {str(k): why for k, why in sorted(opened.state.damaged.items())})


def repair(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, request: MovieRequest | None = None) -> str:
    """Restore a movie whose stored request is damaged (StoredFileDamaged says so): from the copy of its
    latest intact edit, or ``request``. Returns what was done."""
    require_movie(instance, movie)
    return repair_movie_request(instance, store, movie, request)


def edit(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, edits: list[tuple[str, Any]]) -> EditResult:
    """Apply edits (PATH, VALUE or UNSET) to a movie's request; see domain/edits.py."""
    require_movie(instance, movie)
    return edit_movie(instance, store, movie, edits)


def history(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> list[Revision]:
    """Every revision of a movie, oldest first."""
    require_movie(instance, movie)
    return list_revisions(store, movie)


def revision(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, number: int) -> Revision:
    """One revision, with its manifest."""
    require_movie(instance, movie)
    return get_revision(store, movie, number)


def timeline_uri(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, revision: int | None = None) -> str | None:
    """The latest timeline, or the timeline of revision N."""
    require_movie(instance, movie)
    if revision is not None:
        return get_revision(store, movie, revision).timeline
    state = load_state(instance, movie, [NodeKey("timeline")])
    rec = state.records.get(NodeKey("timeline"))
    return rec.uri if rec else None


def load_timeline(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, revision: int | None = None,
                  *, links: bool = False) -> dict[str, Any]:
    """The stored timeline (its ``src`` are stable artifact URIs). ``links``: every ``src`` replaced by
    a URL a render host can fetch (on S3: presigned for the store's ``link_seconds``, or public)."""
    uri = timeline_uri(instance, store, movie, revision)
    if uri is None:
        raise FileNotFoundError(f"movie {movie!r} has no timeline yet: run `moviegen generate {movie}`")
    timeline = json.loads(store.read(uri))
    if links:
        for track in timeline["tracks"]:
            for clip in track["clips"]:
                if "src" in clip:
                    clip["src"] = store.link(clip["src"])
    return timeline


@dataclass
class AssetStatus:
    asset: str
    needed: int
    done: int
    failed: int
    missing: int


@dataclass
class Status:
    movie: str
    request: dict[str, Any]
    assets: list[AssetStatus]
    failures: dict[str, str]
    timeline: str | None
    to_build: int
    revisions: int = 0
    cost_usd: float = 0.0
    movie_video: str | None = None  # the rendered movie (its latest render)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> message, category, suggestion
    placeholders: dict[str, str] = field(default_factory=dict)  # node -> why an offline placeholder stands in
    spend: dict[str, Any] = field(default_factory=dict)  # the budget ledger: movie, per provider, today, caps
    metrics: dict[str, Any] = field(default_factory=dict)  # per producer and provider: calls, cache hits, latency
    damaged: dict[str, str] = field(default_factory=dict)  # node -> its file is missing or truncated (quick check)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def status(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> Status:
    """What exists, what failed, what is left, and the movie's revisions and spend."""
    opened = open_movie(instance, store, movie)
    nodes, state = opened.blueprint.nodes, opened.state
    needed = Counter(k.asset for k in nodes)
    done = Counter(k.asset for k in nodes if k in state.records)
    failed = Counter(k.asset for k in nodes if k in state.failures)
    assets = [AssetStatus(a, needed[a], done[a], failed[a], needed[a] - done[a]) for a in ARTIFACTS if needed[a]]
    timeline = state.records.get(NodeKey("timeline"))
    video = state.records.get(NodeKey("movie_video"))
    revisions = list_revisions(store, movie)
    planned = plan_of(opened, store)  # its budget is the caps' standing
    ledger = make_ledger()
    spend = {
        "movie_usd": round(ledger.spent(movie=movie), 6),
        "movie_by_provider_usd": {k: round(v, 6) for k, v in sorted(ledger.totals(movie=movie).items())},
        "instance_today_usd": round(ledger.spent(since=day_start()), 6),
        "unsettled": len(ledger.unsettled(movie=movie)),
        "caps": planned.budget,
    }
    errors = {str(k): {"message": f.message, "category": f.category or "local", "suggestion": f.suggestion}
              for k, f in state.failures.items()}
    placeholders = {str(k): str(r.metadata.get("fallback_for", "")) for k, r in sorted(state.records.items())
                    if k in nodes and r.metadata.get("fallback")}
    return Status(movie, opened.request.to_document(), assets, {str(k): f.message for k, f in state.failures.items()},
                  timeline.uri if timeline else None, len(planned.items),
                  len(revisions), round(sum(r.cost_usd for r in revisions), 6), video.uri if video else None,
                  errors, placeholders, spend, movie_metrics(store, movie).to_json(),
                  {str(k): why for k, why in sorted(state.damaged.items())})
