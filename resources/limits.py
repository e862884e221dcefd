"""Provider limits that hold across every step, run and process on one machine.

Two limits per provider (or model): calls in flight, and requests per minute.

* In flight: N lock files (``fcntl`` exclusive locks); a call holds one for its duration. The OS
  releases a lock when its process dies, so a crash never leaks a slot.
* Rate: ``pyrate-limiter``'s sliding-window log in a SQLite bucket with a file lock, shared by all
  processes. The same limiter takes a Postgres or Redis bucket for a deployment spanning machines
  (see docs/deployment.md).

Both live under ``$DAGSTER_HOME/limits`` by default, so two movies generating at once share the
budget.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pyrate_limiter import Duration, Limiter, Rate, SQLiteBucket


def default_state_dir() -> Path:
    home = os.environ.get("DAGSTER_HOME") or str(Path(__file__).resolve().parent.parent / "dagster_home")
    return Path(home) / "limits"


class Throttle:
    """Limits for one provider key (``openai``, ``replicate:owner/model``)."""

    def __init__(self, key: str, max_in_flight: int, requests_per_minute: int | None = None,
                 state_dir: Path | None = None, poll_s: float = 0.02):
        self.key = key
        self.max_in_flight = max_in_flight
        self.poll_s = poll_s
        folder = (state_dir or default_state_dir()) / key.replace("/", "_").replace(":", "_")
        folder.mkdir(parents=True, exist_ok=True)
        self._slots = [folder / f"slot-{i:03d}.lock" for i in range(max_in_flight)]
        self._limiter: Limiter | None = None
        if requests_per_minute:
            bucket = SQLiteBucket.init_from_file(
                [Rate(requests_per_minute, Duration.MINUTE)], table="rate", db_path=str(folder / "rate.sqlite"),
                use_file_lock=True,
            )
            self._limiter = Limiter(bucket)

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
            if self._limiter is not None:
                while not self._limiter.try_acquire(self.key, blocking=False):
                    await asyncio.sleep(self.poll_s * 5)
            yield time.monotonic() - started
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
