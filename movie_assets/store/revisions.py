"""Revisions: every ``generate`` leaves one, with the timeline it made and the exact artifact versions
it uses (its manifest), what changed since the previous revision, the calls made and their cost."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from movie_assets.domain.blueprint import Blueprint, NodeKey
from movie_assets.domain.records import MovieState
from movie_assets.store.edits_log import EditEntry
from movie_assets.store.layout import revision_path, revisions_folder
from movie_assets.store.reports import RunReport
from resources.storage import ArtifactStore


@dataclass
class Revision:
    revision: int
    time: str
    run_id: str | None
    changes: list[dict[str, Any]]
    last_edit: int
    provider_calls: dict[str, int]
    calls: int
    cost_usd: float
    built: int
    failed: dict[str, str]
    timeline: str | None
    manifest: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> {version, uri}
    movie_video: str | None = None  # the rendered movie (None: not rendered)
    movie_render: dict[str, str] | None = None  # how it was rendered: {"engine", "preset"}

    def to_json(self, manifest: bool = True) -> dict[str, Any]:
        out = asdict(self)
        if not manifest:
            out.pop("manifest")
        return out


def _read(store: ArtifactStore, relpath: str) -> Revision:
    return Revision(**json.loads(store.read(relpath)))


def list_revisions(store: ArtifactStore, movie: str) -> list[Revision]:
    folder = revisions_folder(movie)
    return [_read(store, f"{folder}/{name}") for name in store.list(folder)]


def latest_revision(store: ArtifactStore, movie: str) -> Revision | None:
    names = store.list(revisions_folder(movie))
    return _read(store, f"{revisions_folder(movie)}/{names[-1]}") if names else None


def get_revision(store: ArtifactStore, movie: str, revision: int) -> Revision:
    try:
        return _read(store, revision_path(movie, revision))
    except FileNotFoundError:
        count = len(store.list(revisions_folder(movie)))
        raise FileNotFoundError(
            f"movie {movie!r} has no revision {revision}; revisions: {'1 to ' + str(count) if count else 'none yet'}"
        ) from None


def write_revision(store: ArtifactStore, movie: str, *, blueprint: Blueprint, state: MovieState, run_id: str | None,
                   report: RunReport, edits: list[EditEntry], rendered: bool = False) -> Revision:
    """Record a new revision: the manifest of the artifact versions the movie now uses, and its movie
    when ``rendered`` (the render matches this revision's timeline).

    A generation that changed nothing (the same manifest and movie as the latest revision, no new
    edit, nothing failed) records no revision: the latest one is returned and history stays free of
    no-op entries."""
    previous = latest_revision(store, movie)
    last_edit = previous.last_edit if previous else 0
    timeline = state.records.get(NodeKey("timeline"))
    video = state.records.get(NodeKey("movie_video")) if rendered else None
    revision = Revision(
        revision=(previous.revision + 1) if previous else 1,
        time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        run_id=run_id,
        changes=[c for e in edits if e.edit > last_edit for c in e.changes],
        last_edit=max([e.edit for e in edits], default=last_edit),
        provider_calls=report.provider_calls,
        calls=sum(report.provider_calls.values()),
        cost_usd=round(float(report.cost_usd), 6),
        built=len(report.built),
        failed=report.failed,
        timeline=timeline.uri if timeline else None,
        movie_video=video.uri if video else None,
        movie_render={"engine": str(video.metadata.get("engine", "")), "preset": str(video.metadata.get("preset", ""))}
        if video else None,
        manifest={str(k): {"version": r.version, "uri": r.uri} for k, r in sorted(state.records.items()) if k in blueprint.nodes},
    )
    if (previous is not None and not revision.failed and not previous.failed and not revision.changes
            and revision.manifest == previous.manifest and revision.movie_video == previous.movie_video):
        return previous
    store.write_text(revision_path(movie, revision.revision), json.dumps(revision.to_json(), indent=2, ensure_ascii=False) + "\n")
    return revision
