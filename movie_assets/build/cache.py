"""The build cache: every artifact a provider made is remembered under a key of exactly what it was
made from (its input versions and code version). A node whose inputs match reuses it with no call:
after a crash (made and stored, not yet recorded in Dagster) or when an edit is undone."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from movie_assets.build.code_versions import ARTIFACT_CODE_VERSIONS
from movie_assets.build.context import Produced
from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.inputs import build_key
from movie_assets.store.layout import cache_path
from resources.storage import ArtifactStore


def entry_path(movie: str, key: NodeKey, consumed: dict[str, str]) -> str:
    return cache_path(movie, key.asset, key.partition_suffix, build_key(consumed, ARTIFACT_CODE_VERSIONS[key.asset]))


def remember(store: ArtifactStore, path: str, key: NodeKey, uri: str, version: str, produced: Produced) -> None:
    call = produced.call
    entry = {
        "node": str(key), "uri": uri, "version": version, "ext": produced.ext, "mime": produced.mime, "prompt": produced.prompt,
        "width": produced.width, "height": produced.height, "duration_ms": produced.duration_ms,
        "meta": {k: v for k, v in produced.meta.items() if isinstance(v, bool | int | float | str)},
        "made_by": f"{call.provider}:{call.model}" if call else None, "made_at": time.time(),
    }
    store.write_text(path, json.dumps(entry))


def reuse(store: ArtifactStore, path: str) -> Produced | None:
    """The artifact the cache holds at ``path``, or None (nothing there, its file is gone, or its file
    no longer has the content it was remembered with: damaged files are never reused)."""
    try:
        entry: dict[str, Any] = json.loads(store.read(path))
        data = store.read(entry["uri"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if entry.get("version") and hashlib.sha256(data).hexdigest() != entry["version"]:
        return None
    return Produced(
        data, entry["ext"], entry["mime"], value=json.loads(data) if entry["ext"] == "json" else None,
        call=None, prompt=entry.get("prompt"), width=entry.get("width"), height=entry.get("height"),
        duration_ms=entry.get("duration_ms"),
        meta={**entry.get("meta", {}), "reused": f"made earlier by {entry.get('made_by')} from identical inputs"},
    )


@dataclass(frozen=True)
class Held:
    """What the cache holds for a node, without reading the artifact (plans)."""

    uri: str
    version: str
    metadata: dict[str, Any]


def lookup(store: ArtifactStore, path: str) -> Held | None:
    """The artifact the cache holds at ``path`` (its URI, data version and metadata), or None. Entries
    written before versions were kept in them are hashed from the artifact once."""
    try:
        entry: dict[str, Any] = json.loads(store.read(path))
        version = entry.get("version") or hashlib.sha256(store.read(entry["uri"])).hexdigest()
        if not store.exists(entry["uri"]):
            return None
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    metadata = {k: v for k, v in {"width": entry.get("width"), "height": entry.get("height"),
                                  "duration_ms": entry.get("duration_ms"), **entry.get("meta", {})}.items() if v is not None}
    return Held(entry["uri"], version, metadata)
