"""Recipes of the rendered movie, following the build graph so an edit re-renders only what it touches:

* ``segment_cut`` (per segment, no render): the part of the timeline one segment's chunk draws — its
  visual clips, the clip before them when a transition enters the segment, its captions — at the
  render preset. A timeline change that leaves a segment's cut identical stops there.
* ``video_chunk`` (per segment): that cut rendered (video only) by the configured engine, frames
  [a, b) of the movie exactly, encoded so that chunks join by stream copy.
* ``audio_mix`` / ``soundtrack`` (per movie): the narration and ducked music, mixed once.
* ``movie_video`` (per movie): the chunks joined without re-encoding, with the soundtrack.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from movie_assets.builder.context import Produced, RecipeContext
from movie_assets.builder.render import audio, ffmpeg_engine, layout, media, remotion
from movie_assets.builder.render.presets import PRESETS, Preset, output_size
from movie_assets.builder.render.timelines import frame_of, partial_timeline, sources, with_local_sources
from movie_assets.domain.blueprint import NodeKey
from resources.runtime.media import jpeg_preview, run_ffmpeg
from resources.runtime.paths import dagster_home
from resources.runtime.scratch import scratch_dir
from resources.settings import RenderEngine


def _preset(ctx: RecipeContext) -> Preset:
    return PRESETS[ctx.request.preset]


async def _segment_cut(ctx: RecipeContext, key: NodeKey) -> Produced:
    assert key.segment is not None
    timeline = await ctx.need(NodeKey("timeline"))
    frames = layout.segment_chunks(timeline)[key.segment]
    wanted = layout.clips_for_chunk(timeline, frames)
    ids = {c["id"] for c in wanted}
    tracks = {t["name"]: t["clips"] for t in timeline["tracks"]}
    cut = {**frame_of(timeline), "segment": key.segment, "frames": list(frames),
           "preset": _preset(ctx).name,
           "visual": [c for c in tracks["visual"] if c["id"] in ids],
           "captions": [c for c in tracks["captions"] if c["id"] in ids]}
    return Produced.json(cut, visual=len(cut["visual"]), captions=len(cut["captions"]))


async def _video_chunk(ctx: RecipeContext, key: NodeKey) -> Produced:
    cut = await ctx.need(NodeKey("segment_cut", key.segment))
    # Only what the chunk draws: its frames render exactly as the whole movie's.
    timeline = partial_timeline(cut, visual=cut["visual"], captions=cut["captions"])
    local = await _local_sources(ctx, timeline)
    preset = PRESETS[cut["preset"]]
    frames = (int(cut["frames"][0]), int(cut["frames"][1]))
    started = [0.0]  # when the render began: its seconds leave out the wait for a local slot
    remotion_engine = ctx.settings.render_engine is RenderEngine.remotion
    retried: list[str] = []  # the reduced retry, if there was one: why, and what it reduced

    def attempt(reduced: str | None) -> bytes:
        with scratch_dir("moviegen-chunk-") as tmp:
            out = Path(tmp) / "chunk.mp4"
            longer = 2 if reduced == "timeout" else 1  # a timeout: twice the time as well
            if remotion_engine:
                remotion.render_chunks(local, [(frames, out)], preset, workdir=Path(tmp), timeout_s=CHUNK_TIMEOUT_S["remotion"] * longer,
                                       on_event=_progress(ctx, key), cancelled=ctx.cancelled, reduced=reduced is not None)
            else:
                ffmpeg_engine.render_video_chunk(local, frames, media.file_uri_resolver, out, preset,
                                                 timeout_s=CHUNK_TIMEOUT_S["ffmpeg"] * longer, threads=1 if reduced else None)
            return out.read_bytes()

    def render() -> bytes:
        started[0] = time.monotonic()
        try:
            return attempt(None)
        except Exception as e:
            # Recovery with reduced settings: a chunk that ran out of memory or time is rendered once more with
            # fewer resources but the same engine, size, fps and encoding (the movie's chunks join by stream
            # copy and it keeps its size: a lower preset is not an option). Any other failure stands.
            kind = media.resource_failure(e)
            if kind is None or ctx.cancelled.is_set():
                raise
            what = reduced_settings(remotion_engine, kind)
            ctx.note(key, f"render failed ({_first_line(e)}): retrying once with {what}")
            try:
                data = attempt(kind)
            except media.RenderDiskFull:
                raise
            except media.RenderError as again:  # the failure stands: its message says both attempts
                first, _, rest = str(again).partition("\n")
                raise media.RenderError(f"{first} (retried with {what} after: {_first_line(e)})" + (f"\n{rest}" if rest else "")) from again
            retried.append(f"{_first_line(e)}; retried with {what}")
            return data

    data = await ctx.local_work(render)
    w, h = output_size(timeline, preset)
    return Produced(data, "mp4", "video/mp4", width=w, height=h,
                    duration_ms=round((frames[1] - frames[0]) * 1000 / int(cut["fps"])),
                    meta={"engine": ctx.settings.render_engine.value, "preset": preset.name, "frames": f"{frames[0]}-{frames[1] - 1}",
                          "render_seconds": round(time.monotonic() - started[0], 2),
                          **({"render_retry": retried[0]} if retried else {})})


# A chunk's render deadline, by engine (seconds). A chunk that timed out is retried with twice as long.
CHUNK_TIMEOUT_S = {"ffmpeg": 900.0, "remotion": 3600.0}


def reduced_settings(remotion_engine: bool, kind: str) -> str:
    """What the retry of a chunk that failed for want of resources (``kind``: media.resource_failure) reduces
    (and, after a timeout, lengthens): nothing the movie is made of changes."""
    if remotion_engine:  # it already renders one frame at a time (concurrency 1)
        what = f"Remotion's video frame cache at {remotion.REDUCED_VIDEO_CACHE_BYTES // 2**20} MB and 1 video decoding thread"
    else:
        what = "x264 on 1 thread"
    timeout = CHUNK_TIMEOUT_S["remotion" if remotion_engine else "ffmpeg"]
    return what + (f", a {2 * timeout:g} s deadline instead of {timeout:g} s" if kind == "timeout" else "")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


async def _audio_mix(ctx: RecipeContext, key: NodeKey) -> Produced:
    timeline = await ctx.need(NodeKey("timeline"))
    tracks = {t["name"]: t["clips"] for t in timeline["tracks"]}
    mix = {**frame_of(timeline), "preset": _preset(ctx).name,
           "narration": tracks["narration"], "music": tracks["music"]}
    return Produced.json(mix)


async def _soundtrack(ctx: RecipeContext, key: NodeKey) -> Produced:
    mix = await ctx.need(NodeKey("audio_mix"))
    timeline = partial_timeline(mix, narration=mix["narration"], music=mix["music"])
    local = await _local_sources(ctx, timeline)
    preset = PRESETS[mix["preset"]]
    started = [0.0]  # as for a chunk: the mix's own seconds, not its wait for a local slot

    def render() -> tuple[bytes, dict[str, int]]:
        started[0] = time.monotonic()
        with scratch_dir("moviegen-sound-") as tmp:
            out = Path(tmp) / "soundtrack.m4a"
            counts = audio.render_soundtrack(local, media.file_uri_resolver, out, preset, cache_dir=audio_cache_dir())
            return out.read_bytes(), counts

    data, counts = await ctx.local_work(render)
    return Produced(data, "m4a", "audio/mp4", duration_ms=int(mix["durationMs"]),
                    meta={"preset": preset.name, "render_seconds": round(time.monotonic() - started[0], 2),
                          "pieces_encoded": counts["encoded"], "pieces_reused": counts["reused"]})


async def _movie_video(ctx: RecipeContext, key: NodeKey) -> Produced:
    chunks = sorted((k for k in _chunk_keys(ctx)), key=lambda k: k.segment or 0)
    missing = [str(k) for k in chunks if ctx.record(k) is None or ctx.failure(k)]
    if missing or ctx.record(NodeKey("soundtrack")) is None:
        raise RuntimeError(f"cannot join the movie: {', '.join(missing) or 'soundtrack'} not rendered")
    paths = [await ctx.media_path(ctx.record(k).uri) for k in chunks]  # type: ignore[misc, union-attr]
    sound = await ctx.media_path(ctx.record(NodeKey("soundtrack")).uri)  # type: ignore[misc, union-attr]
    started = time.monotonic()

    def join() -> tuple[bytes, dict[str, Any], bytes]:
        with scratch_dir("moviegen-join-") as tmp:
            out = Path(tmp) / "movie.mp4"
            media.join(paths, sound, out)
            info = media.probe(out)
            data = out.read_bytes()
        return data, info, poster(data, info["duration_ms"] or 0)

    data, info, preview = await ctx.local_work(join)
    chunk_seconds = sum(float(ctx.record(k).metadata.get("render_seconds") or 0) for k in chunks)  # type: ignore[union-attr]
    return Produced(data, "mp4", "video/mp4", width=info["width"], height=info["height"],
                    duration_ms=info["duration_ms"], preview=preview,
                    meta={"engine": ctx.settings.render_engine.value, "preset": ctx.request.preset, "frames": info["frames"],
                          "video_codec": info["video_codec"] or "", "audio_codec": info["audio_codec"] or "",
                          "join_seconds": round(time.monotonic() - started, 2),
                          "chunk_render_seconds": round(chunk_seconds, 2)})


def _progress(ctx: RecipeContext, key: NodeKey) -> Callable[[dict[str, Any]], None]:
    """Remotion's progress lines, brought into the run's log (every 25 %, and when done)."""
    reported = [-1]

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "progress":
            quarter = int(float(event.get("progress", 0)) * 4)
            if quarter > reported[0]:
                reported[0] = quarter
                ctx.note(key, f"remotion {quarter * 25}% ({event.get('renderedFrames', 0)} frames)")
        elif event.get("event") in ("bundle", "done"):
            ctx.note(key, f"remotion {event['event']} in {event.get('seconds', 0)} s")

    return on_event


def poster(mp4: bytes, duration_ms: int) -> bytes:
    """A JPEG of the movie's frame at a third of its length (past any opening fade)."""
    png = run_ffmpeg(["-ss", f"{duration_ms / 3000:.3f}", "-i", "movie.mp4", "-frames:v", "1"], {"movie.mp4": mp4}, "poster.png")
    return jpeg_preview(Image.open(io.BytesIO(png)), box=320)


def audio_cache_dir() -> Path:
    """Where encoded soundtrack pieces are kept between renders (by the hash of what made them)."""
    return dagster_home() / "cache" / "soundtrack-pieces"


def _chunk_keys(ctx: RecipeContext) -> list[NodeKey]:
    return [NodeKey("video_chunk", i) for i in range(ctx.request.segment_count)]


async def _local_sources(ctx: RecipeContext, timeline: dict[str, Any]) -> dict[str, Any]:
    """The timeline with every ``src`` a local file (artifacts on S3 are copied first)."""
    assert ctx.media_path is not None
    local = {src: await ctx.media_path(src) for src in sources(timeline)}
    return with_local_sources(timeline, local.__getitem__)


RENDER_RECIPES = {
    "segment_cut": _segment_cut,
    "video_chunk": _video_chunk,
    "audio_mix": _audio_mix,
    "soundtrack": _soundtrack,
    "movie_video": _movie_video,
}
