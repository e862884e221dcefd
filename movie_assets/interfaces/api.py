"""The Python API behind the ``moviegen`` CLI, usable by a hosted service as well.

Every function takes a ``DagsterInstance`` (``open_instance()``: DAGSTER_HOME's, safe when several
processes open a new home at once) and an ``ArtifactStore``; generations run through Dagster as one run of
the ``movie_build`` step.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from movie_assets.builder import cache
from movie_assets.builder.code_versions import code_versions
from movie_assets.builder.export import FORMATS, PROVENANCE_FIELDS, export_timeline
from movie_assets.builder.subtitles import SUBTITLE_FORMATS
from movie_assets.builder.timeline import placeholder_error
from movie_assets.domain.blueprint import ARTIFACTS, TAKES, NodeKey, expand
from movie_assets.domain.edits import UNSET, edited_request
from movie_assets.domain.errors import StoredFileDamaged
from movie_assets.domain.inputs import input_versions, take_of, take_path
from movie_assets.domain.look import names_in
from movie_assets.domain.plan import Plan
from movie_assets.domain.request import MovieRequest, RequestError, load_request
from movie_assets.movie_files.metrics import movie_metrics
from movie_assets.movie_files.movies import load_movie_request
from movie_assets.movie_files.prunes import check_not_pruned, pruned_revisions
from movie_assets.movie_files.revisions import Revision, get_revision, list_revisions
from movie_assets.orchestration import registry
from movie_assets.orchestration.deletion import Deleted, delete_movie
from movie_assets.orchestration.editing import EditResult, current_look, edit_movie, repair_movie_request
from movie_assets.orchestration.event_log import IMAGES, load_state
from movie_assets.orchestration.generation import GenerateResult, open_movie, plan_of, report_plan
from movie_assets.orchestration.generation import generate as _generate
from movie_assets.orchestration.locks import open_instance
from movie_assets.orchestration.pruning import Pruned, prune_movie
from movie_assets.orchestration.registry import require_movie
from partitions import node_partition
from resources.runtime.budget import day_start, make_ledger
from resources.settings import current
from resources.storage import ArtifactStore

__all__ = ["Deleted", "GenerateResult", "Plan", "Pruned", "Revision", "Status", "approve", "delete", "edit", "export", "generate", "history",
           "list_movies", "load_request", "load_timeline", "look", "new_movie", "open_instance", "pick", "plan", "prune", "repair", "reroll", "research", "revision",
           "status", "takes", "timeline_uri", "verify"]

generate = _generate


def new_movie(instance: dg.DagsterInstance, store: ArtifactStore, request: MovieRequest | str, movie: str | None = None, *,
              local_files: bool = True, base: str | None = None) -> str:
    """Register a movie from a request (or a request file path) and return its id. Files of the user's the
    request names are read (paths: relative to ``base``, else the request file's folder, else the current
    folder) or downloaded (URLs) once and stored; ``local_files`` false (a service): URLs only."""
    req = load_request(request) if isinstance(request, str) else request
    if base is None and isinstance(request, str):
        base = str(Path(request).parent)
    movie_id = registry.register_movie(instance, store, req, movie, base=base, local_files=local_files)
    report_plan(instance, store, movie_id)  # the UI shows what the first generate will build
    return movie_id


def list_movies(instance: dg.DagsterInstance) -> list[str]:
    return registry.list_movies(instance)


def delete(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> Deleted:
    """Delete a movie: its partition, request, edits, revisions and every artifact; MovieBusy while a
    generation of it runs or is queued. Its id is not given out again (orchestration/deletion.py)."""
    return delete_movie(instance, store, movie)


def prune(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, keep_revisions: int | None = None,
          dry_run: bool = False) -> Pruned:
    """Remove the takes, renders and artifacts that neither a kept revision (the ``keep_revisions`` newest;
    default: all) nor the movie as it is now uses, with the build-cache entries naming them; ``dry_run``:
    only say what and how many bytes. MovieBusy while a generation of it runs or is queued
    (orchestration/pruning.py)."""
    return prune_movie(instance, store, movie, keep_revisions, dry_run)


def plan(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, budget_usd: float | None = None,
         verify: bool = False) -> Plan:
    """What a generation would build and why, the calls it will make, their estimated cost against
    the budget caps and what would make them fail (pre-flight); a dry run that calls no provider.
    Damaged artifacts (missing, truncated; with ``verify`` also changed content) are rebuilt."""
    return plan_of(open_movie(instance, store, movie, verify=verify), store, budget_usd)


@dataclass
class Verification:
    movie: str
    checked: int  # recorded artifacts checked
    full: bool  # content hashes compared (else existence and size)
    damaged: dict[str, str]  # node -> what is wrong with its file

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, full: bool = True) -> Verification:
    """Check every artifact the movie records: its file is there with its recorded size and (``full``)
    its content still hashes to its data version. ``generate`` rebuilds what is damaged."""
    opened = open_movie(instance, store, movie, verify=full)
    return Verification(movie, len(opened.state.records), full,
                        {str(k): why for k, why in sorted(opened.state.damaged.items())})


def repair(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, request: MovieRequest | None = None) -> str:
    """Restore a movie whose stored request is damaged (StoredFileDamaged says so): from the copy of its
    latest intact edit, or ``request``. Returns what was done."""
    require_movie(instance, movie)
    return repair_movie_request(instance, store, movie, request)


def edit(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, edits: list[tuple[str, Any]], *,
         local_files: bool = True, base: str | None = None) -> EditResult:
    """Apply edits (PATH, VALUE or UNSET) to a movie's request; see domain/edits.py. A file of the user's an
    edit names (``segments.1.image_files.0=pic.png``) is read (relative to ``base``, else the current folder)
    or downloaded once and stored; ``local_files`` false (a service): URLs only."""
    require_movie(instance, movie)
    return edit_movie(instance, store, movie, edits, base=base, local_files=local_files)


def history(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> list[Revision]:
    """Every revision of a movie, oldest first."""
    require_movie(instance, movie)
    return list_revisions(store, movie)


def revision(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, number: int) -> Revision:
    """One revision, with its manifest."""
    require_movie(instance, movie)
    return get_revision(store, movie, number)


def timeline_uri(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, revision: int | None = None) -> str | None:
    """Where the latest timeline, or the timeline of revision N, is: its URI under the store's current root."""
    require_movie(instance, movie)
    if revision is not None:
        ref = get_revision(store, movie, revision).timeline
        check_not_pruned(store, movie, revision)
    else:
        rec = load_state(instance, movie, [NodeKey("timeline")]).records.get(NodeKey("timeline"))
        ref = rec.uri if rec else None
    return store.uri(ref) if ref is not None else None


