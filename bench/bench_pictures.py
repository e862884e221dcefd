"""Benchmark: how different the demo's offline pictures are from each other, and how long one takes.

Generates examples/civil-war.yaml offline (no render) in a private Dagster home, then prints:

- the mean pairwise difference of its pictures: the mean absolute difference of two pictures' pixels
  (RGB, 0..255, both downscaled to 160x90), averaged over every pair of the movie's pictures (0: all
  the same picture; two unrelated photographs are typically 50-80);
- the smallest pairwise difference (the two most alike pictures);
- the time to draw one picture (ms, the median over every prompt of the movie drawn again at 480p
  and 720p, in this process): wall time, and the CPU time of this process (steadier on a loaded
  machine).

Usage: ``python bench/bench_pictures.py [--home DIR] [--request FILE] [--repeat N] [--json]``. With
``--home`` an already generated movie there is measured (nothing is generated).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent

from resources.providers.offline.media import draw_picture  # noqa: E402


def moviegen(home: Path, *args: str) -> str:
    env = {**os.environ, "DAGSTER_HOME": str(home), "MOVIEGEN_RENDER": "off", "PYTHONPATH": str(REPO)}
    return subprocess.run([str(BIN / "moviegen"), *args], cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout


def pictures(home: Path, movie: str) -> list[tuple[str, Path, str]]:
    """(image key, picture, its prompt) of the movie's latest pictures."""
    root = home / "artifacts" / "movies" / movie
    out = []
    for folder in sorted((root / "segment_image").iterdir()):
        png = max(folder.glob("*.png"), key=lambda p: p.stat().st_mtime)
        prompts = sorted((root / "image_prompt" / folder.name).glob("*.json"), key=lambda p: p.stat().st_mtime)
        out.append((folder.name, png, json.loads(prompts[-1].read_text())["prompt"]))
    return out


def small(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB").resize((160, 90), Image.Resampling.BILINEAR), dtype=np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, help="measure the movie already generated in this Dagster home")
    ap.add_argument("--request", default=str(REPO / "examples" / "civil-war.yaml"))
    ap.add_argument("--movie", default="civil-war")
    ap.add_argument("--repeat", type=int, default=3, help="draws of each prompt per size for the timing")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="moviegen-bench-pictures-") as tmp:
        home = args.home or Path(tmp)
        if args.home is None:
            moviegen(home, "new", args.request, "--id", args.movie)
            moviegen(home, "generate", args.movie, "--quiet")
        found = pictures(home, args.movie)
        arrays = [small(p) for _, p, _ in found]
        diffs = [float(np.abs(a - b).mean()) for a, b in itertools.combinations(arrays, 2)]
        style = "cinematic"
        times, cpu = {}, {}
        for size in ((854, 480), (1280, 720)):
            draws, used = [], []
            for _, _, prompt in found:
                for _ in range(args.repeat):
                    started, cpu_started = time.perf_counter(), time.process_time()
                    draw_picture(prompt, style, *size, "Segment 00 · Image 0")
                    draws.append((time.perf_counter() - started) * 1000)
                    used.append((time.process_time() - cpu_started) * 1000)
            times[f"{size[1]}p"] = round(statistics.median(draws), 1)
            cpu[f"{size[1]}p"] = round(statistics.median(used), 1)
    result = {"pictures": len(found), "mean_pairwise_difference": round(statistics.mean(diffs), 1),
              "min_pairwise_difference": round(min(diffs), 1), "ms_per_picture": times, "cpu_ms_per_picture": cpu}
    if args.json:
        print(json.dumps(result))
        return
    print(f"pictures:                  {result['pictures']}")
    print(f"mean pairwise difference:  {result['mean_pairwise_difference']} (0..255, RGB at 160x90)")
    print(f"min pairwise difference:   {result['min_pairwise_difference']}")
    for size, ms in times.items():
        print(f"ms per picture ({size}):    {ms} wall, {cpu[size]} CPU")


if __name__ == "__main__":
    main()
