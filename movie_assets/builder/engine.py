"""The build engine: builds a set of artifact partitions concurrently, in dependency order.

Every node starts as soon as its dependencies are done; provider calls run concurrently within each
provider's in-flight limit; CPU-heavy local work runs in threads within the machine's local slots.
A paid call's answer is kept in the build cache the moment it arrives, on the engine's own threads,
before any local work on it (which may wait for a local slot); the artifact is stored as soon as it
is made, before its preview. A build killed in between makes the artifact from the kept answer
without calling again.
A failed node is recorded and only its dependents are held back; every other node is built. A node
scheduled only because something upstream was going to be rebuilt is skipped when that rebuild
produced identical content (the cascade stops). A failure is recorded as one line (message, category,
suggestion) and, for any failure but a provider's, its traceback as ``detail``: shown with --verbose and
kept in the run's Dagster log, never printed on its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import dataclasses
import functools
import hashlib
import io
import json
import logging
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from movie_assets.builder import cache
from movie_assets.builder.budget import Bill, Budget
from movie_assets.builder.code_versions import code_versions
from movie_assets.builder.recipes import RECIPES, Produced, RecipeContext
from movie_assets.builder.render.timelines import scratch_name
from movie_assets.domain.blueprint import PRODUCERS, Blueprint, NodeKey, ProviderKind, call_group, own_file
from movie_assets.domain.errors import for_movie
from movie_assets.domain.inputs import input_versions
from movie_assets.domain.plan import Prediction, Reason
from movie_assets.domain.records import ArtifactRecord, MovieState
from movie_assets.domain.recovery import Ask, lower_size, next_lower, step_param, steps_of
from movie_assets.domain.request import OwnFile, Strategy, frame_size
from movie_assets.movie_files.layout import answers_folder, artifact_path
from movie_assets.movie_files.own_media import read_own
from movie_assets.movie_files.reports import RunReport
from resources.providers.base import (
    ANSWERS,
    SUGGESTIONS,
    Answer,
    Answers,
    ErrorCategory,
    ProviderError,
    describe_failure,
    reducible,
)
from resources.providers.catalog import LIGHTER_MODELS
from resources.providers.offline.media import OFFLINE, OfflineLLM
from resources.runtime.disk import writing
from resources.runtime.media import jpeg_preview
from resources.runtime.monitor import (
    MEMORY_PER_JOB_MB,
    REMOTION_JOB_MB,
    AdaptiveSizer,
    MachineSnapshot,
    local_work_slots,
    snapshot,
)
from resources.runtime.scratch import new_scratch_dir, remove_scratch_dir
from resources.runtime.secrets import TEXT_LIMIT, redact
from resources.runtime.slots import PRIORITY, Slots
from resources.settings import RenderEngine, Settings, current
from resources.storage import ArtifactStore

log = logging.getLogger("moviegen.engine")


class ProviderClients(Protocol):
    """What the engine needs of the providers: each producer's client and each kind's limit, the
    offline client that makes a placeholder, and the price of a producer's call."""

    def in_flight(self, kind: ProviderKind) -> int: ...

    def for_producers(self, producers: set[str], local: Slots | asyncio.Semaphore) -> dict[str, Any]: ...

    def fallback(self, producer: str, local: Slots | asyncio.Semaphore) -> Any: ...

    def price(self, producer: str, width: int, height: int) -> tuple[str, str, float]: ...


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
    category: str = ErrorCategory.local.value
    suggestion: str = ""
    placeholder: bool = False  # an offline placeholder was built in its place (and is recorded as Built)
    detail: str = ""  # what the message leaves out (a traceback, a provider's page), for --verbose and the run's log


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
    errors: dict[NodeKey, dict[str, str]] = field(default_factory=dict)  # message, category, suggestion (, detail)
    fallbacks: list[NodeKey] = field(default_factory=list)  # built as offline placeholders
    degraded: dict[NodeKey, dict[str, str]] = field(default_factory=dict)  # built at reduced settings: from, to, reason
    retried: dict[NodeKey, str] = field(default_factory=dict)  # a render chunk made by its reduced retry: why, what it reduced
    call_log: list[dict[str, Any]] = field(default_factory=list)  # one entry per call made or reused
    reused: list[NodeKey] = field(default_factory=list)  # taken from the build cache, no call
    strategy: str = ""
    critical_path_s: float = 0.0  # of what it built, at the brief's median latencies
    slots: dict[str, Any] = field(default_factory=dict)  # how local and provider slots were used
    records: dict[NodeKey, ArtifactRecord] = field(default_factory=dict)  # what it built (not in the report)

    def to_report(self, movie: str, run_id: str) -> RunReport:
        return RunReport(
            movie=movie, run_id=run_id, built=[str(k) for k in self.built],
            failed={str(k): m for k, m in self.failed.items()}, skipped=[str(k) for k in self.skipped],
            provider_calls=dict(sorted(self.calls.items())), cost_usd=round(self.cost_usd, 6),
            seconds=round(self.seconds, 3), machine=self.machine.to_json() if self.machine else None,
            calls=self.call_log, errors={str(k): v for k, v in self.errors.items()},
            fallbacks=[str(k) for k in self.fallbacks], degraded={str(k): v for k, v in self.degraded.items()},
            retried={str(k): v for k, v in self.retried.items()}, time=time.time(),
            strategy=self.strategy, critical_path_s=round(self.critical_path_s, 3), slots=self.slots,
        )


