"""The build steps: three subsettable ``multi_asset`` steps (``movie_build``, ``segment_build``,
``image_build``, one per partitions definition) that run the build engine and record each built
partition as its own ``AssetMaterialization`` with a content-hash data version and the provenance
tags Dagster's staleness reads, so staleness stays per partition.

A generation is one run of ``movie_build`` that builds every level's planned partitions concurrently
(see docs/architecture.md for why); a UI or CLI run of a segment or image partition runs that level's
step for exactly that partition.
"""

import asyncio
import base64
import dataclasses
import hashlib
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import dagster as dg
from pydantic import Field

from movie_assets.builder.budget import Budget, caps_for
from movie_assets.builder.checks import problem
from movie_assets.builder.engine import BuildEngine, BuildSummary, Built, Failed, Logged, Skipped
from movie_assets.builder.progress import notify
from movie_assets.domain.blueprint import ARTIFACTS, OPTIONAL_READS, Blueprint, Level, NodeKey
from movie_assets.domain.errors import OverBudget, PreflightFailed
from movie_assets.domain.plan import Reason
from movie_assets.domain.records import ArtifactRecord
from movie_assets.domain.request import MovieRequest
from movie_assets.movie_files.layout import media_link
from movie_assets.movie_files.reports import RunReport, read_run_report, write_run_report
from movie_assets.orchestration import events
from movie_assets.orchestration.event_log import FAILED_IMAGES, IMAGES, INPUT_VERSION_TAG
from movie_assets.orchestration.generation import (
    Generation,
    Handoff,
    OpenMovie,
    check_plan,
    handed,
    open_movie,
    plan_of,
    state_after,
)
from movie_assets.orchestration.locks import generation_lock
from movie_assets.orchestration.marks import UP_TO_DATE, evaluations, record_plan
from movie_assets.orchestration.registry import list_movies
from movie_assets.orchestration.specs import ARTIFACT_KEYS, BUILD_STEPS, CHECK_SPECS, artifact_specs
from partitions import node_partition, partition_key
from resources.dagster_resources import (
    ArtifactStoreResource,
    ImagesResource,
    LLMResource,
    MusicResource,
    OpenAIResource,
    ProviderClients,
    ReplicateResource,
    SpeechResource,
    TranscriptionResource,
    VideoResource,
)
from resources.runtime import scratch
from resources.runtime.budget import make_ledger
from resources.runtime.secrets import TEXT_LIMIT, redact
from resources.settings import Settings, current, parse_strategy
from resources.storage import ArtifactStore


class BuildConfig(dg.Config):
    """Set by ``moviegen generate``: the exact partitions to build. Empty for UI/CLI partition runs.
    ``generation``: plan the movie when the step starts and record a revision at its end (the
    `generate_movie` job: sensor runs and UI launches)."""

    movie: str = Field(default="", description="Movie id whose partitions `nodes` lists (generation: default the run's partition).")
    nodes: dict[str, str] = Field(default_factory=dict, description="Node key -> reason, e.g. 'segment_image[03_2]': 'missing'.")
    generation: bool = Field(default=False, description="Build everything the movie's plan shows, holding its generation "
                                                        "lock, and record a revision.")
    budget_usd: float | None = Field(default=None, ge=0, description="The movie's budget cap in USD for this run (default: "
                                                                    "the request's budget_usd, else MOVIEGEN_MOVIE_BUDGET_USD).")
    allow_over_budget: bool = Field(default=False, description="Generation: start although the plan's estimate exceeds a "
                                                               "budget cap; calls stop at the cap.")
    strategy: str = Field(default="", description="sequential, parallel or adaptive (empty: the request's strategy, else "
                                                  "MOVIEGEN_STRATEGY, else adaptive).")
    handoff: str = Field(default="", description="Set by an in-process generation: the movie it opened and the plan it "
                                                 "made, handed over in this process (elsewhere the step opens the movie).")


GENERATION_WAIT_S = 6 * 3600  # a generation run waits this long for another generation of its movie


