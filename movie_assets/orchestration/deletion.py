"""Deleting a movie: its registration (the dynamic partition), its files and artifacts, refused while a
generation of it is queued or runs.

Dagster's OSS event log cannot wipe single partitions, so the movie's event history stays (the UI's
run history is kept whole) and its id is never given out again (a tombstone, layout.tombstone_path):
a new movie of that id would read the old partitions' records as its own. Spending stays in the budget
ledger: it was spent, and the day's cap counts it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import dagster as dg

from movie_assets.domain.errors import MovieBusy
from movie_assets.movie_files.layout import movie_folder, tombstone_path
from movie_assets.orchestration.locks import generation_lock
from movie_assets.orchestration.queue import active_runs
from movie_assets.orchestration.registry import require_movie
from partitions import movies_partitions
from resources.storage import ArtifactStore


@dataclass
class Deleted:
    movie: str
    files_removed: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def delete_movie(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> Deleted:
    """Remove a movie's partition and every file under ``movies/<movie>/``; MovieBusy while a generation of
    it runs or is queued (nothing is removed then)."""
    require_movie(instance, movie)
    with generation_lock(instance, movie, 0.0, holder="moviegen delete"):  # an in-process generation holds it: MovieBusy
        busy = active_runs(instance, movie)
        if busy:
            raise MovieBusy(f"movie {movie!r} is being generated (run {busy[0]}); delete it when the run has finished "
                            "(or cancel the run in the Dagster UI)")
        store.write_text(tombstone_path(movie), json.dumps({"movie": movie, "deleted_at": time.time()}))
        instance.delete_dynamic_partition(movies_partitions.name, movie)
        removed = store.delete_folder(movie_folder(movie))
    return Deleted(movie, removed)
