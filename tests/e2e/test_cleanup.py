"""A generation killed (SIGKILL) while it renders leaves no ffmpeg running, and the next generation
removes the scratch folders it left and renders the movie. The next generation runs in this process
(``api.generate``, what ``moviegen generate`` runs): a second CLI start would cost 15-20 s under load."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest

from movie_assets.interfaces import api
from tests.conftest import BIN, REPO, small_request
from tests.servers.processes import clean_env


def ffmpegs(pid: int) -> list[psutil.Process]:
    """The ffmpeg processes among a process's descendants."""
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.name().startswith(("ffmpeg", "ffprobe"))]
    except psutil.Error:
        return []


def running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def encoding(proc: psutil.Process) -> bool:
    try:
        return "rawvideo" in proc.cmdline()  # a video chunk being encoded: the render is under way
    except psutil.Error:
        return False


def test_a_killed_generation_leaves_no_ffmpeg_and_the_next_one_removes_its_scratch(
        home: Path, instance: dg.DagsterInstance, store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    movie = api.new_movie(instance, store, small_request(duration_seconds=10, images_per_segment=1), "cleanup")
    root = tmp_path / "scratch"  # this test's own scratch root: no other process sweeps it meanwhile
    settings = {"MOVIEGEN_RENDER": "on", "MOVIEGEN_RENDER_ENGINE": "ffmpeg", "MOVIEGEN_SCRATCH_DIR": str(root)}
    proc = subprocess.Popen([str(BIN / "moviegen"), "generate", movie, "--quiet"], cwd=REPO,
                            env={**clean_env(), "DAGSTER_HOME": str(home), **settings},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not any(encoding(p) for p in ffmpegs(proc.pid)):
            assert proc.poll() is None, "the generation ended before it could be killed"
            assert time.monotonic() < deadline, "no chunk encoder started"
            time.sleep(0.02)
        children = ffmpegs(proc.pid)
        for child in children:  # stopped, an ffmpeg cannot exit on its own at the end of its input: only the
            try:                # kernel's death signal (SIGKILL ends a stopped process too) can end it
                child.suspend()
            except psutil.NoSuchProcess:
                pass
        proc.send_signal(signal.SIGKILL)  # the generation only, not its process group
    finally:
        proc.kill()
        proc.wait(30)
    _, alive = psutil.wait_procs(children, timeout=10)
    left_running = [p for p in alive if running(p)]
    for p in left_running:
        p.kill()
    assert left_running == [], "ffmpeg outlived the generation"
    left = sorted(p.name for p in root.glob(f"*{proc.pid}.*"))
    assert any(n.startswith("moviegen-chunk-") for n in left), left  # what the kill left: the test is not vacuous

    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    again = api.generate(instance, store, movie)
    assert again.success and again.failed == {} and again.movie_video, again.errors
    assert Path(again.movie_video.removeprefix("file://")).stat().st_size > 0
    assert not root.exists() or list(root.iterdir()) == []  # the dead generation's folders and its own: all gone
