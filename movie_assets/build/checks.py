"""What the asset checks test (each artifact row names its check): evaluated inside the build step
on the artifact just produced (no second read); the step reports one result per run listing the
partitions that failed it and why."""

from __future__ import annotations

from movie_assets.domain.request import SEGMENT_MS, MovieRequest
from resources.runtime.media import MediaError, mp3_duration_ms, mp4_info, png_size

# A clip a few frames short of its segment still plays; more than that leaves a visible gap.
VIDEO_TOLERANCE_MS = 120




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
