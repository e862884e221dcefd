"""When each word of a narration is spoken: the narration's own words (what captions show), timed from
what a recognizer heard, or estimated.

A transcription rarely spells the script as written: punctuation and case differ, a number is heard as
digits or words, a name is misheard, a hyphenated word comes back as two. ``onto_text`` aligns the heard
words to the script's words by sequence matching (difflib, on a folded spelling); within a run heard
differently, each script word takes the heard words whose spelling is closest to its own (``_regroup``);
script words heard as nothing are placed in the pause between their neighbours, by length. Plain Python: times are integer milliseconds from the
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


def spoken_spans(words: Sequence[str], first: dict[int, int], last: dict[int, int], sample_rate: int) -> list[dict[str, Any]]:
    """Each word's span in ms from the first and last audio samples a speech engine spoke for it (by word
    index). A word with no sound of its own (a dash on its own) gets an empty span: where it stands, or at
    the start of the next spoken word when a pause lies between them."""

    def ms(sample: int) -> int:
        return round(sample * 1000 / sample_rate)

    out: list[dict[str, Any]] = []
    prev_end = 0
    for k, text in enumerate(words):
        if k in first:
            start = max(prev_end, ms(first[k]))
            end = max(start, ms(last[k]))
        else:
            start = end = prev_end
        out.append({"text": text, "startMs": start, "endMs": end})
        prev_end = end
    for k in range(len(out) - 2, -1, -1):
        if k not in first and out[k + 1]["startMs"] > out[k]["startMs"]:
            out[k]["startMs"] = out[k]["endMs"] = out[k + 1]["startMs"]
    return out


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
            for k, group in enumerate(_regroup(words[i1:i2], heard[j1:j2])):
                if group:
                    times[i1 + k] = (group[0].start_ms, group[-1].end_ms)
                    reheard += 1
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


_UNHEARD = 1.0  # a script word heard as nothing
_FILLER = 0.6  # a heard word that is no script word ("uh")


def _regroup(words: Sequence[str], heard: Sequence[Heard]) -> list[list[Heard]]:
    """The heard words of a run the sequence match could not pair, in order, as the group each script word
    was heard as (a number heard as three words, a hyphenated word as two, a misheard name as one; empty:
    heard as nothing): the grouping whose spellings differ least (dynamic programming over the run)."""
    a, b = len(words), len(heard)
    folded = [_fold(w) for w in words]
    inf = float("inf")
    best = [[inf] * (b + 1) for _ in range(a + 1)]
    back: list[list[tuple[int, int] | None]] = [[None] * (b + 1) for _ in range(a + 1)]
    best[0][0] = 0.0
    for i in range(a + 1):
        for j in range(b + 1):
            if i == 0 and j == 0:
                continue
            if j > 0 and best[i][j - 1] + _FILLER < best[i][j]:  # heard[j-1] is a filler
                best[i][j], back[i][j] = best[i][j - 1] + _FILLER, (i, j - 1)
            if i == 0:
                continue
            for start in range(j, -1, -1):  # words[i-1] heard as heard[start:j]
                group = "".join(_fold(h.text) for h in heard[start:j])
                cost = _UNHEARD if start == j else 1 - difflib.SequenceMatcher(None, folded[i - 1], group).ratio()
                if best[i - 1][start] + cost < best[i][j]:
                    best[i][j], back[i][j] = best[i - 1][start] + cost, (i - 1, start)
    groups: list[list[Heard]] = [[] for _ in words]
    i, j = a, b
    while (i, j) != (0, 0):
        pi, pj = back[i][j]  # type: ignore[misc]
        if pi < i:
            groups[pi] = list(heard[pj:j])
        i, j = pi, pj
    return groups
