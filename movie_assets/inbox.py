"""The inbox: movie requests and edits dropped as files, picked up by the ``movie_inbox`` sensor.

Where: ``MOVIEGEN_INBOX`` (a folder, or ``s3://bucket/prefix``); by default ``$DAGSTER_HOME/inbox``
on local storage, and the ``inbox/`` prefix beside the artifacts when storage is S3.

What it accepts:

* ``MOVIE-ID.yaml`` / ``.yml`` / ``.json`` — a new movie request (the same format as
  ``moviegen new``); the file name is the movie id.
* ``MOVIE-ID.edits.yaml`` (or ``MOVIE-ID.ANYTHING.edits.yaml``) — edits of an existing movie, a
  mapping of ``PATH: VALUE`` like ``moviegen edit --file`` (``null`` removes an override).

What it answers, beside each file: ``NAME.accepted.json`` (the movie, what changed, the run key) or
``NAME.error.json`` (every problem: the field, the value, what is allowed). A file is handled once
per content: the sensor's cursor remembers each file's fingerprint, and each generation it starts
has a run key made of the movie and the file's content hash, so a re-dropped file, a repeated tick
or a restarted daemon never registers or generates a movie twice. Replacing a file with different
content handles it again (an edits file can be re-used that way).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import yaml

from resources import ArtifactStore
from resources.storage import default_root

from .edits import UNSET
from .movies import load_movie_request, movie_exists
from .request import RequestError, parse_request, validate_movie_id, yaml_load

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
    home = os.environ.get("DAGSTER_HOME") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dagster_home")
    return os.path.join(home, "inbox")


def inbox_store() -> ArtifactStore:
    return ArtifactStore(root=inbox_root())


@dataclass
class Accepted:
    """A file that starts a generation."""

    name: str
    movie: str
    run_key: str
    kind: str  # "new" or "edit"
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


def _parse(name: str, raw: bytes) -> Any:
    text = raw.decode("utf-8")
    try:
        return json.loads(text) if name.endswith(".json") else yaml_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise RequestError([f"{name}: not valid {'JSON' if name.endswith('.json') else 'YAML'}: {e}"]) from None


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def handle(instance: dg.DagsterInstance, store: ArtifactStore, inbox: ArtifactStore, name: str) -> Accepted:
    """Register or edit the movie a file asks for and return the generation to request; raises
    RequestError naming every problem. Handling a file again is harmless: the request is already
    registered or the edit already applied, and the run key (movie + content) is the same, so
    Dagster does not start its run twice, while a tick that crashed before requesting it does."""
    from . import api

    raw = inbox.read(name)
    is_edit = name.endswith((".edits.yaml", ".edits.yml", ".edits.json"))
    movie = name.split(".", 1)[0]
    try:
        validate_movie_id(movie)
    except RequestError as e:
        raise RequestError([f"file name {name!r}: the part before the first '.' is the movie id; {e.problems[0]}"]) from None
    data = _parse(name, raw)
    if is_edit:
        if not movie_exists(instance, movie):
            raise RequestError([f"{name}: movie {movie!r} does not exist; drop a request {movie}.yaml first"])
        if not isinstance(data, dict):
            raise RequestError([f"{name}: expected a mapping of PATH: VALUE, got {type(data).__name__}"])
        result = api.edit(instance, store, movie, [(str(k), UNSET if v is None else v) for k, v in data.items()])
        changes = [{"path": c.path, "old": c.old, "new": c.new} for c in result.changes]
        return Accepted(name, movie, f"{movie}:edit:{_digest(raw)}", "edit", changes)
    request = parse_request(data)
    if movie_exists(instance, movie):
        if load_movie_request(store, movie) == request:
            return Accepted(name, movie, f"{movie}:new:{_digest(raw)}", "new")  # already registered
        raise RequestError([f"{name}: movie {movie!r} already exists with a different request; to change it, drop "
                            f"{movie}.edits.yaml with PATH: VALUE lines (see docs/sensors.md), or pick a new file name"])
    api.new_movie(instance, store, request, movie)
    return Accepted(name, movie, f"{movie}:new:{_digest(raw)}", "new")


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
