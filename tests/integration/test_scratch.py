"""Child processes die with the process that started them, and the scratch sweep removes exactly the
folders of processes that are gone, with whatever still runs in them (real processes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from resources.runtime import scratch
from resources.runtime.scratch import MARKER, ROOT_ENV, new_scratch_dir, remove_scratch_dir, scratch_dir, sweep
from tests.conftest import REPO


def running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone(procs: list[psutil.Process], within_s: float) -> bool:
    _, alive = psutil.wait_procs(procs, timeout=within_s)
    return not [p for p in alive if running(p)]


def start(code: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], dict]:
    """A Python process running ``code``, which prints one JSON line and then waits to be killed."""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert line, "the helper process died"
    return proc, json.loads(line)


CHILDREN = """
import json, subprocess, time
from resources.runtime import processes
tied = processes.popen(["sleep", "60"])
free = subprocess.Popen(["sleep", "60"])  # what every spawn was before: it outlives its parent
print(json.dumps({"tied": tied.pid, "free": free.pid}), flush=True)
time.sleep(60)
"""


def test_a_child_dies_with_its_parent_even_by_sigkill() -> None:
    parent, pids = start(CHILDREN, {})
    tied, free = psutil.Process(pids["tied"]), psutil.Process(pids["free"])
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert gone([tied], 5)
        assert running(free)
    finally:
        for p in (tied, free):
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


LEFTOVERS = """
import json, subprocess, time
from resources.runtime.scratch import new_scratch_dir
folder = new_scratch_dir("moviegen-test-")
opts = dict(start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
in_cwd = subprocess.Popen(["sleep", "60"], cwd=folder, **opts)  # an ffmpeg: working directory there
in_tmp = subprocess.Popen(["sleep", "60"], cwd="/", env={"TMPDIR": str(folder / "remotion")}, **opts)  # Chromium: TMPDIR there
# and one that is neither, only a descendant of one that is (a sandboxed Chromium process)
tree = subprocess.Popen(["sh", "-c", "env -i sh -c 'cd / && sleep 60; :' & wait"], cwd=folder, **opts)
print(json.dumps({"folder": str(folder), "pids": [in_cwd.pid, in_tmp.pid, tree.pid]}), flush=True)
time.sleep(60)
"""


def test_the_sweep_removes_a_dead_owners_folder_and_its_processes_and_keeps_a_live_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "scratch"
    monkeypatch.setenv(ROOT_ENV, str(root))
    owner, made = start(LEFTOVERS, {ROOT_ENV: str(root)})
    dead = Path(made["folder"])
    leftovers = [psutil.Process(pid) for pid in made["pids"]]
    deadline = time.monotonic() + 10
    while len(leftovers[2].children(recursive=True)) < 2:  # the nested sh and its sleep have started
        assert time.monotonic() < deadline
        time.sleep(0.02)
    leftovers += leftovers[2].children(recursive=True)
    live = new_scratch_dir("moviegen-test-")  # this process's: kept, with what runs in it
    worker = subprocess.Popen(["sleep", "60"], cwd=live)
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)

    reused = root / f"moviegen-test-{os.getpid()}.beef"  # this pid, another start time: an earlier process
    reused.mkdir()
    started = float((live / MARKER).read_text().split()[1])
    (reused / MARKER).write_text(f"{os.getpid()} {started - 100!r}\n")
    foreign = root / "notes"  # not a scratch folder: never touched
    foreign.mkdir()
    lookalike = root / "backup-2023.12"  # named like one (a dead "pid" 2023), but without moviegen's marker
    lookalike.mkdir()
    (lookalike / "data.txt").write_text("keep me")
    try:
        swept = sweep()
        assert sorted(swept.removed) == sorted([dead, reused])
        assert not dead.exists() and not reused.exists()
        assert live.exists() and foreign.exists() and (lookalike / "data.txt").exists()
        assert gone(leftovers, 5), [p.pid for p in leftovers if running(p)]
        assert {p.pid for p in leftovers} <= set(swept.killed)
        assert worker.poll() is None  # a live owner's process is not touched
        assert sweep().removed == []  # nothing more to do
    finally:
        worker.kill()
        worker.wait()
        for p in leftovers:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
    remove_scratch_dir(live)
    assert root.exists()  # `notes` is still there
    foreign.rmdir()
    shutil.rmtree(lookalike)
    with scratch_dir("moviegen-test-") as path:
        assert path.parent == root and path.name.startswith(f"moviegen-test-{os.getpid()}.")
        assert (path / MARKER).read_text().split()[0] == str(os.getpid())
    assert not root.exists()  # the root goes when it is left empty


def test_a_new_process_sweeps_when_it_makes_its_first_scratch_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "scratch"
    monkeypatch.setenv(ROOT_ENV, str(root))
    root.mkdir()
    stale = root / "moviegen-build-4194303.0a0a"  # a pid above any this machine hands out now, or not running
    stale.mkdir()
    (stale / MARKER).write_text("4194303 12345.0\n")
    if psutil.pid_exists(4194303):
        pytest.skip("pid 4194303 is running")
    monkeypatch.setattr(scratch, "_swept", set())
    with scratch_dir("moviegen-test-"):
        assert not stale.exists()
