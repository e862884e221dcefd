"""The movie's Dagster assets.

* User inputs are external assets, observed with a content-hash data version per partition when a
  movie is registered (or edited), so Dagster shows exactly the dependent partitions as stale.
* Every artifact type is a software-defined asset partitioned by movie, movie × segment or
  movie × segment_image. All of them are computed by one subsettable ``multi_asset`` step,
  ``movie_build``, which builds any set of partitions concurrently (see docs/architecture.md for why
  one step: Dagster runs target one partitions definition at a time and the in-process executor
  runs steps one after another, which would serialise independent branches).
* Each built partition is recorded as its own ``AssetMaterialization`` with a content-hash data
  version and the provenance tags Dagster's staleness reads, so staleness stays per partition.
"""


import asyncio
import base64
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster._core.definitions.events import (
    AssetMaterializationFailure,
    AssetMaterializationFailureReason,
    AssetMaterializationFailureType,
)
from dagster._core.definitions.partitions.utils.multi import (
    get_tags_from_multi_partition_key,
)
from dagster._core.events import AssetMaterializationPlannedData
from pydantic import Field

from partitions import (
    image_partitions,
    image_to_segment,
    movies_partitions,
    partition_key,
    segment_partitions,
    segment_to_image,
)
from resources import (
    ArtifactStore,
    ImagesResource,
    LLMResource,
    MusicResource,
    OpenAIResource,
    ReplicateResource,
    SpeechResource,
    VideoResource,
)

from .blueprint import (
    ARTIFACTS,
    INPUTS,
    SUBGRAPHS,
    ArtifactDecl,
    Level,
    NodeKey,
    expand,
)
from .catalog import INPUT_VERSION_TAG, load_state
from .checks import CHECK_SPECS, CHECKS, CHECKS_BY_ASSET, problem
from .codeversions import ARTIFACT_CODE_VERSIONS
from .engine import BuildEngine, Built, Clients, Failed, Reason, Skipped
from .locks import generation_lock
from .movies import load_movie_request
from .progress import (
    empty_report,
    notify,
    read_run_failures,
    read_run_report,
    write_run_report,
)

INPUTS_GROUP = "inputs"

_PARTITIONS = {Level.movie: movies_partitions, Level.segment: segment_partitions, Level.image: image_partitions}

_KINDS = {"json": {"json"}, "mp3": {"audio"}, "png": {"image"}, "mp4": {"video"}}


def _mapping(downstream: Level, upstream: Level) -> dg.PartitionMapping | None:
    """Explicit mappings only between segments and images. Dagster infers the rest per spec: identity
    within a level, and MultiToSingleDimensionPartitionMapping on the ``movie`` dimension between a
    movie-level and a segment/image-level asset. (A multi_asset allows one explicit mapping per
    upstream asset, so the inferred ones must stay implicit.)"""
    if downstream is upstream or Level.movie in (downstream, upstream):
        return None
    return segment_to_image if downstream is Level.image else image_to_segment


def _group(name: str) -> str:
    return next(sg.name for sg in SUBGRAPHS if name in sg.artifacts)


INPUT_SPECS: dict[str, dg.AssetSpec] = {
    i.name: dg.AssetSpec(
        i.name,
        partitions_def=_PARTITIONS[i.level],
        group_name=INPUTS_GROUP,
        description=f"User input: {i.description} ({', '.join(i.fields)}). Observed with a hash of its value.",
        kinds={"yaml"},
        metadata={"request_fields": ", ".join(i.fields)},
    )
    for i in INPUTS.values()
}


def _artifact_spec(decl: ArtifactDecl) -> dg.AssetSpec:
    deps = [dg.AssetDep(d, partition_mapping=_mapping(decl.level, ARTIFACTS[d].level)) for d in decl.deps]
    deps += [dg.AssetDep(INPUT_SPECS[i], partition_mapping=_mapping(decl.level, INPUTS[i].level)) for i in decl.inputs]
    return dg.AssetSpec(
        decl.name,
        partitions_def=_PARTITIONS[decl.level],
        deps=deps,
        skippable=True,
        code_version=ARTIFACT_CODE_VERSIONS[decl.name],
        group_name=_group(decl.name),
        description=decl.description + (f" — {decl.producer}" if decl.producer else " — no provider call"),
        kinds=_KINDS[decl.media] | {"python"},
        metadata={"producer": decl.producer or "derived", "media": decl.media},
    )


ARTIFACT_SPECS: dict[str, dg.AssetSpec] = {d.name: _artifact_spec(d) for d in ARTIFACTS.values()}


