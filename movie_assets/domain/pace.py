"""How long narration takes to speak, and whether it fills its segment.

Narration is written for a pace: the words per second of the movie's language as the offline voices
speak it (each voice is set to this pace, docs/providers.md) and about as a provider's voice does. The
writers aim at ``TARGET_S`` of speech per 10 s segment; the ``narration_fits_segment`` check warns
below ``SHORT_S`` (music alone for seconds) and above the segment (the voice speeds up, then is cut).
"""

from __future__ import annotations

from movie_assets.domain.request import SEGMENT_MS, MovieRequest

# Words per second of calm narration, per language (German has longer words, so fewer per second).
WORDS_PER_SECOND = {"en": 3.0, "es": 2.7, "fr": 2.9, "de": 2.4, "it": 2.6, "pt": 2.6}
TARGET_S = 8.5
SHORT_S = 6.0
LONG_MS = SEGMENT_MS + 100  # a narration this long no longer fits its segment


def target_words(language: str, seconds: float = TARGET_S) -> int:
    """How many words fill ``seconds`` of speech in this language."""
    return round(WORDS_PER_SECOND.get(language, WORDS_PER_SECOND["en"]) * seconds)


def estimate_ms(text: str, language: str) -> int:
    """How long ``text`` takes to speak at the language's pace."""
    return round(len(text.split()) / WORDS_PER_SECOND.get(language, WORDS_PER_SECOND["en"]) * 1000)


def fit_problem(segment: int | None, ms: int, words: int, language: str, estimated: bool = False) -> tuple[str, str] | None:
    """(message, suggestion) when ``ms`` of narration (``words`` words) does not fill segment ``segment``
    well: shorter than ``SHORT_S`` or longer than the segment. None when it fits."""
    seconds, whole = ms / 1000, SEGMENT_MS // 1000
    about = "about " if estimated else ""
    target = target_words(language)
    where = f"segments.{segment}.narration" if segment is not None else "segments.<i>.narration"
    label = f"segment {segment}" if segment is not None else "narration"
    if ms < SHORT_S * 1000:
        return (f"{label}: {about}{seconds:.1f} s of narration in {whole} s (too short: "
                f"{whole - seconds:.1f} s without speech)",
                f"write about {max(1, target - words)} more words in {where} (about {target} words fill {TARGET_S:g} s "
                f"at {WORDS_PER_SECOND.get(language, WORDS_PER_SECOND['en']):g} words/s in {language!r}): "
                f"`moviegen edit ID --set {where}=...`")
    if ms > LONG_MS:
        return (f"{label}: {about}{seconds:.1f} s of narration in {whole} s (too long: it is spoken faster "
                "or cut)",
                f"cut about {max(1, words - target)} words from {where} (about {target} words fill {TARGET_S:g} s "
                f"in {language!r}): `moviegen edit ID --set {where}=...`")
    return None


def narration_warnings(request: MovieRequest, segments: list[int]) -> list[dict[str, str]]:
    """What ``narration_fits_segment`` will report, foreseen from the narration the user wrote (the
    ``segments.i.narration`` overrides) of these segments, at the language's pace: node, check, message,
    suggestion. A generated narration is known only once written: its audio's check reports it."""
    out = []
    language = request.language.value
    for segment in segments:
        text = request.overrides(segment).narration
        if not text:
            continue
        found = fit_problem(segment, estimate_ms(text, language), len(text.split()), language, estimated=True)
        if found is not None:
            out.append({"node": f"segment_audio[{segment:02d}]", "check": "narration_fits_segment",
                        "message": found[0], "suggestion": found[1]})
    return out
