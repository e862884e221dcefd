"""Benchmark: plan/status speed on a 30 x 5 movie with 30 revisions, and the cost of a regeneration
after one narration edit at the brief's median latencies.

Usage: ``python bench/bench_regenerate.py`` (part of ``make bench``).
"""

from __future__ import annotations

import os

# These measure generation against its critical path; rendering is bench_render.py's.
os.environ.setdefault("MOVIEGEN_RENDER", "off")

import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="moviegen-bench-") as tmp:
        os.environ["DAGSTER_HOME"] = tmp
        (Path(tmp) / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
        import dagster as dg

        from movie_assets.domain.request import parse_request
        from movie_assets.interfaces import api
        from resources.settings import LatencyProfile
        from resources.storage import ArtifactStore

        instance, store = dg.DagsterInstance.get(), ArtifactStore()
        movie = api.new_movie(instance, store, parse_request(
            {"inquiry_prompt": "Tell me about the Civil War", "duration_seconds": 300, "images_per_segment": 5}), "big")
        started = time.monotonic()
        api.generate(instance, store, movie)
        print(f"first generation (latency none): {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        for k in range(1, 30):
            api.edit(instance, store, movie, [(f"segments.{k}.narration", f"Revision {k}: a new line for segment {k}.")])
            result = api.generate(instance, store, movie)
            assert result.success and result.provider_calls["AudioProducer"] == 1
        print(f"29 narration edits + regenerations (latency none): {time.monotonic() - started:.1f} s, "
              f"revisions: {len(api.history(instance, store, movie))}")

        def timed(fn, repeat: int = 5) -> float:
            samples = []
            for _ in range(repeat):
                t = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t)
            return statistics.median(samples)

        print(f"plan (nothing to do, 394 artifacts, 30 revisions): {timed(lambda: api.plan(instance, store, movie)):.3f} s")
        print(f"status: {timed(lambda: api.status(instance, store, movie)):.3f} s")
        print(f"history: {timed(lambda: api.history(instance, store, movie)):.3f} s")
        api.edit(instance, store, movie, [("segments.4.narration", "One more edit, to plan a real rebuild.")])
        p = api.plan(instance, store, movie)
        print(f"plan after one narration edit: {timed(lambda: api.plan(instance, store, movie)):.3f} s, "
              f"{len(p.items)} artifacts, calls {p.provider_calls}, critical path {p.critical_path_s:.0f} s")
        started = time.monotonic()
        result = api.generate(instance, store, movie, latency=LatencyProfile.median)
        wall = time.monotonic() - started
        print(f"regeneration after one narration edit (median latencies): wall {wall:.1f} s, critical path "
              f"{p.critical_path_s:.0f} s, ratio {wall / p.critical_path_s:.3f}, overhead {wall - p.critical_path_s:.1f} s, "
              f"calls {result.provider_calls}, revision {result.revision}")


if __name__ == "__main__":
    main()
