"""Pruning a movie: remove the takes, renders and artifacts that no kept revision uses.

Kept, never removed:

* every file a kept revision uses: its manifest (every artifact version it records), its timeline and
  every ``src`` the timeline names, its movie (``--keep-revisions N``: the N newest revisions not pruned
  before; default: every revision);
* what the movie uses now: the latest materialization of each of its partitions (what ``plan`` and the
  next ``generate`` read), the rendered movie included;
* what the next ``generate`` would take from the build cache: a take the user picked, an edit undone
  (a dry run of the build, as ``plan`` makes, says which);
* the reference pictures the request pins (``moviegen approve``).

Removed: every other artifact file under ``movies/<id>/<asset>/``, and the build-cache entries naming
a removed (or already missing) file, so ``takes`` and the cache never point at nothing. The movie's
request, edits, revisions, run reports and kept answers of paid calls are untouched: a pruned
revision stays in ``history``, marked pruned (movie_files/prunes.py). Dagster's event log keeps the
materializations of the removed versions (OSS storage cannot wipe single records); moviegen reads only
the latest one of each partition, which is always kept.

Refused while a generation of the movie runs or is queued, like ``delete``: a build may be about to
reuse what would be removed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import dagster as dg

from movie_assets.builder.code_versions import code_versions
from movie_assets.builder.engine import predict
from movie_assets.domain.blueprint import ARTIFACTS, NodeKey
from movie_assets.domain.errors import MovieBusy, StoredFileDamaged
from movie_assets.domain.plan import reasons
from movie_assets.movie_files.layout import artifact_path, cache_folder, movie_folder
from movie_assets.movie_files.prunes import pruned_revisions, record_prune
from movie_assets.movie_files.revisions import Revision, scan_revisions
from movie_assets.orchestration.generation import open_movie
from movie_assets.orchestration.locks import generation_lock
from movie_assets.orchestration.queue import active_runs
from movie_assets.orchestration.registry import require_movie
from resources.settings import Settings, current
from resources.storage import ArtifactStore


@dataclass
class Pruned:
    movie: str
    dry_run: bool  # nothing was removed: what a prune would remove
    kept_revisions: list[int]
    pruned_revisions: list[int]  # let go by this prune
    files_removed: int  # (dry run: would be removed)
    bytes_freed: int  # the sum of the removed files' sizes
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)  # asset (or "cache") -> {files, bytes}
    removed: list[str] = field(default_factory=list)  # paths under the store's root

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def prune_movie(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, keep_revisions: int | None = None,
                dry_run: bool = False, settings: Settings | None = None) -> Pruned:
    """Remove what no kept revision, nor the movie as it is now, uses (``dry_run``: only say what);
    ``keep_revisions``: keep the N newest revisions (default: all). MovieBusy while a generation runs."""
    if keep_revisions is not None and (isinstance(keep_revisions, bool) or keep_revisions < 0):
        raise ValueError(f"keep revisions: got {keep_revisions!r}; allowed: 0 (only what the movie uses now) or more")
    require_movie(instance, movie)
    with generation_lock(instance, movie, 0.0, holder="moviegen prune"):  # an in-process generation holds it: MovieBusy
        busy = active_runs(instance, movie)
        if busy:
            raise MovieBusy(f"movie {movie!r} is being generated (run {busy[0]}); prune it when the run has finished")
        return _prune(instance, store, movie, keep_revisions, dry_run, settings or current())


def _prune(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, keep_revisions: int | None, dry_run: bool,
           settings: Settings) -> Pruned:
    revisions, damaged = scan_revisions(store, movie)
    before = pruned_revisions(store, movie)
    live = sorted(({r.revision for r in revisions} | set(damaged)) - set(before))
    kept = live if keep_revisions is None else live[len(live) - keep_revisions:] if keep_revisions else []
    unreadable = [n for n in kept if n in damaged]
    if unreadable:
        n = unreadable[0]
        raise StoredFileDamaged(
            f"movie {movie!r}: revision {n} is damaged, so what it uses cannot be known and nothing was pruned; "
            f"keep only revisions after it (--keep-revisions {len([k for k in kept if k > n])})", f"revision {n}")
    needed = _needed(instance, store, movie, [r for r in revisions if r.revision in kept], settings)
    sizes = store.sizes(movie_folder(movie))
    artifacts = {rel: size for rel, size in sizes.items() if _is_artifact(movie, rel) and rel not in needed}
    entries = {rel: size for rel, size in sizes.items() if rel.startswith(cache_folder(movie) + "/")
               and _entry_target(store, rel, sizes) in artifacts.keys() | {None}}
    removed = {**entries, **artifacts}
    by_kind: Counter[str] = Counter()
    by_bytes: Counter[str] = Counter()
    for rel, size in removed.items():
        kind = "cache" if rel in entries else rel.split("/")[2]
        by_kind[kind] += 1
        by_bytes[kind] += size
    let_go = [n for n in live if n not in kept]
    result = Pruned(movie, dry_run, kept, let_go, len(removed), sum(removed.values()),
                    {k: {"files": by_kind[k], "bytes": by_bytes[k]} for k in sorted(by_kind)}, sorted(removed))
    if dry_run or not (let_go or removed):
        return result
    # The record first: a prune stopped half-way has let its revisions go, and the next one finishes it.
    record_prune(store, movie, {"time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "kept_revisions": kept,
                                "pruned_revisions": let_go, "files_removed": result.files_removed,
                                "bytes_freed": result.bytes_freed})
    for rel in [*entries, *artifacts]:  # entries first: a cache entry never names a file already removed
        store.delete(rel)
    return result


def _is_artifact(movie: str, rel: str) -> bool:
    """``movies/<movie>/<asset>/<partition>/<version>.<ext>`` of an artifact type."""
    parts = rel.split("/")
    return len(parts) == 5 and parts[:2] == ["movies", movie] and parts[2] in ARTIFACTS


def _entry_target(store: ArtifactStore, rel: str, sizes: dict[str, int]) -> str | None:
    """The artifact a build-cache entry names (None: it names a file that is gone, or it cannot be read:
    it is of no use); an entry of another kind (not JSON) names itself, so it is kept."""
    if not rel.endswith(".json"):
        return rel
    try:
        entry = json.loads(store.read(rel))
        target = store.rel_of(str(entry["uri"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if target is None:
        return rel  # a file of another store: not ours to judge
    return target if target in sizes else None


def _needed(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, kept: list[Revision],
            settings: Settings) -> set[str]:
    """Every file (path under the root) a kept revision or the movie as it is now uses."""
    refs: set[str] = set()
    for r in kept:
        refs.update(str(e["uri"]) for e in r.manifest.values() if isinstance(e, dict) and e.get("uri"))
        refs.update(ref for ref in (r.timeline, r.movie_video) if ref)
        if r.timeline:
            refs.update(_sources(store, r.timeline))
    opened = open_movie(instance, store, movie, render=True, settings=settings, known=True)
    refs.update(rec.uri for rec in opened.state.records.values() if rec.uri)
    why = reasons(opened.blueprint, opened.state, code_versions(settings))
    if why:
        predicted = predict(movie, opened.blueprint, opened.state, store, {k: r for k, (r, _) in why.items()}, settings)
        refs.update(predicted.held.values())
    look = opened.request.look
    for ref in (look.references or {}).values() if look is not None else ():
        key = NodeKey.parse(ref.node)
        refs.add(artifact_path(movie, key.asset, key.partition_suffix, ref.version, "png"))
    return {rel for ref in refs if (rel := store.rel_of(ref)) is not None}


def _sources(store: ArtifactStore, timeline: str) -> set[str]:
    """The ``src`` of every clip of a stored timeline (none when it cannot be read: its manifest names them)."""
    try:
        data = json.loads(store.read(timeline))
        return {str(c["src"]) for t in data["tracks"] for c in t["clips"] if c.get("src")}
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return set()
