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

from movie_assets.domain.blueprint import ARTIFACTS, expand
from movie_assets.interfaces import api
from tests.conftest import REPO, small_request
from tests.servers.processes import clean_env

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
    checked = 0
    for path in artifacts.rglob("*"):
        if path.is_file() and not path.name.startswith(".") and path.relative_to(artifacts).parts[0] in ARTIFACTS:
            # A final path always holds the complete artifact whose hash it is named after.
            assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(path.stem), path
            checked += 1
    assert checked > 0
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


def test_killed_generation_through_a_provider_calls_only_what_was_unfinished(home: Path, instance: dg.DagsterInstance, store) -> None:
    from tests.servers.openai_server import FakeOpenAI

    request = small_request(duration_seconds=30, images_per_segment=3)
    movie = api.new_movie(instance, store, request, "killed-openai")
    with FakeOpenAI() as server:
        # Two images are answered; the others wait until the generation has been killed, so what the
        # kill leaves unfinished does not depend on how fast the machine is.
        server.hold_after["/v1/images/generations"] = 2
        env = {**clean_env(), "DAGSTER_HOME": str(home), "MOVIEGEN_PROVIDERS": "TextToImageProducer=openai", "OPENAI_API_KEY": "sk-test",
               "OPENAI_BASE_URL": server.base_url, "MOVIEGEN_OPENAI_MAX_IN_FLIGHT": "2"}
        proc = subprocess.Popen([str(BIN / "moviegen"), "generate", movie, "--quiet"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while len(instance.get_materialized_partitions(dg.AssetKey("segment_image"))) < 2:  # some images done
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(30)
            server.release.set()
        first = len(server.calls("/v1/images/generations"))
        stored = len(list((home / "artifacts" / "movies" / movie / "cache" / "segment_image").glob("*/*.json")))
        assert 2 <= stored <= 9  # made and stored, some of them maybe not yet recorded in Dagster
        resumed = subprocess.run([str(BIN / "moviegen"), "generate", movie, "--json"], cwd=REPO, env=env, capture_output=True,
                                 text=True, timeout=300)
        out = json.loads(resumed.stdout)
        assert out["failed"] == [] and out["timeline"]
        second = len(server.calls("/v1/images/generations")) - first
        assert out["provider_calls"]["TextToImageProducer"] == second
        assert second == 9 - stored  # only what was not finished (made and stored) is asked for again
