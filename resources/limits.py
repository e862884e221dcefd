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
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
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


@asynccontextmanager
async def held(*throttles: Throttle | None) -> AsyncIterator[None]:
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