def generation_events(context: dg.AssetExecutionContext, movie: str, clients: ProviderClients,
                      store: ArtifactStore, config: BuildConfig, settings: Settings) -> Iterator[Any]:
    """A whole generation inside the run (the sensor's and the UI's): the same sequence as ``moviegen
    generate`` -- wait for the movie's lock, open it once and plan, build, record the revision (also when
    some partitions failed: every other partition is kept and listed) and the plan after it."""
    scratch.sweep()  # scratch folders and child processes a killed generation left behind
    with generation_lock(context.instance, movie, GENERATION_WAIT_S, run_id=context.run.run_id):
        generation = Generation(context.instance, store, movie, settings=settings, budget_usd=config.budget_usd)
        plan = generation.open_and_plan()
        opened = generation.opened
        assert opened is not None
        targets = plan.targets
        context.log.info(f"movie {movie}: {len(targets)} partition(s) to build, {sum(plan.provider_calls.values())} "
                         f"provider call(s), estimated ${plan.estimated_cost_usd:.4f}")
        try:
            check_plan(plan, config.allow_over_budget)
        except (OverBudget, PreflightFailed) as e:
            raise dg.Failure(description=redact(f"nothing was sent: {e}", TEXT_LIMIT), metadata={
                "problems": dg.MetadataValue.json(_redacted(getattr(e, "problems", []))),
                "budget": dg.MetadataValue.json(plan.budget)}) from None
        handoff = Handoff(opened, targets)
        try:
            if targets:
                yield from build_events(context, opened, targets, clients, store, config.budget_usd, config.strategy, handoff)
        finally:
            report = RunReport(movie=movie)
            if targets:
                report = read_run_report(store, movie, context.run.run_id) or RunReport(
                    movie=movie, run_id=context.run.run_id,
                    failed={"movie_build": "the run stopped before its report was written"})
            revision = generation.finish(context.run.run_id if targets else None, report, handoff.summary)
            context.log.info(f"movie {movie}: revision {revision.revision}, timeline {revision.timeline}")


def _redacted(value: Any) -> Any:
    """A JSON value with every string in it free of secrets (metadata Dagster stores)."""
    if isinstance(value, str):
        return redact(value, TEXT_LIMIT)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


def _clean_error(e: BaseException) -> BaseException:
    """``e`` itself when neither its text nor that of a chained cause or context holds a secret; else a
    dg.Failure with the chain's redacted text. Dagster stores a step's exception with its chain."""
    texts, seen, current = [], set(), e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    if all(redact(t, None) == t for t in texts):
        return e
    return dg.Failure(description=redact("; caused by ".join(texts), TEXT_LIMIT))


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


_LINK_NAMES = {"mp4": "play", "mp3": "listen", "m4a": "listen", "png": "open", "json": "open"}