class BuildConfig(dg.Config):
    """Set by ``moviegen generate``: the exact partitions to build. Empty for UI/CLI partition runs.
    ``generation``: plan the movie when the step starts and record a revision at its end (the
    `generate_movie` job: sensor runs and UI launches)."""

    movie: str = Field(default="", description="Movie id whose partitions `nodes` lists (generation: default the run's partition).")
    nodes: dict[str, str] = Field(default_factory=dict, description="Node key -> reason, e.g. 'segment_image[03_2]': 'missing'.")
    generation: bool = Field(default=False, description="Build everything the movie's plan shows, holding its generation "
                                                        "lock, and record a revision.")


GENERATION_WAIT_S = 6 * 3600  # a generation run waits this long for another generation of its movie


def generation_events(context: dg.AssetExecutionContext, movie: str, clients: Clients, store: ArtifactStore) -> Iterator[Any]:
    """A whole generation inside the run: wait for the movie's lock, plan, build, record a revision
    (also when some partitions failed: every other partition is kept and listed)."""
    from .api import plan, record_revision

    with generation_lock(context.instance, movie, GENERATION_WAIT_S, run_id=context.run.run_id):
        p = plan(context.instance, store, movie)
        targets = {NodeKey.parse(i.node): i.reason for i in p.items}
        context.log.info(f"movie {movie}: {len(targets)} partition(s) to build, {sum(p.provider_calls.values())} provider call(s)")
        try:
            if targets:
                yield from build_events(context, movie, targets, clients, store)
        finally:
            report = empty_report()
            if targets:
                report = read_run_report(store, movie, context.run.run_id) or {
                    **report, "failed": {"movie_build": "the run stopped before its report was written"}}
            revision = record_revision(context.instance, store, movie, context.run.run_id if targets else None, report)
            context.log.info(f"movie {movie}: revision {revision['revision']}, timeline {revision['timeline']}")


def _targets_from_partitions(context: dg.AssetExecutionContext) -> dict[str, dict[NodeKey, str]]:
    by_movie: dict[str, dict[NodeKey, str]] = {}
    selected = {k.to_user_string() for k in context.selected_asset_keys}
    for pk in context.partition_keys:
        movie = str(pk).split("|", 1)[0]
        for asset in selected:
            level = ARTIFACTS[asset].level
            if (level is Level.movie) != ("|" not in str(pk)):
                continue
            by_movie.setdefault(movie, {})[NodeKey.from_partition(asset, str(pk))] = Reason.requested
    return by_movie


def materialization_metadata(built: Built) -> dict[str, Any]:
    p = built.produced
    md: dict[str, Any] = {
        "uri": dg.MetadataValue.url(built.record.uri),
        "data_version": dg.MetadataValue.text(built.record.version),
        "bytes": dg.MetadataValue.int(len(p.data)),
        "reason": dg.MetadataValue.text(built.reason),
    }
    if p.call is not None:
        md |= {
            "provider": dg.MetadataValue.text(p.call.provider),
            "model": dg.MetadataValue.text(p.call.model),
            "latency_s": dg.MetadataValue.float(round(p.call.latency_s, 3)),
            "cost_usd": dg.MetadataValue.float(p.call.cost_usd),
            "retries": dg.MetadataValue.int(p.call.retries),
        }
    else:
        md["provider"] = dg.MetadataValue.text("none (override or derived)")
    if p.prompt:
        md["prompt"] = dg.MetadataValue.text(p.prompt)
    for name in ("width", "height", "duration_ms"):
        value = getattr(p, name)
        if value is not None:
            md[name] = dg.MetadataValue.int(int(value))
    for k, v in p.meta.items():
        if isinstance(v, bool | int | float | str):
            md[k] = v
    if p.preview:
        md["preview"] = dg.MetadataValue.md(f"![preview](data:image/jpeg;base64,{base64.b64encode(p.preview).decode()})")
    elif p.ext == "json":
        text = json.dumps(p.value, indent=2, ensure_ascii=False)
        md["preview"] = dg.MetadataValue.md(f"```json\n{text[:3000]}\n```")
    return md


def _partition(key: NodeKey, movie: str) -> str | dg.MultiPartitionKey:
    return partition_key(movie, key.segment, key.image)


def _provenance_tags(spec: dg.AssetSpec, version: str, cursor: int, consumed: dict[str, str]) -> dict[str, str]:
    """The tags Dagster's staleness reads. Every dependency gets the same event-log cursor: any
    newer record of a dependency partition with a different data version makes this one stale.
    The input data version of each dependency is the hash of the versions this build read from it,
    which is what ``moviegen plan`` compares (see versions.py)."""
    tags = {"dagster/data_version": version, "dagster/code_version": spec.code_version or ""}
    for dep in spec.deps:
        name = dep.asset_key.to_user_string()
        tags[f"{INPUT_VERSION_TAG}{name}"] = consumed.get(name, "none")
        tags[f"dagster/input_event_pointer/{name}"] = str(cursor)
    return tags


