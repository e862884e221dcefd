"""What the machine can take: CPU, memory and NVIDIA GPUs (psutil; NVIDIA's NVML bindings, the
``nvidia-ml-py`` package, where a GPU is present).

The build engine sizes its local work (rendering, encoding, speech synthesis, any local model) from a
snapshot taken at the start of a build, and the snapshot goes into the run's report and log. Without
pynvml's library or a GPU, the snapshot says so and the GPU list is empty.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

import psutil
import pynvml  # nvidia-ml-py: loads without a GPU; nvmlInit() fails when there is none

# Below this much free memory, local work runs one job at a time (video encodes hold ~100 MB each).
LOW_MEMORY_MB = 1536


@dataclass(frozen=True)
class MachineSnapshot:
    cpus: int
    cpu_percent: float
    load_1m: float
    memory_total_mb: int
    memory_available_mb: int
    gpus: list[dict[str, Any]] = field(default_factory=list)
    gpu_note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _gpus(nvml: ModuleType = pynvml) -> tuple[list[dict[str, Any]], str]:
    try:
        nvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - no driver, no library, no GPU: all mean "no GPU here"
        return [], f"no NVIDIA GPU available ({type(e).__name__})"
    try:
        out = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            util = nvml.nvmlDeviceGetUtilizationRates(handle)
            name = nvml.nvmlDeviceGetName(handle)
            out.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                        "memory_total_mb": mem.total // 2**20, "memory_used_mb": mem.used // 2**20, "utilization": util.gpu})
        return out, f"{len(out)} NVIDIA GPU(s)"
    finally:
        nvml.nvmlShutdown()


def snapshot(nvml: ModuleType = pynvml) -> MachineSnapshot:
    """The machine now; ``nvml`` is the NVML binding to ask about GPUs."""
    vm = psutil.virtual_memory()
    gpus, note = _gpus(nvml)
    return MachineSnapshot(
        cpus=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        cpu_percent=psutil.cpu_percent(interval=None),
        load_1m=round(os.getloadavg()[0], 2),
        memory_total_mb=vm.total // 2**20,
        memory_available_mb=vm.available // 2**20,
        gpus=gpus, gpu_note=note,
    )


def local_work_slots(snap: MachineSnapshot | None = None) -> int:
    """How many CPU-heavy local jobs may run at once: one per core, one when memory is short."""
    snap = snap or snapshot()
    if snap.memory_available_mb < LOW_MEMORY_MB:
        return 1
    return max(1, snap.cpus)


# What one local job may hold of memory, for sizing local slots: an ffmpeg encode or a speech model; a
# Remotion chunk render (node, Chromium and its encoder) holds about 1.8 GB (docs/performance.md).
MEMORY_PER_JOB_MB = 400
REMOTION_JOB_MB = 1800


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's or taskset's limit), not the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return psutil.cpu_count(logical=True) or os.cpu_count() or 1


class LoadMeter:
    """How busy the machine is with work that is not this process's: the CPU time all cores spent busy
    since the last reading, less what this process and its children spent (so a build's own renders
    never make it shrink its own slots)."""

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        t = psutil.cpu_times()
        # guest time is counted in user time too (as psutil's own busy time does)
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
        own = self._me.cpu_times()
        mine = own.user + own.system + own.children_user + own.children_system
        for child in self._me.children(recursive=True):
            try:
                c = child.cpu_times()
                # with the children it has reaped (node's ffmpeg, a shell's commands): a grandchild that ended
                # while its parent lives is counted there, not lost
                mine += c.user + c.system + c.children_user + c.children_system
            except psutil.Error:  # it ended between the listing and the reading
                continue
        return time.monotonic(), busy, mine

    def others_busy_cores(self) -> float:
        """Cores busy with other processes' work since the last reading; at the first (no interval yet),
        the 1-minute load average (a build starts before its own heavy work)."""
        now = self._sample()
        (t0, busy0, mine0), (t1, busy1, mine1) = self._last, now
        span = t1 - t0
        if span <= 0.05:
            return min(float(usable_cpus()), os.getloadavg()[0])
        self._last = now
        return max(0.0, ((busy1 - busy0) - max(0.0, mine1 - mine0)) / span)


def adaptive_slots(cpus: int, others_busy: float, memory_available_mb: int, job_mb: int = MEMORY_PER_JOB_MB) -> int:
    """Local slots for the adaptive strategy: the cores other work leaves free (rounded), and no more
    jobs of ``job_mb`` than free memory holds; at least 1. (Local work here is CPU work: encodes,
    renders, speech. The GPU reading goes into the run's record; no local job uses a GPU yet.)"""
    if memory_available_mb < LOW_MEMORY_MB:
        return 1
    slots = max(1, min(cpus, int(cpus - others_busy + 0.5)))
    return min(slots, max(1, memory_available_mb // job_mb))


class AdaptiveSizer:
    """Re-reads the machine (CPU used by others, free memory) and says how many local slots to use."""

    def __init__(self, cpus: int | None = None, job_mb: int = MEMORY_PER_JOB_MB):
        """``job_mb``: what one local job holds of memory (``REMOTION_JOB_MB`` when Remotion renders)."""
        self.cpus = cpus or usable_cpus()
        self.job_mb = job_mb
        self.meter = LoadMeter()
        self.readings: list[dict[str, float]] = []

    def size(self) -> int:
        others = self.meter.others_busy_cores()
        available = psutil.virtual_memory().available // 2**20
        slots = adaptive_slots(self.cpus, others, available, self.job_mb)
        if len(self.readings) < 2000:
            self.readings.append({"others_busy_cores": round(others, 2), "memory_available_mb": available, "slots": slots})
        return slots