def materialization_metadata(built: Built, store: ArtifactStore, media_url: str = "") -> dict[str, Any]:
    """What the UI shows of a built partition. ``path`` (under the store's root) is what the catalog reads
    back; ``uri`` is where the file is now, for a person to open (a home copied or moved later keeps it:
    nothing reads it); with a media server (``media_url``), a link that plays it in a browser."""
    p = built.produced
    md: dict[str, Any] = {}
    link = media_link(media_url, built.record.uri)
    if link:
        md[_LINK_NAMES.get(p.ext, "open")] = dg.MetadataValue.url(link)
    md |= {
        "path": dg.MetadataValue.path(built.record.uri),
        "uri": dg.MetadataValue.url(store.uri(built.record.uri)),
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
            md[k] = redact(v, None) if isinstance(v, str) else v
    if p.preview:
        md["preview"] = dg.MetadataValue.md(f"![preview](data:image/jpeg;base64,{base64.b64encode(p.preview).decode()})")
    elif p.ext == "json":
        text = json.dumps(p.value, indent=2, ensure_ascii=False)
        md["preview"] = dg.MetadataValue.md(f"```json\n{text[:3000]}\n```")
    return md


def _provenance_tags(record: ArtifactRecord, cursor: int, consumed: dict[str, str]) -> dict[str, str]:
    """The tags Dagster's staleness reads. Every dependency gets the same event-log cursor: any
    newer record of a dependency partition with a different data version makes this one stale.
    The input data version of each dependency is the hash of the versions this build read from it,
    which is what ``moviegen plan`` compares (see domain/inputs.py)."""
    decl = ARTIFACTS[record.key.asset]
    tags = {"dagster/data_version": record.version, "dagster/code_version": record.code_version}
    for name in (*decl.deps, *decl.inputs):
        tags[f"{INPUT_VERSION_TAG}{name}"] = consumed.get(name, "none")
        # An artifact this partition does not read (the look, for an off-look segment or a movie made without
        # one): a pointer past any record, so no change of it makes this partition stale in the UI either.
        unread = name not in consumed and name in OPTIONAL_READS and name in ARTIFACTS
        tags[f"dagster/input_event_pointer/{name}"] = str(UNREAD_POINTER if unread else cursor)
    return tags


UNREAD_POINTER = 2**62


def _max_id(instance: dg.DagsterInstance) -> int:
    """The event log's newest record id: a provenance cursor at or after every dependency's record."""
    return instance.event_log_storage.get_maximum_record_id() or 0


def _segment_images(blueprint: Blueprint, asset: str, segment: int | None) -> set[NodeKey]:
    """The images of an image asset in one segment: the nodes of its Dagster partition."""
    return {k for k in blueprint.nodes if k.asset == asset and k.segment == segment and k.image is not None}


class ImageGroups:
    """A segment's images are one Dagster partition of an image asset. Built images wait here until every
    image of the segment that the run builds is done (built, failed or not rebuilt), then go out as one
    materialization listing each image's own record (version, path, inputs, metadata: what the catalog
    reads back per image) with the images not rebuilt taken from what exists, and the ones that failed."""

    def __init__(self, opened: OpenMovie, targets: dict[NodeKey, str], store: ArtifactStore):
        self.opened, self.store = opened, store
        self.waiting: dict[tuple[str, int], set[NodeKey]] = {}
        for key in targets:
            if key.image is not None and key.segment is not None:
                self.waiting.setdefault((key.asset, key.segment), set()).add(key)
        self.built: dict[tuple[str, int], dict[NodeKey, Built]] = {}
        self.failed: dict[tuple[str, int], dict[str, dict[str, str]]] = {}

    def done(self, key: NodeKey, built: Built | None = None, failure: Failed | None = None) -> tuple[str, int] | None:
        """Record an image's outcome; the segment when it was the last one the run builds and some were built."""
        assert key.segment is not None
        group = (key.asset, key.segment)
        if built is not None:
            self.built.setdefault(group, {})[key] = built
        if failure is not None:
            self.failed.setdefault(group, {})[str(key)] = {"message": redact(failure.message, TEXT_LIMIT),
                                                           "category": failure.category,
                                                           "suggestion": redact(failure.suggestion, TEXT_LIMIT)}
        waiting = self.waiting.get(group, set())
        waiting.discard(key)
        # Nothing new built: no materialization (the run's planned event and report tell of the failures).
        return None if waiting or group not in self.built else group

    def unfinished(self) -> list[tuple[str, int]]:
        return [g for g, waiting in self.waiting.items() if waiting and g in self.built]

    def members(self, group: tuple[str, int]) -> set[NodeKey]:
        return _segment_images(self.opened.blueprint, *group)

    def materialization(self, group: tuple[str, int], cursor: int) -> dg.AssetMaterialization:
        asset, segment = group
        self.waiting.pop(group, None)
        built, failed = self.built.pop(group, {}), self.failed.pop(group, {})
        # A placeholder stands in for a failed image: built, so not failed in the catalog (as for any partition).
        failed = {node: error for node, error in failed.items() if NodeKey.parse(node) not in built}
        movie, state, media_url = self.opened.movie, self.opened.state, self.opened.settings.media_url
        entries, previews, metadata = [], [], {}
        for key in sorted(self.members(group)):
            if key in built:
                item = built[key]
                md = materialization_metadata(item, self.store, media_url)
                if "preview" in md and item.produced.preview:
                    previews.append(f"![{key}](data:image/jpeg;base64,{base64.b64encode(item.produced.preview).decode()})")
                plain = {k: getattr(v, "value", v) for k, v in md.items() if k != "preview"}
                entry = {"version": item.record.version, "path": item.record.uri, "code_version": item.record.code_version,
                         "inputs": dict(item.inputs), "metadata": plain}
                if link := next((md[k] for k in ("open", "play", "listen") if k in md), None):
                    metadata[f"open {key.image}"] = link
            elif (record := state.records.get(key)) is not None:
                entry = {"version": record.version, "path": record.uri, "code_version": record.code_version,
                         "inputs": dict(record.input_versions), "metadata": record.metadata}
                if link := media_link(media_url, record.uri):
                    metadata[f"open {key.image}"] = dg.MetadataValue.url(link)
            else:
                continue
            entries.append({"segment": segment, "image": key.image, **entry})
        decl = ARTIFACTS[asset]
        version = hashlib.sha256(json.dumps([(e["image"], e["version"]) for e in entries]).encode()).hexdigest()
        tags = {"dagster/data_version": version,
                "dagster/code_version": entries[0]["code_version"] if entries else ""}
        for name in (*decl.deps, *decl.inputs):
            read = [e["inputs"].get(name, "none") for e in entries]
            tags[f"{INPUT_VERSION_TAG}{name}"] = hashlib.sha256(json.dumps(read).encode()).hexdigest()
            unread = all(r == "none" for r in read) and name in OPTIONAL_READS and name in ARTIFACTS
            tags[f"dagster/input_event_pointer/{name}"] = str(UNREAD_POINTER if unread else cursor)
        partition = partition_key(movie, segment)
        metadata |= {"images_built": len(built), "images": len(entries), IMAGES: dg.MetadataValue.json(entries)}
        if failed:
            metadata[FAILED_IMAGES] = dg.MetadataValue.json(failed)
        if previews:
            metadata["preview"] = dg.MetadataValue.md(" ".join(previews))
        return dg.AssetMaterialization(ARTIFACT_KEYS[asset], partition=partition,
                                       tags=tags | events.multi_partition_tags(partition), metadata=metadata)


def not_in_movie(movie: str, request: MovieRequest, blueprint: Blueprint, unknown: list[NodeKey]) -> str:
    """Why partitions a movie does not have cannot be built, naming the ones it has."""
    lines = [f"{', '.join(dict.fromkeys(str(node_partition(movie, k)) for k in unknown[:10]))}: not partitions of movie "
             f"{movie!r} ({request.segment_count} segment(s), {request.images_per_segment} image(s) each in picture segments); "
             "nothing was built. Its partitions of these assets:"]
    for asset in sorted({k.asset for k in unknown}):
        has = list(dict.fromkeys(str(node_partition(movie, k)) for k in blueprint.order if k.asset == asset))
        lines.append(f"  {asset}: {', '.join(has[:40]) + (' ...' if len(has) > 40 else '') if has else 'none (this movie does not use it)'}")
    lines.append(f"To build what the movie needs, launch generate_movie for partition {movie!r} or run `moviegen generate {movie}`.")
    return "\n".join(lines)


def build_events(context: dg.AssetExecutionContext, opened: OpenMovie, targets: dict[NodeKey, str],
                 clients: ProviderClients, store: ArtifactStore, budget_usd: float | None = None,
                 strategy: str = "", handoff: Handoff | None = None) -> Iterator[Any]:
    """Run the engine for one movie in a worker thread and translate its results into Dagster events
    (``handoff``: where to leave the build's summary for the generation that planned it)."""
    instance = context.instance
    movie, request, blueprint, state = opened.movie, opened.request, opened.blueprint, opened.state
    unknown = sorted(k for k in targets if k not in blueprint.nodes)
    if unknown:  # refused before anything is built (and before any check could report on it)
        raise dg.Failure(description=not_in_movie(movie, request, blueprint, unknown))
    results: queue.Queue[Any] = queue.Queue()
    done = object()
    result: dict[str, Any] = {}

    loop = asyncio.new_event_loop()

    def worker() -> None:
        try:
            width, height = request.frame
            budget = Budget(make_ledger(), movie, caps_for(movie, request, budget_usd),
                            lambda producer: clients.price(producer, width, height), run=context.run.run_id)
            engine = BuildEngine(movie=movie, blueprint=blueprint, state=state, store=store, clients=clients,
                                 emit=results.put, budget=budget, fallback=opened.settings.fallback, settings=opened.settings,
                                 strategy=parse_strategy(strategy, "strategy") if strategy else None)
            task = loop.create_task(engine.run(targets))
            result["task"] = task
            result["summary"] = loop.run_until_complete(task)
        except BaseException as e:  # noqa: BLE001 - re-raised in the step's thread
            result["error"] = e
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            results.put(done)

    thread = threading.Thread(target=worker, name=f"moviegen-build-{movie}", daemon=True)
    thread.start()
    # The provenance cursor must be at or after every dependency's record; it is re-read only when a
    # dependency was recorded after the last read (one query per wave instead of one per event).
    cursor: int | None = None
    recorded_since_cursor: set[NodeKey] = set()
    images = ImageGroups(opened, targets, store)
    check_problems: dict[str, dict[str, str]] = {}
    check_issues: dict[str, str] = {}  # node -> problem, for the run report (generate prints them)
    checked: dict[str, int] = {}
    try:
        # Planned events make a partition that this run fails to build show as failed (UI and catalog).
        # They are recorded while the engine already runs (its results queue up until they are done), so
        # every planned event precedes its partition's materialization without delaying the first call.
        planned: set[tuple[str, str]] = set()
        for key in blueprint.order:
            if key in targets and (key.asset, str(node_partition(movie, key))) not in planned:
                planned.add((key.asset, str(node_partition(movie, key))))
                events.report_planned(context, ARTIFACT_KEYS[key.asset], str(node_partition(movie, key)))
        while (item := results.get()) is not done:
            notify(movie, item)
            if isinstance(item, Built):
                if ARTIFACTS[item.key.asset].check is not None:
                    checked[item.key.asset] = checked.get(item.key.asset, 0) + 1
                    issue = problem(item.key.asset, item.produced.data, item.produced.value, request, item.key,
                                    item.record.metadata)
                    if issue:
                        check_problems.setdefault(item.key.asset, {})[item.key.partition_key(movie)] = issue
                        check_issues[str(item.key)] = issue
                if cursor is None or any(d in recorded_since_cursor for d in blueprint.nodes[item.key].deps):
                    cursor = instance.event_log_storage.get_maximum_record_id() or 0
                    recorded_since_cursor.clear()
                partition = node_partition(movie, item.key)
                if item.key.image is not None:  # the segment's images go out together
                    if (ready := images.done(item.key, built=item)) is not None:
                        yield images.materialization(ready, _max_id(instance))
                        recorded_since_cursor.update(images.members(ready))
                    continue
                tags = _provenance_tags(item.record, cursor, item.inputs) | events.multi_partition_tags(partition)
                yield dg.AssetMaterialization(ARTIFACT_KEYS[item.key.asset], partition=partition, tags=tags,
                                              metadata=materialization_metadata(item, store, opened.settings.media_url))
                recorded_since_cursor.add(item.key)
            elif isinstance(item, Failed):
                # The run's log (the UI; the console with --verbose) keeps the traceback of an error not a provider's.
                context.log.error(redact(f"{item.key} failed [{item.category}]: {item.message} -> {item.suggestion}"
                                         + (f"\n{item.detail}" if item.detail else ""), TEXT_LIMIT))
                events.report_failed(context, ARTIFACT_KEYS[item.key.asset], str(node_partition(movie, item.key)),
                                     item.message, item.upstream, item.category, item.suggestion)
                if item.key.image is not None and (ready := images.done(item.key, failure=item)) is not None:
                    yield images.materialization(ready, _max_id(instance))
                    recorded_since_cursor.update(images.members(ready))
            elif isinstance(item, Skipped):
                context.log.info(redact(f"{item.key} not rebuilt: {item.message}", TEXT_LIMIT))
                if item.key.image is not None and (ready := images.done(item.key)) is not None:
                    yield images.materialization(ready, _max_id(instance))
                    recorded_since_cursor.update(images.members(ready))
            elif isinstance(item, Logged):
                context.log.info(redact(f"{item.key}: {item.message}", TEXT_LIMIT))
        # Segments some of whose images were built when the engine stopped before the others finished.
        for ready in images.unfinished():
            yield images.materialization(ready, _max_id(instance))
    finally:
        # The step was interrupted (run terminated, error while recording): stop the engine first.
        if thread.is_alive() and "task" in result:
            loop.call_soon_threadsafe(result["task"].cancel)
        thread.join()
    if "error" in result:
        raise result["error"]
    summary = result["summary"]
    if handoff is not None:
        handoff.summary = summary
    own_checks = set(context.selected_asset_check_keys)
    for decl in ARTIFACTS.values():
        if decl.check is None:
            continue
        check_key = dg.AssetCheckKey(dg.AssetKey(decl.name), decl.check.name)
        if check_key not in own_checks and decl.name not in checked:
            continue
        bad = check_problems.get(decl.name, {})
        result = {
            "asset_key": check_key.asset_key,
            "check_name": decl.check.name,
            "passed": not bad,
            "severity": dg.AssetCheckSeverity(decl.check.severity),
            "description": (f"{len(bad)} of {checked.get(decl.name, 0)} partition(s) built in this run failed; "
                            f"{redact(next(iter(bad.values())), 300)}") if bad else None,
            "metadata": {"movie": movie, "partitions_checked": checked.get(decl.name, 0), "problems": dg.MetadataValue.json(bad)},
        }
        # A generation run builds every level in one step: checks of the other levels' assets are
        # reported as evaluations of those assets' checks.
        yield dg.AssetCheckResult(**result) if check_key in own_checks else dg.AssetCheckEvaluation(**result)
    report = summary.to_report(movie, context.run.run_id)
    report.checks = {node: redact(issue, TEXT_LIMIT) for node, issue in check_issues.items()}
    write_run_report(store, report)
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
            description=redact(f"{len(summary.failed)} partition(s) of {movie} failed; every other partition was kept. "
                               f"{first}", TEXT_LIMIT),
            metadata={"failed": dg.MetadataValue.json({str(k): redact(m, TEXT_LIMIT) for k, m in summary.failed.items()})},
        )


