"""Slots: an asyncio semaphore that hands a freed slot to the waiter with the highest priority (FIFO
among equals), whose capacity can change while it is in use, and which remembers how many slots were
in use over time.

The build engine gives each node's task its priority (``PRIORITY``, the node's longest remaining
critical path), so provider slots and local-work slots go first to the work the movie waits on; the
adaptive strategy resizes the local slots from the machine's readings while it builds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

# The priority of the work the current task does (higher first); set per node by the build engine.
PRIORITY: ContextVar[float] = ContextVar("moviegen_priority", default=0.0)


class Slots:
    def __init__(self, capacity: int, name: str = ""):
        self.name = name
        self._capacity = max(1, int(capacity))
        self._used = 0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._started = time.monotonic()
        # (seconds since made, capacity, in use) at every change of either: the slots used over time.
        self.history: list[tuple[float, int, int]] = [(0.0, self._capacity, 0)]
        self.peak = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def in_use(self) -> int:
        return self._used

    @property
    def waiting(self) -> int:
        return sum(1 for *_, f in self._waiters if not f.done())

    def resize(self, capacity: int) -> None:
        """A new capacity (at least 1); work already holding a slot keeps it."""
        capacity = max(1, int(capacity))
        if capacity != self._capacity:
            self._capacity = capacity
            self._note()
            self._wake()

    async def acquire(self) -> None:
        if self._used < self._capacity and not self.waiting:
            self._take()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-PRIORITY.get(), next(self._seq), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # handed a slot, then cancelled: give it back
                self.release()
            raise

    def release(self) -> None:
        self._used -= 1
        self._note()
        self._wake()

    def _take(self) -> None:
        self._used += 1
        self.peak = max(self.peak, self._used)
        self._note()

    def _wake(self) -> None:
        while self._waiters and self._used < self._capacity:
            *_, future = heapq.heappop(self._waiters)
            if future.done():  # its waiter was cancelled
                continue
            self._take()
            future.set_result(None)

    def _note(self) -> None:
        entry = (round(time.monotonic() - self._started, 3), self._capacity, self._used)
        if self.history[-1][1:] != entry[1:]:
            self.history.append(entry)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()

    def usage(self) -> dict[str, object]:
        """How the slots were used: capacity (first, least, most), peak in use, and the time-weighted mean in use."""
        end = round(time.monotonic() - self._started, 3)
        points = [*self.history, (end, self._capacity, self._used)]
        span = sum(b[0] - a[0] for a, b in zip(points, points[1:], strict=False))
        busy = sum((b[0] - a[0]) * a[2] for a, b in zip(points, points[1:], strict=False))
        capacities = [c for _, c, _ in self.history]
        return {"name": self.name, "capacity_first": capacities[0], "capacity_min": min(capacities),
                "capacity_max": max(capacities), "peak_in_use": self.peak,
                "mean_in_use": round(busy / span, 3) if span > 0 else 0.0, "changes": len(self.history) - 1}


async def local_work(slots: Slots | asyncio.Semaphore | None, fn: Callable[..., T], *args: Any) -> T:
    """Run CPU-heavy work in a thread, within the machine's local-work slots (None: at once)."""
    if slots is None:
        return await asyncio.to_thread(fn, *args)
    async with slots:
        return await asyncio.to_thread(fn, *args)
