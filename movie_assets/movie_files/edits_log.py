"""The log of a movie's edits: one file per applied edit, numbered from 1."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from movie_assets.domain.edits import Change
from movie_assets.movie_files.layout import edit_path, edits_folder
from resources.storage import ArtifactStore


@dataclass(frozen=True)
class EditEntry:
    edit: int
    time: str
    changes: list[dict[str, Any]]


def edit_count(store: ArtifactStore, movie: str) -> int:
    """How many edits the movie has had: the number of the latest (a number is never used twice, even
    when an entry's file was lost)."""
    return max((int(n.split(".")[0]) for n in store.list(edits_folder(movie)) if n.split(".")[0].isdigit()), default=0)


def list_edits(store: ArtifactStore, movie: str) -> list[EditEntry]:
    """Every readable edit, oldest first (a damaged entry is left out: it only describes an edit whose
    result is in the stored request)."""
    entries = []
    for name in store.list(edits_folder(movie)):
        try:
            entries.append(EditEntry(**json.loads(store.read(f"{edits_folder(movie)}/{name}"))))
        except (ValueError, TypeError, RecursionError, FileNotFoundError):
            continue
    return entries


def log_edit(store: ArtifactStore, movie: str, changes: list[Change]) -> int:
    """Record an applied edit; returns its number."""
    seq = edit_count(store, movie) + 1
    entry = {"edit": seq, "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
             "changes": [c.to_json() for c in changes]}
    store.write_text(edit_path(movie, seq), json.dumps(entry, indent=2, ensure_ascii=False) + "\n")
    return seq
