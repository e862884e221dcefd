"""The build cache: every artifact a provider made is remembered under a key of exactly what it was
made from (its input versions and code version). A node whose inputs match reuses it with no call:
after a crash (made and stored, not yet recorded in Dagster) or when an edit is undone.

A paid call's answer is kept under the same key the moment it arrives (``keep_answer``), before any
local work on it (conforming a picture to the frame, transcoding) and whatever waits for a local slot:
a build killed in between makes the artifact from the kept answer (``recall_answer``) without calling
again. The answer is dropped once its artifact is remembered.

An entry names its artifact by its path under the store's root (``uri``; entries made before hold an
absolute URI, which the store re-roots when the home was copied or moved). Its key is made of data
versions, content hashes, so it is the same wherever the home is."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from movie_assets.builder.context import Produced
from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.inputs import build_key
from movie_assets.movie_files.layout import answer_path, answers_folder, cache_path
from resources.providers.base import Answer, CallInfo
from resources.storage import ArtifactStore


def entry_path(movie: str, key: NodeKey, consumed: dict[str, str], versions: Mapping[str, str]) -> str:
    """Where the build cache keeps what ``key`` made from ``consumed`` at its code version (``versions``)."""
    return cache_path(movie, key.asset, key.partition_suffix, build_key(consumed, versions[key.asset]))


def answer_entry_path(movie: str, key: NodeKey, consumed: dict[str, str], versions: Mapping[str, str]) -> str:
    """Where a paid call's answer for ``key`` made from ``consumed`` at its code version is kept."""
    return answer_path(movie, key.asset, key.partition_suffix, build_key(consumed, versions[key.asset]))


def keep_answer(store: ArtifactStore, path: str, key: NodeKey, answer: Answer, reservation: str | None = None) -> None:
    """Keep a paid call's answer at ``path``: its files first, then the entry naming them (with their hashes,
    the call and the budget reservation it settles), so an entry is only ever there with its files."""
    files = []
    for i, data in enumerate(answer.files):
        name = f"{path.removesuffix('.json')}.{i}.bin"
        store.write(name, data)
        files.append({"path": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    entry = {"node": str(key), "files": files, "call": dataclasses.asdict(answer.call), "meta": answer.meta,
             "reservation": reservation, "kept_at": time.time()}
    store.write_text(path, json.dumps(entry))


def recall_answer(store: ArtifactStore, path: str) -> Answer | None:
    """The answer kept at ``path`` (None: none, or a file of it is gone or damaged: the call is made again)."""
    try:
        entry: dict[str, Any] = json.loads(store.read(path))
        files = tuple(store.read(f["path"]) for f in entry["files"])
        if any(hashlib.sha256(data).hexdigest() != f["sha256"] for data, f in zip(files, entry["files"], strict=True)):
            return None
        return Answer(files, CallInfo(**entry["call"]), dict(entry.get("meta") or {}))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def drop_answer(store: ArtifactStore, path: str) -> None:
    """Remove a kept answer: its entry first (an answer is never recalled without its files), then its files."""
    try:
        entry: dict[str, Any] = json.loads(store.read(path))
    except (FileNotFoundError, ValueError):
        return
    store.delete(path)
    for f in entry.get("files", []) if isinstance(entry, dict) else []:
        if isinstance(f, dict) and isinstance(f.get("path"), str):
            store.delete(f["path"])


def answered_reservations(store: ArtifactStore, movie: str) -> dict[str, float]:
    """Budget reservation id -> what its call cost, for every answer kept for ``movie`` and not yet dropped:
    calls that answered, which a killed build may have left unsettled."""
    out = {}
    for rel in store.sizes(answers_folder(movie)):
        if not rel.endswith(".json"):
            continue
        try:
            entry = json.loads(store.read(rel))
            if entry.get("reservation"):
                out[str(entry["reservation"])] = float(entry["call"]["cost_usd"])
        except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return out


def remember(store: ArtifactStore, path: str, key: NodeKey, relpath: str, version: str, produced: Produced) -> None:
    """Remember at ``path`` that ``key`` made the artifact at ``relpath`` (a path under the root)."""
    call = produced.call
    entry = {
        "node": str(key), "uri": relpath, "version": version, "ext": produced.ext, "mime": produced.mime, "prompt": produced.prompt,
        "width": produced.width, "height": produced.height, "duration_ms": produced.duration_ms,
        "meta": {k: v for k, v in produced.meta.items() if isinstance(v, bool | int | float | str)},
        "made_by": f"{call.provider}:{call.model}" if call else (
            f"your file {produced.meta.get('file')}" if produced.meta.get("source") == "your file" else None),
        "made_at": time.time(),
        "bytes": len(produced.data),  # plans check the file still has it (a cut file is not reusable)
        "take": int(produced.meta.get("take", 0)),  # the take (re-roll) it is: ``moviegen takes`` lists them
    }
    store.write_text(path, json.dumps(entry))


@dataclass(frozen=True)
class Take:
    """One artifact the build cache holds for a node: a take (re-roll), made from exact inputs."""

    take: int
    uri: str  # the artifact's reference: its path under the store's root
    version: str
    made_at: float | None
    made_by: str | None
    prompt: str | None
    entry: str  # the cache entry's path


def takes(store: ArtifactStore, movie: str, key: NodeKey) -> list[Take]:
    """Every artifact the build cache holds for a node (entries written before takes are take 0), oldest
    first; an entry whose artifact file is gone is left out."""
    folder = cache_path(movie, key.asset, key.partition_suffix, "-").rsplit("/", 1)[0]
    out = []
    for name in store.list(folder):
        if not name.endswith(".json"):
            continue
        path = f"{folder}/{name}"
        try:
            entry: dict[str, Any] = json.loads(store.read(path))
            if not store.exists(entry["uri"]):
                continue
            out.append(Take(int(entry.get("take") or entry.get("meta", {}).get("take") or 0), store.ref(entry["uri"]),
                            entry.get("version") or "", entry.get("made_at"), entry.get("made_by"), entry.get("prompt"), path))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda t: (t.made_at or 0.0, t.take))


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

    uri: str  # the artifact's reference: its path under the store's root
    version: str
    metadata: dict[str, Any]


def lookup(store: ArtifactStore, path: str) -> Held | None:
    """The artifact the cache holds at ``path`` (its reference, data version and metadata), or None (also when
    its file is gone or has another size than was written). Entries written before versions were kept in
    them are hashed from the artifact once."""
    try:
        entry: dict[str, Any] = json.loads(store.read(path))
        version = entry.get("version") or hashlib.sha256(store.read(entry["uri"])).hexdigest()
        size = store.size(entry["uri"])
        if size is None or entry.get("bytes") is not None and size != entry["bytes"]:
            return None  # gone, or cut short: the build would not reuse it either
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    metadata = {k: v for k, v in {"width": entry.get("width"), "height": entry.get("height"),
                                  "duration_ms": entry.get("duration_ms"), **entry.get("meta", {})}.items() if v is not None}
    return Held(store.ref(entry["uri"]), version, metadata)