def _step_events(context: dg.AssetExecutionContext, config: BuildConfig, clients: ProviderClients,
                 artifacts: ArtifactStore, settings: Settings) -> Iterator[Any]:
    """A build step's events: the partitions of its run, or the exact set a generation asks for."""
    if config.generation:
        movie = config.movie or (context.partition_key if context.has_partition_key else "")
        if not movie or "|" in movie:
            raise dg.Failure(f"a generation builds a whole movie: pick the movie's partition (the launchpad's partition "
                             f"selector), not {movie!r}")
        yield from generation_events(context, movie, clients, artifacts, config, settings)
        return
    if (handoff := handed(config.handoff)) is not None:  # an in-process generation: its opened movie and plan
        yield from build_events(context, handoff.opened, dict(handoff.targets), clients, artifacts, config.budget_usd,
                                config.strategy, handoff)
        return
    try:
        if config.movie:  # exact nodes given in the run config
            targets = {NodeKey.parse(k): reason for k, reason in config.nodes.items()}
            yield from build_events(context, open_movie(context.instance, artifacts, config.movie, settings=settings), targets,
                                    clients, artifacts, config.budget_usd, config.strategy)
        elif context.has_partition_key or context.has_partition_key_range:  # the UI's Materialize, `dg launch`
            for movie, selected in _targets_from_partitions(context).items():
                yield from selection_events(context, movie, set(selected), clients, artifacts, config, settings)
        elif context.selected_asset_check_keys and not context.selected_asset_keys:  # "Execute all" of checks
            yield from stored_check_results(context, artifacts, settings)
        else:
            raise dg.Failure(NO_SELECTION)
    except GeneratorExit:
        raise
    except BaseException:
        yield from _up_to_date_results(context)
        raise
    yield from _up_to_date_results(context)


