"""Render any revision's timeline on its own (``moviegen render``), with any engine and preset, through
the build graph's own render nodes: ``segment_cut`` -> ``video_chunk``, ``audio_mix`` -> ``soundtrack``,
``movie_video``, built by the same engine and recipes as a generation, for that revision's
timeline, with the preset as the request's and the engine as the settings'. Nothing is recorded as the
movie's current render: the files are stored content-addressed like every artifact, and the build cache
remembers them, so a render made before (by a generation or by this command) is reused, not redone --
after its file is checked against the hash it was made with (a cut or changed file is rendered again)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any

from movie_assets.builder.engine import BuildEngine, Built, Failed
from movie_assets.builder.render.media import RenderError
from movie_assets.builder.render.presets import PRESETS
from movie_assets.domain.blueprint import RENDER_ARTIFACTS, Blueprint, Node, NodeKey, expand
from movie_assets.domain.plan import Reason
from movie_assets.domain.records import ArtifactRecord, MovieState
from movie_assets.domain.request import MovieRequest, RenderPreset
from movie_assets.movie_files.prunes import check_not_pruned
from movie_assets.movie_files.revisions import get_revision, latest_revision
from resources.settings import RenderEngine, Settings
from resources.storage import ArtifactStore

TIMELINE = NodeKey("timeline")


class RenderFailed(RenderError):
    """A render node failed: its message, and its failure's ``category`` and ``suggestion`` (a full disk
    stays a full disk; categorize() honours them) and ``detail`` (its traceback, for --verbose)."""

    def __init__(self, message: str, category: str, suggestion: str, detail: str = ""):
        super().__init__(message)
        self.category, self.suggestion, self.detail = category, suggestion, detail


@dataclass
class RenderResult:
    movie: str
    revision: int
    engine: str
    preset: str
    uri: str
    width: int
    height: int
    duration_ms: int
    frames: int
    seconds: float
    reused: bool

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def render_blueprint(request: MovieRequest) -> Blueprint:
    """The render nodes of a movie, with the timeline they read as a node that is already built."""
    full = expand(request, render=True)
    nodes = {k: n for k, n in full.nodes.items() if k.asset in RENDER_ARTIFACTS}
    return Blueprint(request, {TIMELINE: Node(TIMELINE, ()), **nodes})


def render_revision(store: ArtifactStore, movie: str, revision: int | None, engine: RenderEngine, preset: str | None,
                    request: MovieRequest, settings: Settings) -> RenderResult:
    """The movie of a revision (default: the latest) rendered by ``engine`` at ``preset`` (default: the
    preset that revision was rendered at, else the request's)."""
    rev = get_revision(store, movie, revision) if revision is not None else latest_revision(store, movie)
    if rev is None or rev.timeline is None:
        raise FileNotFoundError(f"movie {movie!r} has no timeline yet: run `moviegen generate {movie}`")
    check_not_pruned(store, movie, rev.revision)
    preset = preset or (rev.movie_render or {}).get("preset") or request.preset
    if preset not in PRESETS:
        raise ValueError(f"preset {preset!r}: allowed: {', '.join(PRESETS)}")
    timeline = json.loads(store.read(rev.timeline))
    version = rev.manifest.get(str(TIMELINE), {}).get("version") or ""
    # The revision's own length (the request may have changed since) and the preset asked for.
    seconds = max(1, round(int(timeline["durationMs"]) / 1000))
    request = request.model_copy(update={"duration_seconds": seconds, "render_preset": RenderPreset(preset), "segments": {}})
    blueprint = render_blueprint(request)
    record = ArtifactRecord(TIMELINE, version, rev.timeline, 0, "", 0.0, {})
    state = MovieState(movie, {TIMELINE: record})
    events: list[Built | Failed] = []
    builder = BuildEngine(movie=movie, blueprint=blueprint, state=state, store=store, clients=None,
                          emit=lambda item: events.append(item) if isinstance(item, Built | Failed) else None,
                          settings=dataclasses.replace(settings, render_engine=engine))
    started = time.monotonic()
    asyncio.run(builder.run({k: Reason.requested for k in blueprint.order if k != TIMELINE}))
    failed = [e for e in events if isinstance(e, Failed)]
    if failed:
        cause = next((f for f in failed if not f.upstream), failed[0])
        raise RenderFailed(f"rendering {movie} revision {rev.revision} failed: {cause.key}: {cause.message}", cause.category,
                           cause.suggestion, cause.detail)
    made = next(e for e in events if isinstance(e, Built) and e.key == NodeKey("movie_video"))
    ms = int(made.produced.duration_ms or 0)
    return RenderResult(movie, rev.revision, engine.value, preset, store.link(made.record.uri), int(made.produced.width or 0),
                        int(made.produced.height or 0), ms, round(ms * int(timeline["fps"]) / 1000),
                        round(time.monotonic() - started, 2), "reused" in made.produced.meta)
