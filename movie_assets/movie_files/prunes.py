"""The record of each ``moviegen prune``: which revisions it kept, which it let go, what it removed.

A pruned revision's record stays (``history`` lists it, marked pruned), but what only it used is gone:
its timeline, its movie and the artifacts no kept revision uses. Playing it (``render``, ``timeline``,
``export``) is refused with this record's word, not with a missing file.
"""

from __future__ import annotations

import json
from typing import Any

from movie_assets.movie_files.layout import prune_path, prunes_folder
from resources.storage import ArtifactStore


def _number(name: str) -> int:
    stem = name.split(".")[0]
    return int(stem) if stem.isdigit() else 0


def record_prune(store: ArtifactStore, movie: str, entry: dict[str, Any]) -> int:
    """Store a prune's record under the next number; returns it."""
    seq = max((_number(n) for n in store.list(prunes_folder(movie))), default=0) + 1
    store.write_text(prune_path(movie, seq), json.dumps(entry, indent=2) + "\n")
    return seq


def pruned_revisions(store: ArtifactStore, movie: str) -> dict[int, str]:
    """Revision number -> when the prune that let it go ran (an unreadable prune record is skipped: the
    revision then reads as it is, its files missing)."""
    out: dict[int, str] = {}
    folder = prunes_folder(movie)
    for name in store.list(folder):
        try:
            entry = json.loads(store.read(f"{folder}/{name}"))
            for n in entry["pruned_revisions"]:
                out.setdefault(int(n), str(entry.get("time", "")))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            continue
    return out


def check_not_pruned(store: ArtifactStore, movie: str, revision: int) -> None:
    """FileNotFoundError, saying so, when ``revision`` was let go by a prune."""
    pruned = pruned_revisions(store, movie)
    if revision in pruned:
        raise FileNotFoundError(
            f"revision {revision} of movie {movie!r} was pruned ({pruned[revision]}): its timeline, its movie and the "
            f"artifacts only it used are gone; `moviegen history {movie}` lists the revisions kept")
