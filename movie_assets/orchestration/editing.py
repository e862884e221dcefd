"""Editing a stored movie: validate the edited request, store it, observe again only the user-input
partitions whose value changed (Dagster then marks exactly their dependents stale), log the edit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.edits import Change, diff, edited_request, touches_look
from movie_assets.domain.errors import StoredFileDamaged
from movie_assets.domain.request import MovieRequest
from movie_assets.movie_files.edits_log import edit_count, log_edit
from movie_assets.movie_files.movies import load_movie_request, repair_request, save_movie_request
from movie_assets.movie_files.own_media import store_own_files
from movie_assets.orchestration.event_log import load_state
from movie_assets.orchestration.generation import report_plan
from movie_assets.orchestration.registry import input_hashes, observe_inputs
from resources.storage import ArtifactStore


@dataclass
class EditResult:
    movie: str
    changes: list[Change] = field(default_factory=list)
    observed_inputs: int = 0
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"movie": self.movie, "edit": self.seq, "observed_inputs": self.observed_inputs,
                "changes": [c.to_json() for c in self.changes]}


def edit_movie(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, edits: list[tuple[str, Any]], *,
               base: str | Path | None = None, local_files: bool = True) -> EditResult:
    """Apply edits (PATH, VALUE or UNSET) to a movie's request. A bad edit, or one that leaves the
    request as it was, changes nothing. A file of the user's an edit names is read (a path, relative to
    ``base``, else the current folder) or downloaded (a URL) once, checked and stored (``local_files`` false:
    URLs only); the same bytes again change nothing."""
    current = load_movie_request(store, movie)
    edited = edited_request(current, edits, current_look(instance, store, movie) if touches_look(edits) else None)
    edited = store_own_files(store, movie, edited, base=base, local_files=local_files, prefix="edit rejected, nothing changed: ")
    result = EditResult(movie, diff(current, edited))
    if not result.changes:
        return result
    known = input_hashes(movie, current)
    save_movie_request(store, movie, edited, edit_count(store, movie) + 1)
    result.observed_inputs = observe_inputs(instance, movie, edited, known=known)
    result.seq = log_edit(store, movie, result.changes)
    report_plan(instance, store, movie)  # the UI shows at once what the edit will rebuild
    return result


def current_look(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> dict[str, Any] | None:
    """The look the movie was last built with (None: not built yet)."""
    record = load_state(instance, movie, [NodeKey("look")]).records.get(NodeKey("look"))
    if record is None:
        return None
    try:
        return json.loads(store.read(record.uri))
    except (OSError, ValueError) as e:
        raise StoredFileDamaged(f"the movie's look ({store.uri(record.uri)}) cannot be read: {e}; run `moviegen generate {movie}` "
                                "to rebuild it, then edit again", store.uri(record.uri)) from None


def repair_movie_request(instance: dg.DagsterInstance, store: ArtifactStore, movie: str,
                         request: MovieRequest | None = None) -> str:
    """Restore a movie whose stored request is damaged: from the latest intact copy, or ``request``.
    Dagster's input observations follow the restored request; the next plan shows what it changes."""
    if request is not None:  # its files of the user's are read (or downloaded) and stored like a new request's
        request = store_own_files(store, movie, request)
    done = repair_request(store, movie, request)
    observe_inputs(instance, movie, load_movie_request(store, movie))
    report_plan(instance, store, movie)
    return done