def _up_to_date_results(context: dg.AssetExecutionContext) -> Iterator[dg.AssetCheckResult]:
    """Selected up_to_date checks report the plan after this run (a skipped one would hide the marks)."""
    for e in evaluations(context.instance, only=_up_to_date_keys(context)):
        yield dg.AssetCheckResult(asset_key=e.asset_key, check_name=e.check_name, passed=e.passed, severity=e.severity,
                                  description=e.description, metadata=e.metadata)


def _up_to_date_keys(context: dg.AssetExecutionContext) -> set[dg.AssetCheckKey]:
    return {k for k in context.selected_asset_check_keys if k.name == UP_TO_DATE}


NO_SELECTION = ("Nothing to build: no partition was selected. To build a movie, launch generate_movie for its partition "
                "(or run `moviegen generate MOVIE`); to rebuild some of its partitions, select them (a movie, "
                "'movie|03') and Materialize.")


def _upstream_closure(blueprint: Blueprint, keys: set[NodeKey]) -> set[NodeKey]:
    seen, stack = set(keys), list(keys)
    while stack:
        for dep in blueprint.nodes[stack.pop()].deps:
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


def selection_events(context: dg.AssetExecutionContext, movie: str, selected: set[NodeKey], clients: ProviderClients,
                     store: ArtifactStore, config: BuildConfig, settings: Settings) -> Iterator[Any]:
    """A run for selected partitions of a movie (the UI's Materialize, Materialize unsynced, `dg launch`):
    builds what the movie's plan rebuilds among them and their upstream -- so the selection ends up to
    date, exactly as the next generate would build it -- and records the plan after. A partition that is
    already up to date is not built again (`moviegen reroll` makes a new take); partitions the movie does
    not have are named, and a selection with none it has is refused before anything is built."""
    with generation_lock(context.instance, movie, GENERATION_WAIT_S, run_id=context.run.run_id):
        opened = open_movie(context.instance, store, movie, settings=settings)
        # An image asset's partition is a segment: all its images.
        selected = {n for k in selected for n in
                    ((_segment_images(opened.blueprint, k.asset, k.segment) if k.level is Level.image and k.image is None
                      else set()) or {k})}
        unknown = sorted(k for k in selected if k not in opened.blueprint.nodes)
        known = selected - set(unknown)
        if not known:
            raise dg.Failure(description=not_in_movie(movie, opened.request, opened.blueprint, unknown))
        if unknown:
            context.log.warning(not_in_movie(movie, opened.request, opened.blueprint, unknown).replace(
                "nothing was built", "they are left out"))
        plan = plan_of(opened, store, config.budget_usd)
        needed = _upstream_closure(opened.blueprint, known)
        targets = {k: reason for k, reason in plan.targets.items() if k in needed}
        fresh = sorted(k for k in known if k not in plan.targets)
        if fresh:
            context.log.info(f"up to date, not built again: {', '.join(map(str, fresh[:20]))}"
                             f"{' ...' if len(fresh) > 20 else ''} (`moviegen reroll {movie} NODE` makes a new take)")
        context.log.info(f"movie {movie}: building {len(targets)} of the plan's {len(plan.items)} partition(s): the "
                         "selection and what it needs")
        handoff = Handoff(opened, targets)
        try:
            if targets:
                yield from build_events(context, opened, targets, clients, store, config.budget_usd, config.strategy, handoff)
        finally:
            report = read_run_report(store, movie, context.run.run_id) or RunReport(movie=movie, run_id=context.run.run_id)
            after = state_after(opened, targets, handoff.summary or BuildSummary(), context.run.run_id, report)
            record_plan(context.instance, plan_of(dataclasses.replace(opened, state=after), store))


