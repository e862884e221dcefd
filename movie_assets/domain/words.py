"""When each word of a narration is spoken: the narration's own words (what captions show), timed from
what a recognizer heard, or estimated.

A transcription rarely spells the script as written: punctuation and case differ, a number is heard as
digits or words, a name is misheard, a hyphenated word comes back as two. ``onto_text`` aligns the heard
words to the script's words by sequence matching (difflib, on a folded spelling); a run of script words
heard as a different run takes the run's time, shared by length; script words heard as nothing are
placed in the pause between their neighbours. Plain Python: times are integer milliseconds from the
start of the audio, each word ``{"text", "startMs", "endMs"}`` (the shape the offline voice's own
alignments have).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_NOT_WORD = re.compile(r"[\W_]+")


def script_words(text: str) -> list[str]:
    """The narration's words as captions show them (the offline voice times the same split)."""
    return text.split()


def _fold(word: str) -> str:
    return _NOT_WORD.sub("", word.casefold())


def _weights(words: Sequence[str]) -> list[int]:
    return [max(1, len(_fold(w))) for w in words]


def _spread(words: Sequence[str], start: float, end: float) -> list[dict[str, Any]]:
    """``words`` one after another over [start, end], each by its length."""
    weights = _weights(words)
    total, at, out = sum(weights), start, []
    for w, n in zip(words, weights, strict=True):
        nxt = at + (end - start) * n / total
        out.append({"text": w, "startMs": round(at), "endMs": round(nxt)})
        at = nxt
    return out


def estimated(text: str, duration_ms: int) -> list[dict[str, Any]]:
    """The narration's words spread over the audio by length: an estimate, for audio no one timed."""
    words = script_words(text)
    return _spread(words, 0, max(0, duration_ms)) if words else []


@dataclass(frozen=True)
class Heard:
    """A word a recognizer heard, in milliseconds from the start of the audio."""

    text: str
    start_ms: float
    end_ms: float


@dataclass(frozen=True)
class Timing:
    """The narration's words with their times, and how many were heard as written (``matched``), heard
    differently (``reheard``) or not heard at all (``interpolated``)."""

    words: list[dict[str, Any]]
    matched: int
    reheard: int
    interpolated: int


def onto_text(text: str, heard: Sequence[Heard], duration_ms: int) -> Timing:
    """The narration's words timed by what was heard (see the module's docstring). Nothing heard: an
    estimate over ``duration_ms``, every word counted as interpolated."""
    words = script_words(text)
    heard = [h for h in heard if _fold(h.text)]
    if not heard:
        return Timing(estimated(text, duration_ms), 0, 0, len(words))
    times: list[tuple[float, float] | None] = [None] * len(words)
    matcher = difflib.SequenceMatcher(None, [_fold(w) for w in words], [_fold(h.text) for h in heard], autojunk=False)
    matched = reheard = 0
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                times[i1 + k] = (heard[j1 + k].start_ms, heard[j1 + k].end_ms)
            matched += i2 - i1
        elif op == "replace":
            if i2 - i1 == j2 - j1:  # as many words: a misspelling each
                for k in range(i2 - i1):
                    times[i1 + k] = (heard[j1 + k].start_ms, heard[j1 + k].end_ms)
            else:  # split or merged differently: the heard run's time, shared by length
                for k, w in enumerate(_spread(words[i1:i2], heard[j1].start_ms, heard[j2 - 1].end_ms)):
                    times[i1 + k] = (w["startMs"], w["endMs"])
            reheard += i2 - i1
    out: list[dict[str, Any]] = []
    k = 0
    while k < len(words):
        if times[k] is not None:
            start, end = times[k]  # type: ignore[misc]
            out.append({"text": words[k], "startMs": round(start), "endMs": round(max(start, end))})
            k += 1
            continue
        gap_end = k  # a run of words heard as nothing: in the pause between their neighbours
        while gap_end < len(words) and times[gap_end] is None:
            gap_end += 1
        begin = out[-1]["endMs"] if out else 0
        finish = times[gap_end][0] if gap_end < len(words) else max(begin, duration_ms)  # type: ignore[index]
        out.extend(_spread(words[k:gap_end], begin, max(begin, finish)))
        k = gap_end
    return Timing(out, matched, reheard, len(words) - matched - reheard)
