"""The adaptive strategy under real load: CPU burners make it use fewer local slots than an idle
machine would get."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import psutil
import pytest

from movie_assets.builder import engine as engine_module
from movie_assets.builder.engine import BuildEngine
from resources.runtime.monitor import AdaptiveSizer, adaptive_slots, usable_cpus
from resources.runtime.slots import Slots


def burner() -> int:
    """A CPU burner that is not a child of this process (its own work is never "other" work), bounded to
    120 s; its pid."""
    out = subprocess.run(["sh", "-c", "timeout 120 sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def test_adaptive_shrinks_local_slots_under_cpu_burners(monkeypatch: pytest.MonkeyPatch) -> None:
    cpus = usable_cpus()
    idle = adaptive_slots(cpus, 0.0, psutil.virtual_memory().available // 2**20)  # what an idle machine gets
    if idle < 2 or cpus > 8:
        pytest.skip(f"{cpus} usable CPU(s), {idle} slot(s) when idle: this test saturates 2-8 CPUs")
    monkeypatch.setattr(engine_module, "ADAPT_EVERY_S", 0.2)
    burners = [burner() for _ in range(2 * cpus)]  # 4 on 2 cores
    try:
        sizer = AdaptiveSizer()

        async def scenario() -> Slots:
            local = Slots(cpus, "local")
            resizing = asyncio.ensure_future(BuildEngine._adapt(local, sizer))
            deadline = time.monotonic() + 30  # far beyond the few readings it takes; reached only on failure
            # the first reading is the load average; the next ones measure what the burners use
            while (local.capacity >= cpus or len(sizer.readings) < 3) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            resizing.cancel()
            return local

        local = asyncio.run(scenario())
    finally:
        for pid in burners:
            os.kill(pid, signal.SIGTERM)  # timeout passes it on to its loop
    assert local.capacity < idle, sizer.readings
    assert local.usage()["capacity_min"] < idle and local.history[-1][1] == local.capacity
    assert max(r["others_busy_cores"] for r in sizer.readings[1:]) >= 1.0, sizer.readings  # the burners were seen
