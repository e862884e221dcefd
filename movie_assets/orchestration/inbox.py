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

What it refuses, each with its ``NAME.error.json`` (once per content, like any rejected file), reading
nothing it does not have to: a hidden file (``.NAME.yaml``: editors and tools keep their temporary
files so), a symbolic link (never followed: it could show any file the daemon can read), a folder or
other non-regular file, a file over 1 MB (refused from its listed size, and never read past the
limit), text that is not UTF-8, and a document beyond the parser's bounds (see domain/request.py:
nesting, number of values, YAML aliases). Any other error while handling one file becomes that file's
report too: one file never stops the others, and a tick starts no new file after TICK_BUDGET_S (the
rest wait for the next tick), so it ends in time.

Exactly once: the sensor's cursor remembers each file's fingerprint, so a tick reads only new or
replaced files; the run key of a generation names the movie's state (``ID:new``, then
``ID:edit:N`` after its N-th edit), so a re-dropped file, a repeated tick or a restarted daemon
never registers or generates a movie twice, while every real change gets its run.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from movie_assets.domain.edits import UNSET, diff, edits_from_data
from movie_assets.domain.errors import StoredFileDamaged
from movie_assets.domain.request import (
    MAX_DOCUMENT_BYTES,
    RequestError,
    decode_document,
    parse_document,
    parse_request,
    validate_movie_id,
)
from movie_assets.movie_files.edits_log import edit_count
from movie_assets.movie_files.movies import load_movie_request
from movie_assets.movie_files.own_media import store_own_files
from movie_assets.orchestration.editing import edit_movie
from movie_assets.orchestration.registry import movie_exists, register_movie
from resources.runtime.paths import dagster_home
from resources.runtime.secrets import redact
from resources.storage import ArtifactStore, Entry, default_root

INBOX_ENV = "MOVIEGEN_INBOX"
REPORT_SUFFIXES = (".accepted.json", ".error.json")
REQUEST_SUFFIXES = (".yaml", ".yml", ".json")
TICK_BUDGET_S = 20.0  # a tick starts no new file after this long (Dagster gives a sensor tick 60 s)


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
    crashed: dict[str, str] = field(default_factory=dict)  # file -> traceback of an unexpected error (reported too)
    unreported: dict[str, str] = field(default_factory=dict)  # file -> why its report could not be written
    deferred: list[str] = field(default_factory=list)  # files left for the next tick (TICK_BUDGET_S)


def pending(inbox: ArtifactStore, seen: dict[str, str]) -> tuple[list[str], dict[str, Entry]]:
    """Request and edits files (hidden ones, links and folders included: they get their report) not
    handled yet in their current content, and every such file's listing."""
    entries = inbox.entries("")
    files = {n: e for n, e in entries.items() if n.endswith(REQUEST_SUFFIXES) and not n.endswith(REPORT_SUFFIXES)}
    return sorted(n for n, e in files.items() if seen.get(n) != e.fingerprint), files


def read_inbox_file(inbox: ArtifactStore, name: str, entry: Entry) -> str:
    """The text of a dropped file, refused (RequestError naming the file, what it is and what is allowed)
    from its listing alone when it is hidden, a link, not a regular file or too large; never reads more
    than MAX_DOCUMENT_BYTES + 1 bytes, and never follows a link."""
    if name.startswith("."):
        raise RequestError([f"{name}: a hidden file (its name starts with '.'), so it is ignored: editors and "
                            "tools keep their temporary files so; allowed: a visible name, e.g. "
                            f"{name.lstrip('.') or 'MOVIE-ID.yaml'!r}"])
    if entry.kind == "link":
        raise RequestError([f"{name}: a symbolic link; links are not followed (one could show any file the "
                            "daemon can read), nothing was read; allowed: the file itself, copied or moved into the inbox"])
    if entry.kind != "file":
        what = "a folder" if entry.kind == "folder" else "not a regular file (a pipe, socket or device)"
        raise RequestError([f"{name}: {what}; allowed: a regular YAML or JSON file"])
    if entry.size > MAX_DOCUMENT_BYTES:
        raise RequestError([f"{name}: too large ({entry.size} bytes), not read; allowed: up to "
                            f"{MAX_DOCUMENT_BYTES // 1_000_000} MB ({MAX_DOCUMENT_BYTES} bytes; a request needs a few KB)"])
    try:
        raw = inbox.read_limited(name, MAX_DOCUMENT_BYTES)
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise
        if e.errno == errno.ELOOP:
            raise RequestError([f"{name}: a symbolic link (it replaced the file as it was read); links are not "
                                "followed; allowed: the file itself"]) from None
        raise RequestError([f"{name}: cannot be read ({e.strerror or e}); allowed: a regular, readable file"]) from None
    return decode_document(raw, name, "inbox file")


def _generation_key(store: ArtifactStore, movie: str) -> str:
    """The run key of the generation of the movie's current request: one per applied edit, so a
    re-dropped file (nothing changes) asks for the run already asked for, while any change -- even
    back to an earlier content -- asks for a new one."""
    seq = edit_count(store, movie)
    return f"{movie}:edit:{seq}" if seq else f"{movie}:new"


