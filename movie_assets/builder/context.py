"""What a recipe gets (``RecipeContext``: the request, its provider clients, upstream artifacts)
and what it returns (``Produced``: the bytes to store and the metadata a person wants to see)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.records import ArtifactRecord
from movie_assets.domain.request import MovieRequest, OwnFile, Size, frame_size
from resources.providers.base import (
    CallInfo,
    ImageProvider,
    LLMProvider,
    Media,
    MusicProvider,
    SpeechProvider,
    TranscriptionProvider,
    VideoProvider,
)
from resources.runtime.secrets import redact
from resources.runtime.slots import Slots
from resources.settings import Settings


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class Produced:
    """One built artifact: its content (hashed into the data version) and its metadata."""

    data: bytes
    ext: str
    mime: str
    value: Any = None
    call: CallInfo | None = None
    prompt: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    preview: bytes | None = None  # a small JPEG shown in the Dagster UI

    @staticmethod
    def json(value: Any, call: CallInfo | None = None, prompt: str | None = None, **meta: Any) -> Produced:
        return Produced(canonical_json(value), "json", "application/json", value=value, call=call, prompt=prompt, meta=meta)

    @staticmethod
    def media(m: Media, prompt: str | None = None, **meta: Any) -> Produced:
        extra = dict(m.extra)
        if "words" in extra:  # when each word is spoken: kept as JSON text in the artifact's metadata
            extra["words"] = json.dumps(extra["words"], separators=(",", ":"), ensure_ascii=False)
        return Produced(m.data, m.ext, m.mime, call=m.call, prompt=prompt, meta={**extra, **meta},
                        width=m.width, height=m.height, duration_ms=m.duration_ms, preview=m.preview)


class UndeclaredRead(RuntimeError):
    """A recipe asked for a partition its artifact's row does not declare: the graph would not know
    that this partition depends on it (a missed rebuild)."""


@dataclass
class RecipeContext:
    """What a recipe may use: the request, the clients and the upstream artifacts. A recipe reads
    upstream partitions only through ``need`` / ``need_bytes`` / ``record`` / ``failure``, which refuse a
    partition outside the node's declared deps (its row's deps, by the blueprint's cardinality rules);
    its own previous version it may read (``record(key)``, ``need(key)`` of itself), and a pinned version
    of a picture that a value it read names (``load_version``: a reference picture the user approved,
    content-addressed). The other ``load_*`` fields are the engine's loaders behind ``need``."""

    movie: str
    request: MovieRequest
    clients: dict[str, Any]  # producer name -> the provider client it is routed to
    load_value: Callable[[NodeKey], Awaitable[Any]]
    load_bytes: Callable[[NodeKey], Awaitable[bytes]]
    load_record: Callable[[NodeKey], ArtifactRecord | None]
    load_failure: Callable[[NodeKey], str | None]
    limit: Callable[[str], Slots | asyncio.Semaphore]
    media_path: Callable[[str], Awaitable[Path]] | None = None  # an artifact's reference as a local file (renders)
    # An artifact's reference as artifacts store it: its path under the store's root (a value read from an
    # artifact made before may hold an absolute URI, maybe of a home since moved).
    ref: Callable[[str], str] = lambda uri: uri
    local: Slots | asyncio.Semaphore | None = None  # slots for CPU-heavy local work (renders)
    note: Callable[[NodeKey, str], None] = lambda key, message: None  # progress for the run's log (thread-safe)
    cancelled: threading.Event = field(default_factory=threading.Event)  # the build was stopped
    # Runs one provider call of a producer for a node within the budget caps (default: no caps).
    charge: Callable[[str, str, Callable[[], Awaitable[Any]]], Awaitable[Any]] = lambda producer, node, call: call()
    # {"message", "category", "suggestion"} of a node that failed (None: it did not).
    failure_info: Callable[[NodeKey], dict[str, str] | None] = lambda key: None
    placeholder: bool = False  # producing an offline placeholder for a partition whose provider failed
    # Recovery: the lower size a picture or clip is made at after its call failed at full settings (None: full).
    reduced_size: Size | None = None
    # The bytes of one version of a node's picture (a pinned reference, whatever the node's latest version).
    load_version: Callable[[NodeKey, str], Awaitable[bytes]] | None = None
    # The stored bytes of a file of the user's that the request names for a slot (checked against its hash).
    own_bytes: Callable[[OwnFile], Awaitable[bytes]] | None = None
    node: NodeKey | None = None  # the node being built (None: a context made by hand, unchecked)
    reads: frozenset[NodeKey] = frozenset()  # what it may read: its declared deps
    settings: Settings = field(default_factory=Settings)
    versions: Mapping[str, str] = field(default_factory=dict)  # each artifact's code version under ``settings``
    _shared: dict[Any, asyncio.Task[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Progress notes go to the run's log (Dagster's event log, the CLI): never with a secret in them.
        note = self.note
        self.note = lambda key, message: note(key, redact(message))

    @property
    def frame(self) -> tuple[int, int]:
        """The width and height pictures and clips are asked for: the request's frame, or the lower one
        recovery tries (``reduced_size``; the render scales it to the movie's frame)."""
        if self.reduced_size is None:
            return self.request.frame
        return frame_size(self.reduced_size, self.request.aspect_ratio)

    def bound(self, node: NodeKey, reads: frozenset[NodeKey]) -> RecipeContext:
        """This context for building ``node``, which may read ``reads`` (shared calls stay shared)."""
        return replace(self, node=node, reads=reads)

    def _check(self, key: NodeKey) -> None:
        if self.node is not None and key != self.node and key not in self.reads:
            declared = ", ".join(sorted(str(k) for k in self.reads)) or "nothing"
            raise UndeclaredRead(f"{self.node} read {key}, which is not among its declared deps ({declared}): "
                                 f"declare it in the {self.node.asset} row's deps")

    async def need(self, key: NodeKey) -> Any:
        """The JSON value of a declared dependency (or of the node's own previous version)."""
        self._check(key)
        return await self.load_value(key)

    async def need_bytes(self, key: NodeKey) -> bytes:
        self._check(key)
        return await self.load_bytes(key)

    def record(self, key: NodeKey) -> ArtifactRecord | None:
        """The latest record of a declared dependency (None: never built)."""
        self._check(key)
        return self.load_record(key)

    def failure(self, key: NodeKey) -> str | None:
        """Why a declared dependency failed, if it did."""
        self._check(key)
        return self.load_failure(key)

    def failure_detail(self, key: NodeKey) -> dict[str, str] | None:
        self._check(key)
        return self.failure_info(key)

    async def local_work(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run CPU-heavy work in a thread, within the machine's local-work slots."""
        if self.local is None:
            return await asyncio.to_thread(fn, *args)
        async with self.local:
            return await asyncio.to_thread(fn, *args)

    def llm(self, producer: str) -> LLMProvider:
        return self.clients[producer]

    def speech(self) -> SpeechProvider:
        return self.clients["AudioProducer"]

    def transcriber(self) -> TranscriptionProvider:
        return self.clients["NarrationTimingProducer"]

    def images(self, producer: str) -> ImageProvider:
        return self.clients[producer]

    def video(self, producer: str) -> VideoProvider:
        return self.clients[producer]

    def music(self) -> MusicProvider:
        return self.clients["MusicProducer"]

    def shared(self, group: Any, producer: str, factory: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        """One call for every node of a group (the m image prompts of a segment come from one call),
        holding one of the provider's in-flight slots for the call, not one per node."""
        if group not in self._shared:

            async def call() -> Any:
                async with self.limit(producer):
                    return await self.charge(producer, str(group), factory)

            self._shared[group] = asyncio.ensure_future(call())
        return self._shared[group]