def _stored_timeline(instance: dg.DagsterInstance, store: ArtifactStore, movie: str,
                     revision: int | None) -> tuple[str, dict[str, Any]]:
    """The URI and content of the latest timeline, or revision N's; FileNotFoundError when there is none,
    StoredFileDamaged when its file cannot be read back. Its ``src`` are as stored: references under the
    store's root (absolute URIs in a timeline made before, maybe of a home since moved)."""
    uri = timeline_uri(instance, store, movie, revision)
    if uri is None:
        raise FileNotFoundError(f"revision {revision} of movie {movie!r} has no timeline" if revision is not None
                                else f"movie {movie!r} has no timeline yet: run `moviegen generate {movie}`")
    try:
        return uri, json.loads(store.read(uri))
    except (ValueError, RecursionError) as e:
        raise StoredFileDamaged(f"movie {movie!r}: its timeline {uri} is damaged ({e}); "
                                f"`moviegen generate {movie}` rebuilds it" + (
                                    "" if revision is None else " (an earlier revision's timeline is rebuilt only if "
                                                                "it is the current one)"), uri) from None


def load_timeline(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, revision: int | None = None,
                  *, links: bool = False) -> dict[str, Any]:
    """The stored timeline with every ``src`` resolved against the store's current root: the artifact's
    stable URI (``file://``, ``s3://``) in this store, wherever the home was when it was made. ``links``:
    a URL a render host can fetch instead (on S3: presigned for the store's ``link_seconds``, or public)."""
    _, timeline = _stored_timeline(instance, store, movie, revision)
    return _with_sources(timeline, store.link if links else store.uri)


def _with_sources(timeline: dict[str, Any], resolve: Callable[[str], str]) -> dict[str, Any]:
    for track in timeline["tracks"]:
        for clip in track["clips"]:
            if "src" in clip:
                clip["src"] = resolve(clip["src"])
    return timeline


