"""Output presets: frame size (short side), x264 quality and speed, AAC bitrate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    short_side: int  # pixels; the long side follows the timeline's aspect ratio
    crf: int  # libx264 constant rate factor
    x264_preset: str  # libx264 speed preset
    audio_bitrate: str  # AAC bitrate as ffmpeg takes it, e.g. "160k"


# veryfast throughout: the pictures move slowly, so slower presets buy little and cost 1.5-2x the time.
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("480p", 480, 23, "veryfast", "128k"),
        Preset("720p", 720, 23, "veryfast", "160k"),
        Preset("1080p", 1080, 22, "veryfast", "192k"),
        Preset("2160p", 2160, 22, "veryfast", "192k"),
    )
}


def _even(x: float) -> int:
    # yuv420p needs even dimensions.
    return max(2, 2 * round(x / 2))


def output_size(timeline: dict[str, Any], preset: Preset) -> tuple[int, int]:
    """(width, height): the timeline's aspect ratio with the preset's short side, both even."""
    width, height = int(timeline["width"]), int(timeline["height"])
    if width >= height:
        return _even(preset.short_side * width / height), _even(preset.short_side)
    return _even(preset.short_side), _even(preset.short_side * height / width)
