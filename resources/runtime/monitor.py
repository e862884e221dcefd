"""What the machine can take: CPU, memory and NVIDIA GPUs (psutil; NVIDIA's NVML bindings, the
``nvidia-ml-py`` package, where a GPU is present).

The build engine sizes its local work (rendering, encoding, speech synthesis, any local model) from a
snapshot taken at the start of a build, and the snapshot goes into the run's report and log. Without
pynvml's library or a GPU, the snapshot says so and the GPU list is empty.
"""

from __future__ import annotations

import os
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
