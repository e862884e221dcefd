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

from movie_assets.orchestration.inbox import Outcome, inbox_root, inbox_store, process
from movie_assets.orchestration.jobs import generate_movie_job
from movie_assets.orchestration.locks import KIND_TAG, MOVIE_TAG
from movie_assets.orchestration.specs import INBOX_SPEC
from resources.runtime.secrets import redact
from resources.storage import ArtifactStore


@dg.sensor(
    name="movie_inbox",
    job=generate_movie_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Picks up movie requests (MOVIE-ID.yaml) and edits (MOVIE-ID.edits.yaml) dropped in the inbox "
                "(MOVIEGEN_INBOX; default $DAGSTER_HOME/inbox) and starts their generation.",
)
def movie_inbox(context: dg.SensorEvaluationContext) -> dg.SensorResult:
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
    events = observations(outcome)
    if not runs:
        return dg.SensorResult(skip_reason=skip_reason(outcome), cursor=cursor, asset_events=events)
    return dg.SensorResult(run_requests=runs, cursor=cursor, asset_events=events)


SHOWN_ERRORS = 3  # errors of a rejected file in its observation and the tick's message (all in NAME.error.json)


def _first(problems: list[str]) -> list[str]:
    return [redact(p, 300) for p in problems[:SHOWN_ERRORS]]


def observations(outcome: Outcome) -> list[dg.AssetObservation]:
    """One observation of the ``inbox`` asset per file handled: what became of it, where a UI user looks."""
    events = [dg.AssetObservation(INBOX_SPEC.key, metadata={
        "file": a.name, "outcome": "accepted", "movie": a.movie, "kind": a.kind, "run_key": a.run_key,
        "changes": len(a.changes)}) for a in outcome.accepted]
    for name, problems in outcome.rejected.items():
        events.append(dg.AssetObservation(INBOX_SPEC.key, metadata={
            "file": name, "outcome": "rejected", "errors": dg.MetadataValue.json(_first(problems)),
            "error_count": len(problems), "report": f"{name}.error.json"}))
    for name in outcome.crashed:
        events.append(dg.AssetObservation(INBOX_SPEC.key, metadata={
            "file": name, "outcome": "rejected", "errors": dg.MetadataValue.json(["unexpected error while handling it"]),
            "report": f"{name}.error.json"}))
    return events


def skip_reason(outcome: Outcome) -> str:
    """A tick that started nothing: what it saw, and for each rejected file its first errors."""
    text = f"no new requests in {inbox_root()}"
    if outcome.rejected:
        text += "; rejected " + "; ".join(f"{name}: {' | '.join(_first(problems))}" + (
            f" (+{len(problems) - SHOWN_ERRORS} more in {name}.error.json)" if len(problems) > SHOWN_ERRORS else "")
            for name, problems in list(outcome.rejected.items())[:10])
    if outcome.crashed:
        text += "; unexpected error on " + ", ".join(outcome.crashed)
    if outcome.deferred:
        text += f"; {len(outcome.deferred)} file(s) left for the next tick"
    return text[:4000]
