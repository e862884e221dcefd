"""Revisions: every ``generate`` leaves one, with the timeline it made and the exact artifact versions
it uses (its manifest), what changed since the previous revision, the calls made and their cost."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from resources import ArtifactStore

from .blueprint import Blueprint
from .catalog import MovieState


def revision_relpath(movie: str, revision: int) -> str:
    return f"movies/{movie}/revisions/{revision:06d}.json"


def list_revisions(store: ArtifactStore, movie: str) -> list[dict[str, Any]]:
    return [json.loads(store.read(f"movies/{movie}/revisions/{name}")) for name in store.list(f"movies/{movie}/revisions")]


def latest_revision(store: ArtifactStore, movie: str) -> dict[str, Any] | None:
    names = store.list(f"movies/{movie}/revisions")
    return json.loads(store.read(f"movies/{movie}/revisions/{names[-1]}")) if names else None


def get_revision(store: ArtifactStore, movie: str, revision: int) -> dict[str, Any]:
    try:
        return json.loads(store.read(revision_relpath(movie, revision)))
    except FileNotFoundError:
        count = len(store.list(f"movies/{movie}/revisions"))
        raise FileNotFoundError(
            f"movie {movie!r} has no revision {revision}; revisions: {'1 to ' + str(count) if count else 'none yet'}"
        ) from None


def write_revision(store: ArtifactStore, movie: str, *, blueprint: Blueprint, state: MovieState, run_id: str | None,
                   report: dict[str, Any], edits: list[dict[str, Any]]) -> dict[str, Any]:
    """Record a new revision: the manifest of the artifact versions the movie now uses."""
    previous = latest_revision(store, movie)
    number = (previous["revision"] + 1) if previous else 1
    last_edit = previous.get("last_edit", 0) if previous else 0
    new_edits = [e for e in edits if e["edit"] > last_edit]
    timeline = state.records.get(next(k for k in blueprint.nodes if k.asset == "timeline"))
    revision = {
        "revision": number,
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "changes": [c for e in new_edits for c in e["changes"]],
        "last_edit": max([e["edit"] for e in edits], default=last_edit),
        "provider_calls": report.get("provider_calls", {}),
        "calls": sum(report.get("provider_calls", {}).values()),
        "cost_usd": round(float(report.get("cost_usd", 0.0)), 6),
        "built": len(report.get("built", [])),
        "failed": report.get("failed", {}),
        "timeline": timeline.uri if timeline else None,
        "manifest": {str(k): {"version": r.version, "uri": r.uri} for k, r in sorted(state.records.items()) if k in blueprint.nodes},
    }
    store.write_text(revision_relpath(movie, number), json.dumps(revision, indent=2, ensure_ascii=False) + "\n")
    return revision
