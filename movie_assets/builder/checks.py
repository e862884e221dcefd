"""What the asset checks test (each artifact row names its check): evaluated inside the build step
on the artifact just produced (no second read); the step reports one result per run listing the
partitions that failed it and why."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from movie_assets.builder.render.media import RenderError, probe
from movie_assets.builder.render.presets import PRESETS, output_size
from movie_assets.domain import pace
from movie_assets.domain.blueprint import ARTIFACTS, NodeKey
from movie_assets.domain.look import look_problems
from movie_assets.domain.request import SEGMENT_MS, MovieRequest
from resources.runtime.media import MediaError, mp3_duration_ms, mp4_info, png_size
from resources.runtime.scratch import scratch_dir

# A clip a few frames short of its segment still plays; more than that leaves a visible gap.
VIDEO_TOLERANCE_MS = 120


def _narration_fits(asset: str, data: bytes, value: object, request: MovieRequest, key: NodeKey | None = None,
           frame: tuple[int, int] | None = None) -> str | None:
    """Too short (seconds of music alone) or too long (spoken faster, then cut) for its 10 s segment, with
    how many words to add or cut at the language's pace."""
    ms = mp3_duration_ms(data)
    language = request.language.value
    words = round(ms / 1000 * pace.WORDS_PER_SECOND.get(language, pace.WORDS_PER_SECOND["en"]))
    found = pace.fit_problem(key.segment if key is not None else None, ms, words, language)
    return None if found is None else f"{found[0]} -> {found[1]}"


def _frame_size(asset: str, data: bytes, value: object, request: MovieRequest, key: NodeKey | None = None,
           frame: tuple[int, int] | None = None) -> str | None:
    width, height = frame or request.frame
    size = png_size(data)
    return f"image is {size[0]}x{size[1]}, expected {width}x{height}" if size != (width, height) else None


def _clip(asset: str, data: bytes, value: object, request: MovieRequest, key: NodeKey | None = None,
           frame: tuple[int, int] | None = None) -> str | None:
    width, height = frame or request.frame
    w, h, ms = mp4_info(data)
    if (w, h) != (width, height):
        return f"video is {w}x{h}, expected {width}x{height}"
    if ms < SEGMENT_MS - VIDEO_TOLERANCE_MS:
        return f"video lasts {ms} ms, shorter than the {SEGMENT_MS} ms segment"
    return None


def _carries_look(asset: str, data: bytes, value: object, request: MovieRequest, key: NodeKey | None = None,
           frame: tuple[int, int] | None = None) -> str | None:
    return look_problem(asset, value) if isinstance(value, dict) else None


def _timeline_complete(asset: str, data: bytes, value: object, request: MovieRequest, key: NodeKey | None = None,
           frame: tuple[int, int] | None = None) -> str | None:
    errors = value.get("errors", []) if isinstance(value, dict) else []
    return f"{len(errors)} clip(s) missing or failed" if errors else None


def _movie_matches(asset: str, data: bytes, value: object, request: MovieRequest, key: NodeKey | None = None,
           frame: tuple[int, int] | None = None) -> str | None:
    return movie_problem(data, request)


# The evaluation of each check an artifact row declares, by the check's name (a test fails when a
# declared check has none).
EVALUATIONS: dict[str, Callable[..., str | None]] = {
    "narration_fits_segment": _narration_fits,
    "image_frame_size": _frame_size,
    "video_frame_and_length": _clip,
    "prompt_carries_look": _carries_look,
    "timeline_complete": _timeline_complete,
    "movie_matches_timeline": _movie_matches,
}


def problem(asset: str, data: bytes, value: object, request: MovieRequest, key: NodeKey | None = None,
            metadata: dict[str, Any] | None = None) -> str | None:
    """What is wrong with one artifact (the partition ``key``, when known) by its row's check, or None
    when it passes (or has no check). ``metadata``: the artifact's; a degraded picture or clip (made at
    reduced settings, ``degraded_to``) is checked against the size it was made at."""
    check = ARTIFACTS[asset].check
    if check is None:
        return None
    made_at = str((metadata or {}).get("degraded_to") or "") if (metadata or {}).get("degraded") else ""
    frame = tuple(int(n) for n in made_at.split("x")) if re.fullmatch(r"\d+x\d+", made_at) else None
    try:
        return EVALUATIONS[check.name](asset, data, value, request, key, frame=frame)
    except MediaError as e:
        return f"unreadable media: {e}"


_PROMPT_FIELDS = {"image_prompt": ("prompt",), "text_to_video_prompt": ("direction",),
                  "image_to_video_prompt": ("starting_image_prompt", "direction")}


def look_problem(asset: str, value: dict) -> str | None:
    """A visual prompt of a movie with a look must carry it (a movie made without a look passes)."""
    if value.get("off_look"):
        return "off-look segment (segments.<i>.look: false): its prompt carries no look"
    if "look" not in value:
        return None
    problems = [f"{field}: {p}" for field in _PROMPT_FIELDS[asset] for p in look_problems(value[field], value["look"])]
    return "does not carry the look: " + "; ".join(problems) if problems else None


def movie_problem(data: bytes, request: MovieRequest) -> str | None:
    """The rendered movie must have exactly the timeline's frames, the preset's size, H.264 video and
    an audio stream."""
    width, height = request.frame
    expected = output_size({"width": width, "height": height}, PRESETS[request.preset])
    frames = request.duration_seconds * request.fps
    with scratch_dir("moviegen-check-") as tmp:
        path = Path(tmp) / "movie.mp4"
        path.write_bytes(data)
        try:
            info = probe(path)
        except RenderError as e:
            return f"unreadable movie: {e}"
    problems = []
    if (info["width"], info["height"]) != expected:
        problems.append(f"{info['width']}x{info['height']}, expected {expected[0]}x{expected[1]}")
    if abs(info["frames"] - frames) > 1:
        problems.append(f"{info['frames']} frames, expected {frames}")
    if info["video_codec"] != "h264" or not info["audio_codec"]:
        problems.append(f"streams: video {info['video_codec']}, audio {info['audio_codec']}; expected h264 and audio")
    return "; ".join(problems) or None
