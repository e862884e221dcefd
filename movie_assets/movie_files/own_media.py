"""The user's own files in a movie's request: read or fetched once, checked and kept in the store.

A request or an edit names a file for a slot by a path or an http(s) URL (``OwnFile.source``). When the movie
is registered or edited, each file not stored yet is read (a path) or downloaded (a URL), checked
(``resources/runtime/own_media.py``) and written under its content hash (``layout.own_file_path``); the
request then holds what the check found and the hash, which is the slot's input version. Builds read the
stored copy only: a URL is never fetched again, and a worker never needs the user's disk.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from movie_assets.domain.request import MovieRequest, OwnFile, RequestError, own_source_kind, parse_request
from movie_assets.movie_files.layout import own_file_path
from resources.runtime.own_media import MAX_SECONDS, OwnMediaError, fetch, inspect, read_local
from resources.storage import ArtifactStore


class OwnFileMissing(RuntimeError):
    """A stored file of the user's that is gone or changed (the store was tampered with)."""


def _slot_seconds(path: str, kind: str) -> float | None:
    if kind == "clip":
        return MAX_SECONDS["clip"]
    if kind == "audio":
        return MAX_SECONDS["music"] if path == "music_file" else MAX_SECONDS["narration"]
    return None


def _kept_source(source: str) -> str:
    """What the request keeps of a URL: no user name, password, query or fragment (a signed URL's token is a
    secret, and the file is never fetched again)."""
    if own_source_kind(source) != "url":
        return source
    parts = urlsplit(source)
    if not parts.hostname:
        return source
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))


def read_own(store: ArtifactStore, movie: str, own: OwnFile) -> bytes:
    """The stored bytes of a file of the user's, checked against its hash; OwnFileMissing otherwise."""
    assert own.sha256 is not None
    path = own_file_path(movie, own.sha256, own.ext)
    try:
        data = store.read(path)
    except FileNotFoundError:
        raise OwnFileMissing(f"your file {own.name!r} is no longer in storage ({path}); give it again with `moviegen edit "
                             f"{movie} --set PATH=FILE`") from None
    if hashlib.sha256(data).hexdigest() != own.sha256:
        raise OwnFileMissing(f"your file {own.name!r} in storage ({path}) is not the file given (its content changed); give "
                             f"it again with `moviegen edit {movie} --set PATH=FILE`")
    return data


def store_own_files(store: ArtifactStore, movie: str, request: MovieRequest, *, base: str | Path | None = None,
                    local_files: bool = True, prefix: str = "") -> MovieRequest:
    """The request with every file of the user's that is not stored yet read (a path, relative to ``base``,
    else the current folder) or downloaded (a URL), checked and stored under its hash. A file already stored
    must be this movie's (there, with its size). ``local_files`` false (the service): a path is refused, only
    URLs are fetched. RequestError names each file that cannot be used (``prefix`` before each problem); nothing
    of the request changes then."""
    files = request.own_files()
    if not files:
        return request
    problems: list[str] = []
    stored: dict[str, dict[str, Any]] = {}
    for path, own, kind in files:
        try:
            if own.stored:
                assert own.sha256 is not None
                if store.size(own_file_path(movie, own.sha256, own.ext)) != own.bytes:
                    problems.append(f"{prefix}{path}: names a stored file ({own.sha256[:16]}) this movie does not have; "
                                    "allowed: a local file's path or an http(s) URL")
                continue
            stored[path] = _store_one(store, movie, own, kind, path, base, local_files)
        except OwnMediaError as e:
            problems.append(f"{prefix}{path}: {_shown(own.source)}: {e}")
    if problems:
        raise RequestError(problems)
    document = json.loads(json.dumps(request.to_document()))
    for path, value in stored.items():
        node = document
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return parse_request(document)


def _shown(source: str) -> str:
    return repr(source if len(source) <= 120 else source[:117] + "...")


def _store_one(store: ArtifactStore, movie: str, own: OwnFile, kind: str, path: str, base: str | Path | None,
               local_files: bool) -> dict[str, Any]:
    if own_source_kind(own.source) == "url":
        data = fetch(own.source, public_only=not local_files)  # a service fetches from the internet only
    else:
        if not local_files:
            raise OwnMediaError("a local path is refused here: the service does not read its own disk; allowed: an http(s) "
                                "URL of the file (the service downloads it once)")
        file = Path(own.source).expanduser()
        data = read_local(file if file.is_absolute() or base is None else Path(base) / file)
    facts = inspect(data, "clip" if kind == "clip" else kind, _slot_seconds(path, kind))
    sha = hashlib.sha256(data).hexdigest()
    done = OwnFile(source=_kept_source(own.source), sha256=sha, format=facts.format, bytes=len(data), width=facts.width,
                   height=facts.height, duration_ms=facts.duration_ms)
    store.write(own_file_path(movie, sha, done.ext), data, immutable=True)
    return done.model_dump(exclude_none=True)