def handle(instance: dg.DagsterInstance, store: ArtifactStore, inbox: ArtifactStore, name: str,
           entry: Entry | None = None) -> Accepted:
    """Register or edit the movie a file asks for and return the generation to request; raises
    RequestError naming every problem. Handling a file again is harmless: the request is already
    registered or the edit already applied, so the run key is the one asked for before and Dagster
    does not start its run twice (while a tick that crashed before requesting it does)."""
    text = read_inbox_file(inbox, name, entry or Entry("", 0, "file"))
    is_edit = name.endswith((".edits.yaml", ".edits.yml", ".edits.json"))
    movie = name.split(".", 1)[0]
    try:
        validate_movie_id(movie)
    except RequestError as e:
        shown = repr(name) if len(name) <= 80 else repr(name[:77]) + "..."
        raise RequestError([f"file name {shown}: the part before the first '.' is the movie id; {e.problems[0]}"]) from None
    data = parse_document(text, name, "inbox file")
    # Files of the user's: relative paths from the inbox folder; an inbox on S3 takes URLs only (no daemon's disk).
    files: dict[str, Any] = {"base": inbox.root.removeprefix("file://"), "local_files": True} if not inbox.root.startswith("s3://") else {
        "local_files": False}
    if is_edit:
        if not movie_exists(instance, movie):
            raise RequestError([f"{name}: movie {movie!r} does not exist; drop a request {movie}.yaml first"])
        edits = edits_from_data(data, name)
    else:
        request = parse_request(data)
        if not movie_exists(instance, movie):
            register_movie(instance, store, request, movie, **files)
            return Accepted(name, movie, _generation_key(store, movie), "new")
        request = store_own_files(store, movie, request, **files)  # so a file given again with the same bytes is no change
        # The request file saved again: make the movie match it (its differences become one edit).
        edits = [(c.path, UNSET if c.new is None else c.new) for c in diff(load_movie_request(store, movie), request)]
        if not edits:
            return Accepted(name, movie, _generation_key(store, movie), "request")
    result = edit_movie(instance, store, movie, edits, **files)
    changes = [c.to_json() for c in result.changes]
    return Accepted(name, movie, _generation_key(store, movie), "edit", changes)


def _redacted(value: Any) -> Any:
    """Every text of a report free of secrets (an error can quote what a provider or storage said)."""
    if isinstance(value, str):
        return redact(value, None)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def report(inbox: ArtifactStore, name: str, body: dict[str, Any]) -> None:
    """Write the file's report, replacing the other kind left by an earlier version of the file."""
    suffix, other = (".error.json", ".accepted.json") if "errors" in body else (".accepted.json", ".error.json")
    body = {"file": name, "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **body}
    inbox.write_text(name + suffix, json.dumps(_redacted(body), indent=2, ensure_ascii=False, default=str) + "\n")
    inbox.delete(name + other)


def process(instance: dg.DagsterInstance, store: ArtifactStore, inbox: ArtifactStore, seen: dict[str, str],
            budget_s: float = TICK_BUDGET_S) -> Outcome:
    """Handle every pending file once; write each one's report. The sensor turns ``accepted`` into runs.
    Whatever goes wrong with one file (even an unexpected error) is that file's report, and the others
    are handled all the same; files not started within ``budget_s`` are left for the next tick."""
    names, entries = pending(inbox, seen)
    out = Outcome(cursor={n: f for n, f in seen.items() if n in entries})
    deadline = time.monotonic() + budget_s
    for name in names:
        if time.monotonic() > deadline:
            out.deferred.append(name)
            continue
        body: dict[str, Any]
        try:
            accepted = handle(instance, store, inbox, name, entries[name])
        except RequestError as e:
            out.rejected[name] = e.problems
            body = {"errors": e.problems, "help": "fix the file and drop it again (same name is fine)"}
        except StoredFileDamaged as e:
            out.rejected[name] = [str(e)]
            body = {"errors": [str(e)], "help": "repair the movie as the error says, then drop the file again"}
        except Exception as e:  # noqa: BLE001 - one file's failure is its report, never the whole inbox's
            if isinstance(e, FileNotFoundError) and not inbox.exists(name):
                continue  # removed while we looked: nothing to do
            out.crashed[name] = redact(traceback.format_exc(limit=20)[-4000:], None)
            message = " ".join(str(e).split())
            problem = (f"{name}: could not be handled: {type(e).__name__}: "
                       f"{message if len(message) <= 200 else message[:197] + '...'}")
            out.rejected[name] = [problem]
            body = {"errors": [problem], "help": "an unexpected error (the movie_inbox sensor's log has the details); "
                                                 "drop the file again to retry"}
        else:
            out.accepted.append(accepted)
            body = {"movie": accepted.movie, "kind": accepted.kind, "run_key": accepted.run_key,
                    "changes": accepted.changes,
                    "follow": f"moviegen status {accepted.movie} (or the Dagster UI, job generate_movie)"}
        try:
            report(inbox, name, body)
        except Exception as e:  # noqa: BLE001 - e.g. a name too long for its report's name: logged instead
            out.unreported[name] = f"{type(e).__name__}: {e}"
        out.cursor[name] = entries[name].fingerprint
    return out