def stored_check_results(context: dg.AssetExecutionContext, store: ArtifactStore, settings: Settings) -> Iterator[Any]:
    """The selected checks evaluated on every movie's latest artifacts (nothing is built)."""
    if _up_to_date_keys(context):  # plan every movie again (the marks and evaluations follow)
        for movie in list_movies(context.instance):
            record_plan(context.instance, plan_of(open_movie(context.instance, store, movie, settings=settings, known=True),
                                                  store), evaluate=False)
    keys = sorted((k for k in context.selected_asset_check_keys if k.name != UP_TO_DATE),
                  key=lambda k: (k.asset_key.to_user_string(), k.name))
    if not keys:
        return
    problems: dict[dg.AssetCheckKey, dict[str, str]] = {k: {} for k in keys}
    checked: dict[dg.AssetCheckKey, int] = {k: 0 for k in keys}
    for movie in list_movies(context.instance):
        opened = open_movie(context.instance, store, movie, settings=settings, known=True)
        for key in keys:
            asset = key.asset_key.to_user_string()
            for node, record in opened.state.records.items():
                if node.asset != asset or node not in opened.blueprint.nodes:
                    continue
                checked[key] += 1
                try:
                    data = store.read(record.uri)
                    value = json.loads(data) if record.uri.endswith(".json") else None
                    issue = problem(asset, data, value, opened.request, node, record.metadata)
                except (OSError, ValueError) as e:
                    issue = f"cannot be read: {e}"
                if issue:
                    problems[key][node.partition_key(movie)] = redact(issue, TEXT_LIMIT)
    for key in keys:
        decl = ARTIFACTS[key.asset_key.to_user_string()].check
        assert decl is not None
        bad = problems[key]
        yield dg.AssetCheckResult(
            asset_key=key.asset_key, check_name=key.name, passed=not bad, severity=dg.AssetCheckSeverity(decl.severity),
            description=(f"{len(bad)} of {checked[key]} partition(s) fail" if bad else
                         f"{checked[key]} partition(s) checked, every movie's latest artifacts"),
            metadata={"partitions_checked": checked[key], "problems": dg.MetadataValue.json(bad)})


def _build_step(level: Level, settings: Settings) -> dg.AssetsDefinition:
    specs = [spec for name, spec in artifact_specs(settings).items() if ARTIFACTS[name].level is level]
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
        store: ArtifactStoreResource,
        llm: LLMResource,
        speech: SpeechResource,
        images: ImagesResource,
        video: VideoResource,
        music: MusicResource,
        transcription: TranscriptionResource,
        openai: OpenAIResource,
        replicate: ReplicateResource,
    ) -> Iterator[Any]:
        """Build movie artifacts: the partitions of this run, or the exact set a generation asks for."""
        try:
            clients = ProviderClients(llm=llm, speech=speech, images=images, video=video, music=music,
                                      transcription=transcription, openai=openai,
                                      replicate=replicate)
            # The settings of the process that runs the step (its specs were made with the same ones where the
            # code location loaded; a test that changes a variable between runs gets the new value).
            yield from _step_events(context, config, clients, store.store(), current())
        except Exception as e:
            clean = _clean_error(e)  # Dagster stores the step's exception, its message and chained causes
            if clean is e:
                raise
            raise clean from None

    return build


def build_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """The three build steps under these settings (their specs' code versions)."""
    return [_build_step(level, settings) for level in Level]
