"""Every artifact asset's ``up_to_date`` check: does the next build rebuild any of its partitions?

The checks are evaluated (run-less) each time a movie's plan changes (``marks.record_plan``); running
them from the UI (an asset's Checks tab, or "Execute all") plans every movie again, records the plans
and marks, and reports the same evaluations. They never build anything, and no build run plans them.
"""

from collections.abc import Iterator

import dagster as dg

from movie_assets.domain.blueprint import ARTIFACTS
from movie_assets.orchestration.generation import plan_movie
from movie_assets.orchestration.marks import UP_TO_DATE, evaluations, record_plan
from movie_assets.orchestration.registry import list_movies
from resources.dagster_resources import ArtifactStoreResource

UP_TO_DATE_SPECS = [
    dg.AssetCheckSpec(UP_TO_DATE, asset=name, blocking=False,
                      description="Whether the next generate rebuilds any partition of this asset (every movie): a "
                                  "warning lists them with their reasons, calls and estimated cost. Evaluated after each "
                                  "edit and generation; Dagster's own staleness shows only the first hop.")
    for name in ARTIFACTS
]


@dg.multi_asset_check(specs=UP_TO_DATE_SPECS, can_subset=True, name="plan_every_movie",
                      description="Plan every movie again and report what the next build rebuilds (builds nothing).")
def plan_every_movie(context: dg.AssetCheckExecutionContext, store: ArtifactStoreResource) -> Iterator[dg.AssetCheckResult]:
    artifacts = store.store()
    for movie in list_movies(context.instance):
        record_plan(context.instance, plan_movie(context.instance, artifacts, movie), evaluate=False)
    for e in evaluations(context.instance, only=set(context.selected_asset_check_keys)):
        yield dg.AssetCheckResult(asset_key=e.asset_key, check_name=e.check_name, passed=e.passed, severity=e.severity,
                                  description=e.description, metadata=e.metadata)
