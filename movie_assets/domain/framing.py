"""How a picture is framed on screen: the Ken Burns motion over a still and the area of the picture
that every frame of it keeps (where a picture may carry text without it being cut at an edge).

The timeline (builder/timeline.py) gives each picture this motion and both render engines follow it
(ffmpeg_engine ``_cover_box``, renderer/src/Movie.tsx): the view zooms between 1 and
``KEN_BURNS_ZOOM`` around the picture's centre, the zoomed end drifted sideways by
``KEN_BURNS_DRIFT`` of the picture's width, and is clamped so no edge of the picture shows.
"""

from __future__ import annotations

from collections.abc import Iterable

KEN_BURNS_ZOOM = 1.15
KEN_BURNS_DRIFT = 0.05  # of the picture's width; within what a 1.15 zoom leaves outside the view

Box = tuple[float, float, float, float]


def ken_burns_points() -> list[dict[str, float]]:
    """Every end of every Ken Burns move the timeline gives a picture (the view moves linearly
    between two of them): wide, and zoomed with the drift to either side."""
    return [{"scale": 1.0, "x": 0.5, "y": 0.5}] + [{"scale": KEN_BURNS_ZOOM, "x": 0.5 + d, "y": 0.5}
                                                 for d in (KEN_BURNS_DRIFT, -KEN_BURNS_DRIFT)]


def view_window(scale: float, x: float, y: float) -> Box:
    """The part of a picture (fractions of its width and height) that a frame at this zoom and centre
    shows when the picture has the frame's aspect ratio: clamped so no edge shows."""
    s = max(scale, 1.0)
    half = 0.5 / s
    cx, cy = min(max(x, half), 1 - half), min(max(y, half), 1 - half)
    return cx - half, cy - half, cx + half, cy + half


def intersection(windows: Iterable[Box]) -> Box:
    """The area every window keeps."""
    boxes = list(windows)
    return (max(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), min(b[3] for b in boxes))


def ken_burns_safe_area() -> Box:
    """The part of a picture every Ken Burns frame keeps (fractions): the views move linearly between
    the ends of a move, so the intersection of the ends' windows is the intersection of all frames'."""
    return intersection(view_window(p["scale"], p["x"], p["y"]) for p in ken_burns_points())
