"""The timeline: tracks of clips with links to the artifacts, as JSON a Remotion composition consumes.

Integer milliseconds and a top-level fps; tracks ``visual``, ``narration``, ``captions``, ``music``;
every clip id names the asset partition and data version it came from, so regenerating one artifact
changes exactly one clip id. Missing or failed pieces leave a gap and an entry in ``errors``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources as importlib_resources
from typing import Any

import jsonschema

from movie_assets.build.context import ProduceContext
from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.request import SEGMENT_MS, AssemblyStrategy

FPS = 30
TIMELINE_FORMAT_VERSION = 1
CROSSFADE_MS = 500
MUSIC_VOLUME = 0.35
MUSIC_DUCKED_VOLUME = 0.12

_MARKDOWN = re.compile(r"[*_#`>\[\]]+")


@lru_cache(maxsize=1)
def timeline_schema() -> dict[str, Any]:
    text = importlib_resources.files("movie_assets.domain").joinpath("timeline.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate_timeline(timeline: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if the timeline does not match docs/timeline.schema.json."""
    jsonschema.Draft202012Validator(timeline_schema()).validate(timeline)


def clip_id(asset: str, partition_suffix: str | None, version: str) -> str:
    return f"{asset}:{partition_suffix or '_'}@{version[:12]}"


def caption_chunks(text: str, start_ms: int, duration_ms: int, max_words: int = 12) -> list[tuple[int, int, str]]:
    """Split narration into caption chunks timed by word count over the spoken duration."""
    clean = _MARKDOWN.sub("", text).strip()
    words = clean.split()
    if not words or duration_ms <= 0:
        return []
    chunks = [words[k : k + max_words] for k in range(0, len(words), max_words)]
    out, at, total = [], start_ms, len(words)
    for k, chunk in enumerate(chunks):
        length = duration_ms - (at - start_ms) if k == len(chunks) - 1 else round(duration_ms * len(chunk) / total)
        out.append((at, max(1, length), " ".join(chunk)))
        at += length
    return out


def _split(total: int, parts: int) -> list[int]:
    base, rest = divmod(total, parts)
    return [base + (1 if k < rest else 0) for k in range(parts)]


def _visual_effect(strategy: AssemblyStrategy, index: int, kind: str) -> dict[str, Any]:
    if strategy is AssemblyStrategy.ken_burns and kind == "image":
        # Alternate zoom in / zoom out and drift, as Remotion's prompt-to-video template does.
        zoom_in = index % 2 == 0
        drift = 0.04 if index % 4 < 2 else -0.04
        return {
            "type": "ken_burns",
            "from": {"scale": 1.0 if zoom_in else 1.15, "x": 0.5 - drift, "y": 0.5},
            "to": {"scale": 1.15 if zoom_in else 1.0, "x": 0.5 + drift, "y": 0.5},
        }
    return {"type": "none"}


def gap_error(key: NodeKey, movie: str, failure: str | None, has_previous: bool) -> dict[str, str]:
    """A timeline error entry: a missing artifact, or a failed one (whose previous version, if any,
    is still used so the movie stays complete)."""
    if failure:
        message = failure + ("; the previous version is used" if has_previous else "")
        return {"asset": key.asset, "partition": key.partition_key(movie), "reason": "failed", "message": message}
    return {"asset": key.asset, "partition": key.partition_key(movie), "reason": "missing", "message": "not generated yet"}


