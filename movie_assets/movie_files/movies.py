"""A movie's stored request: the current version of what the user asked for.

Every saved version is also kept as a copy numbered by the edit that made it (0: as registered), so a
damaged ``request.json`` can be restored (``repair_request``) instead of leaving the movie unusable.
"""

from __future__ import annotations

import json

from movie_assets.domain.errors import MovieNotFound, StoredFileDamaged
from movie_assets.domain.request import MovieRequest, RequestError, parse_request
from movie_assets.movie_files.edits_log import edit_count
from movie_assets.movie_files.layout import request_copies_folder, request_copy_path, request_path
from resources.storage import ArtifactStore


def _parse_stored(data: bytes) -> MovieRequest:
    """The request in a stored file; ValueError saying what is wrong with it."""
    try:
        document = json.loads(data)
        if isinstance(document, dict):
            # Stored before movies had a look: it stays without one (its pictures stay as they are) until
            # the user turns it on (``consistent_look: true``). Every request stored since says which.
            document.setdefault("consistent_look", False)
            # Likewise stored before research: its script stays as it was made (``research: true`` turns it on).
            document.setdefault("research", False)
        return parse_request(document)
    except RequestError as e:
        raise ValueError("; ".join(e.problems[:3])) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not valid JSON ({e})") from None
    except RecursionError:
        raise ValueError("nested too deeply to be a request") from None


def load_movie_request(store: ArtifactStore, movie: str) -> MovieRequest:
    """The movie's current request; MovieNotFound, or StoredFileDamaged saying how to repair it."""
    path = request_path(movie)
    try:
        data = store.read(path)
    except FileNotFoundError:
        if not store.list(request_copies_folder(movie)):
            raise MovieNotFound(movie) from None
        data = b""  # registered (its copies are there) but the file is gone
    try:
        if not data:
            raise ValueError("the file is missing")
        return _parse_stored(data)
    except ValueError as e:
        raise StoredFileDamaged(
            f"movie {movie!r}: its stored request {store.uri(path)} is damaged ({e}). Repair it: "
            f"`moviegen repair {movie}` restores the latest intact copy, or `moviegen repair {movie} --request FILE` "
            "stores FILE as its request", path) from None


def save_movie_request(store: ArtifactStore, movie: str, request: MovieRequest, seq: int = 0) -> str:
    """Store the request as the movie's current one, and its copy for edit ``seq`` (0: registration)."""
    text = json.dumps(request.to_document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    store.write_text(request_copy_path(movie, seq), text)
    return store.write_text(request_path(movie), text)


def repair_request(store: ArtifactStore, movie: str, request: MovieRequest | None = None) -> str:
    """Restore a damaged ``request.json``: with ``request``, store it; else from the copy of the latest
    edit that is intact. Returns what was done; StoredFileDamaged when no intact copy exists."""
    copies = sorted(store.list(request_copies_folder(movie)), reverse=True)
    try:
        _parse_stored(store.read(request_path(movie)))
    except (ValueError, FileNotFoundError):
        pass
    else:
        raise ValueError(f"movie {movie!r}: its stored request is intact; nothing to repair (change it with `moviegen edit`)")
    if request is not None:
        seq = edit_count(store, movie)
        save_movie_request(store, movie, request, seq)
        return f"stored the given request as the request of movie {movie!r} (as of edit {seq})"
    skipped = []
    for name in copies:
        try:
            restored = _parse_stored(store.read(f"{request_copies_folder(movie)}/{name}"))
        except (ValueError, FileNotFoundError):
            skipped.append(name)
            continue
        seq = int(name.split(".")[0])
        save_movie_request(store, movie, restored, seq)
        lost = f"; the copies after it were damaged too ({', '.join(skipped)}): edits after edit {seq} are lost" if skipped else ""
        return f"restored the request of movie {movie!r} as of " + (f"edit {seq}" if seq else "its registration") + lost
    raise StoredFileDamaged(
        f"movie {movie!r}: no intact copy of its request is left; store one with "
        f"`moviegen repair {movie} --request FILE`", request_copies_folder(movie))


def require_stored(store: ArtifactStore, movie: str) -> None:
    """MovieNotFound unless the movie's request is stored (every registered movie has one)."""
    if not store.exists(request_path(movie)):
        raise MovieNotFound(movie)
