"""Output presets: frame size (short side), video quality (x264's constant rate factor, or a bitrate for
the named qualities), x264 speed and AAC bitrate. The frame rate is the timeline's (a request's quality
sets it)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from movie_assets.domain.request import QUALITIES, AspectRatio


@dataclass(frozen=True)
class Preset:
    name: str
    short_side: int  # pixels; the long side follows the timeline's aspect ratio
    crf: int  # libx264 constant rate factor (when there is no video bitrate)
    x264_preset: str  # libx264 speed preset
    audio_bitrate: str  # AAC bitrate as ffmpeg takes it, e.g. "160k"
    video_kbps: int | None = None  # a target video bitrate (kbit/s) instead of the crf
    fps: int | None = None  # the frame rate of the quality (the timeline of a movie made at it has it)

    def video_rate_args(self) -> dict[str, str]:
        """The bitrate settings both engines give x264: the average, and the same as the peak over a buffer of
        one second's worth (constrained VBR: even a 2 s chunk stays within a few percent of the bitrate)."""
        assert self.video_kbps is not None
        return {"bitrate": f"{self.video_kbps}k", "maxrate": f"{self.video_kbps}k",
                "bufsize": f"{self.video_kbps}k"}


_AUDIO = {480: "128k", 720: "160k", 1080: "192k", 2160: "192k"}

# veryfast throughout: the pictures move slowly, so slower presets buy little and cost 1.5-2x the time.
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("480p", 480, 23, "veryfast", "128k"),
        Preset("720p", 720, 23, "veryfast", "160k"),
        Preset("1080p", 1080, 22, "veryfast", "192k"),
        Preset("2160p", 2160, 22, "veryfast", "192k"),
        # The named qualities (request.py QUALITIES): a size, a frame rate and a video bitrate.
        *(Preset(q.value, int(s.size.value.removesuffix("p")), 22, "veryfast", _AUDIO[int(s.size.value.removesuffix("p"))],
                 video_kbps=s.video_kbps, fps=s.fps) for q, s in QUALITIES.items()),
    )
}

_ASPECTS = [Fraction(*map(int, a.value.split(":"))) for a in AspectRatio]


def _even(x: float) -> int:
    # yuv420p needs even dimensions.
    return max(2, 2 * round(x / 2))


def _ratio(width: int, height: int) -> Fraction:
    """The frame's long side over its short side: the request's aspect ratio the frame was made from (an
    854x480 frame is 16:9, rounded), else the frame's own."""
    exact = Fraction(max(width, height), min(width, height))
    nearest = min((max(a, 1 / a) for a in _ASPECTS), key=lambda a: abs(a - exact))
    return nearest if abs(nearest - exact) <= exact / 100 else exact


def output_size(timeline: dict[str, Any], preset: Preset) -> tuple[int, int]:
    """(width, height): the timeline's aspect ratio with the preset's short side, both even. The ratio is
    the aspect ratio the timeline's frame was made from, not its rounded pixels: a 480p timeline renders at
    3840x2160 in 2160p, not 3844x2160."""
    width, height = int(timeline["width"]), int(timeline["height"])
    long = _even(preset.short_side * _ratio(width, height))
    short = _even(preset.short_side)
    return (long, short) if width >= height else (short, long)
