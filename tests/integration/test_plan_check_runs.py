"""Generations run the build step's own checks (timeline_complete, movie_matches_timeline) and never
plan the up_to_date checks, which only the UI runs (a skipped result would hide them); the plan's
evaluations of them follow every generation."""

from __future__ import annotations

import dagster as dg

from movie_assets.definitions import defs
from movie_assets.interfaces import api
from movie_assets.orchestration.jobs import GENERATE_JOB
from movie_assets.orchestration.marks import CHECK_KEYS
from resources.storage import ArtifactStore
from tests.conftest import small_request

PLAN_CHECK_KEYS = set(CHECK_KEYS)


def _checks(instance: dg.DagsterInstance, run_id: str) -> tuple[set[dg.AssetCheckKey], set[dg.AssetCheckKey], list[str]]:
    """The checks a run planned, those it evaluated, and the event types of its skipped steps."""
    events = [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event is not None]
    planned = {e.event_specific_data.asset_check_key for e in events  # type: ignore[union-attr]
               if e.event_type_value == "ASSET_CHECK_EVALUATION_PLANNED"}
    evaluated = {e.event_specific_data.asset_check_key for e in events  # type: ignore[union-attr]
                 if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    return planned, evaluated, [e.event_type_value for e in events if e.event_type_value == "STEP_SKIPPED"]


def test_the_generate_movie_job_does_not_plan_the_plan_check(instance: dg.DagsterInstance, store: ArtifactStore) -> None:
    """What the inbox sensor and the UI launch: the generate_movie job for a movie partition."""

    movie = api.new_movie(instance, store, small_request(duration_seconds=10, images_per_segment=1), "checks")
    result = defs().resolve_job_def(GENERATE_JOB).execute_in_process(instance=instance, partition_key=movie,
                                                                   raise_on_error=False)
    assert result.success
    planned, evaluated, skipped = _checks(instance, result.run_id)
    assert not PLAN_CHECK_KEYS & (planned | evaluated) and not skipped
    assert dg.AssetCheckKey(dg.AssetKey("timeline"), "timeline_complete") in planned & evaluated


def test_an_in_process_generation_does_not_plan_the_plan_check(instance: dg.DagsterInstance, store: ArtifactStore) -> None:
    movie = api.new_movie(instance, store, small_request(duration_seconds=10, images_per_segment=1), "checks")
    result = api.generate(instance, store, movie)
    assert result.success, result.failed
    planned, evaluated, skipped = _checks(instance, result.run_id)
    assert dg.AssetCheckKey(dg.AssetKey("timeline"), "timeline_complete") in planned & evaluated
    assert not PLAN_CHECK_KEYS & (planned | evaluated) and not skipped
