"""Benchmark: generate maximum movies on the offline providers with the brief's median latencies.

Prints, per movie: wall time through the CLI, the critical-path bound (full parallelism, median
latencies), their ratio, the number of Dagster runs, provider calls and the peak memory of the CLI
process. Usage: ``make bench`` or ``python bench/bench.py [--only image|video] [--size 720p]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

MOVIES = {
    "image": {"inquiry_prompt": "Tell me about the Civil War", "duration_seconds": 300, "images_per_segment": 5},
    "video": {"inquiry_prompt": "How do volcanoes work?", "duration_seconds": 300, "use_video": True, "is_image_to_video": True},
}


def moviegen(home: Path, *args: str) -> str:
    # The generation's overhead against its critical path: rendering is measured by bench_render.py.
    env = {**os.environ, "DAGSTER_HOME": str(home), "MOVIEGEN_RENDER": "off"}
    return subprocess.run([str(BIN / "moviegen"), *args], cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout


def bench(name: str, size: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="moviegen-bench-") as tmp:
        home = Path(tmp)
        (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
        request = home / "request.json"
        request.write_text(json.dumps({**MOVIES[name], "size": size}))
        movie = moviegen(home, "new", str(request), "--id", f"bench-{name}").strip()
        plan = json.loads(moviegen(home, "plan", movie, "--json"))
        started = time.monotonic()
        out = json.loads(moviegen(home, "generate", movie, "--json", "--quiet", "--latency", "median"))
        wall = time.monotonic() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        runs = subprocess.run(
            [str(BIN / "python"), "-c", "import dagster as dg; print(len(dg.DagsterInstance.get().get_run_records()))"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()
        bound = plan["critical_path_s"]
        assert out["failed"] == [], out["failed"]
        assert out["provider_calls"] == plan["provider_calls"], (out["provider_calls"], plan["provider_calls"])
        return {
            "movie": name, "size": size, "artifacts": len(plan["items"]), "wall_s": round(wall, 1),
            "critical_path_s": bound, "ratio": round(wall / bound, 3), "overhead_s": round(wall - bound, 1),
            "dagster_runs": int(runs), "provider_calls": sum(out["provider_calls"].values()),
            "calls_by_producer": out["provider_calls"], "peak_rss_mb": round(peak_mb),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=list(MOVIES))
    parser.add_argument("--size", default="720p")
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"python {platform.python_version()}")
    for name in [args.only] if args.only else list(MOVIES):
        r = bench(name, args.size)
        print(f"{r['movie']:>6} movie ({r['artifacts']} artifacts, {r['size']}): wall {r['wall_s']} s, "
              f"critical path {r['critical_path_s']} s, ratio {r['ratio']}, overhead {r['overhead_s']} s, "
              f"Dagster runs {r['dagster_runs']}, provider calls {r['provider_calls']}, peak RSS {r['peak_rss_mb']} MB")
        print("        calls:", json.dumps(r["calls_by_producer"]))


if __name__ == "__main__":
    main()
