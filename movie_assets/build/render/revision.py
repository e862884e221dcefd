"""Render any revision's timeline on its own (``moviegen render``), with any engine and preset: the
movie a revision's timeline makes, stored content-addressed beside the movie's other renders."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from movie_assets.build.render import ffmpeg_engine, layout, media, remotion
from movie_assets.build.render.engines import engine_fingerprint
from movie_assets.build.render.presets import PRESETS, Preset, output_size
from movie_assets.build.render.timelines import scratch_name, with_local_sources
from movie_assets.store.layout import render_path
from movie_assets.store.revisions import get_revision, latest_revision
from resources.runtime.scratch import scratch_dir
from resources.settings import RenderEngine
from resources.storage import ArtifactStore


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


def render_revision(store: ArtifactStore, movie: str, revision: int | None, engine: RenderEngine, preset: str | None,
                    default_preset: str) -> RenderResult:
    """The movie of a revision (default: the latest) rendered by ``engine`` at ``preset`` (default: the
    preset that revision was rendered at, else ``default_preset``); the movie its generation rendered,
    or a render of the same timeline, engine and preset made before, is reused."""
    rev = get_revision(store, movie, revision) if revision is not None else latest_revision(store, movie)
    if rev is None or rev.timeline is None:
        raise FileNotFoundError(f"movie {movie!r} has no timeline yet: run `moviegen generate {movie}`")
    preset = preset or (rev.movie_render or {}).get("preset") or default_preset
    if preset not in PRESETS:
        raise ValueError(f"preset {preset!r}: allowed: {', '.join(PRESETS)}")
    timeline_bytes = store.read(rev.timeline)
    timeline = json.loads(timeline_bytes)
    key = hashlib.sha256(timeline_bytes + f"|{engine_fingerprint(engine)}|{preset}".encode()).hexdigest()
    relpath = render_path(movie, key, engine.value, preset)
    if rev.movie_video and rev.movie_render == {"engine": engine.value, "preset": preset}:
        relpath = rev.movie_video
    started = time.monotonic()
    with scratch_dir("moviegen-render-") as tmp:
        work = Path(tmp)
        out = work / "movie.mp4"
        reused = "://" in relpath or store.exists(relpath)  # the generation's movie, or an earlier render
        if reused:
            out.write_bytes(store.read(relpath))
        else:
            local = _local(store, timeline, work / "media")
            _render(local, engine, PRESETS[preset], out, work)
            store.write(relpath, out.read_bytes(), immutable=True)
        info = media.probe(out)
    w, h = output_size(timeline, PRESETS[preset])
    uri = relpath if "://" in relpath else store.uri(relpath)
    return RenderResult(movie, rev.revision, engine.value, preset, store.link(uri), w, h,
                        info["duration_ms"] or 0, info["frames"], round(time.monotonic() - started, 2), reused)


def _render(timeline: dict[str, Any], engine: RenderEngine, preset: Preset, out: Path, work: Path) -> None:
    if engine is RenderEngine.ffmpeg:
        ffmpeg_engine.render_movie(timeline, media.file_uri_resolver, out, preset, workdir=work / "parts")
        return
    chunks = [((a, b), work / f"chunk_{a:06d}.mp4") for a, b in layout.segment_chunks(timeline)]
    remotion.render_chunks(timeline, chunks, preset, workdir=work / "remotion")
    sound = work / "soundtrack.m4a"
    ffmpeg_engine.render_soundtrack(timeline, media.file_uri_resolver, sound, preset)
    media.join([p for _, p in chunks], sound, out)


def _local(store: ArtifactStore, timeline: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The timeline with every ``src`` a local file (artifacts on S3 are copied into ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)

    def local(uri: str) -> Path:
        path = store.local_path(uri)
        if path is None:
            path = folder / scratch_name(uri)
            if not path.exists():
                path.write_bytes(store.read(uri))
        return path

    return with_local_sources(timeline, local)
