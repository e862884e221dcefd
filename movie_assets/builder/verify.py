"""Is every recorded artifact still what was built? A build system that trusts a file someone truncated
or deleted keeps pointing the timeline at it; this finds such files so the plan rebuilds them.

Two depths:

* quick (every ``plan`` and ``generate``): each recorded file exists and has the size recorded when it
  was built -- one listing of the movie's folder (one request per thousand objects on S3);
* full (``moviegen verify``, ``--verify``): each file is read and its SHA-256 compared with its data
  version, which is the hash of its content.

A record names its file by its path under the store's root; an absolute URI in a record made before is
re-rooted by the store (a home copied or moved is checked where it is now). A record whose file lives in
another store (a URI this store cannot place) cannot be checked from here and counts as intact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.records import ArtifactRecord
from movie_assets.movie_files.layout import movie_folder
from resources.storage import ArtifactStore


def _recorded_size(record: ArtifactRecord) -> int | None:
    value = record.metadata.get("bytes")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def find_damaged(store: ArtifactStore, movie: str, records: Iterable[ArtifactRecord], full: bool = False) -> dict[NodeKey, str]:
    """Node -> what is wrong with its stored artifact, for every record whose file is missing, has
    another size than recorded, or (``full``) no longer hashes to its data version."""
    records = [r for r in records if r.uri]
    if not records:
        return {}
    sizes = store.sizes(movie_folder(movie))
    damaged: dict[NodeKey, str] = {}
    for record in records:
        rel = store.rel_of(record.uri)
        if rel is None:
            continue
        where = store.uri(rel)
        size = sizes.get(rel)
        if size is None:
            damaged[record.key] = f"its file is missing: {where}"
            continue
        expected = _recorded_size(record)
        if expected is not None and size != expected:
            damaged[record.key] = f"its file has {size} bytes, {expected} were written: {where}"
            continue
        if full and record.version:
            try:
                digest = hashlib.sha256(store.read(rel)).hexdigest()
            except FileNotFoundError:
                damaged[record.key] = f"its file is missing: {where}"
                continue
            if digest != record.version:
                damaged[record.key] = f"its content changed since it was built (sha256 {digest[:16]}…, recorded {record.version[:16]}…): {where}"
    return damaged
