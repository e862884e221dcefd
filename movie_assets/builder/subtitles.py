"""The timeline's captions as a subtitle file: SubRip (``srt``) or WebVTT (``vtt``).

One cue per caption clip (a caption line as the renderers draw it), in time order, frame-exact with the
rendered movie: a caption is on screen over frames [round(start × fps), round(end × fps)) (round half up,
as both renderers count), and its cue starts and ends at those frames' start times, written in whole
milliseconds rounded down (``frame × 1000 / fps``), so a player shows it on exactly the frames the render
draws it (a frame at time t shows the cues with start ≤ t < end). A caption shorter than a frame has no
cue (the render never shows it either).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

SUBTITLE_FORMATS = ("srt", "vtt")


def _frame(ms: int | float, fps: Fraction) -> int:
    """The frame at ``ms``: round half up, as the renderers count (builder/render/layout.py frame_at)."""
    return math.floor(Fraction(str(ms)) * fps / 1000 + Fraction(1, 2))


def _frame_ms(frame: int, fps: Fraction) -> int:
    """The start of ``frame`` in whole milliseconds, rounded down (still within the frame before it ends)."""
    return math.floor(Fraction(frame * 1000) / fps)


def cues(timeline: dict[str, Any]) -> list[tuple[int, int, str]]:
    """(start ms, end ms, text) of every caption that is on screen for at least one frame, in time order."""
    fps = Fraction(str(timeline["fps"]))
    captions = next((t["clips"] for t in timeline["tracks"] if t["name"] == "captions"), [])
    out = []
    for clip in sorted(captions, key=lambda c: (c["startMs"], c["id"])):
        start = _frame(clip["startMs"], fps)
        end = _frame(clip["startMs"] + clip["durationMs"], fps)
        text = " ".join(str(clip.get("text", "")).split())
        if end > start and text:
            out.append((_frame_ms(start, fps), _frame_ms(end, fps), text))
    return out


def _clock(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def to_srt(timeline: dict[str, Any]) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, a blank line after each."""
    blocks = [f"{n}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{text.replace('-->', '->')}\n"
              for n, (a, b, text) in enumerate(cues(timeline), start=1)]
    return "\n".join(blocks)


def _vtt_text(text: str) -> str:
    # WebVTT cue text: & < > are escaped (so no markup is read into it, and no "-->").
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(timeline: dict[str, Any]) -> str:
    """WebVTT: the ``WEBVTT`` header, then numbered cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm``."""
    blocks = ["WEBVTT\n"] + [f"{n}\n{_clock(a, '.')} --> {_clock(b, '.')}\n{_vtt_text(text)}\n"
                             for n, (a, b, text) in enumerate(cues(timeline), start=1)]
    return "\n".join(blocks)


def export_subtitles(timeline: dict[str, Any], fmt: str) -> str:
    if fmt == "srt":
        return to_srt(timeline)
    if fmt == "vtt":
        return to_vtt(timeline)
    raise ValueError(f"unknown subtitle format {fmt!r}; allowed: {', '.join(SUBTITLE_FORMATS)}")