def build_events(context: dg.AssetExecutionContext, movie: str, targets: dict[NodeKey, str], clients: Clients,
                 store: ArtifactStore) -> Iterator[Any]:
    """Run the engine for one movie in a worker thread and translate its results into Dagster events."""
    instance = context.instance
    request = load_movie_request(store, movie)
    blueprint = expand(request)
    unknown = [k for k in targets if k not in blueprint.nodes]
    for k in unknown:
        context.log.warning(f"{k} is not part of movie {movie!r} (n={request.n}, m={request.m}, modes): skipped")
        targets.pop(k)
    state = load_state(instance, movie, blueprint.nodes, lambda run_id: read_run_failures(store, movie, run_id))
    events: queue.Queue[Any] = queue.Queue()
    done = object()
    result: dict[str, Any] = {}

    loop = asyncio.new_event_loop()

    def worker() -> None:
        try:
            engine = BuildEngine(movie=movie, blueprint=blueprint, state=state, store=store, clients=clients, emit=events.put)
            task = loop.create_task(engine.run(targets))
            result["task"] = task
            result["summary"] = loop.run_until_complete(task)
        except BaseException as e:  # noqa: BLE001 - re-raised in the step's thread
            result["error"] = e
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            events.put(done)

    step_key = context.op_execution_context.node_handle.name
    thread = threading.Thread(target=worker, name=f"moviegen-build-{movie}", daemon=True)
    thread.start()
    # The provenance cursor must be at or after every dependency's record; it is re-read only when a
    # dependency was recorded after the last read (one query per wave instead of one per event).
    cursor: int | None = None
    recorded_since_cursor: set[NodeKey] = set()
    check_problems: dict[str, dict[str, str]] = {}
    checked: dict[str, int] = {}
    try:
        # Planned events make a partition that this run fails to build show as failed (UI and catalog).
        # They are recorded while the engine already runs (its results queue up until they are done), so
        # every planned event precedes its partition's materialization without delaying the first call.
        for key in blueprint.order:
            if key in targets:
                instance.report_dagster_event(
                    dg.DagsterEvent.build_asset_materialization_planned_event(
                        context.run.job_name, step_key,
                        AssetMaterializationPlannedData(ARTIFACT_SPECS[key.asset].key, partition=key.partition_key(movie)),
                    ),
                    run_id=context.run.run_id,
                )
        while (item := events.get()) is not done:
            notify(movie, item)
            if isinstance(item, Built):
                check = CHECKS_BY_ASSET.get(item.key.asset)
                if check is not None:
                    checked[item.key.asset] = checked.get(item.key.asset, 0) + 1
                    issue = problem(item.key.asset, item.produced.data, item.produced.value, request)
                    if issue:
                        check_problems.setdefault(item.key.asset, {})[item.key.partition_key(movie)] = issue
                spec = ARTIFACT_SPECS[item.key.asset]
                if cursor is None or any(d in recorded_since_cursor for d in blueprint.nodes[item.key].deps):
                    cursor = instance.event_log_storage.get_maximum_record_id() or 0
                    recorded_since_cursor.clear()
                partition = _partition(item.key, movie)
                tags = _provenance_tags(spec, item.record.version, cursor, item.inputs)
                if isinstance(partition, dg.MultiPartitionKey):
                    tags |= dict(get_tags_from_multi_partition_key(partition))
                yield dg.AssetMaterialization(spec.key, partition=partition, tags=tags, metadata=materialization_metadata(item))
                recorded_since_cursor.add(item.key)
            elif isinstance(item, Failed):
                context.log.error(f"{item.key} failed: {item.message}")
                # Stored where the event log supports it (Dagster+); on OSS storage the planned
                # event above plus the failed run is what marks the partition failed.
                failure = AssetMaterializationFailure(
                    asset_key=ARTIFACT_SPECS[item.key.asset].key,
                    partition=str(_partition(item.key, movie)),
                    failure_type=AssetMaterializationFailureType.FAILED,
                    reason=AssetMaterializationFailureReason.FAILED_TO_MATERIALIZE,
                    description=item.message,
                    metadata={"error": item.message, "upstream": item.upstream},
                )
                instance.report_dagster_event(
                    dg.DagsterEvent.build_asset_failed_to_materialize_event(context.run.job_name, step_key, failure),
                    run_id=context.run.run_id,
                )
            elif isinstance(item, Skipped):
                context.log.info(f"{item.key} not rebuilt: {item.message}")
    finally:
        # The step was interrupted (run terminated, error while recording): stop the engine first.
        if thread.is_alive() and "task" in result:
            loop.call_soon_threadsafe(result["task"].cancel)
        thread.join()
    if "error" in result:
        raise result["error"]
    summary = result["summary"]
    own_checks = set(context.selected_asset_check_keys)
    for decl in CHECKS:
        check_key = dg.AssetCheckKey(dg.AssetKey(decl.asset), decl.name)
        if check_key not in own_checks and decl.asset not in checked:
            continue
        bad = check_problems.get(decl.asset, {})
        result = {
            "asset_key": check_key.asset_key,
            "check_name": decl.name,
            "passed": not bad,
            "severity": decl.severity,
            "description": f"{len(bad)} of {checked.get(decl.asset, 0)} partition(s) built in this run failed" if bad else None,
            "metadata": {"movie": movie, "partitions_checked": checked.get(decl.asset, 0), "problems": dg.MetadataValue.json(bad)},
        }
        # A generation run builds every level in one step: checks of the other levels' assets are
        # reported as evaluations of those assets' checks.
        yield dg.AssetCheckResult(**result) if check_key in own_checks else dg.AssetCheckEvaluation(**result)
    write_run_report(store, movie, context.run.run_id, summary)
    if summary.machine is not None:
        m = summary.machine
        context.log.info(f"machine: {m.cpus} CPUs at {m.cpu_percent:.0f}%, load {m.load_1m}, "
                         f"{m.memory_available_mb} of {m.memory_total_mb} MB free; {m.gpu_note}")
    context.log.info(
        f"movie {movie}: built {len(summary.built)}, failed {len(summary.failed)}, skipped {len(summary.skipped)}, "
        f"provider calls {dict(summary.calls)} in {summary.seconds:.1f} s"
    )
    if summary.failed:
        first = "; ".join(f"{k}: {m}" for k, m in list(summary.failed.items())[:5])
        raise dg.Failure(
            description=f"{len(summary.failed)} partition(s) of {movie} failed; every other partition was kept. {first}",
            metadata={"failed": dg.MetadataValue.json({str(k): m for k, m in summary.failed.items()})},
        )


