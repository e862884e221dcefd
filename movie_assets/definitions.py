"""The code location: assembles the assets, checks, jobs, sensors and resources. Nothing happens at import:
the definitions are made when Dagster loads them, from this process's settings (read once)."""

from __future__ import annotations

import functools

import dagster as dg

from movie_assets.orchestration.jobs import BUILD_JOB, GENERATE_JOB, build_movie_job, generate_movie_job
from movie_assets.orchestration.sensors import movie_inbox
from movie_assets.orchestration.specs import INBOX_SPEC, INPUT_SPECS
from movie_assets.orchestration.steps import build_assets
from resources.dagster_resources import default_resources
from resources.settings import Settings, current


@functools.lru_cache(maxsize=4)
def definitions_for(settings: Settings) -> dg.Definitions:
    """The definitions under these settings: the same settings give the same code versions on every machine."""
    return dg.Definitions(
        assets=[*INPUT_SPECS.values(), INBOX_SPEC, *build_assets(settings)],
        jobs=[generate_movie_job, build_movie_job],
        sensors=[movie_inbox],
        resources=default_resources(settings),
        # One step builds everything concurrently inside; a process per step would only add start-up cost.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return definitions_for(current())


def build_job() -> dg.JobDefinition:
    """The job every in-process build run executes (``orchestration.generation.build_movie``
    reconstructs it by name in the run's process)."""
    return defs().resolve_job_def(BUILD_JOB)


def generate_job() -> dg.JobDefinition:
    """The ``generate_movie`` job, as the run queue's submissions reconstruct it
    (``orchestration.queue.submit_generation``)."""
    return defs().resolve_job_def(GENERATE_JOB)
