"""Provider limits that hold across every step, run and process on one machine.

Two limits per provider (or model): calls in flight, and requests per minute.

* In flight: N lock files (``fcntl`` exclusive locks); a call holds one for its duration. The OS
  releases a lock when its process dies, so a crash never leaks a slot.
* Rate: ``pyrate-limiter``'s sliding-window log in a SQLite bucket with a file lock, shared by all
  processes. The same limiter takes a Postgres or Redis bucket for a deployment spanning machines
  (see docs/deployment.md).

Both live under ``$DAGSTER_HOME/limits`` by default, so two movies generating at once share the
budget.

Where a model has tighter limits than its provider (a video model allowing 2 predictions at once),
``MOVIEGEN_MODEL_LIMITS`` adds a throttle for that model, taken before the provider's::

    MOVIEGEN_MODEL_LIMITS="replicate:minimax/video-01=2/30,openai:gpt-image-1=4/50"   # IN_FLIGHT/PER_MINUTE

Across machines (``MOVIEGEN_LIMITS=postgres``), calls in flight are slots held as PostgreSQL
advisory locks (one connection per call in flight, reused), so every machine of a deployment shares
them and a dead process releases its slots with its connections. The per-minute rate stays per
machine. (Dagster's own pools were tried for this and measured over their limit under concurrent
claims; see docs/deployment.md.)
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from pyrate_limiter import Duration, Limiter, Rate, SQLiteBucket

from resources.runtime.paths import dagster_home


def default_state_dir() -> Path:
    return dagster_home() / "limits"


def _state_folder(key: str, state_dir: Path | None) -> Path:
    folder = (state_dir or default_state_dir()) / key.replace("/", "_").replace(":", "_")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class RateLimit:
    """Requests per minute for one key, shared by every process on this machine: pyrate-limiter's
    sliding-window log in a SQLite bucket with a file lock."""

    def __init__(self, key: str, requests_per_minute: int, folder: Path, poll_s: float):
        self.key, self.poll_s = key, poll_s
        bucket = SQLiteBucket.init_from_file(
            [Rate(requests_per_minute, Duration.MINUTE)], table="rate", db_path=str(folder / "rate.sqlite"),
            use_file_lock=True,
        )
        self._limiter = Limiter(bucket)

    async def acquire(self) -> None:
        while not self._limiter.try_acquire(self.key, blocking=False):
            await asyncio.sleep(self.poll_s)


class Throttle:
    """Limits for one provider key (``openai``, ``replicate:owner/model``)."""

    def __init__(self, key: str, max_in_flight: int, requests_per_minute: int | None = None,
                 state_dir: Path | None = None, poll_s: float = 0.02):
        self.key = key
        self.max_in_flight = max_in_flight
        self.poll_s = poll_s
        folder = _state_folder(key, state_dir)
        self._slots = [folder / f"slot-{i:03d}.lock" for i in range(max_in_flight)]
        self._rate = RateLimit(key, requests_per_minute, folder, poll_s * 5) if requests_per_minute else None

    def _try_slot(self) -> int | None:
        for path in self._slots:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        return None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold an in-flight slot (and a rate token) for one call; yields the seconds waited."""
        started = time.monotonic()
        while (fd := self._try_slot()) is None:
            await asyncio.sleep(self.poll_s)
        try:
            if self._rate is not None:
                await self._rate.acquire()
            yield time.monotonic() - started
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class PgThrottle:
    """Calls in flight limited across machines with PostgreSQL advisory locks: slot ``i`` of key K is
    the session lock (hash(K), i), held on its own connection for the call. A process that dies drops
    its connections and with them its slots. The per-minute rate of :class:`Throttle` stays local."""

    _idle: dict[str, list[Any]] = {}
    _idle_lock = threading.Lock()

    def __init__(self, url: str, key: str, max_in_flight: int, requests_per_minute: int | None = None,
                 state_dir: Path | None = None, poll_s: float = 0.05):
        self.url = url.replace("postgresql+psycopg2://", "postgresql://")
        self.key, self.max_in_flight, self.poll_s = key, max_in_flight, poll_s
        self.lock_id = int.from_bytes(hashlib.sha256(f"moviegen:{key}".encode()).digest()[:4], "big", signed=True)
        self._rate = (RateLimit(key, requests_per_minute, _state_folder(key, state_dir), poll_s * 5)
                      if requests_per_minute else None)

    def _connection(self) -> Any:
        with self._idle_lock:
            idle = self._idle.setdefault(self.url, [])
            if idle:
                return idle.pop()
        import psycopg2  # noqa: PLC0415 - only with MOVIEGEN_LIMITS=postgres

        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        return conn

    def _try(self) -> tuple[Any, int] | None:
        conn = self._connection()
        with conn.cursor() as cur:
            for i in range(self.max_in_flight):
                cur.execute("select pg_try_advisory_lock(%s, %s)", (self.lock_id, i))
                if cur.fetchone()[0]:
                    return conn, i
        self._release(conn, None)
        return None

    def _release(self, conn: Any, slot: int | None) -> None:
        try:
            if slot is not None:
                with conn.cursor() as cur:
                    cur.execute("select pg_advisory_unlock(%s, %s)", (self.lock_id, slot))
            with self._idle_lock:
                self._idle.setdefault(self.url, []).append(conn)
        except Exception:  # noqa: BLE001 - a broken connection: its locks went with it
            conn.close()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        started = time.monotonic()
        while (held_slot := await asyncio.to_thread(self._try)) is None:
            await asyncio.sleep(self.poll_s)
        conn, i = held_slot
        try:
            if self._rate is not None:
                await self._rate.acquire()
            yield time.monotonic() - started
        finally:
            await asyncio.to_thread(self._release, conn, i)


