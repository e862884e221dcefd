"""Revisions: every ``generate`` leaves one, with the timeline it made and the exact artifact versions
it uses (its manifest), what changed since the previous revision, the calls made and their cost.

The timeline, the movie and each manifest entry are named by their path under the store's root
(revisions made before hold absolute URIs, which the store re-roots when the home was copied or moved)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from movie_assets.domain.blueprint import Blueprint, NodeKey
from movie_assets.domain.errors import StoredFileDamaged
from movie_assets.domain.records import MovieState
from movie_assets.movie_files.edits_log import EditEntry
from movie_assets.movie_files.layout import revision_path, revisions_folder
from movie_assets.movie_files.reports import RunReport
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
    timeline: str | None  # the timeline's reference (its path under the store's root)
    manifest: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> {version, uri: its reference}
    movie_video: str | None = None  # the rendered movie (None: not rendered)
    movie_render: dict[str, str] | None = None  # how it was rendered: {"engine", "preset"}

    def to_json(self, manifest: bool = True) -> dict[str, Any]:
        out = asdict(self)
        if not manifest:
            out.pop("manifest")
        return out


def _read(store: ArtifactStore, relpath: str) -> Revision:
    """A stored revision; StoredFileDamaged when the file cannot be read back as one."""
    data = store.read(relpath)
    try:
        revision = Revision(**json.loads(data))
        _check_types(revision)
        return revision
    except (ValueError, TypeError, RecursionError) as e:
        problem = "not valid JSON" if isinstance(e, json.JSONDecodeError | UnicodeDecodeError) else f"not a revision record: {e}"
        raise StoredFileDamaged(
            f"{store.uri(relpath)} is damaged ({problem}): this record of a past generation cannot be rebuilt; the "
            "other revisions, the artifacts and the movie are unaffected (`moviegen history` lists what is readable)",
            relpath) from None


_TYPES: dict[str, type | tuple[type, ...]] = {
    "revision": int, "time": str, "changes": list, "last_edit": int, "provider_calls": dict, "calls": int,
    "cost_usd": (int, float), "built": int, "failed": dict, "timeline": (str, type(None)), "manifest": dict,
    "movie_video": (str, type(None)), "movie_render": (dict, type(None)),
}


def _check_types(revision: Revision) -> None:
    for name, kind in _TYPES.items():
        value = getattr(revision, name)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise TypeError(f"{name} is {type(value).__name__}")


def _number(name: str) -> int:
    return int(name.split(".")[0]) if name.split(".")[0].isdigit() else 0


def list_revisions(store: ArtifactStore, movie: str) -> list[Revision]:
    """Every readable revision, oldest first (see ``scan_revisions`` for the others)."""
    return scan_revisions(store, movie)[0]


def damaged_revisions(store: ArtifactStore, movie: str) -> dict[int, str]:
    """Revision number -> why its stored file cannot be read."""
    return scan_revisions(store, movie)[1]


def scan_revisions(store: ArtifactStore, movie: str) -> tuple[list[Revision], dict[int, str]]:
    """One pass over the stored revisions: the readable ones, oldest first, and why each other one
    cannot be read (by revision number)."""
    folder = revisions_folder(movie)
    readable: list[Revision] = []
    damaged: dict[int, str] = {}
    for name in store.list(folder):
        try:
            readable.append(_read(store, f"{folder}/{name}"))
        except StoredFileDamaged as e:
            damaged[_number(name)] = str(e)
        except FileNotFoundError:
            continue
    return readable, damaged


def latest_revision(store: ArtifactStore, movie: str) -> Revision | None:
    """The latest readable revision (reads from the newest back, usually one file)."""
    folder = revisions_folder(movie)
    for name in reversed(store.list(folder)):
        try:
            return _read(store, f"{folder}/{name}")
        except (StoredFileDamaged, FileNotFoundError):
            continue
    return None


def _next_number(store: ArtifactStore, movie: str) -> int:
    return max((_number(n) for n in store.list(revisions_folder(movie))), default=0) + 1


def get_revision(store: ArtifactStore, movie: str, revision: int) -> Revision:
    try:
        return _read(store, revision_path(movie, revision))
    except FileNotFoundError:
        count = len(store.list(revisions_folder(movie)))
        raise FileNotFoundError(
            f"movie {movie!r} has no revision {revision}; revisions: {'1 to ' + str(count) if count else 'none yet'}"
        ) from None


def _versions(revision: Revision) -> dict[str, str]:
    return {node: str(entry.get("version", "")) if isinstance(entry, dict) else repr(entry)
            for node, entry in revision.manifest.items()}


def _same_file(store: ArtifactStore, a: str | None, b: str | None) -> bool:
    return a == b or (a is not None and b is not None and store.ref(a) == store.ref(b))


def write_revision(store: ArtifactStore, movie: str, *, blueprint: Blueprint, state: MovieState, run_id: str | None,
                   report: RunReport, edits: list[EditEntry], rendered: bool = False) -> Revision:
    """Record a new revision: the manifest of the artifact versions the movie now uses, and its movie
    when ``rendered`` (the render matches this revision's timeline).

    A generation that changed nothing (the same manifest and movie as the latest revision, no new
    edit, and the same nodes failed as in it: none, or only the same failures repeated) records no
    revision: the latest one is returned and history stays free of no-op entries. A new failure, or
    one healed, is a change and is recorded."""
    previous = latest_revision(store, movie)
    last_edit = previous.last_edit if previous else 0
    timeline = state.records.get(NodeKey("timeline"))
    video = state.records.get(NodeKey("movie_video")) if rendered else None
    revision = Revision(
        revision=_next_number(store, movie),
        time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        run_id=run_id,
        changes=[c for e in edits if e.edit > last_edit for c in e.changes],
        last_edit=max([e.edit for e in edits], default=last_edit),
        provider_calls=report.provider_calls,
        calls=sum(report.provider_calls.values()),
        cost_usd=round(float(report.cost_usd), 6),
        built=len(report.built),
        failed=report.failed,
        timeline=store.ref(timeline.uri) if timeline else None,
        movie_video=store.ref(video.uri) if video else None,
        movie_render={"engine": str(video.metadata.get("engine", "")), "preset": str(video.metadata.get("preset", ""))}
        if video else None,
        manifest={str(k): {"version": r.version, "uri": store.ref(r.uri)} for k, r in sorted(state.records.items())
                  if k in blueprint.nodes},
    )
    # Compared by what the movie uses, not where its files were (a revision made before a home was
    # copied or moved names them by absolute URIs).
    if (previous is not None and set(revision.failed) == set(previous.failed) and not revision.changes
            and _versions(revision) == _versions(previous) and _same_file(store, revision.movie_video, previous.movie_video)):
        return previous
    store.write_text(revision_path(movie, revision.revision), json.dumps(revision.to_json(), indent=2, ensure_ascii=False) + "\n")
    return revision
