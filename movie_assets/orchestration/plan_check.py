"""The timeline's ``nothing_to_rebuild`` check: whether any movie has partitions to rebuild.

After every edit and generation each movie's plan is recorded as an observation of its timeline
partition (``generation.report_plan``); running this check from the UI refreshes them all and
passes when every movie is up to date.
"""

from collections.abc import Iterator

import dagster as dg

from movie_assets.orchestration.generation import PLAN_CHECK, report_plan
from movie_assets.orchestration.registry import list_movies
from resources.dagster_resources import ArtifactStoreResource


@dg.asset_check(asset="timeline", name=PLAN_CHECK, blocking=False,
                description="What the next generate rebuilds (every partition, its reason, calls and cost): evaluated "
                            "after each edit and generation; Dagster's own staleness shows only the first hop.")
def nothing_to_rebuild(context: dg.AssetCheckExecutionContext, store: ArtifactStoreResource) -> Iterator[dg.AssetCheckResult]:
    artifacts = store.store()
    # Each movie's timeline partition gets a fresh observation carrying its plan, as after an edit.
    plans = [report_plan(context.instance, artifacts, movie) for movie in list_movies(context.instance)]
    pending = [p for p in plans if p.items]
    yield dg.AssetCheckResult(
        passed=not pending, severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(pending)} of {len(plans)} movie(s) have partitions to rebuild" if pending else "every movie is up to date",
        metadata={"to_rebuild": dg.MetadataValue.json({p.movie: len(p.items) for p in pending})},
    )
