"""Timelines as the renderers take them: a part of the movie's timeline that renders exactly as the
whole would, and a timeline whose media are local files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

# What a part of the timeline keeps of the whole, so that either engine renders it as the whole movie.
FRAME_FIELDS = ("formatVersion", "movie", "fps", "width", "height", "durationMs", "durationInFrames")


def frame_of(timeline: dict[str, Any]) -> dict[str, Any]:
    return {k: timeline[k] for k in FRAME_FIELDS}


def partial_timeline(frame: dict[str, Any], *, visual: list[dict[str, Any]] | None = None,
                     narration: list[dict[str, Any]] | None = None, captions: list[dict[str, Any]] | None = None,
                     music: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A timeline of the whole movie's frame holding only these clips."""
    return {**frame_of(frame), "tracks": [
        {"name": "visual", "clips": visual or []}, {"name": "narration", "clips": narration or []},
        {"name": "captions", "clips": captions or []}, {"name": "music", "clips": music or []}]}


def sources(timeline: dict[str, Any]) -> list[str]:
    return [clip["src"] for track in timeline["tracks"] for clip in track["clips"] if clip.get("src")]


def with_local_sources(timeline: dict[str, Any], local: Callable[[str], Path]) -> dict[str, Any]:
    """The timeline with every ``src`` replaced by the file:// URI of ``local(src)``."""
    return {**timeline, "tracks": [
        {**track, "clips": [{**clip, "src": local(clip["src"]).as_uri()} if clip.get("src") else clip
                            for clip in track["clips"]]}
        for track in timeline["tracks"]]}


def scratch_name(uri: str) -> str:
    """The name a copy of a remote artifact gets in a scratch folder (same suffix, so tools know the type)."""
    return hashlib.sha256(uri.encode()).hexdigest()[:16] + Path(uri).suffix
