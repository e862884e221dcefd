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
import io
import json
import logging
import shutil
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from movie_assets.build import cache
from movie_assets.build.code_versions import ARTIFACT_CODE_VERSIONS
from movie_assets.build.producers import PRODUCE, ProduceContext, Produced
from movie_assets.build.render.timelines import scratch_name
from movie_assets.domain.blueprint import PRODUCERS, Blueprint, NodeKey, ProviderKind, call_group
from movie_assets.domain.inputs import input_versions
from movie_assets.domain.plan import Reason
from movie_assets.domain.records import ArtifactRecord, MovieState
from movie_assets.store.layout import artifact_path
from movie_assets.store.reports import RunReport
from resources.providers.base import ProviderError
from resources.runtime.media import jpeg_preview
from resources.runtime.monitor import MachineSnapshot, local_work_slots, snapshot
from resources.storage import ArtifactStore

log = logging.getLogger("moviegen.engine")


class ProviderClients(Protocol):
    """What the engine needs of the providers: each producer's client and each kind's limit."""

    def in_flight(self, kind: ProviderKind) -> int: ...

    def for_producers(self, producers: set[str], local: asyncio.Semaphore) -> dict[str, Any]: ...


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


@dataclass(frozen=True)
class Logged:
    """Progress of a long build of one node (a render), for the run's log."""

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

    def to_report(self, movie: str, run_id: str) -> RunReport:
        return RunReport(
            movie=movie, run_id=run_id, built=[str(k) for k in self.built],
            failed={str(k): m for k, m in self.failed.items()}, skipped=[str(k) for k in self.skipped],
            provider_calls=dict(sorted(self.calls.items())), cost_usd=round(self.cost_usd, 6),
            seconds=round(self.seconds, 3), machine=self.machine.to_json() if self.machine else None,
        )


# Aggregates that are still written when some inputs are missing or failed (they list the gaps).
TOLERANT = frozenset({"segment_visuals", "timeline"})


def thumbnail(png: bytes) -> bytes:
    """A small JPEG of a picture, for the UI."""
    return jpeg_preview(Image.open(io.BytesIO(png)))


def content_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BuildEngine:
    def __init__(self, *, movie: str, blueprint: Blueprint, state: MovieState, store: ArtifactStore,
                 clients: ProviderClients, emit: Callable[[Built | Failed | Skipped | Logged], None]):
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
        self._scratch: Path | None = None
        self._downloads: dict[str, asyncio.Future[Path]] = {}
        self.cancelled = threading.Event()  # set when the build is stopped: renders in threads stop too

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
        limits = {kind: asyncio.Semaphore(self.clients.in_flight(kind)) for kind in ProviderKind}
        needed = {g[0] for k in targets if (g := call_group(self.request, k)) is not None}
        ctx = ProduceContext(
            movie=self.movie, request=self.request, clients=self.clients.for_producers(needed, local),
            load_value=self._value, load_bytes=self._bytes, load_record=self.record, load_failure=self.failure,
            limit=lambda producer: limits[PRODUCERS[producer].kind], media_path=self._media_path, local=local,
            note=lambda key, message: self.emit(Logged(key, message)), cancelled=self.cancelled,
        )
        done: dict[NodeKey, asyncio.Future[bool]] = {k: asyncio.get_running_loop().create_future() for k in targets}

        async def build(key: NodeKey) -> None:
            node = self.blueprint.nodes[key]
            changed_deps = False
            tolerant = key.asset in TOLERANT
            for dep in node.deps:
                if dep in done:
                    changed = await done[dep]
                    # An aggregate that lists gaps changes when a dependency fails, and when one that had
                    # failed is built again, even into its previous content (the gap is gone).
                    healed = dep in self.state.failures and dep not in self._failed
                    changed_deps = changed_deps or changed or (tolerant and (dep in self._failed or healed))
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
                # Provider calls and renders are remembered by what they were made from (the build cache).
                cacheable = group is not None or node.decl.reusable
                cached = cache.entry_path(self.movie, key, consumed) if cacheable else None
                produced = await asyncio.to_thread(cache.reuse, self.store, cached) if cached else None
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
                relpath = artifact_path(self.movie, key.asset, key.partition_suffix, version, produced.ext)
                uri = await asyncio.to_thread(functools.partial(self.store.write, relpath, produced.data, immutable=True))
                if cached and "reused" not in produced.meta:
                    await asyncio.to_thread(cache.remember, self.store, cached, key, uri, produced)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every failure is recorded on its partition
                if not isinstance(e, ProviderError):
                    log.error("unexpected error building %s:\n%s", key, traceback.format_exc())
                self._fail(key, f"{type(e).__name__}: {e}" if not isinstance(e, ProviderError) else str(e))
                done[key].set_result(False)
                return
            old = self.state.records.get(key)
            # What later nodes of this build read from a record (the catalog gives them all metadata).
            meta = {k: v for k, v in {
                "width": produced.width, "height": produced.height, "duration_ms": produced.duration_ms,
                "words": produced.meta.get("words"),
            }.items() if v is not None}
            record = ArtifactRecord(key, version, uri, 0, "", time.time(), meta, consumed, ARTIFACT_CODE_VERSIONS[key.asset])
            self._new[key] = record
            if produced.value is not None:
                self._values[key] = produced.value
            changed = old is None or old.version != version
            self.summary.built.append(key)
            self.emit(Built(key, record, produced, reason, changed, consumed))
            done[key].set_result(changed)

        try:
            await asyncio.gather(*(build(k) for k in self.blueprint.order if k in targets))
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
        self.summary.seconds = time.monotonic() - started
        return self.summary

    async def _media_path(self, uri: str) -> Path:
        """A local file of an artifact: the file itself on local storage, else a copy in this build's
        scratch folder (removed when the build ends)."""
        path = self.store.local_path(uri)
        if path is not None:
            return path
        if uri not in self._downloads:  # one download per file, however many nodes wait for it
            self._downloads[uri] = asyncio.ensure_future(self._download(uri))
        return await self._downloads[uri]

    async def _download(self, uri: str) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="moviegen-build-"))
        dest = self._scratch / scratch_name(uri)
        part = dest.with_name(dest.name + ".part")
        part.write_bytes(await asyncio.to_thread(self.store.read, uri))
        part.replace(dest)
        return dest

    def _fail(self, key: NodeKey, message: str, upstream: bool = False) -> None:
        self._failed[key] = message
        self.summary.failed[key] = message
        self.emit(Failed(key, message, upstream))
