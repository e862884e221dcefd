"""Benchmark: rendering the movie with each engine and preset, and re-rendering after one edit.

Generates an image-only movie on the offline providers (no simulated latency, not rendered), then
renders its timeline with each engine at each preset (`moviegen render`, in its own process) and
prints, per render: wall seconds, seconds per minute of movie, the ratio to real time and the peak
memory of the rendering processes (the CLI and everything it started: ffmpeg, Node, Chromium).
Then it renders the movie as part of a generation, edits one segment's narration and generates
again, and prints the re-render's cost against a full render, and against the goal of 1.5/n of a
full render (n segments) plus the join.

Usage: ``python bench/bench_render.py [--seconds 60] [--engines ffmpeg,remotion] [--presets 480p,720p,1080p]``
(part of ``make bench``).
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, float, float, float]:
    """A moviegen command in its own process: its stdout, wall seconds and the peak memory (MB) of
    its whole process tree (the CLI, ffmpeg, Node, Chromium), the sum of RSS sampled every 0.2 s, and
    the CPU seconds the tree took (user + sys: the figure to compare on a machine shared with other work)."""
    started, cpu = time.monotonic(), _children_cpu()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([str(BIN / "moviegen"), *args], cwd=REPO, stdout=out, stderr=subprocess.DEVNULL, text=True,
                                env={**os.environ, "DAGSTER_HOME": str(home), **(env or {})})
        peak = 0
        tree = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [tree, *tree.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.2)
        if proc.returncode != 0:
            raise SystemExit(f"moviegen {' '.join(args)} exited {proc.returncode}")
        out.seek(0)
        return out.read(), time.monotonic() - started, peak / 2**20, _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--engines", default="ffmpeg,remotion")
    parser.add_argument("--presets", default="480p,720p,1080p")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total // 2**30} GB, "
          f"load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="moviegen-bench-render-") as tmp:
        home = Path(tmp)
        (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
        request = home / "request.json"
        request.write_text(json.dumps({"inquiry_prompt": "Tell me about the Civil War", "duration_seconds": args.seconds,
                                       "images_per_segment": 3, "size": "720p", "transition": "crossfade"}))
        run(home, "new", str(request), "--id", "bench")
        run(home, "generate", "bench", "--quiet", "--no-render")
        minutes = args.seconds / 60
        full: dict[str, float] = {}
        for engine in args.engines.split(","):
            for preset in args.presets.split(","):
                out, wall, peak, cpu = run(home, "render", "bench", "--engine", engine, "--preset", preset, "--json")
                result = json.loads(out)
                assert result["frames"] == args.seconds * 30, result
                full[f"{engine}/{preset}"] = wall
                print(f"render {engine:<8} {preset:<6} {result['width']}x{result['height']}: {wall:6.1f} s, "
                      f"{wall / minutes:6.1f} s per minute of movie, {wall / args.seconds:5.2f}x real time, "
                      f"{cpu:.1f} CPU s, peak {peak:,.0f} MB (process tree), load {os.getloadavg()[0]:.1f} after")
        # Incremental: render inside generations (the configured engine, the 720p preset), edit one segment.
        for engine in args.engines.split(","):
            env = {"MOVIEGEN_RENDER_ENGINE": engine}
            movie = f"inc-{engine}"
            run(home, "new", str(request), "--id", movie)
            run(home, "generate", movie, "--quiet", env=env)
            first = _render_seconds(home, movie)  # the whole movie rendered inside a generation
            run(home, "edit", movie, "--set", "segments.2.narration=A new line about the war's second year.", env=env)
            out, wall, _, _ = run(home, "generate", movie, "--json", "--quiet", env=env)
            result = json.loads(out)
            runs = sorted((home / "artifacts" / "movies" / movie / "runs").glob("*.json"), key=os.path.getmtime)
            report = json.loads(runs[-1].read_text())
            chunks = [n for n in report["built"] if n.startswith("video_chunk")]
            n = args.seconds // 10
            meta = _render_seconds(home, movie)
            rerender = meta["chunks"] + meta["join"] + meta["soundtrack"]
            whole = full.get(f"{engine}/720p") or float("nan")
            print(f"re-render {engine} after one narration edit: chunks {chunks}, {rerender:.1f} s of rendering "
                  f"(chunks {meta['chunks']:.1f} s + soundtrack {meta['soundtrack']:.1f} s + join {meta['join']:.2f} s) "
                  f"= {rerender / whole:.3f} of a full 720p render ({whole:.1f} s); goal 1.5/n = {1.5 / n:.3f} plus the join; "
                  f"whole regeneration {wall:.1f} s, calls {sum(result['provider_calls'].values())}")
            print(f"re-render {engine} wall span (first render start to the joined movie, the nodes side by side): "
                  f"{meta['span']:.1f} s = {meta['span'] / first['span']:.3f} of the full render's span inside the first "
                  f"generation ({first['span']:.1f} s; chunks {first['chunks']:.1f} s + soundtrack {first['soundtrack']:.1f} s "
                  f"+ join {first['join']:.2f} s); goal 1.5/n = {1.5 / n:.3f} plus the join "
                  f"({meta['join'] / first['span']:.3f})")


def _render_seconds(home: Path, movie: str) -> dict[str, float]:
    """Render seconds of the latest generation's chunks, soundtrack and join, from the artifacts' metadata."""
    code = (
        "import json, sys; import dagster as dg; from movie_assets.domain.blueprint import NodeKey;"
        "from movie_assets.orchestration.event_log import load_state; from movie_assets.movie_files.reports import read_run_report;"
        "from resources.storage import ArtifactStore; inst = dg.DagsterInstance.get();"
        f"m = {movie!r}; run = inst.get_run_records(limit=1)[0].dagster_run.run_id;"
        "keys = [NodeKey('video_chunk', i) for i in range(30)] + [NodeKey('soundtrack'), NodeKey('movie_video')];"
        "st = load_state(inst, m, keys); recs = {str(k): r for k, r in st.records.items() if r.run_id == run};"
        "print(json.dumps({'chunks': sum(float(r.metadata.get('render_seconds') or 0) for k, r in recs.items() if k.startswith('video_chunk')),"
        "'join': float(recs['movie_video'].metadata.get('join_seconds') or 0),"
        "'soundtrack': float(recs['soundtrack'].metadata.get('render_seconds') or 0) if 'soundtrack' in recs else 0.0,"
        # The wall span: from the first chunk or soundtrack render's start (its record's time less its render
        # seconds) to the joined movie's record. Chunks and the soundtrack run side by side, so the sum above
        # counts their contention for the cores; the span is what the user waits for.
        "'span': recs['movie_video'].timestamp - min(r.timestamp - float(r.metadata.get('render_seconds') or 0)"
        " for k, r in recs.items() if k.startswith('video_chunk') or k == 'soundtrack')}))"
    )
    out = subprocess.run([str(BIN / "python"), "-c", code], cwd=REPO, check=True, capture_output=True, text=True,
                         env={**os.environ, "DAGSTER_HOME": str(home)}).stdout
    return json.loads(out)


if __name__ == "__main__":
    main()