UNKNOWN = "?"  # dry runs: the version of an artifact that only a call (or a render) can tell
KEEPERS = 4  # threads that keep paid answers (a store write and a ledger write each)
ADAPT_EVERY_S = 1.0  # the adaptive strategy re-reads the machine this often


def _thin(history: list[tuple[float, int, int]], keep: int = 200) -> list[list[float]]:
    """At most ``keep`` points of a slots history (seconds, capacity, in use), evenly spread, the last kept."""
    step = max(1, len(history) // keep)
    points = history[::step]
    if points[-1] != history[-1]:
        points.append(history[-1])
    return [list(p) for p in points]


def thumbnail(png: bytes) -> bytes:
    """A small JPEG of a picture, for the UI."""
    return jpeg_preview(Image.open(io.BytesIO(png)))


# The recipes that make a picture or a clip at ``ctx.frame``: what recovery can make at a lower size.
SIZED = frozenset({"segment_image", "starting_image", "text_to_video_clip", "image_to_video_clip"})


def _asked(client: Any, width: int, height: int) -> str:
    """What ``client`` asks its provider for at this frame (recovery lowers a size only where it asks less)."""
    asked = getattr(client, "asked_size", None)
    return str(asked(width, height)) if callable(asked) else f"{width}x{height}"


def content_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def predict(movie: str, blueprint: Blueprint, state: MovieState, store: ArtifactStore,
            targets: dict[NodeKey, str], settings: Settings | None = None) -> Prediction:
    """A dry run of a build of ``targets``: what it would build, reuse and call (no call, no write)."""
    engine = BuildEngine(movie=movie, blueprint=blueprint, state=state, store=store, clients=None,
                         emit=lambda item: None, dry=True, settings=settings)
    coroutine = engine.run(dict(targets))
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: no event loop in this thread
        summary = asyncio.run(coroutine)
    else:  # called from async code: run it on a loop of its own
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            summary = pool.submit(asyncio.run, coroutine).result()
    return Prediction(frozenset(summary.built), frozenset(summary.reused), frozenset(engine.calling),
                      dict(summary.calls), dict(engine.held))


class _Keeper(Answers):
    """Keeps a node's paid answer in the build cache the moment it arrives, on the build's own threads
    (never behind local work, whatever waits for a local slot), and settles its call's reservation at
    what it cost; or hands back the answer an earlier build kept (``recalled``: then no call is made)."""

    def __init__(self, store: ArtifactStore, path: str, key: NodeKey, threads: concurrent.futures.Executor,
                 bill: Bill | None = None, recalled: Answer | None = None):
        self.store, self.path, self.key, self.threads, self.bill, self._recalled = store, path, key, threads, bill, recalled
        self.kept = False

    def recalled(self) -> Answer | None:
        return self._recalled

    async def keep(self, answer: Answer) -> None:
        bill = self.bill
        if bill is not None:
            bill.keeping = True  # settled here, also when the build is cancelled while this runs

        def job() -> None:
            try:
                cache.keep_answer(self.store, self.path, self.key, answer, bill.id if bill is not None else None)
                self.kept = True
            finally:
                if bill is not None:
                    bill.settle(answer.call.cost_usd)

        await asyncio.get_running_loop().run_in_executor(self.threads, job)


class BuildEngine:
    def __init__(self, *, movie: str, blueprint: Blueprint, state: MovieState, store: ArtifactStore,
                 clients: ProviderClients | None, emit: Callable[[Built | Failed | Skipped | Logged], None],
                 budget: Budget | None = None, fallback: bool = False, dry: bool = False,
                 settings: Settings | None = None, strategy: Strategy | None = None):
        """``budget``: caps every call is charged against; ``fallback``: build an offline placeholder
        where a provider fails for good; ``dry``: build nothing, call nothing, write nothing, and
        predict what a build would do (``plan``): what costs nothing (overrides, derived artifacts,
        build-cache hits, the offline writer's answers) is evaluated, so a rebuild into identical content
        stops the cascade as it will in the build; what needs any other call or a render counts as changed."""
        self.movie = movie
        self.settings = settings if settings is not None else current()
        self.versions = code_versions(self.settings)
        self.offline = frozenset(p for p, route in self.settings.routes.items() if route.provider == "offline")
        self.blueprint = blueprint
        self.request = blueprint.request
        # Records as references under the store's root (records made before name absolute URIs, maybe of a
        # home since moved): what the build copies into artifacts (the timeline's sources) is then the same
        # wherever the home is.
        self.state = dataclasses.replace(state, records={k: dataclasses.replace(r, uri=store.ref(r.uri)) if r.uri else r
                                                         for k, r in state.records.items()})
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
        self.budget, self.fallback, self.dry = budget, fallback, dry
        # The build's strategy: the one asked for (CLI, run config), else the request's, else the setting.
        self.strategy = strategy or self.request.strategy or self.settings.strategy
        self.calling: set[NodeKey] = set()  # dry runs: nodes whose build would need a provider call
        self.held: dict[NodeKey, str] = {}  # dry runs: the build cache's artifact a node would reuse (its reference)
        self._failed_calls: set[tuple[str, NodeKey]] = set()  # calls that failed for good (logged once)
        self._damaged_uris = {r.uri for k, r in self.state.records.items() if k in state.damaged}
        self._answers: set[str] = set()  # the answers kept for this movie when the build started (paths)
        self._keepers: concurrent.futures.ThreadPoolExecutor | None = None

    def record(self, key: NodeKey) -> ArtifactRecord | None:
        return self._new.get(key) or self.state.records.get(key)

    def failure(self, key: NodeKey) -> str | None:
        if key in self._failed:
            return self._failed[key]
        if key in self._new:
            return None
        f = self.state.failures.get(key)
        return f.message if f else None

    def failure_info(self, key: NodeKey) -> dict[str, str] | None:
        if key in self.summary.errors:
            return self.summary.errors[key]
        if key in self._new:
            return None
        f = self.state.failures.get(key)
        if f is None:
            return None
        category = f.category or ErrorCategory.local.value
        return {"message": f.message, "category": category,
                "suggestion": f.suggestion or SUGGESTIONS.get(ErrorCategory(category), "")}

    async def _bytes(self, key: NodeKey) -> bytes:
        rec = self.record(key)
        if rec is None:
            raise ProviderError(f"{key} is not available", provider="storage", category=ErrorCategory.storage,
                                retryable=True)
        return await asyncio.to_thread(self.store.read, rec.uri)

    async def _version_bytes(self, key: NodeKey, version: str) -> bytes:
        """One version of a node's picture, at its content-addressed path (a reference the user approved)."""
        return await asyncio.to_thread(self.store.read, artifact_path(self.movie, key.asset, key.partition_suffix, version, "png"))

    async def _own_bytes(self, own: OwnFile) -> bytes:
        """A file of the user's, as stored when the request named it (never read from where it came from)."""
        return await asyncio.to_thread(read_own, self.store, self.movie, own)

    async def _value(self, key: NodeKey) -> Any:
        if key not in self._values:
            self._values[key] = json.loads(await self._bytes(key))
        return self._values[key]

    async def run(self, targets: dict[NodeKey, str]) -> BuildSummary:
        started = time.monotonic()
        strategy = Strategy.sequential if self.dry else self.strategy
        remotion = self.settings.render_engine is RenderEngine.remotion and any(
            self.blueprint.nodes[k].decl.engine_drawn for k in targets)
        sizer = AdaptiveSizer(job_mb=REMOTION_JOB_MB if remotion else MEMORY_PER_JOB_MB) if strategy is Strategy.adaptive else None
        if not self.dry:
            self.summary.machine = snapshot()
        cores = local_work_slots(self.summary.machine) if self.summary.machine else 1
        one_at_a_time = strategy is Strategy.sequential
        local = Slots(1 if one_at_a_time else sizer.size() if sizer else cores, "local")
        limits = {kind: Slots(1 if one_at_a_time or self.clients is None else self.clients.in_flight(kind), kind.value)
                  for kind in ProviderKind}
        self.slots: dict[ProviderKind | str, Slots] = {**limits, "local": local}
        # Sequential: one node is built at a time (its call, its local work), in priority order.
        gate = Slots(1, "node") if one_at_a_time and not self.dry else None
        resizing = asyncio.ensure_future(self._adapt(local, sizer)) if sizer is not None else None
        needed = {g[0] for k in targets if (g := call_group(self.request, k, self.offline)) is not None}
        budget = self.budget
        # Answers a build that stopped before finishing them kept (one listing; usually none).
        self._answers = set(await asyncio.to_thread(self.store.sizes, answers_folder(self.movie)))
        if not self.dry:
            self._keepers = concurrent.futures.ThreadPoolExecutor(KEEPERS, thread_name_prefix="moviegen-keep")

        async def charge(producer: str, node: str, call: Callable[[], Any]) -> Any:
            return await (budget.charge(producer, node, call) if budget is not None else call())

        shared_ctx = RecipeContext(
            movie=self.movie, request=self.request,
            clients=(self._dry_clients(needed) if self.dry
                     else self.clients.for_producers(needed, local) if self.clients is not None else {}),
            load_value=self._value, load_bytes=self._bytes, load_record=self.record, load_failure=self.failure,
            limit=lambda producer: limits[PRODUCERS[producer].kind], media_path=self._media_path, local=local,
            note=lambda key, message: self.emit(Logged(key, message)), cancelled=self.cancelled,
            charge=charge, failure_info=self.failure_info, load_version=self._version_bytes, ref=self.store.ref,
            own_bytes=self._own_bytes,
            settings=self.settings, versions=self.versions,
        )
        done: dict[NodeKey, asyncio.Future[bool]] = {k: asyncio.get_running_loop().create_future() for k in targets}

        async def build(key: NodeKey) -> None:
            PRIORITY.set(self.blueprint.priority[key])  # provider and local slots go first to the critical path
            node = self.blueprint.nodes[key]
            ctx = shared_ctx.bound(key, frozenset(node.deps))  # it reads its declared deps, nothing else
            changed_deps = False
            tolerant = node.decl.tolerant
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
            group = call_group(self.request, key, self.offline)
            # Provider calls, renders and the user's files fitted to their slot are remembered by what they were
            # made from (the build cache): a plan looks them up instead of fitting a clip again.
            cacheable = group is not None or node.decl.reusable or own_file(self.request, key) is not None
            cached = cache.entry_path(self.movie, key, consumed, self.versions) if cacheable else None
            # A node that owns its call keeps the call's answer under the same key until its artifact is cached.
            answer_at = (cache.answer_entry_path(self.movie, key, consumed, self.versions)
                         if cached and group is not None and group[1] == key else None)
            if self.dry:
                changed = await self._predict(ctx, key, group, cached, answer_at)
                done[key].set_result(changed)
                return
            placeholder = False
            keeper: _Keeper | None = None
            try:
                if gate is not None:
                    await gate.acquire()
                try:
                    produced = await asyncio.to_thread(cache.reuse, self.store, cached) if cached else None
                    if produced is None:
                        if answer_at is not None:
                            assert self._keepers is not None
                            kept = (await asyncio.to_thread(cache.recall_answer, self.store, answer_at)
                                    if answer_at in self._answers else None)
                            keeper = _Keeper(self.store, answer_at, key, self._keepers, recalled=kept)
                        produced = await self._produce(ctx, key, group, limits, keeper)
                finally:
                    if gate is not None:
                        gate.release()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every failure is recorded on its partition
                if keeper is not None and keeper.recalled() is not None:
                    # Made from a kept answer and failed: the answer goes, the next build calls again.
                    await asyncio.to_thread(cache.drop_answer, self.store, keeper.path)
                info = self._describe(key, e)
                self._log_failed_call(key, group, e, ctx.clients)
                # Recovery: once more at the next lower settings, before a placeholder or a failure.
                produced = await self._reduced(ctx, key, group, limits, e, info, gate)
                if produced is not None:
                    self.summary.degraded[key] = {k: str(produced.meta[f"degraded_{k}"]) for k in ("from", "to", "reason")}
                elif self.fallback and node.decl.placeholder:
                    produced = await self._placeholder(ctx, key, group, info)
                if produced is None:
                    self._fail(key, info["message"], category=info["category"], suggestion=info["suggestion"],
                               detail=info.get("detail", ""))
                    done[key].set_result(False)
                    return
                placeholder = not produced.meta.get("degraded")
                failure = info | {"message": info["message"] + "; an offline placeholder takes its place until it is rebuilt"}
            try:
                recalled = keeper is not None and keeper.recalled() is not None and not placeholder
                if recalled:
                    # Answered (and paid) in a build that stopped before storing it: no call in this build.
                    produced.meta["reused"] = f"answered earlier by {produced.call.provider}:{produced.call.model}" if produced.call \
                        else "answered earlier"
                    self.summary.reused.append(key)
                    self._log_call(key, group[0], produced, cached=True)  # type: ignore[index]
                elif produced.call is not None and group is not None and group not in self._called and not placeholder:
                    self._called.add(group)
                    self.summary.calls[group[0]] += 1
                    self.summary.cost_usd += produced.call.cost_usd
                    self._log_call(key, group[0], produced, cached=False)
                elif "reused" in produced.meta and group is not None:
                    self.summary.reused.append(key)
                    self._log_call(key, group[0], produced, cached=True)
                version = content_version(produced.data)
                relpath = artifact_path(self.movie, key.asset, key.partition_suffix, version, produced.ext)
                # A damaged file at this path is replaced (the path names the content it must have).
                replace = reason == Reason.damaged or key in self.state.damaged
                await asyncio.to_thread(functools.partial(self.store.write, relpath, produced.data, immutable=not replace))
                # A placeholder or a degraded artifact is never remembered: the next build calls the provider again
                # (at full settings).
                if cached and ("reused" not in produced.meta or recalled) and not placeholder and not produced.meta.get("degraded"):
                    await asyncio.to_thread(cache.remember, self.store, cached, key, relpath, version, produced)
                    if keeper is not None and (keeper.kept or recalled):  # the cache has the artifact now
                        await asyncio.to_thread(cache.drop_answer, self.store, keeper.path)
                # The preview (shown in the UI) after the artifact is stored: it may wait for a local slot.
                if produced.ext == "png" and produced.preview is None:
                    async with local:
                        produced.preview = await asyncio.to_thread(thumbnail, produced.data)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - e.g. storage refusing the write, a full disk
                info = self._describe(key, e)
                self._fail(key, info["message"], category=info["category"], suggestion=info["suggestion"],
                           detail=info.get("detail", ""))
                done[key].set_result(False)
                return
            old = self.state.records.get(key)
            # The record as the catalog will read it back from its materialization: its plain metadata (what
            # later nodes of this build read, and what the generation records after it).
            meta = {k: v for k, v in produced.meta.items() if isinstance(v, bool | int | float | str)} | {
                k: v for k, v in {"width": produced.width, "height": produced.height, "duration_ms": produced.duration_ms,
                                  "fallback": True if placeholder else None}.items() if v is not None}
            record = ArtifactRecord(key, version, relpath, 0, "", time.time(), meta, consumed, self.versions[key.asset])
            self._new[key] = record
            if produced.value is not None:
                self._values[key] = produced.value
            changed = old is None or old.version != version
            self.summary.built.append(key)
            if produced.meta.get("render_retry"):
                self.summary.retried[key] = str(produced.meta["render_retry"])
            self.emit(Built(key, record, produced, reason, changed, consumed))
            if placeholder:
                self.summary.fallbacks.append(key)
                self.summary.failed[key] = failure["message"]
                self.summary.errors[key] = failure
                self.emit(Failed(key, failure["message"], category=failure["category"],
                                 suggestion=failure["suggestion"], placeholder=True, detail=failure.get("detail", "")))
            done[key].set_result(changed)

        try:
            await asyncio.gather(*(build(k) for k in self.blueprint.order if k in targets))
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        finally:
            if resizing is not None:
                resizing.cancel()
            if self._keepers is not None:
                self._keepers.shutdown(wait=True)  # answers being kept are written (a short local write each)
            if self._scratch is not None:
                remove_scratch_dir(self._scratch)
        self.summary.seconds = time.monotonic() - started
        if not self.dry:
            self.summary.records = dict(self._new)
        self.summary.strategy = strategy.value
        # of what it built by a call or a render (a build-cache hit costs no latency)
        self.summary.critical_path_s = self.blueprint.critical_path_s(set(self.summary.built) - set(self.summary.reused))
        self.summary.slots = {"local": local.usage() | {"history": _thin(local.history)},
                              **{kind.value: limits[kind].usage() for kind in ProviderKind if limits[kind].peak},
                              **({"readings": sizer.readings[-50:]} if sizer else {})}
        return self.summary

    @staticmethod
    async def _adapt(local: Slots, sizer: AdaptiveSizer) -> None:
        """The adaptive strategy: re-read the machine while building and resize the local slots."""
        while True:
            await asyncio.sleep(ADAPT_EVERY_S)
            local.resize(await asyncio.to_thread(sizer.size))

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
            self._scratch = new_scratch_dir("moviegen-build-")
        dest = self._scratch / scratch_name(uri)
        part = dest.with_name(dest.name + ".part")
        data = await asyncio.to_thread(self.store.read, uri)
        with writing(part):
            part.write_bytes(data)
        part.replace(dest)
        return dest

    async def _produce(self, ctx: RecipeContext, key: NodeKey, group: tuple[str, NodeKey] | None,
                       limits: dict[ProviderKind, Slots], keeper: _Keeper | None) -> Produced:
        """Build a node: one provider call within its kind's limit and the budget when the node owns
        its call, its answer kept by ``keeper`` as soon as it arrives; from the answer ``keeper`` recalls
        (an earlier build's) with no call, slot or charge; a call shared by several nodes takes its own
        slot (``ctx.shared``); else no call."""
        if group is None or group[1] != key:
            return await RECIPES[key.asset](ctx, key)
        if keeper is not None and keeper.recalled() is not None:
            return await self._answering(keeper, ctx, key)
        budget = self.budget.reserve(group[0], str(key)) if self.budget is not None else contextlib.nullcontext()
        async with limits[PRODUCERS[group[0]].kind], budget as bill:
            if keeper is not None:
                keeper.bill = bill
            produced = await self._answering(keeper, ctx, key)
            if bill is not None:
                bill.cost = produced.call.cost_usd if produced.call is not None else 0.0
            return produced

    @staticmethod
    async def _answering(keeper: _Keeper | None, ctx: RecipeContext, key: NodeKey) -> Produced:
        """The node's recipe, its paid call answered through ``keeper`` (``ANSWERS``)."""
        token = ANSWERS.set(keeper)
        try:
            return await RECIPES[key.asset](ctx, key)
        finally:
            ANSWERS.reset(token)

    async def _reduced(self, ctx: RecipeContext, key: NodeKey, group: tuple[str, NodeKey] | None,
                       limits: dict[ProviderKind, Slots], e: BaseException, failure: dict[str, str],
                       gate: Slots | None) -> Produced | None:
        """Recovery with reduced settings: a node whose own call failed for a reason less work can fix (a
        ``Limit``: the provider's size limit, a model out of memory, a timeout, too many steps) is made once
        more at the next lower settings (domain/recovery.py: the next lower size of a picture or clip, else
        fewer steps, else the provider's lighter model: the script, texts and narration audio too). What it
        makes is marked ``degraded`` (from, to, why), charged, never cached: the next generation plans the
        node again at full settings. None: not reducible, nothing lower to try, or the retry failed too (its
        failure is added to ``failure``'s message)."""
        limit = reducible(e)
        if limit is None or group is None or group[1] != key or self.clients is None:
            return None
        client = ctx.clients.get(group[0])
        params = dict(getattr(client, "params", {}) or {})
        model = str(getattr(client, "model", ""))
        full = Ask(ctx.request.picture_size, steps_of(params), model,
                   LIGHTER_MODELS.get(str(getattr(client, "name", "")), {}).get(model, ""))
        w, h = ctx.frame
        lower = lower_size(full.size)
        # The size only of a picture or clip, and only where a lower frame asks the provider less.
        same = frozenset({"size"}) if key.asset not in SIZED or lower is None or \
            _asked(client, w, h) == _asked(client, *frame_size(lower, ctx.request.aspect_ratio)) else frozenset()
        reduction = next_lower(full, limit.value, failure["message"], same_call=same)
        if reduction is None:
            return None
        step = step_param(params)  # the parameter steps_of read
        if reduction.lowered == "steps" and step is not None:
            client = copy.copy(client)
            client.params = params | {step: reduction.to.steps}
        elif reduction.lowered == "model":
            client = copy.copy(client)
            client.model = reduction.to.model
        reduced = dataclasses.replace(ctx, clients={**ctx.clients, group[0]: client},
                                      reduced_size=reduction.to.size if reduction.lowered == "size" else None)
        self.emit(Logged(key, f"failed at {reduction.full.describe(reduction.lowered, ctx.request.aspect_ratio)} "
                              f"({limit.value}): trying once at {reduction.to.describe(reduction.lowered, ctx.request.aspect_ratio)}"))
        try:
            if gate is not None:
                await gate.acquire()
            try:
                produced = await self._produce(reduced, key, group, limits, None)  # no answer kept under the full key
            finally:
                if gate is not None:
                    gate.release()
        except asyncio.CancelledError:
            raise
        except Exception as again:  # noqa: BLE001 - the first failure stands, saying what the retry met
            failure["message"] += (f"; tried again at {reduction.to.describe(reduction.lowered, ctx.request.aspect_ratio)}: "
                                   + describe_failure(again)["message"])
            return None
        produced.meta |= reduction.metadata(ctx.request.aspect_ratio)
        return produced

    async def _placeholder(self, ctx: RecipeContext, key: NodeKey, group: tuple[str, NodeKey] | None,
                           failure: dict[str, str]) -> Produced | None:
        """An offline placeholder for a node whose provider failed for good (None: it cannot have one,
        or the placeholder failed too, or a real earlier version exists: the timeline keeps using it).
        Marked in its metadata; never charged, never cached."""
        producer = group[0] if group is not None else None
        if producer is None or self.clients is None or failure["category"] == ErrorCategory.upstream.value:
            return None
        previous = self.state.records.get(key)
        if previous is not None and not previous.metadata.get("fallback"):
            return None
        try:
            offline = self.clients.fallback(producer, ctx.local or asyncio.Semaphore(1))
            stand_in = dataclasses.replace(ctx, clients={**ctx.clients, producer: offline}, placeholder=True,
                                           charge=lambda p, n, call: call(), _shared={})
            produced = await RECIPES[key.asset](stand_in, key)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - no placeholder: the partition stays a gap (the failure says why)
            why = describe_failure(e)["message"]
            failure["detail"] = redact(f"{failure.get('detail', '')}\nno placeholder for {key}: {why}\n"
                                       + "".join(traceback.format_exception(e)), TEXT_LIMIT).lstrip()
            log.debug("no placeholder for %s: %s", key, why)
            return None
        produced.meta |= {"fallback": True, "fallback_category": failure["category"],
                          "fallback_for": failure["message"][:500]}
        return produced

    def _dry_clients(self, producers: set[str]) -> dict[str, Any]:
        """Dry runs: the offline writer for the LLM producers routed to it. Its answers are free and the same
        for the same question, so a plan asks it too (counting the call the build will make) and knows what a
        new research or script says: exactly what changes below it is planned, not everything."""
        return {p: OfflineLLM() for p in producers
                if PRODUCERS[p].kind is ProviderKind.llm and self.settings.routes[p].provider == OFFLINE}

    async def _predict(self, ctx: RecipeContext, key: NodeKey, group: tuple[str, NodeKey] | None,
                       cached: str | None, answer_at: str | None = None) -> bool:
        """Dry runs: what building ``key`` would do, without a call or a write. Returns whether its
        content would change (unknown counts as changed). An answer kept for its call (``answer_at``)
        makes it without a call, into content only the build can tell."""
        deps_known = not any((r := self.record(d)) is not None and r.version.startswith(UNKNOWN)
                             for d in self.blueprint.nodes[key].deps)
        version, uri, metadata, value = None, "", {}, None
        held, asked = None, False
        if deps_known and cached is not None:
            held = await asyncio.to_thread(cache.lookup, self.store, cached)
            if held is not None and held.uri in self._damaged_uris:
                held = None  # the cache points at the damaged file itself: only a call makes it again
            if held is not None:
                version, uri, metadata = held.version, held.uri, held.metadata
                self.held[key] = held.uri
                self.summary.reused.append(key)
        answered = deps_known and held is None and answer_at is not None and answer_at in self._answers
        if answered:
            self.summary.reused.append(key)
        node = self.blueprint.nodes[key]
        # Costs nothing: evaluated (an override, a derived artifact, the timeline; a prompt whose question
        # was answered before, e.g. after a look edit; an LLM routed to the offline writer, whose call is
        # counted). A node that needs any other call fails here (no clients).
        evaluate = cached is None or (held is None and node.producer is not None and node.producer.kind is ProviderKind.llm)
        if deps_known and evaluate:
            try:
                produced = await RECIPES[key.asset](ctx, key)
                version, value = content_version(produced.data), produced.value
                metadata = {k: v for k, v in {"width": produced.width, "height": produced.height,
                                              "duration_ms": produced.duration_ms}.items() if v is not None}
                asked = produced.call is not None  # the offline writer answered: the build asks it too
            except Exception:  # noqa: BLE001 - not predictable: counted as changed
                log.debug("dry run cannot evaluate %s:\n%s", key, redact(traceback.format_exc(), TEXT_LIMIT))
        if version is None or asked:
            version = version or f"{UNKNOWN}{key}"
            if group is not None and not answered:
                self.calling.add(key)
            if group is not None and group not in self._called and not answered:
                self._called.add(group)
                self.summary.calls[group[0]] += 1
        old = self.state.records.get(key)
        self._new[key] = ArtifactRecord(key, version, uri or (old.uri if old else ""), 0, "", time.time(),
                                        metadata, {}, self.versions[key.asset])
        if value is not None:
            self._values[key] = value
        self.summary.built.append(key)
        return old is None or old.version != version

    def _log_failed_call(self, key: NodeKey, group: tuple[str, NodeKey] | None, e: BaseException, clients: dict[str, Any]) -> None:
        """A call that reached its provider and failed for good, with the retries and time it took (for
        the metrics); not a call refused before it was sent (budget, configuration) or never made."""
        if (group is None or group in self._failed_calls or not isinstance(e, ProviderError)
                or e.category in (ErrorCategory.upstream, ErrorCategory.budget, ErrorCategory.configuration, ErrorCategory.storage)):
            return
        self._failed_calls.add(group)
        self.summary.call_log.append({
            "node": str(key), "producer": group[0], "provider": e.provider, "model": str(getattr(clients.get(group[0]), "model", "")),
            "latency_s": round(e.latency_s, 3) if e.latency_s is not None else None, "retries": e.retries,
            "cost_usd": 0.0, "cached": False, "fallback": False, "failed": True,
        })

    def _log_call(self, key: NodeKey, producer: str, produced: Produced, cached: bool) -> None:
        call = produced.call
        self.summary.call_log.append({
            "node": str(key), "producer": producer, "provider": call.provider if call else "cache",
            "model": call.model if call else str(produced.meta.get("reused", "")),
            "latency_s": round(call.latency_s, 3) if call else 0.0, "retries": call.retries if call else 0,
            "cost_usd": call.cost_usd if call else 0.0, "cached": cached, "fallback": False,
        })

    def _describe(self, key: NodeKey, e: BaseException) -> dict[str, str]:
        """The failure's message (one line), category and suggestion, the suggestion naming this movie; and
        as ``detail``, what the line leaves out: for any error but a provider's, its traceback; for a
        provider's, the rest of its message (a provider's error page), if any."""
        info = describe_failure(e)
        info["suggestion"] = for_movie(info["suggestion"], self.movie)
        if not isinstance(e, ProviderError):
            said = getattr(e, "detail", "")  # a tool's last messages (a full disk's ffmpeg), not in the traceback
            info["detail"] = redact("".join(traceback.format_exception(e)) + (f"{said}\n" if isinstance(said, str) and said else ""),
                                    TEXT_LIMIT)
            log.debug("%s failed: %s\n%s", key, info["message"], info["detail"])
        elif len(str(e).strip().splitlines()) > 1:
            info["detail"] = redact(str(e).strip(), TEXT_LIMIT)
        return info

    def _fail(self, key: NodeKey, message: str, upstream: bool = False, category: str | None = None,
              suggestion: str | None = None, detail: str = "") -> None:
        category = category or (ErrorCategory.upstream.value if upstream else ErrorCategory.local.value)
        suggestion = redact(for_movie(suggestion or SUGGESTIONS[ErrorCategory(category)], self.movie), TEXT_LIMIT)
        message = redact(message, TEXT_LIMIT)  # stored in reports, revisions, events and shown: never a secret
        detail = redact(detail, TEXT_LIMIT)
        self._failed[key] = message
        self.summary.failed[key] = message
        self.summary.errors[key] = {"message": message, "category": category, "suggestion": suggestion,
                                    **({"detail": detail} if detail else {})}
        self.emit(Failed(key, message, upstream, category, suggestion, detail=detail))
