"""A generation killed mid-run (SIGKILL) leaves no half-written artifact at a final path, and the
next generate finishes the movie, calling only what was not finished."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from movie_assets import api
from movie_assets.blueprint import expand

from .conftest import REPO, small_request

BIN = Path(sys.executable).parent


def test_killed_generation_resumes_without_redoing_work(home: Path, instance: dg.DagsterInstance, store) -> None:
    request = small_request(duration_seconds=40, images_per_segment=3)
    movie = api.new_movie(instance, store, request, "killed")
    total = sum(expand(request).calls(expand(request).nodes).values())
    artifacts = home / "artifacts" / "movies" / movie
    proc = subprocess.Popen(
        [str(BIN / "moviegen"), "generate", movie, "--quiet", "--latency", "scaled", "--latency-scale", "0.1"],
        cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (artifacts / "segment_audio").exists():  # narration is spoken: images are being drawn
            assert proc.poll() is None and time.monotonic() < deadline, "the generation ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert not (artifacts / "timeline").exists()
    for path in artifacts.rglob("*"):
        if path.is_file() and not path.name.startswith(".") and path.parent.parent.name not in ("runs", "revisions", "edits") \
                and path.name != "request.json":
            # A final path always holds the complete artifact whose hash it is named after.
            assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(path.stem), path
    status = api.status(instance, store, movie)
    assert status.to_build > 0
    resumed = api.generate(instance, store, movie)
    assert resumed.success, resumed.failed
    calls = sum(resumed.provider_calls.values())
    assert 0 < calls < total  # what had finished before the kill was kept
    assert api.plan(instance, store, movie).items == []
    timeline = json.loads(Path(resumed.timeline.removeprefix("file://")).read_text())
    assert timeline["errors"] == []
    runs = instance.get_run_records(dg.RunsFilter(tags={"moviegen/movie": movie}))
    assert sorted(r.dagster_run.status.value for r in runs) == ["FAILURE", "SUCCESS"]  # the killed run is marked failed
