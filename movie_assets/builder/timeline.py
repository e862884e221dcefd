"""The timeline: tracks of clips with links to the artifacts, as JSON a Remotion composition consumes
(docs/timeline.md).

Integer milliseconds and a top-level fps; tracks ``visual``, ``narration``, ``captions``, ``music``;
every clip id names the asset partition and data version it came from, so regenerating one artifact
changes exactly one clip id. A missing or failed picture or clip leaves a visible placeholder and an
entry in ``errors``.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from importlib import resources as importlib_resources
from typing import Any

import jsonschema

from movie_assets.builder.context import RecipeContext
from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.errors import for_movie
from movie_assets.domain.framing import KEN_BURNS_DRIFT, KEN_BURNS_ZOOM
from movie_assets.domain.request import SEGMENT_MS, TRANSITION_MS, AssemblyStrategy, Transition, VisualMode
from resources.providers.base import SUGGESTIONS, ErrorCategory
from resources.runtime.secrets import TEXT_LIMIT, redact

FPS = 30
TIMELINE_FORMAT_VERSION = 2
CAPTION_WORDS = 6  # at most this many words on screen at once
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
    """Ken Burns on pictures: alternate zoom in / zoom out with a drift, as Remotion's prompt-to-video
    template does. The view never leaves the picture: at scale s the centre stays within
    [1/(2s), 1 - 1/(2s)], so the unzoomed end is centred and only the zoomed end drifts."""
    if strategy is AssemblyStrategy.ken_burns and kind == "image":
        drift = KEN_BURNS_DRIFT if index % 4 < 2 else -KEN_BURNS_DRIFT
        wide = {"scale": 1.0, "x": 0.5, "y": 0.5}
        close = {"scale": KEN_BURNS_ZOOM, "x": 0.5 + drift, "y": 0.5}
        zoom_in = index % 2 == 0
        return {"type": "ken_burns", "from": wide if zoom_in else close, "to": close if zoom_in else wide}
    return {"type": "none"}


def ken_burns_within_picture(point: dict[str, float]) -> bool:
    half = 0.5 / point["scale"]
    return half - 1e-9 <= point["x"] <= 1 - half + 1e-9 and half - 1e-9 <= point["y"] <= 1 - half + 1e-9


def _transition(kind: Transition, length_ms: int) -> dict[str, Any]:
    return {"type": kind.value, "durationMs": min(TRANSITION_MS[kind], length_ms // 2)}


def caption_pages(words: list[dict[str, Any]], start_ms: int, max_words: int = CAPTION_WORDS) -> list[dict[str, Any]]:
    """Captions from spoken word timings (ms from the narration's start): pages of a few words, a new
    page after a sentence ends; each page is on screen from its first word until the next page."""
    pages: list[list[dict[str, Any]]] = [[]]
    for w in words:
        text = _MARKDOWN.sub("", str(w["text"])).strip()
        if not text:
            continue
        if len(pages[-1]) >= max_words:
            pages.append([])
        pages[-1].append({"text": text, "startMs": start_ms + int(w["startMs"]), "endMs": start_ms + int(w["endMs"])})
        if text[-1] in ".!?;:":
            pages.append([])
    pages = [p for p in pages if p]
    out = []
    for k, page in enumerate(pages):
        begin = page[0]["startMs"]
        end = pages[k + 1][0]["startMs"] if k + 1 < len(pages) else page[-1]["endMs"]
        out.append({"startMs": begin, "durationMs": max(1, end - begin), "text": " ".join(w["text"] for w in page),
                    "words": page})
    return out


def gap_error(key: NodeKey, movie: str, failure: str | None, has_previous: bool,
              info: dict[str, str] | None = None) -> dict[str, str]:
    """A timeline error entry: a missing artifact, or a failed one (whose previous version, if any,
    is still used so the movie stays complete), with the failure's category and suggestion."""
    if failure:
        message = redact(failure, TEXT_LIMIT) + ("; the previous version is used" if has_previous else "")
        entry = {"asset": key.asset, "partition": key.partition_key(movie), "reason": "failed", "message": message}
        if info:
            entry |= {"category": info.get("category") or "local", "suggestion": redact(info.get("suggestion", ""), TEXT_LIMIT)}
        return entry
    return {"asset": key.asset, "partition": key.partition_key(movie), "reason": "missing", "message": "not generated yet"}


def placeholder_error(key: NodeKey, movie: str, metadata: dict[str, Any]) -> dict[str, str] | None:
    """A timeline error entry for an artifact an offline placeholder stands in for (None: a real one)."""
    if not metadata.get("fallback"):
        return None
    try:
        category = ErrorCategory(str(metadata.get("fallback_category") or "outage"))
    except ValueError:
        category = ErrorCategory.outage
    suggestion = for_movie(SUGGESTIONS[category], movie) + "; the next generate calls the provider again and replaces the placeholder"
    return {"asset": key.asset, "partition": key.partition_key(movie), "reason": "placeholder",
            "message": f"an offline placeholder stands in: {redact(metadata.get('fallback_for') or 'the provider failed')}",
            "category": category.value, "suggestion": redact(suggestion, TEXT_LIMIT)}


def _visual_slots(request: Any, segment: int, movie: str, clips: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The segment's visual slots in order (its m pictures, or its one clip), each with the clip that
    fills it, or None when its artifact is missing."""
    mode = request.mode(segment)
    if mode is VisualMode.image_only:
        keys = [NodeKey("segment_image", segment, j) for j in range(request.images_per_segment)]
    else:
        keys = [NodeKey("text_to_video_clip" if mode is VisualMode.video_by_text else "image_to_video_clip", segment)]
    by_partition = {c["partition"]: c for c in clips}
    return [{"asset": k.asset, "partition": k.partition_key(movie), "clip": by_partition.get(k.partition_key(movie)),
             "label": f"Segment {segment:02d}" + (f" · image {k.image}" if k.image is not None else " · clip")}
            for k in keys]


async def assemble_timeline(ctx: RecipeContext) -> dict[str, Any]:
    r = ctx.request
    width, height = r.frame
    strategy = r.assembly_strategy
    errors: list[dict[str, Any]] = []

    def record_or_error(key: NodeKey) -> Any:
        rec, failure = ctx.record(key), ctx.failure(key)
        if rec is None or failure:
            errors.append(gap_error(key, ctx.movie, failure, has_previous=rec is not None, info=ctx.failure_detail(key)))
        elif (placeholder := placeholder_error(key, ctx.movie, rec.metadata)) is not None:
            errors.append(placeholder)
        return rec

    script_rec = record_or_error(NodeKey("script"))
    script = await ctx.need(NodeKey("script")) if script_rec else {"title": "", "summary": ""}

    visual, narration, captions = [], [], []
    visual_index = 0
    for i in range(r.segment_count):
        seg_start = i * SEGMENT_MS
        narr_key = NodeKey("segment_narration", i)
        narr_rec = record_or_error(narr_key)
        audio_rec = record_or_error(NodeKey("segment_audio", i))
        words: list[dict[str, Any]] = []
        if audio_rec is not None:
            spoken = min(int(audio_rec.metadata.get("duration_ms") or SEGMENT_MS), SEGMENT_MS)
            timing_key = NodeKey("narration_timing", i)
            if record_or_error(timing_key) is not None:  # when each word is spoken (an estimate is marked there)
                words = (await ctx.need(timing_key))["words"]
            narration.append({
                "id": clip_id("segment_audio", f"{i:02d}", audio_rec.version), "type": "audio",
                "startMs": seg_start, "durationMs": spoken, "src": audio_rec.uri, "volume": 1.0,
                "segment": i, "asset": "segment_audio", "partition": f"{ctx.movie}|{i:02d}", "version": audio_rec.version,
                **({"fallback": True} if audio_rec.metadata.get("fallback") else {}),
            })
        else:
            spoken = SEGMENT_MS
        if narr_rec is not None:
            base = clip_id("segment_narration", f"{i:02d}", narr_rec.version)
            if words:  # timed from the speech (the voice's alignments or a transcription of it)
                pages = caption_pages(words, seg_start)
            else:  # an estimate over the audio's real duration, by word count
                text = (await ctx.need(narr_key))["text"]
                pages = [{"startMs": a, "durationMs": n, "text": t}
                         for a, n, t in caption_chunks(text, seg_start, spoken, CAPTION_WORDS)]
            for k, page in enumerate(pages):
                captions.append({"id": f"{base}#{k}", "type": "caption", **page, "segment": i})
        vis_rec = record_or_error(NodeKey("segment_visuals", i))
        vis = await ctx.need(NodeKey("segment_visuals", i)) if vis_rec is not None else {"clips": [], "errors": []}
        errors.extend(vis.get("errors", []))
        slots = _visual_slots(r, i, ctx.movie, vis["clips"])
        at = seg_start
        for k, (slot, length) in enumerate(zip(slots, _split(SEGMENT_MS, len(slots)), strict=True)):
            entering = r.transition_into(i, first_clip=k == 0) if visual_index > 0 else Transition.cut
            item: dict[str, Any] = {"startMs": at, "durationMs": length, "segment": i,
                                    "transitionIn": _transition(entering, length)}
            if slot["clip"] is None:  # missing or failed with no earlier version: shown, not hidden
                suffix = slot["partition"].split("|", 1)[1]
                item |= {"id": clip_id("missing", suffix, hashlib.sha256(slot["partition"].encode()).hexdigest()),
                         "type": "placeholder", "text": f"{slot['label']} not generated yet",
                         "asset": slot["asset"], "partition": slot["partition"], "effect": {"type": "none"}}
            else:
                clip = slot["clip"]
                kind = clip["kind"]
                item |= {"id": clip_id(clip["asset"], clip["partition"].split("|", 1)[1], clip["version"]), "type": kind,
                         "src": ctx.ref(clip["uri"]), "asset": clip["asset"], "partition": clip["partition"],
                         "version": clip["version"], "effect": _visual_effect(strategy, visual_index, kind)}
                if kind == "video":
                    item["muted"] = True
                if clip.get("fallback"):
                    item["fallback"] = True
                if clip.get("degraded"):  # made at reduced settings (recovery): the next generate tries full ones
                    item["degraded"] = clip["degraded"]
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
            **({"fallback": True} if music_rec.metadata.get("fallback") else {}),
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
        "fps": r.fps,
        "width": width,
        "height": height,
        "durationMs": duration_ms,
        "durationInFrames": duration_ms * r.fps // 1000,
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
