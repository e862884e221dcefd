"""The build engine: builds a set of artifact partitions concurrently, in dependency order.

Every node starts as soon as its dependencies are done; provider calls run concurrently within each
provider's in-flight limit; CPU-heavy local work runs in threads within the machine's local slots.
A failed node is recorded and only its dependents are held back; every other node is built. A node
scheduled only because something upstream was going to be rebuilt is skipped when that rebuild
produced identical content (the cascade stops).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resources import (
    ArtifactStore,
    ImagesResource,
    LLMResource,
    MusicResource,
    OpenAIResource,
    ReplicateResource,
    SpeechResource,
    VideoResource,
    local_work_slots,
)
from resources.media import jpeg_preview
from resources.monitor import MachineSnapshot, snapshot
from resources.providers import ProviderError
from resources.routing import PRODUCER_KINDS

from .blueprint import PRODUCERS, Blueprint, NodeKey, ProviderKind, call_group
from .catalog import ArtifactRecord, MovieState
from .codeversions import ARTIFACT_CODE_VERSIONS
from .producers import PRODUCE, ProduceContext, Produced
from .versions import cache_relpath, input_versions

log = logging.getLogger("moviegen.engine")


class Reason:
    missing = "missing"
    stale = "stale"
    failed = "failed"
    upstream = "upstream"  # an upstream artifact is rebuilt in the same generation
    requested = "requested"  # asked for explicitly (a UI/CLI run of that partition)


@dataclass(frozen=True)
class Built:
    key: NodeKey
    record: ArtifactRecord
    produced: Produced
    reason: str
    changed: bool
    inputs: dict[str, str]  # per dependency asset: hash of the versions this build read


@dataclass(frozen=True)
class Failed:
    key: NodeKey
    message: str
    upstream: bool = False


@dataclass(frozen=True)
class Skipped:
    key: NodeKey
    message: str


@dataclass
class BuildSummary:
    built: list[NodeKey] = field(default_factory=list)
    failed: dict[NodeKey, str] = field(default_factory=dict)
    skipped: list[NodeKey] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    seconds: float = 0.0
    machine: MachineSnapshot | None = None


@dataclass
class Clients:
    llm: LLMResource
    speech: SpeechResource
    images: ImagesResource
    video: VideoResource
    music: MusicResource
    openai: OpenAIResource | None = None
    replicate: ReplicateResource | None = None

    def for_producers(self, producers: set[str], local: asyncio.Semaphore) -> dict[str, Any]:
        """The client each producer is routed to; a missing key fails here, before any call."""
        kinds = {"llm": self.llm, "speech": self.speech, "images": self.images, "video": self.video, "music": self.music}
        sessions: dict[str, object] = {}
        connections = {name: r for name, r in (("openai", self.openai), ("replicate", self.replicate)) if r is not None}
        return {p: kinds[PRODUCER_KINDS[p]].client(p, local, connections, sessions) for p in sorted(producers)}


# Aggregates that are still written when some inputs are missing or failed (they list the gaps).
TOLERANT = frozenset({"segment_visuals", "timeline"})


def thumbnail(png: bytes) -> bytes:
    """A small JPEG of a picture, for the UI."""
    import io

    from PIL import Image

    return jpeg_preview(Image.open(io.BytesIO(png)))


def content_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BuildEngine:
    def __init__(self, *, movie: str, blueprint: Blueprint, state: MovieState, store: ArtifactStore,
                 clients: Clients, emit: Callable[[Built | Failed | Skipped], None]):
        self.movie = movie
        self.blueprint = blueprint
        self.request = blueprint.request
        self.state = state
        self.store = store
        self.clients = clients
        self.emit = emit
        self.summary = BuildSummary()
        self._values: dict[NodeKey, Any] = {}
        self._new: dict[NodeKey, ArtifactRecord] = {}
        self._failed: dict[NodeKey, str] = {}
        self._called: set[tuple[str, NodeKey]] = set()

    def record(self, key: NodeKey) -> ArtifactRecord | None:
        return self._new.get(key) or self.state.records.get(key)

    def failure(self, key: NodeKey) -> str | None:
        if key in self._failed:
            return self._failed[key]
        if key in self._new:
            return None
        f = self.state.failures.get(key)
        return f.message if f else None

    async def _bytes(self, key: NodeKey) -> bytes:
        rec = self.record(key)
        if rec is None:
            raise ProviderError(f"{key} is not available", provider="storage", retryable=True)
        return await asyncio.to_thread(self.store.read, rec.uri)

    async def _value(self, key: NodeKey) -> Any:
        if key not in self._values:
            self._values[key] = json.loads(await self._bytes(key))
        return self._values[key]

    async def run(self, targets: dict[NodeKey, str]) -> BuildSummary:
        started = time.monotonic()
        self.summary.machine = snapshot()
        local = asyncio.Semaphore(local_work_slots(self.summary.machine))
        c = self.clients
        limits = {
            ProviderKind.llm: asyncio.Semaphore(c.llm.max_in_flight),
            ProviderKind.speech: asyncio.Semaphore(c.speech.max_in_flight),
            ProviderKind.image: asyncio.Semaphore(c.images.max_in_flight),
            ProviderKind.video: asyncio.Semaphore(c.video.max_in_flight),
            ProviderKind.music: asyncio.Semaphore(c.music.max_in_flight),
        }
        needed = {g[0] for k in targets if (g := call_group(self.request, k)) is not None}
        ctx = ProduceContext(
            movie=self.movie, request=self.request, clients=c.for_producers(needed, local),
            load_value=self._value, load_bytes=self._bytes, load_record=self.record, load_failure=self.failure,
            limit=lambda producer: limits[PRODUCERS[producer].kind],
        )
        done: dict[NodeKey, asyncio.Future[bool]] = {k: asyncio.get_running_loop().create_future() for k in targets}

        async def build(key: NodeKey) -> None:
            node = self.blueprint.nodes[key]
            changed_deps = False
            tolerant = key.asset in TOLERANT
            for dep in node.deps:
                if dep in done:
                    changed = await done[dep]
                    changed_deps = changed_deps or changed or (tolerant and dep in self._failed)
                    if dep in self._failed and not tolerant:
                        self._fail(key, f"upstream {dep} failed: {self._failed[dep]}", upstream=True)
                        done[key].set_result(False)
                        return
                elif self.record(dep) is None and not tolerant:
                    self._fail(key, f"upstream {dep} is missing", upstream=True)
                    done[key].set_result(False)
                    return
            reason = targets[key]
            if reason == Reason.upstream and not changed_deps and self.record(key) is not None:
                self.summary.skipped.append(key)
                self.emit(Skipped(key, "upstream rebuilt with identical content"))
                done[key].set_result(False)
                return
            consumed = input_versions(self.blueprint, key, lambda d: (r.version if (r := self.record(d)) else None))
            try:
                producer = node.producer
                group = call_group(self.request, key)
                cache = self._cache_relpath(key, consumed) if group is not None else None
                produced = await self._reuse(key, cache) if cache else None
                if produced is not None:
                    pass  # built before from exactly these inputs: no provider call
                elif producer is not None and group is not None and group[1] == key:
                    async with limits[producer.kind]:
                        produced = await PRODUCE[key.asset](ctx, key)
                else:  # no call, or a call shared by several nodes (it takes its own slot)
                    produced = await PRODUCE[key.asset](ctx, key)
                if produced.call is not None and group is not None and group not in self._called:
                    self._called.add(group)
                    self.summary.calls[group[0]] += 1
                    self.summary.cost_usd += produced.call.cost_usd
                if produced.ext == "png" and produced.preview is None:
                    async with local:
                        produced.preview = await asyncio.to_thread(thumbnail, produced.data)
                version = content_version(produced.data)
                relpath = self.store.artifact_relpath(self.movie, key.asset, key.partition_suffix, version, produced.ext)
                uri = await asyncio.to_thread(functools.partial(self.store.write, relpath, produced.data, immutable=True))
                if cache and produced.call is not None:
                    await asyncio.to_thread(self._remember, cache, key, uri, produced)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every failure is recorded on its partition
                if not isinstance(e, ProviderError):
                    log.error("unexpected error building %s:\n%s", key, traceback.format_exc())
                self._fail(key, f"{type(e).__name__}: {e}" if not isinstance(e, ProviderError) else str(e))
                done[key].set_result(False)
                return
            old = self.state.records.get(key)
            meta = {k: v for k, v in {
                "width": produced.width, "height": produced.height, "duration_ms": produced.duration_ms,
            }.items() if v is not None}
            record = ArtifactRecord(key, version, uri, 0, "", time.time(), meta, consumed, ARTIFACT_CODE_VERSIONS[key.asset])
            self._new[key] = record
            if produced.value is not None:
                self._values[key] = produced.value
            changed = old is None or old.version != version
            self.summary.built.append(key)
            self.emit(Built(key, record, produced, reason, changed, consumed))
            done[key].set_result(changed)

        await asyncio.gather(*(build(k) for k in self.blueprint.order if k in targets))
        self.summary.seconds = time.monotonic() - started
        return self.summary

    # Build cache: every artifact a provider made is remembered under a key of exactly what it was
    # made from (its input versions and code version). A node whose inputs match reuses it with no
    # call: after a crash (made, stored, but not yet recorded in Dagster) or when an edit is undone.

    def _cache_relpath(self, key: NodeKey, consumed: dict[str, str]) -> str:
        return cache_relpath(self.movie, key, consumed, ARTIFACT_CODE_VERSIONS[key.asset])

    def _remember(self, cache: str, key: NodeKey, uri: str, produced: Produced) -> None:
        call = produced.call
        entry = {
            "node": str(key), "uri": uri, "ext": produced.ext, "mime": produced.mime, "prompt": produced.prompt,
            "width": produced.width, "height": produced.height, "duration_ms": produced.duration_ms,
            "meta": {k: v for k, v in produced.meta.items() if isinstance(v, bool | int | float | str)},
            "made_by": f"{call.provider}:{call.model}" if call else None, "made_at": time.time(),
        }
        self.store.write_text(cache, json.dumps(entry))

    async def _reuse(self, key: NodeKey, cache: str) -> Produced | None:
        def load() -> tuple[dict[str, Any], bytes] | None:
            try:
                entry = json.loads(self.store.read(cache))
                return entry, self.store.read(entry["uri"])
            except (FileNotFoundError, ValueError, KeyError):
                return None

        found = await asyncio.to_thread(load)
        if found is None:
            return None
        entry, data = found
        return Produced(
            data, entry["ext"], entry["mime"], value=json.loads(data) if entry["ext"] == "json" else None,
            call=None, prompt=entry.get("prompt"), width=entry.get("width"), height=entry.get("height"),
            duration_ms=entry.get("duration_ms"),
            meta={**entry.get("meta", {}), "reused": f"made earlier by {entry.get('made_by')} from identical inputs"},
        )

    def _fail(self, key: NodeKey, message: str, upstream: bool = False) -> None:
        self._failed[key] = message
        self.summary.failed[key] = message
        self.emit(Failed(key, message, upstream))
