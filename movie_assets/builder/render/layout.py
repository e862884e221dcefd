"""The chunk layout both engines render by: frames of the timeline's clips, one chunk per 10 s segment,
and which clips (and captions) a chunk draws. Engine-neutral: Remotion's chunks follow it as ffmpeg's do."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Any

from .media import RenderError

SEGMENT_MS = 10_000
TRANSITIONS = {"cut", "fade", "crossfade", "dissolve", "wipe", "slide", "zoom"}
DUCK_RAMP_MS = 250  # music ramps down to a ducking window's volume, and back up after it, over this long


def music_gain(clip: dict[str, Any], t_ms: float) -> float:
    """A music clip's gain at absolute time ``t_ms``: its ``volume``, down to each ``ducking`` window's
    volume inside the window, with linear ramps that end at the window's start and start at its end
    (the lowest where ramps meet)."""
    base = float(clip.get("volume", 1.0))
    gain = base
    for win in clip.get("ducking", []):
        ws, we, duck = float(win["startMs"]), float(win["endMs"]), float(win["volume"])
        weight = min(1.0, max(0.0, min(t_ms - (ws - DUCK_RAMP_MS), (we + DUCK_RAMP_MS) - t_ms) / DUCK_RAMP_MS))
        gain = min(gain, base + weight * (duck - base))
    return gain


def music_gain_points(clip: dict[str, Any]) -> list[tuple[float, float]]:
    """The gain of an audio clip over its length as the corners of a line: (ms from the clip's start,
    gain), linear in between, first at 0 and last at ``durationMs`` (one point when it is constant)."""
    start, length = float(clip["startMs"]), float(clip["durationMs"])
    windows = sorted(clip.get("ducking", []), key=lambda w: w["startMs"])
    base = float(clip.get("volume", 1.0))
    times = {0.0, length}
    for win in windows:
        times |= {win["startMs"] - DUCK_RAMP_MS - start, win["startMs"] - start, win["endMs"] - start,
                  win["endMs"] + DUCK_RAMP_MS - start}
    for a, b in itertools.pairwise(windows):  # where one window's ramp up meets the next one's ramp down
        up, down = base - float(a["volume"]), base - float(b["volume"])
        if up + down > 0 and b["startMs"] - a["endMs"] < 2 * DUCK_RAMP_MS:
            times.add((up * (a["endMs"] + DUCK_RAMP_MS) + down * (b["startMs"] - DUCK_RAMP_MS)) / (up + down) - start)
    points = [(t, music_gain(clip, start + t)) for t in sorted(t for t in times if 0 <= t <= length)]
    corners = [points[0]]
    for k in range(1, len(points) - 1):  # drop the points on the line between their neighbours
        (t0, g0), (t1, g1), (t2, g2) = corners[-1], points[k], points[k + 1]
        if abs(g0 + (g2 - g0) * (t1 - t0) / (t2 - t0) - g1) > 1e-9:
            corners.append(points[k])
    corners.append(points[-1])
    return [corners[0]] if all(abs(g - corners[0][1]) < 1e-9 for _, g in corners) else corners


def timeline_fps(timeline: dict[str, Any]) -> Fraction:
    return Fraction(str(timeline["fps"]))


def frame_at(ms: float, fps: Fraction) -> int:
    # round half up, as Remotion's Math.round does (Python's round() is half-to-even).
    return math.floor(Fraction(str(ms)) * fps / 1000 + Fraction(1, 2))


def total_frames(timeline: dict[str, Any]) -> int:
    if "durationInFrames" in timeline:
        return int(timeline["durationInFrames"])
    return frame_at(timeline["durationMs"], timeline_fps(timeline))


def track_clips(timeline: dict[str, Any], name: str) -> list[dict[str, Any]]:
    for track in timeline.get("tracks", []):
        if track.get("name") == name:
            return list(track.get("clips", []))
    return []


def clip_span(clip: dict[str, Any], fps: Fraction) -> tuple[int, int]:
    start = frame_at(clip["startMs"], fps)
    return start, frame_at(clip["startMs"] + clip["durationMs"], fps)


def visual_clips(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    fps = timeline_fps(timeline)
    clips = [c for c in track_clips(timeline, "visual") if clip_span(c, fps)[1] > clip_span(c, fps)[0]]
    return sorted(clips, key=lambda c: c["startMs"])


def transition_in(clip: dict[str, Any], fps: Fraction) -> tuple[str, int]:
    """(type, frames) of the clip's transitionIn, capped at the clip's length; ("cut", 0) if none."""
    tr = clip.get("transitionIn") or {}
    kind = tr.get("type", "cut")
    if kind not in TRANSITIONS:
        raise RenderError(f"clip {clip.get('id')}: unknown transition {kind!r}")
    start, end = clip_span(clip, fps)
    frames = min(frame_at(clip["startMs"] + tr.get("durationMs", 0), fps) - start, end - start)
    return (kind, frames) if kind != "cut" and frames > 0 else ("cut", 0)


def segment_chunks(timeline: dict[str, Any]) -> list[tuple[int, int]]:
    """Half-open frame ranges, one per 10 s segment; the last one runs to the end of the movie."""
    fps, total = timeline_fps(timeline), total_frames(timeline)
    count = max(1, int(timeline["durationMs"]) // SEGMENT_MS)
    bounds = [frame_at(k * SEGMENT_MS, fps) for k in range(count)] + [total]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def clips_for_chunk(timeline: dict[str, Any], frames: tuple[int, int]) -> list[dict[str, Any]]:
    """The visual clips overlapping the chunk, the clip before any transition that overlaps it, and
    the captions overlapping it: everything whose media the chunk reads."""
    fps = timeline_fps(timeline)
    a, b = frames
    visuals = visual_clips(timeline)
    needed: list[int] = []
    for i, clip in enumerate(visuals):
        start, end = clip_span(clip, fps)
        if start >= b or end <= a:
            continue
        kind, tf = transition_in(clip, fps)
        if i > 0 and kind != "cut" and start + tf > a and i - 1 not in needed:
            needed.append(i - 1)
        if i not in needed:
            needed.append(i)
    captions = [c for c in track_clips(timeline, "captions") if clip_span(c, fps)[0] < b and clip_span(c, fps)[1] > a]
    return [visuals[i] for i in needed] + captions