def _build_step(level: Level) -> dg.AssetsDefinition:
    specs = [spec for name, spec in ARTIFACT_SPECS.items() if ARTIFACTS[name].level is level]
    names = {spec.key.to_user_string() for spec in specs}

    @dg.multi_asset(
        name=BUILD_STEPS[level],
        specs=specs,
        check_specs=[c for c in CHECK_SPECS if c.asset_key.to_user_string() in names],
        can_subset=True,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=f"Builds {level.value}-level movie artifacts; a generation run of `movie_build` builds every level.",
    )
    def build(
        context: dg.AssetExecutionContext,
        config: BuildConfig,
        store: ArtifactStore,
        llm: LLMResource,
        speech: SpeechResource,
        images: ImagesResource,
        video: VideoResource,
        music: MusicResource,
        openai: OpenAIResource,
        replicate: ReplicateResource,
    ) -> Iterator[Any]:
        """Build movie artifacts: the partitions of this run, or the exact set a generation asks for."""
        clients = Clients(llm=llm, speech=speech, images=images, video=video, music=music, openai=openai, replicate=replicate)
        if config.generation:
            movie = config.movie or (context.partition_key if context.has_partition_key else "")
            if not movie or "|" in movie:
                raise dg.Failure(f"a generation builds a whole movie: run it for a movie partition, not {movie!r}")
            yield from generation_events(context, movie, clients, store)
            return
        if config.movie:
            by_movie = {config.movie: {NodeKey.parse(k): reason for k, reason in config.nodes.items()}}
        elif context.has_partition_key or context.has_partition_key_range:
            by_movie = _targets_from_partitions(context)
        else:
            raise dg.Failure("Select partitions to materialize (a movie, 'movie|03' or 'movie|03_2'), or run `moviegen generate`.")
        for movie, targets in by_movie.items():
            yield from build_events(context, movie, targets, clients, store)

    return build


BUILD_STEPS = {Level.movie: "movie_build", Level.segment: "segment_build", Level.image: "image_build"}
BUILD_ASSETS = [_build_step(level) for level in Level]
MOVIE_LEVEL_KEYS = [spec.key for name, spec in ARTIFACT_SPECS.items() if ARTIFACTS[name].level is Level.movie]

GENERATE_JOB = "generate_movie"
generate_movie_job = dg.define_asset_job(
    GENERATE_JOB,
    selection=dg.AssetSelection.assets(*MOVIE_LEVEL_KEYS),
    config={"ops": {BUILD_STEPS[Level.movie]: {"config": {"generation": True}}}},
    description="Generate a movie (pick its partition): builds exactly what its plan shows — every level, in one step — "
                "and records a revision. The inbox sensor launches this job; so can the UI.",
)
