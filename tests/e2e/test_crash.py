"""A generation killed mid-run (SIGKILL) leaves no half-written artifact at a final path, and the
next generate finishes the movie, calling only what was not finished: what a provider had answered is
in storage before any local work on it, so a kill loses at most the calls in flight."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from movie_assets.domain.blueprint import ARTIFACTS, expand
from movie_assets.interfaces import api
from resources.runtime.budget import SqliteLedger
from tests.conftest import REPO, small_request
from tests.servers.openai_server import FakeOpenAI
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
            cache = home / "artifacts" / "movies" / movie / "cache" / "segment_image"
            while len(list(cache.glob("*/*.json"))) < 2:  # two images made and stored (a segment's partition waits for all 3)
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


IMAGES = "/v1/images/generations"


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, what: str, timeout_s: float = 180) -> None:  # type: ignore[type-arg]
    """Wait until ``condition()`` holds (a file the generation writes), while the generation runs."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, f"the generation ended before {what}"
        assert time.monotonic() < deadline, f"no {what} in {timeout_s:.0f} s"
        time.sleep(0.01)


def test_a_paid_answer_is_stored_before_the_local_work_queued_behind_it(home: Path, instance: dg.DagsterInstance,
                                                                         store) -> None:
    """A picture from OpenAI, answered while the offline clips of the other segments are being encoded
    (local work that goes before it: their longer critical path). The generation is killed right after
    the server sent the picture and before the local work reaches it: the picture it paid for is in
    storage, and the next generate builds it from there without asking again."""
    clips = 5  # offline text-to-video segments: one encode each, on the local slots
    request = small_request(duration_seconds=10 * (clips + 1), images_per_segment=1,
                            segments={s: {"use_video": True} for s in range(1, clips + 1)})
    movie = api.new_movie(instance, store, request, "paid")
    folder = home / "artifacts" / "movies" / movie
    with FakeOpenAI() as server:
        server.hold_after[IMAGES] = 0  # the picture is answered when the test says so
        env = {**clean_env(), "DAGSTER_HOME": str(home), "MOVIEGEN_PROVIDERS": "TextToImageProducer=openai:gpt-image-1",
               "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": server.base_url}
        proc = subprocess.Popen([str(BIN / "moviegen"), "generate", movie, "--quiet"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert server.wait_until(lambda: len(server.calls(IMAGES)) == 1), "the picture was never asked for"
            wait_for(lambda: any((folder / "text_to_video_clip").glob("*/*.mp4")), proc, "clip encoded")
            server.release.set()  # answered while the other clips are still waiting for a local slot
            assert server.wait_until(lambda: len(server.answered(IMAGES)) == 1), "the picture was never answered"
            kept = lambda: any((folder / "answers" / "segment_image").glob("*/*.json"))
            picture = lambda: (folder / "segment_image").exists()
            wait_for(lambda: kept() or picture(), proc, "answer kept")
            encoded = len(list((folder / "text_to_video_clip").glob("*/*.mp4")))
            stored_before_kill = kept(), picture()
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(30)
        assert stored_before_kill == (True, False), "the answer OpenAI sent waited behind local work before it was stored"
        assert encoded < clips  # killed while local work was still queued
        assert len(server.calls(IMAGES)) == 1
        ledger = SqliteLedger(home / "limits" / "budget.sqlite")
        paid = ledger.spent(movie=movie)  # settled when its answer was kept, or (killed in between) still reserved
        assert paid > 0

        resumed = subprocess.run([str(BIN / "moviegen"), "generate", movie, "--json"], cwd=REPO, env=env, capture_output=True,
                                 text=True, timeout=600)
        out = json.loads(resumed.stdout)
        assert out["failed"] == [] and out["timeline"], resumed.stderr[-3000:]
        assert len(server.calls(IMAGES)) == 1  # not bought again
        assert "TextToImageProducer" not in out["provider_calls"]
        report = json.loads((folder / "runs" / f"{out['run_id']}.json").read_text())
        [call] = [c for c in report["calls"] if c["node"] == "segment_image[00_0]"]
        assert call["cached"] and call["provider"] == "openai"  # made from the answer the killed run kept
        assert not any((folder / "answers").rglob("*.*"))  # dropped once the picture was in the build cache
        # Paid once, and settled at what it cost (by the next generation, if the kill came before its settlement).
        assert call["cost_usd"] == paid and ledger.spent(movie=movie) == paid and ledger.unsettled() == []
