"""Child processes (ffmpeg, node) that die with the process that started them, and telling whether
a process that left something behind (a scratch folder, a budget reservation) still runs.

On Linux every child is started with a parent-death signal (``prctl(PR_SET_PDEATHSIG)``, set between
fork and exec): the kernel signals the child when its parent dies, even by SIGKILL, so a killed
``moviegen generate`` or Dagster run worker leaves no ffmpeg or renderer running. Elsewhere the
helpers are plain ``subprocess`` calls.

The kernel's "parent" is the *thread* that spawned the child: the signal also fires when that thread
ends. Every spawn site here waits for its child before returning (``run``; ``_Ffmpeg``'s context
manager; the Remotion render waits for node), and spawns from a thread that lives at least that long
(the step's thread, the build loop's thread, the loop's default executor and the render pools, whose
threads end only when their executor shuts down, after their work). Never start a child from a
thread that may end while the child still runs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

PR_SET_PDEATHSIG = 1

if sys.platform.startswith("linux"):
    # Resolved once here: the function that runs in the forked child only calls it.
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
    _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    _prctl.restype = ctypes.c_int
else:  # pragma: no cover - macOS and Windows have no parent-death signal
    _prctl = None


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive ``sig`` when the thread that started it ends
    (None where the platform has no such signal). Call it in the parent, right before spawning."""
    if _prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec: no imports, no locks
        _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return preexec


def popen(args: list[str], *, death_signal: int = signal.SIGKILL, **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` of a child that gets ``death_signal`` when its parent dies."""
    return subprocess.Popen(args, preexec_fn=die_with_parent(death_signal), **kwargs)


def run(args: list[str], *, death_signal: int = signal.SIGKILL, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` of a child that gets ``death_signal`` when its parent dies."""
    return subprocess.run(args, preexec_fn=die_with_parent(death_signal), **kwargs)


def started(pid: int) -> float | None:
    """When a process started, in a value fixed for its life (None: no such process, or a zombie), so a
    reused pid is told apart. On Linux the clock ticks since boot from /proc (psutil's create_time adds
    the boot time, which moves when the wall clock is stepped); elsewhere psutil's create_time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        if Path("/proc/self/stat").exists():
            return None
        try:
            proc = psutil.Process(pid)
            return None if proc.status() == psutil.STATUS_ZOMBIE else proc.create_time()
        except psutil.NoSuchProcess:
            return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else float(fields[19])
