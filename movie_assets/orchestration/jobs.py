"""Jobs: ``generate_movie`` (the sensor launches it; so can the UI) runs a whole generation in the
movie-level build step; ``build_movie`` is the same step without the generation config: in-process
generations (``moviegen generate``) run it with the exact nodes they planned."""

from __future__ import annotations

import dagster as dg

from movie_assets.domain.blueprint import ARTIFACTS, Level
from movie_assets.orchestration.marks import CHECK_KEYS
from movie_assets.orchestration.specs import ARTIFACT_KEYS, BUILD_STEPS

MOVIE_LEVEL_KEYS = [key for name, key in ARTIFACT_KEYS.items() if ARTIFACTS[name].level is Level.movie]
# The movie-level assets with the checks the build step evaluates (timeline_complete, movie_matches_timeline),
# but not the up_to_date checks: a separate op (orchestration/plan_check.py, run from the UI) that a build
# run would plan and then skip, leaving "skipped" as their latest result.
MOVIE_LEVEL = dg.AssetSelection.assets(*MOVIE_LEVEL_KEYS) - dg.AssetSelection.checks(*CHECK_KEYS)

GENERATE_JOB = "generate_movie"
generate_movie_job = dg.define_asset_job(
    GENERATE_JOB,
    selection=MOVIE_LEVEL,
    config={"ops": {BUILD_STEPS[Level.movie]: {"config": {"generation": True}}}},
    description="Generate a movie (pick its partition): builds exactly what its plan shows — every level, in one step — "
                "and records a revision. The inbox sensor launches this job; so can the UI.",
)

BUILD_JOB = "build_movie"
build_movie_job = dg.define_asset_job(
    BUILD_JOB,
    selection=MOVIE_LEVEL,
    description="The movie-level build step, which builds partitions of every level. `moviegen generate` runs it "
                "with the exact nodes its plan lists (run config); prefer generate_movie from the UI.",
)
