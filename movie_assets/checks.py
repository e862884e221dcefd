"""Asset checks a user cares about, evaluated on every partition a run builds.

Each check runs inside the build step on the artifact just produced (no second read), and reports
one result per run listing the partitions that failed it and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from resources.media import MediaError, mp3_duration_ms, mp4_info, png_size

from .request import SEGMENT_MS, MovieRequest

# A clip a few frames short of its segment still plays; more than that leaves a visible gap.
VIDEO_TOLERANCE_MS = 120


@dataclass(frozen=True)
class CheckDecl:
    name: str
    asset: str
    severity: dg.AssetCheckSeverity
    description: str


CHECKS: tuple[CheckDecl, ...] = (
    CheckDecl("narration_fits_segment", "segment_audio", dg.AssetCheckSeverity.WARN,
              "The narration audio is no longer than its 10 s segment."),
    CheckDecl("image_frame_size", "segment_image", dg.AssetCheckSeverity.ERROR,
              "The image has exactly the requested size and aspect ratio."),
    CheckDecl("image_frame_size", "starting_image", dg.AssetCheckSeverity.ERROR,
              "The starting image has exactly the requested size and aspect ratio."),
    CheckDecl("video_frame_and_length", "text_to_video_clip", dg.AssetCheckSeverity.ERROR,
              "The clip has the requested size and lasts at least its 10 s segment."),
    CheckDecl("video_frame_and_length", "image_to_video_clip", dg.AssetCheckSeverity.ERROR,
              "The clip has the requested size and lasts at least its 10 s segment."),
    CheckDecl("timeline_complete", "timeline", dg.AssetCheckSeverity.WARN,
              "Every clip of the timeline is present (no missing or failed artifacts)."),
)

CHECK_SPECS = [dg.AssetCheckSpec(c.name, asset=c.asset, description=c.description) for c in CHECKS]
CHECKS_BY_ASSET: dict[str, CheckDecl] = {c.asset: c for c in CHECKS}


def problem(asset: str, data: bytes, value: object, request: MovieRequest) -> str | None:
    """What is wrong with one artifact, or None when it passes its check."""
    width, height = request.frame
    try:
        if asset == "segment_audio":
            ms = mp3_duration_ms(data)
            return f"narration lasts {ms} ms, longer than the {SEGMENT_MS} ms segment" if ms > SEGMENT_MS + 100 else None
        if asset in ("segment_image", "starting_image"):
            size = png_size(data)
            return f"image is {size[0]}x{size[1]}, expected {width}x{height}" if size != (width, height) else None
        if asset in ("text_to_video_clip", "image_to_video_clip"):
            w, h, ms = mp4_info(data)
            if (w, h) != (width, height):
                return f"video is {w}x{h}, expected {width}x{height}"
            if ms < SEGMENT_MS - VIDEO_TOLERANCE_MS:
                return f"video lasts {ms} ms, shorter than the {SEGMENT_MS} ms segment"
            return None
        if asset == "timeline":
            errors = value.get("errors", []) if isinstance(value, dict) else []
            return f"{len(errors)} clip(s) missing or failed" if errors else None
    except MediaError as e:
        return f"unreadable media: {e}"
    return None