async def assemble_timeline(ctx: ProduceContext) -> dict[str, Any]:
    r = ctx.request
    width, height = r.frame
    strategy = r.assembly_strategy
    errors: list[dict[str, Any]] = []

    def record_or_error(key: NodeKey) -> Any:
        rec, failure = ctx.load_record(key), ctx.load_failure(key)
        if rec is None or failure:
            errors.append(gap_error(key, ctx.movie, failure, has_previous=rec is not None))
        return rec

    script_rec = record_or_error(NodeKey("script"))
    script = await ctx.load_value(NodeKey("script")) if script_rec else {"title": "", "summary": ""}

    visual, narration, captions = [], [], []
    transition = {"type": "crossfade", "durationMs": CROSSFADE_MS} if strategy is AssemblyStrategy.crossfade else {"type": "cut", "durationMs": 0}
    visual_index = 0
    for i in range(r.segment_count):
        seg_start = i * SEGMENT_MS
        narr_key = NodeKey("segment_narration", i)
        narr_rec = record_or_error(narr_key)
        audio_rec = record_or_error(NodeKey("segment_audio", i))
        if audio_rec is not None:
            spoken = min(int(audio_rec.metadata.get("duration_ms") or SEGMENT_MS), SEGMENT_MS)
            narration.append({
                "id": clip_id("segment_audio", f"{i:02d}", audio_rec.version), "type": "audio",
                "startMs": seg_start, "durationMs": spoken, "src": audio_rec.uri, "volume": 1.0,
                "segment": i, "asset": "segment_audio", "partition": f"{ctx.movie}|{i:02d}", "version": audio_rec.version,
            })
        else:
            spoken = SEGMENT_MS
        if narr_rec is not None:
            text = (await ctx.load_value(narr_key))["text"]
            for k, (start, length, chunk) in enumerate(caption_chunks(text, seg_start, spoken)):
                captions.append({
                    "id": f"{clip_id('segment_narration', f'{i:02d}', narr_rec.version)}#{k}", "type": "caption",
                    "startMs": start, "durationMs": length, "text": chunk, "segment": i,
                })
        vis_rec = record_or_error(NodeKey("segment_visuals", i))
        if vis_rec is None:
            continue
        vis = await ctx.load_value(NodeKey("segment_visuals", i))
        errors.extend(vis.get("errors", []))
        clips = vis["clips"]
        lengths = _split(SEGMENT_MS, len(clips)) if clips else []
        at = seg_start
        for clip, length in zip(clips, lengths, strict=True):
            kind = clip["kind"]
            suffix = clip["partition"].split("|", 1)[1]
            item: dict[str, Any] = {
                "id": clip_id(clip["asset"], suffix, clip["version"]), "type": kind,
                "startMs": at, "durationMs": length, "src": clip["uri"], "segment": i,
                "asset": clip["asset"], "partition": clip["partition"], "version": clip["version"],
                "effect": _visual_effect(strategy, visual_index, kind),
                "transitionIn": transition if visual_index > 0 else {"type": "cut", "durationMs": 0},
            }
            if kind == "video":
                item["muted"] = True
            visual.append(item)
            at += length
            visual_index += 1

    duration_ms = r.segment_count * SEGMENT_MS
    music = []
    music_rec = record_or_error(NodeKey("music"))
    if music_rec is not None:
        music.append({
            "id": clip_id("music", None, music_rec.version), "type": "audio", "startMs": 0, "durationMs": duration_ms,
            "src": music_rec.uri, "volume": MUSIC_VOLUME, "asset": "music", "partition": ctx.movie, "version": music_rec.version,
            "ducking": [
                {"startMs": c["startMs"], "endMs": c["startMs"] + c["durationMs"], "volume": MUSIC_DUCKED_VOLUME}
                for c in narration
            ],
        })
    timeline = {
        "formatVersion": TIMELINE_FORMAT_VERSION,
        "movie": ctx.movie,
        "title": script.get("title", ""),
        "summary": script.get("summary", ""),
        "language": r.language.value,
        "assemblyStrategy": strategy.value,
        "fps": FPS,
        "width": width,
        "height": height,
        "durationMs": duration_ms,
        "durationInFrames": duration_ms * FPS // 1000,
        "tracks": [
            {"name": "visual", "clips": visual},
            {"name": "narration", "clips": narration},
            {"name": "captions", "clips": captions},
            {"name": "music", "clips": music},
        ],
        "errors": errors,
    }
    validate_timeline(timeline)
    return timeline
