"""Provider limits hold across processes: in-flight slots and requests per minute."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
import types
from pathlib import Path

from resources.runtime.limits import Throttle
from resources.runtime.monitor import local_work_slots, snapshot


def _worker(state_dir: str, log: str, calls: int) -> None:
    async def main() -> None:
        throttle = Throttle("test", max_in_flight=3, state_dir=Path(state_dir))

        async def one() -> None:
            async with throttle.slot():
                with open(log, "a") as f:
                    f.write(f"+ {time.time()}\n")
                await asyncio.sleep(0.05)
                with open(log, "a") as f:
                    f.write(f"- {time.time()}\n")

        await asyncio.gather(*(one() for _ in range(calls)))

    asyncio.run(main())


def test_in_flight_limit_holds_across_processes(tmp_path: Path) -> None:
    log = tmp_path / "log"
    procs = [mp.get_context("spawn").Process(target=_worker, args=(str(tmp_path), str(log), 8)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    events = sorted((float(t), kind) for kind, t in (line.split() for line in log.read_text().splitlines()))
    in_flight = peak = 0
    for _, kind in sorted(events, key=lambda e: (e[0], e[1] == "+")):
        in_flight += 1 if kind == "+" else -1
        peak = max(peak, in_flight)
    assert len(events) == 2 * 24 and peak == 3  # 24 calls from 3 processes, never more than 3 at once


def test_requests_per_minute(tmp_path: Path) -> None:
    async def main() -> float:
        throttle = Throttle("rpm", max_in_flight=10, requests_per_minute=5, state_dir=tmp_path)
        waits = []
        for _ in range(5):
            async with throttle.slot() as waited:
                waits.append(waited)
        return max(waits)

    assert asyncio.run(main()) < 1.0
    other = Throttle("rpm", max_in_flight=10, requests_per_minute=5, state_dir=tmp_path)  # shares the bucket

    async def sixth() -> bool:
        try:
            async with asyncio.timeout(0.5):
                async with other.slot():
                    return True
        except TimeoutError:
            return False

    assert asyncio.run(sixth()) is False  # the minute's budget is spent, whoever asks


class _NoDriver(types.ModuleType):
    """NVML as on a machine without a GPU or driver: initialising fails, as the real library does there."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self) -> None:  # noqa: N802 - NVML's name
        raise self.NVMLError("NVML Shared Library Not Found")


def test_machine_snapshot_degrades_cleanly_without_a_gpu() -> None:
    snap = snapshot(nvml=_NoDriver("pynvml"))
    assert snap.cpus >= 1 and snap.memory_total_mb > 0
    assert snap.gpus == [] and snap.gpu_note == "no NVIDIA GPU available (NVMLError)"
    assert 1 <= local_work_slots(snap) <= snap.cpus


def test_machine_snapshot_on_this_machine() -> None:
    snap = snapshot()
    if snap.gpus:  # a machine with a GPU lists each one with its memory
        assert all(g["name"] and g["memory_total_mb"] > 0 for g in snap.gpus)
        assert snap.gpu_note == f"{len(snap.gpus)} NVIDIA GPU(s)"
    else:
        assert snap.gpu_note.startswith("no NVIDIA GPU available")
    low = type(snap)(**{**snap.to_json(), "memory_available_mb": 100})
    assert local_work_slots(low) == 1
