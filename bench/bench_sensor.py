"""Benchmark: from a request file dropped in the inbox to the first provider call and to the finished
movie, through the real Dagster daemon (sensor -> queued run -> run worker).

The script call goes to a local server speaking OpenAI's protocol (so the first call's arrival is
recorded by the provider side); everything else runs offline. Two settings:

* ``none``: no simulated latency, so drop -> done is almost all orchestration overhead;
* ``median``: the brief's median latencies (script 50 s, then prompts, images, speech, music), and
  the ratio of drop -> done to the critical path of the movie.

Usage: ``python bench/bench_sensor.py [--trials 3]`` (part of ``make bench``).
"""

from __future__ import annotations

import os

# These measure generation against its critical path; rendering is bench_render.py's.
os.environ.setdefault("MOVIEGEN_RENDER", "off")

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers.daemon import Daemon  # noqa: E402
from tests.servers.openai_server import FakeOpenAI  # noqa: E402

REQUEST = {"inquiry_prompt": "Tell me about the Civil War", "duration_seconds": 30, "images_per_segment": 2,
           "size": "480p", "aspect_ratio": "16:9"}


def wait_for(path: Path, timeout_s: float) -> float:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if path.exists():
            return time.time()
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not appear in {timeout_s} s")


def session(profile: str, trials: int) -> list[dict[str, float]]:
    out = []
    with tempfile.TemporaryDirectory(prefix="moviegen-bench-sensor-") as tmp, FakeOpenAI() as server:
        home = Path(tmp)
        (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
        (home / "inbox").mkdir()
        script_s = 50.0 if profile == "median" else 0.0
        server.delay_s = script_s
        env = {"MOVIEGEN_PROVIDERS": "ScriptProducer=openai", "OPENAI_API_KEY": "sk-test",
               "OPENAI_BASE_URL": server.base_url, "MOVIEGEN_OFFLINE_LATENCY": profile}
        with Daemon(home, env) as daemon:
            # Steady state: the sensor has ticked once before the first drop.
            deadline = time.time() + 60
            while "movie_inbox" not in daemon.log_text() and time.time() < deadline:
                time.sleep(0.2)
            os.environ["DAGSTER_HOME"] = str(home)
            import dagster as dg

            from movie_assets.domain.blueprint import expand
            from movie_assets.domain.request import parse_request

            critical = expand(parse_request(REQUEST)).critical_path_s()
            for k in range(trials):
                movie = f"bench-{profile}-{k}"
                seen = len(server.requests)
                dropped = time.time()
                (home / "inbox" / f"{movie}.yaml").write_text(json.dumps(REQUEST))
                done = wait_for(home / "artifacts" / "movies" / movie / "revisions" / "000001.json", 600)
                first_call = server.requests[seen].at
                instance = dg.DagsterInstance.get()
                run = instance.get_run_records(dg.RunsFilter(tags={"moviegen/movie": movie}))[0]
                instance.dispose()
                revision = json.loads((home / "artifacts" / "movies" / movie / "revisions" / "000001.json").read_text())
                assert revision["failed"] == {}, revision["failed"]
                out.append({
                    "run_created_s": run.create_timestamp.timestamp() - dropped,
                    "run_started_s": (run.start_time or 0) - dropped,
                    "first_call_s": first_call - dropped,
                    "done_s": done - dropped,
                    "critical_path_s": critical if profile == "median" else 0.0,
                    "calls": revision["calls"],
                })
                time.sleep(1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    for profile in ("none", "median"):
        rows = session(profile, args.trials if profile == "none" else max(1, args.trials - 1))
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        line = (f"[{profile}] {len(rows)} drops: drop->run created {med['run_created_s']:.1f} s, "
                f"drop->run started {med['run_started_s']:.1f} s, drop->first provider call {med['first_call_s']:.1f} s, "
                f"drop->movie done {med['done_s']:.1f} s, calls {int(med['calls'])}")
        if profile == "median":
            line += (f"; critical path {med['critical_path_s']:.0f} s, ratio {med['done_s'] / med['critical_path_s']:.3f}, "
                     f"overhead {med['done_s'] - med['critical_path_s']:.1f} s")
        print(line)
        for r in rows:
            print("   ", {k: round(v, 2) for k, v in r.items()})


if __name__ == "__main__":
    main()
