"""The hosted service under load (docs/performance.md, "The hosted service"): 50 clients polling a movie's
status and a run's progress for 60 s while 2 generations run through the queue (the daemon), on a fresh
home; latency p50 / p99, errors, the service's peak memory; then the CLI's reading commands through the
service (`--server`) against the same commands on the home, and, once the generations have ended, `plan` of
the built movie both ways.

    python bench/bench_service.py [--clients 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import moviegen, new_home  # noqa: E402 - after the path is set
from tests.servers.daemon import Daemon  # noqa: E402
from tests.servers.service import Service  # noqa: E402

ENV = {"MOVIEGEN_RENDER": "on", "MOVIEGEN_RENDER_ENGINE": "ffmpeg"}
REQUEST = {"inquiry_prompt": "Why is the sky blue?", "duration_seconds": 30, "images_per_segment": 2, "size": "480p"}


def peak_memory(pid: int, stop: threading.Event, out: list[float]) -> None:
    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
        except psutil.Error:
            break
        out.append(rss / 2**20)
        time.sleep(0.2)


async def client(url: str, token: str, paths: list[str], until: float, latencies: list[float], errors: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        i = 0
        while time.monotonic() < until:
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            try:
                r = await c.get(path)
                if r.status_code != 200:
                    errors.append(f"{path}: {r.status_code}")
            except httpx.HTTPError as e:
                errors.append(f"{path}: {type(e).__name__}")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.5)  # a client polling twice a second


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--build-timeout", type=float, default=900, help="how long to wait for the generations to end "
                        "before timing the plan of the built movie (s)")
    args = parser.parse_args()
    home = new_home(Path(tempfile.mkdtemp(prefix="bench-service-")) / "dagster_home")
    token = moviegen(home, ENV, "token", "create", "bench", "--rate", "1000000").stdout.strip()
    moviegen(home, ENV, "list")
    with Daemon(home, ENV), Service(home, ENV, "--log-level", "warning") as service:
        h = {"Authorization": f"Bearer {token}"}
        for movie in ("one", "two"):
            r = httpx.post(f"{service.url}/v1/movies", params={"id": movie}, json=REQUEST, headers=h, timeout=60)
            assert r.status_code == 201, r.text
        runs = {}
        for movie in ("one", "two"):
            r = httpx.post(f"{service.url}/v1/movies/{movie}/generate", json={}, headers=h, timeout=60)
            assert r.status_code == 202, r.text
            runs[movie] = r.json()["run_id"]
        paths = ["/v1/movies/one/status", f"/v1/movies/one/runs/{runs['one']}",
                 "/v1/movies/two/status", f"/v1/movies/two/runs/{runs['two']}"]
        memory: list[float] = []
        stop = threading.Event()
        assert service.proc is not None
        sampler = threading.Thread(target=peak_memory, args=(service.proc.pid, stop, memory), daemon=True)
        sampler.start()
        latencies: list[float] = []
        errors: list[str] = []
        until = time.monotonic() + args.seconds

        async def load() -> None:
            await asyncio.gather(*(client(service.url, token, paths[i % 4:] + paths[:i % 4], until, latencies, errors)
                                   for i in range(args.clients)))

        asyncio.run(load())
        stop.set()
        finished = {m: httpx.get(f"{service.url}/v1/movies/{m}/runs/{rid}", headers=h, timeout=30).json()["status"]
                    for m, rid in runs.items()}

        cli: dict[str, dict[str, float]] = {}
        remote = {"MOVIEGEN_URL": service.url, "MOVIEGEN_TOKEN": token}

        def median_s(env: dict[str, str], *args: str) -> float:
            times = []
            for _ in range(5):
                started = time.perf_counter()
                out = moviegen(home, env, *args)
                assert out.returncode == 0, out.stderr
                times.append(time.perf_counter() - started)
            return round(statistics.median(times), 3)

        for label, env, movie in (("service", remote, "one"), ("home", ENV, "bench--one")):
            for command in ("list", "status", "plan", "history"):
                cli.setdefault(label, {})[command] = median_s(env, *([command] if command == "list" else [command, movie]))
        # Then the plan of a built movie (every asset recorded, by both movies' runs), once the generations ended.
        deadline = time.monotonic() + args.build_timeout
        while time.monotonic() < deadline and not all(
                httpx.get(f"{service.url}/v1/movies/{m}/runs/{rid}", headers=h, timeout=30).json()["status"]
                in ("SUCCESS", "FAILURE", "CANCELED") for m, rid in runs.items()):
            time.sleep(2)
        built = {m: httpx.get(f"{service.url}/v1/movies/{m}/runs/{rid}", headers=h, timeout=30).json()["status"]
                 for m, rid in runs.items()}
        cli["service"]["plan_built"] = median_s(remote, "plan", "one")
        cli["home"]["plan_built"] = median_s(ENV, "plan", "bench--one")
    result = {
        "clients": args.clients, "seconds": args.seconds, "requests": len(latencies), "errors": len(errors),
        "error_examples": errors[:5], "p50_ms": round(pct(latencies, 0.5) * 1000, 1),
        "p99_ms": round(pct(latencies, 0.99) * 1000, 1), "max_ms": round(max(latencies, default=0) * 1000, 1),
        "service_peak_rss_mb": round(max(memory), 1) if memory else None, "generations": finished, "built": built,
        "cli_median_s": cli, "load_average": os.getloadavg(), "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