def make_throttle(key: str, max_in_flight: int, requests_per_minute: int | None) -> Throttle | PgThrottle:
    """The throttle ``MOVIEGEN_LIMITS`` asks for: ``local`` (default: lock files on this machine) or
    ``postgres`` (advisory locks in the PostgreSQL at ``MOVIEGEN_LIMITS_URL``, else ``DAGSTER_PG_URL``:
    every machine of a deployment shares the limit)."""
    mode = os.environ.get("MOVIEGEN_LIMITS", "local").strip() or "local"
    if mode == "local":
        return Throttle(key, max_in_flight, requests_per_minute)
    if mode != "postgres":
        raise ValueError(f"MOVIEGEN_LIMITS={mode!r}: allowed: local, postgres")
    url = os.environ.get("MOVIEGEN_LIMITS_URL") or os.environ.get("DAGSTER_PG_URL") or ""
    if not url:
        raise ValueError("MOVIEGEN_LIMITS=postgres needs MOVIEGEN_LIMITS_URL or DAGSTER_PG_URL "
                         "(postgresql+psycopg2://USER:PASSWORD@HOST:5432/DB)")
    return PgThrottle(url, key, max_in_flight, requests_per_minute)


@asynccontextmanager
async def held(*throttles: Throttle | PgThrottle | None) -> AsyncIterator[None]:
    """Hold a slot of each throttle, in order (a model's before its provider's, so a call waiting for
    its model never holds a provider slot another model could use)."""
    async with AsyncExitStack() as stack:
        for throttle in throttles:
            if throttle is not None:
                await stack.enter_async_context(throttle.slot())
        yield


def parse_model_limits(text: str | None) -> dict[str, dict[str, tuple[int, int]]]:
    """``provider:model=IN_FLIGHT/PER_MINUTE,...`` -> provider -> model -> (in flight, per minute)."""
    limits: dict[str, dict[str, tuple[int, int]]] = {}
    for entry in (e.strip() for e in (text or "").split(",")):
        if not entry:
            continue
        target, _, value = entry.partition("=")
        provider, _, model = target.strip().partition(":")
        in_flight, _, rpm = value.strip().partition("/")
        if provider not in ("openai", "replicate") or not model or not in_flight.isdigit() or not rpm.isdigit() \
                or int(in_flight) < 1 or int(rpm) < 1:
            raise ValueError(f"MOVIEGEN_MODEL_LIMITS entry {entry!r}: expected PROVIDER:MODEL=IN_FLIGHT/PER_MINUTE with "
                             "PROVIDER openai or replicate and whole numbers of 1 or more, e.g. replicate:minimax/video-01=2/30")
        limits.setdefault(provider, {})[model] = (int(in_flight), int(rpm))
    return limits
