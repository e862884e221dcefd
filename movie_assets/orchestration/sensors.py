"""The ``movie_inbox`` sensor: new movie requests and edits dropped in the inbox become generations.

Each tick lists the inbox (a folder, or an S3 prefix; see inbox.py), handles every new or replaced
file once (cursor), registers or edits the movie, writes a report beside the file, and requests one
run of the ``generate_movie`` job per accepted file, keyed by movie and content (run key), tagged
with the movie so the queued run coordinator never runs two generations of one movie at once. The
run plans the movie when it starts, so it builds exactly what the file changed.
"""

from __future__ import annotations

import json

import dagster as dg

from movie_assets.orchestration.inbox import inbox_root, inbox_store, process
from movie_assets.orchestration.jobs import generate_movie_job
from movie_assets.orchestration.locks import KIND_TAG, MOVIE_TAG
from resources.storage import ArtifactStore


@dg.sensor(
    name="movie_inbox",
    job=generate_movie_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Picks up movie requests (MOVIE-ID.yaml) and edits (MOVIE-ID.edits.yaml) dropped in the inbox "
                "(MOVIEGEN_INBOX; default $DAGSTER_HOME/inbox) and starts their generation.",
)
def movie_inbox(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    seen = json.loads(context.cursor) if context.cursor else {}
    inbox = inbox_store()
    folder = inbox.local_path(inbox.uri(""))
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)  # where users look for it
    outcome = process(context.instance, ArtifactStore(), inbox, seen)
    for name, problems in outcome.rejected.items():
        context.log.warning(f"{name} rejected (see {name}.error.json): " + "; ".join(problems))
    for name, trace in outcome.crashed.items():
        context.log.error(f"{name}: unexpected error while handling it (reported in {name}.error.json):\n{trace}")
    for name, why in outcome.unreported.items():
        context.log.error(f"{name}: its report could not be written ({why})")
    if outcome.deferred:
        context.log.info(f"{len(outcome.deferred)} file(s) left for the next tick (this one ran long): "
                         + ", ".join(outcome.deferred[:20]))
    for a in outcome.accepted:
        context.log.info(f"{a.name}: {a.kind} {a.movie} ({len(a.changes)} change(s)), run key {a.run_key}")
    runs = [
        dg.RunRequest(
            run_key=a.run_key,
            partition_key=a.movie,
            tags={MOVIE_TAG: a.movie, KIND_TAG: "sensor", "moviegen/inbox-file": a.name},
        )
        for a in outcome.accepted
    ]
    cursor = json.dumps(outcome.cursor, sort_keys=True)
    if not runs:
        rejected = f"; rejected {', '.join(outcome.rejected)}" if outcome.rejected else ""
        deferred = f"; {len(outcome.deferred)} file(s) left for the next tick" if outcome.deferred else ""
        context.update_cursor(cursor)
        return dg.SkipReason(f"no new requests in {inbox_root()}{rejected}{deferred}")
    return dg.SensorResult(run_requests=runs, cursor=cursor)