def _materialization(instance: dg.DagsterInstance, asset: str, partition: str, version: str,
                     latest: Any) -> tuple[str, dict[str, Any]] | None:
    """(run id, metadata) of the materialization of ``asset`` ``partition`` that made ``version``: the
    latest record when it is that version (an earlier revision's clip may have been rebuilt since:
    then the partition's earlier materializations are searched)."""
    if latest is not None and latest.version == version:
        return latest.run_id, latest.metadata
    key = NodeKey.from_partition(asset, partition)
    found = instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey(asset), asset_partitions=[str(node_partition(partition.split("|", 1)[0], key))]), limit=100)
    for rec in found.records:
        event = rec.event_log_entry.asset_materialization
        if event is None:
            continue
        metadata = {k: getattr(v, "value", v) for k, v in event.metadata.items()}
        if key.image is not None:  # a segment's images: the one of this image, by its own version
            image = next((i for i in metadata.get(IMAGES) or [] if i["image"] == key.image and i["version"] == version), None)
            if image is not None:
                return rec.run_id, image["metadata"]
        elif (event.tags or {}).get("dagster/data_version") == version:
            return rec.run_id, metadata
    return None


def _clip_provenance(instance: dg.DagsterInstance, timeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per clip id: the prompt, provider, model and run that made its artifact version (from the event log)."""
    movie = timeline["movie"]
    clips = [c for t in timeline["tracks"] for c in t["clips"] if c.get("version") and c.get("asset")]
    keys = {c["id"]: NodeKey.from_partition(c["asset"], c["partition"]) for c in clips}
    state = load_state(instance, movie, set(keys.values()))
    out: dict[str, dict[str, Any]] = {}
    for c in clips:
        found = _materialization(instance, c["asset"], c["partition"], c["version"], state.records.get(keys[c["id"]]))
        if found is not None:
            run_id, metadata = found
            out[c["id"]] = {k: str(v) for k, v in ({**metadata, "run_id": run_id}).items()
                            if k in PROVENANCE_FIELDS and v not in (None, "")}
    return out


def export(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, fmt: str, revision: int | None = None, *,
           links: bool = True, link: Callable[[str], str] | None = None) -> str:
    """The movie's timeline (the latest, or revision N's) for a non-linear editor, written by OpenTimelineIO's
    adapters (MLT XML by moviegen): ``fmt`` is ``otio``, ``fcpxml``, ``fcp7xml``, ``mlt`` or ``edl`` (builder/export.py
    says what each keeps); or its captions as subtitles, ``srt`` or ``vtt`` (one cue per caption line, on the
    movie's frames: builder/subtitles.py).
    ``links``: media references an editor can open (on S3 presigned for the store's ``link_seconds``, or
    public); else the stable artifact URIs (``s3://``). Every clip's metadata carries its asset, partition,
    data version and stable URI, and the prompt, provider, model and run that made it. ``link``: how to make
    a media reference of an artifact URI instead (the hosted service: its own artifact URLs)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    uri, stored = _stored_timeline(instance, store, movie, revision)
    timeline = _with_sources(stored, store.uri)  # every src an URI under the current root, which links resolve
    if fmt in SUBTITLE_FORMATS:  # the captions alone: no media, no provenance
        return export_timeline(timeline, fmt)
    about = {"timeline": uri, **({"revision": revision} if revision is not None else {})}
    return export_timeline(timeline, fmt, link=link or (store.link if links else None), provenance=_clip_provenance(instance, timeline),
                           about=about)


@dataclass
class AssetStatus:
    asset: str
    needed: int
    done: int
    failed: int
    missing: int


@dataclass
class Status:
    movie: str
    request: dict[str, Any]
    assets: list[AssetStatus]
    failures: dict[str, str]
    timeline: str | None
    to_build: int
    revisions: int = 0
    cost_usd: float = 0.0
    movie_video: str | None = None  # the rendered movie (its latest render)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> message, category, suggestion
    placeholders: dict[str, str] = field(default_factory=dict)  # node -> why an offline placeholder stands in
    spend: dict[str, Any] = field(default_factory=dict)  # the budget ledger: movie, per provider, today, caps
    metrics: dict[str, Any] = field(default_factory=dict)  # per producer and provider: calls, cache hits, latency
    damaged: dict[str, str] = field(default_factory=dict)  # node -> its file is missing or truncated (quick check)
    pruned_revisions: list[int] = field(default_factory=list)  # revisions a prune let go (their files are gone)
    # node -> from, to, reason: made at reduced settings after its call failed at full ones (tried again at full)
    degraded: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def status(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> Status:
    """What exists, what failed, what is left, and the movie's revisions and spend."""
    opened = open_movie(instance, store, movie)
    nodes, state = opened.blueprint.nodes, opened.state
    needed = Counter(k.asset for k in nodes)
    done = Counter(k.asset for k in nodes if k in state.records)
    # A partition an offline placeholder stands in for counts as failed: the next generate retries its provider.
    stand_ins = {k: e for k, r in sorted(state.records.items())
                 if k in nodes and k not in state.failures and (e := placeholder_error(k, movie, r.metadata)) is not None}
    failed = Counter(k.asset for k in nodes if k in state.failures or k in stand_ins)
    assets = [AssetStatus(a, needed[a], done[a], failed[a], needed[a] - done[a]) for a in ARTIFACTS if needed[a]]
    timeline = state.records.get(NodeKey("timeline"))
    video = state.records.get(NodeKey("movie_video"))
    revisions = list_revisions(store, movie)
    planned = plan_of(opened, store)  # its budget is the caps' standing
    ledger = make_ledger()
    spend = {
        "movie_usd": round(ledger.spent(movie=movie), 6),
        "movie_by_provider_usd": {k: round(v, 6) for k, v in sorted(ledger.totals(movie=movie).items())},
        "instance_today_usd": round(ledger.spent(since=day_start()), 6),
        "unsettled": len(ledger.unsettled(movie=movie)),
        "caps": planned.budget,
    }
    errors = {str(k): {"message": f.message, "category": f.category or "local", "suggestion": f.suggestion}
              for k, f in state.failures.items()}
    errors |= {str(k): {f: e[f] for f in ("message", "category", "suggestion")} for k, e in stand_ins.items()}
    placeholders = {str(k): str(r.metadata.get("fallback_for", "")) for k, r in sorted(state.records.items())
                    if k in nodes and r.metadata.get("fallback")}
    failures = {str(k): f.message for k, f in state.failures.items()} | {str(k): e["message"] for k, e in stand_ins.items()}
    return Status(movie, opened.request.to_document(), assets, failures,
                  store.uri(timeline.uri) if timeline else None, len(planned.items),
                  len(revisions), round(sum(r.cost_usd for r in revisions), 6), store.uri(video.uri) if video else None,
                  errors, placeholders, spend, movie_metrics(store, movie).to_json(),
                  {str(k): why for k, why in sorted(state.damaged.items())}, sorted(pruned_revisions(store, movie)),
                  {str(k): {"from": str(r.metadata.get("degraded_from")), "to": str(r.metadata.get("degraded_to")),
                            "reason": str(r.metadata.get("degraded_reason", ""))}
                   for k, r in sorted(state.records.items()) if k in nodes and r.metadata.get("degraded")})


# --- Takes: re-roll a generated artifact without changing its prompt (docs/editing.md, "Takes") ------


@dataclass
class TakeEntry:
    """One take of a node that the build cache holds."""

    take: int
    uri: str
    version: str
    made_at: float | None
    made_by: str | None  # provider:model
    prompt: str | None
    current: bool  # the artifact the movie uses now (its recorded data version)
    free: bool  # picking this take costs nothing: it was made from the node's current inputs (a cache hit)


@dataclass
class Takes:
    movie: str
    node: str
    requested: int  # the take the request asks for (the next generate makes it when it is not made yet)
    takes: list[TakeEntry]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TakeEdit:
    """A re-roll or a pick: the edit of the node's take and what the next generate will rebuild."""

    movie: str
    node: str
    previous: int
    take: int
    edit: EditResult
    plan: Plan

    def to_json(self) -> dict[str, Any]:
        return {"movie": self.movie, "node": self.node, "previous": self.previous, "take": self.take,
                "edit": self.edit.to_json(), "plan": self.plan.to_json()}


def _take_node(store: ArtifactStore, movie: str, node: str) -> tuple[MovieRequest, NodeKey]:
    """The movie's request and the node (``segment_image[01_2]``, ``segment_audio[03]``, ``music``) whose
    take is asked for; RequestError when the movie has no such node with takes."""
    request = load_movie_request(store, movie)
    nodes = [k for k in expand(request).order if k.asset in TAKES]
    try:
        key: NodeKey | None = NodeKey.parse(node.strip())
    except ValueError:
        key = None
    if key is None or key not in nodes:
        shown = ", ".join(str(k) for k in nodes[:6]) + (f", ... ({len(nodes)} in all)" if len(nodes) > 6 else "")
        raise RequestError([f"{node[:80]!r}: not a node of movie {movie!r} with takes; allowed: a generated "
                            f"{', '.join(sorted(TAKES))} of this movie, e.g. {shown}"])
    return request, key


def _with_take(request: MovieRequest, key: NodeKey, take: int) -> MovieRequest:
    return edited_request(request, [(take_path(key), take if take else UNSET)])


def takes(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, node: str) -> Takes:
    """Every take of a node the build cache holds (each made from exact inputs: takes of an earlier
    prompt are listed too), oldest first, with the one the movie uses now and those a pick gets for free."""
    require_movie(instance, movie)
    request, key = _take_node(store, movie, node)
    made = cache.takes(store, movie, key)
    deps = expand(request).nodes[key].deps
    state = load_state(instance, movie, [key, *deps])
    recorded = state.version(key)
    versions = code_versions(current())
    free = {t: cache.entry_path(movie, key, input_versions(expand(_with_take(request, key, t)), key, state.version), versions)
            for t in {m.take for m in made}}
    return Takes(movie, str(key), take_of(request, key), [
        TakeEntry(m.take, store.uri(m.uri), m.version, m.made_at, m.made_by, m.prompt, bool(recorded) and m.version == recorded,
                  m.entry == free[m.take])
        for m in made
    ])


def _set_take(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, request: MovieRequest, key: NodeKey,
              take: int) -> TakeEdit:
    previous = take_of(request, key)
    result = edit_movie(instance, store, movie, [(take_path(key), take if take else UNSET)])
    return TakeEdit(movie, str(key), previous, take, result, plan(instance, store, movie))


def reroll(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, node: str) -> TakeEdit:
    """A new take of one generated artifact, same prompt: its take becomes one more than the highest
    made so far (an edit, logged and observed like any); the plan shows what the next generate rebuilds."""
    require_movie(instance, movie)
    request, key = _take_node(store, movie, node)
    highest = max([take_of(request, key), *(t.take for t in cache.takes(store, movie, key))])
    return _set_take(instance, store, movie, request, key, highest + 1)


def pick(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, node: str, take: int) -> TakeEdit:
    """Use take ``take`` of a node (an edit): a take made before from the same inputs costs nothing."""
    require_movie(instance, movie)
    request, key = _take_node(store, movie, node)
    return _set_take(instance, store, movie, request, key, take)


@dataclass
class LookView:
    """The movie's look: as last built (None: not built yet), whether the request turns it on, the
    fields the user set, and the segments whose shots are off-look."""

    movie: str
    enabled: bool
    look: dict[str, Any] | None
    edited: list[str]
    off_look: list[int]
    pending: dict[str, Any] = field(default_factory=dict)  # edited fields the built look does not have yet

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def look(instance: dg.DagsterInstance, store: ArtifactStore, movie: str) -> LookView:
    """The movie's look, to read before editing it (``edit --set look.palette=...``)."""
    require_movie(instance, movie)
    request = load_movie_request(store, movie)
    own = request.look.model_dump(exclude_none=True) if request.look else {}
    edited = sorted(k for k, v in own.items() if v)
    built = current_look(instance, store, movie)
    pending = {f: own[f] for f in ("palette", "lighting", "camera") if f in own and built is not None and built.get(f) != own[f]}
    return LookView(movie, request.consistent_look, built, edited,
                    [i for i in range(request.segment_count) if request.consistent_look and not request.carries_look(i)], pending)


@dataclass
class ResearchView:
    """The movie's research: as last built, or as revision N used it (None: not built yet), whether the
    request turns it on, and the request's sources and fact edits the built research does not have yet."""

    movie: str
    enabled: bool
    research: dict[str, Any] | None
    revision: int | None = None  # None: the latest build
    pending: list[str] = field(default_factory=list)  # edit paths (sources.<i>, facts.<i>) the next generate applies

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def research(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, revision: int | None = None) -> ResearchView:
    """The movie's research (summary, facts, dates, names, sources), to read before editing its facts or
    sources (``edit --set facts.2=...``); ``revision``: the research revision N was built with."""
    require_movie(instance, movie)
    request = load_movie_request(store, movie)
    if revision is not None:
        check_not_pruned(store, movie, revision)
        ref = get_revision(store, movie, revision).manifest.get(str(NodeKey("research")), {}).get("uri")
    else:
        record = load_state(instance, movie, [NodeKey("research")]).records.get(NodeKey("research"))
        ref = record.uri if record else None
    if ref is None:
        return ResearchView(movie, request.research, None, revision)
    try:
        built = json.loads(store.read(ref))
    except (OSError, ValueError) as e:
        raise StoredFileDamaged(f"the movie's research ({store.uri(ref)}) cannot be read: {e}; run `moviegen generate {movie}` "
                                "to rebuild it", store.uri(ref)) from None
    pending: list[str] = []
    if revision is None:
        built_sources = [s.get("url", s.get("text")) for s in built.get("sources", [])]
        pending += [f"sources.{i}" for i in range(max(len(built_sources), len(request.sources)))
                    if i >= len(built_sources) or i >= len(request.sources) or built_sources[i] != request.sources[i]]
        facts = built.get("facts", [])
        pending += [f"facts.{i}" for i, text in sorted(request.facts.items())
                    if i >= len(facts) or facts[i].get("text") != text or not facts[i].get("edited")]
        pending += [f"facts.{i}" for i, f in enumerate(facts) if f.get("edited") and i not in request.facts]
    return ResearchView(movie, request.research, built, revision, pending)


REFERENCE_ASSETS = ("segment_image", "starting_image")


def approve(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, node: str, name: str) -> EditResult:
    """Approve a built picture as the reference of a recurring character or place (an edit,
    ``look.references.NAME``, pinning the picture's current data version): every shot whose prompt names
    it is rebuilt with the picture as a reference image, where the images provider takes them."""
    require_movie(instance, movie)
    request = load_movie_request(store, movie)
    try:
        key = NodeKey.parse(node) if "[" in node else None
    except ValueError:
        key = None
    if key is None or key.asset not in REFERENCE_ASSETS:
        raise RequestError([f"{node}: not a picture that can be a reference; allowed: segment_image[SS_J] or starting_image[SS]"])
    if key not in expand(request).nodes:
        raise RequestError([f"{node}: the movie has no such picture (see `moviegen status {movie}`)"])
    record = load_state(instance, movie, [key]).records.get(key)
    if record is None or record.metadata.get("fallback"):
        raise RequestError([f"{node}: not generated yet (or an offline placeholder): generate it first"])
    look = current_look(instance, store, movie)
    names = {e["name"] for kind in ("characters", "places") for e in (look or {}).get(kind, [])}
    if name not in names:
        allowed = ", ".join(sorted(names)) or "none (the movie's look has no recurring characters or places yet)"
        raise RequestError([f"{name!r}: not a recurring character or place of the movie's look; allowed: {allowed}"])
    showing = _pictures_naming(instance, store, movie, request, look or {}, name)
    if key not in showing:
        allowed = ", ".join(str(k) for k in showing) or "none yet"
        raise RequestError([f"{node}: its shot does not name {name!r}, so it cannot be its reference; allowed: the "
                            f"pictures whose shot names it: {allowed}"])
    return edit_movie(instance, store, movie, [(f"look.references.{name}", {"node": str(key), "version": record.version})])


def _pictures_naming(instance: dg.DagsterInstance, store: ArtifactStore, movie: str, request: MovieRequest,
                     look: dict[str, Any], name: str) -> list[NodeKey]:
    """The built pictures whose shot (their prompt as built) names a recurring character or place."""
    prompts = {NodeKey("image_prompt", k.segment, k.image) if k.asset == "segment_image" else NodeKey("image_to_video_prompt", k.segment): k
               for k in expand(request).nodes if k.asset in REFERENCE_ASSETS}
    records = load_state(instance, movie, prompts).records
    out = []
    for prompt_key, picture in sorted(prompts.items(), key=lambda item: item[1]):
        record = records.get(prompt_key)
        if record is None:
            continue
        try:
            value = json.loads(store.read(record.uri))
        except (OSError, ValueError):
            continue
        shot = value.get("shot") or value.get("prompt") or value.get("starting_image_prompt") or ""
        if any(e["name"] == name for e in names_in(shot, look)):
            out.append(picture)
    return out
