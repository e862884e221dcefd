"""The inbox: movie requests and edits dropped as files, picked up by the ``movie_inbox`` sensor.

Where: ``MOVIEGEN_INBOX`` (a folder, or ``s3://bucket/prefix``); by default ``$DAGSTER_HOME/inbox``
on local storage, and the ``inbox/`` prefix beside the artifacts when storage is S3.

What it accepts:

* ``MOVIE-ID.yaml`` / ``.yml`` / ``.json`` — a new movie request (the same format as
  ``moviegen new``); the file name is the movie id.
* ``MOVIE-ID.edits.yaml`` (or ``MOVIE-ID.ANYTHING.edits.yaml``) — edits of an existing movie, a
  mapping of ``PATH: VALUE`` like ``moviegen edit --file`` (``null`` removes an override).

A request file saved again with different content makes the movie match it: its differences from
the movie's current request are applied as one edit (so edits made since, and not in the file, are
undone). What it answers, beside each file: ``NAME.accepted.json`` (the movie, what changed, the run
key) or ``NAME.error.json`` (every problem: the field, the value, what is allowed).

Exactly once: the sensor's cursor remembers each file's fingerprint, so a tick reads only new or
replaced files; the run key of a generation names the movie's state (``ID:new``, then
``ID:edit:N`` after its N-th edit), so a re-dropped file, a repeated tick or a restarted daemon
never registers or generates a movie twice, while every real change gets its run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from movie_assets.domain.edits import UNSET, diff, edits_from_data
from movie_assets.domain.request import RequestError, parse_document, parse_request, validate_movie_id
from movie_assets.orchestration.editing import edit_movie
from movie_assets.orchestration.registry import movie_exists, register_movie
from movie_assets.store.edits_log import edit_count
from movie_assets.store.movies import load_movie_request
from resources.runtime.paths import dagster_home
from resources.storage import ArtifactStore, default_root

INBOX_ENV = "MOVIEGEN_INBOX"
REPORT_SUFFIXES = (".accepted.json", ".error.json")
REQUEST_SUFFIXES = (".yaml", ".yml", ".json")


def inbox_root() -> str:
    configured = os.environ.get(INBOX_ENV, "").strip()
    if configured:
        return configured
    storage = default_root()
    if storage.startswith("s3://"):
        return storage.rstrip("/") + "/inbox"
    return str(dagster_home() / "inbox")


def inbox_store() -> ArtifactStore:
    return ArtifactStore(root=inbox_root())


@dataclass
class Accepted:
    """A file that starts a generation."""

    name: str
    movie: str
    run_key: str
    kind: str  # "new", "edit", or "request" (the request file again, unchanged)
    changes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Outcome:
    accepted: list[Accepted] = field(default_factory=list)
    rejected: dict[str, list[str]] = field(default_factory=dict)  # file -> problems
    cursor: dict[str, str] = field(default_factory=dict)


def pending(inbox: ArtifactStore, seen: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Request and edits files not handled yet in their current content, and every file's fingerprint."""
    prints = inbox.fingerprints("")
    files = {n: f for n, f in prints.items() if n.endswith(REQUEST_SUFFIXES) and not n.endswith(REPORT_SUFFIXES)}
    return sorted(n for n, f in files.items() if seen.get(n) != f), files


def _generation_key(store: ArtifactStore, movie: str) -> str:
    """The run key of the generation of the movie's current request: one per applied edit, so a
    re-dropped file (nothing changes) asks for the run already asked for, while any change -- even
    back to an earlier content -- asks for a new one."""
    seq = edit_count(store, movie)
    return f"{movie}:edit:{seq}" if seq else f"{movie}:new"


def handle(instance: dg.DagsterInstance, store: ArtifactStore, inbox: ArtifactStore, name: str) -> Accepted:
    """Register or edit the movie a file asks for and return the generation to request; raises
    RequestError naming every problem. Handling a file again is harmless: the request is already
    registered or the edit already applied, so the run key is the one asked for before and Dagster
    does not start its run twice (while a tick that crashed before requesting it does)."""
    raw = inbox.read(name)
    is_edit = name.endswith((".edits.yaml", ".edits.yml", ".edits.json"))
    movie = name.split(".", 1)[0]
    try:
        validate_movie_id(movie)
    except RequestError as e:
        raise RequestError([f"file name {name!r}: the part before the first '.' is the movie id; {e.problems[0]}"]) from None
    data = parse_document(raw.decode("utf-8"), name, "inbox file")
    if is_edit:
        if not movie_exists(instance, movie):
            raise RequestError([f"{name}: movie {movie!r} does not exist; drop a request {movie}.yaml first"])
        edits = edits_from_data(data, name)
    else:
        request = parse_request(data)
        if not movie_exists(instance, movie):
            register_movie(instance, store, request, movie)
            return Accepted(name, movie, _generation_key(store, movie), "new")
        # The request file saved again: make the movie match it (its differences become one edit).
        edits = [(c.path, UNSET if c.new is None else c.new) for c in diff(load_movie_request(store, movie), request)]
        if not edits:
            return Accepted(name, movie, _generation_key(store, movie), "request")
    result = edit_movie(instance, store, movie, edits)
    changes = [c.to_json() for c in result.changes]
    return Accepted(name, movie, _generation_key(store, movie), "edit", changes)


def report(inbox: ArtifactStore, name: str, body: dict[str, Any]) -> None:
    """Write the file's report, replacing the other kind left by an earlier version of the file."""
    suffix, other = (".error.json", ".accepted.json") if "errors" in body else (".accepted.json", ".error.json")
    body = {"file": name, "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **body}
    inbox.write_text(name + suffix, json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n")
    inbox.delete(name + other)


def process(instance: dg.DagsterInstance, store: ArtifactStore, inbox: ArtifactStore, seen: dict[str, str]) -> Outcome:
    """Handle every pending file once; write each one's report. The sensor turns ``accepted`` into runs."""
    names, prints = pending(inbox, seen)
    out = Outcome(cursor={n: f for n, f in seen.items() if n in prints})
    for name in names:
        try:
            accepted = handle(instance, store, inbox, name)
        except RequestError as e:
            out.rejected[name] = e.problems
            report(inbox, name, {"errors": e.problems, "help": "fix the file and drop it again (same name is fine)"})
        except FileNotFoundError:
            continue  # removed while we looked: nothing to do
        else:
            out.accepted.append(accepted)
            report(inbox, name, {"movie": accepted.movie, "kind": accepted.kind, "run_key": accepted.run_key,
                                 "changes": accepted.changes,
                                 "follow": f"moviegen status {accepted.movie} (or the Dagster UI, job generate_movie)"})
        out.cursor[name] = prints[name]
    return out
