"""Narration written to fill its segment, and the narration_fits_segment check that says when it does not."""

from __future__ import annotations

import numpy as np
import pytest

from movie_assets.builder.checks import EVALUATIONS, problem
from movie_assets.domain import pace, prompts
from movie_assets.domain.blueprint import NodeKey
from resources.providers.offline import text as offline_text
from resources.runtime.media import wav_bytes, wav_to_mp3
from tests.unit.fakes import small_request


def _mp3(seconds: float) -> bytes:
    t = np.arange(int(22050 * seconds)) / 22050
    return wav_to_mp3(wav_bytes(0.3 * np.sin(2 * np.pi * 180 * t), 22050))


def test_a_short_narration_warns_with_how_many_words_to_add() -> None:
    """The README walk-through's edit ("Lincoln speaks at Gettysburg.") is 1.66 s of speech in a 10 s segment."""
    request = small_request(segments={1: {"narration": "Lincoln speaks at Gettysburg."}})
    found = problem("segment_audio", _mp3(1.66), None, request, NodeKey("segment_audio", 1))
    assert found is not None and found.startswith("segment 1: 1.7 s of narration in 10 s (too short")
    assert "more words in segments.1.narration" in found and "moviegen edit ID --set segments.1.narration=" in found
    # The plan foresees it from the written narration, before any audio exists.
    [warning] = pace.narration_warnings(request, [0, 1])
    assert warning["node"] == "segment_audio[01]" and warning["check"] == "narration_fits_segment"
    assert warning["message"].startswith("segment 1: about 1.") and "too short" in warning["message"]
    assert pace.narration_warnings(request, [0]) == []  # not rebuilt: nothing foreseen


def test_a_narration_that_fills_its_segment_passes_and_a_long_one_warns() -> None:
    request = small_request()
    assert EVALUATIONS["narration_fits_segment"]("segment_audio", _mp3(8.5), None, request, NodeKey("segment_audio", 0)) is None
    long = problem("segment_audio", _mp3(11.0), None, request, NodeKey("segment_audio", 2))
    assert long is not None and long.startswith("segment 2: 11.") and "s of narration in 10 s (too long" in long and "cut about" in long
    just_short = problem("segment_audio", _mp3(5.5), None, request, NodeKey("segment_audio", 0))
    assert just_short is not None and "too short" in just_short


@pytest.mark.parametrize("language", ["en", "es", "fr", "de", "it", "pt"])
def test_the_writer_and_the_prompt_aim_at_the_languages_pace(language: str) -> None:
    """Every segment of the offline script is about 8-9 s at the language's words per second; the LLM is
    asked for that many words."""
    for n in (3, 6):
        script = offline_text.write_script("Tell me about the Civil War", n, "general", language)
        for text in script["narration"]:  # type: ignore[union-attr]
            assert 7.0 <= pace.estimate_ms(text, language) / 1000 <= 9.2, (language, text)
    words = pace.target_words(language)
    assert f"of {words - 2} to {words + 1} words" in prompts.script_prompt("Why?", 3, "general", language)


@pytest.mark.parametrize("language", ["es", "fr", "de", "it", "pt"])
def test_no_english_question_pasted_into_another_language(language: str) -> None:
    """A German request with an English question: German text only (it used to read "Reise durch Wie
    funktionieren Vulkane" / "durch How do volcanoes work"); the title quotes the question."""
    script = offline_text.write_script("How do volcanoes work?", 5, "general", language)
    spoken = " ".join(script["narration"]).lower()  # type: ignore[arg-type]
    for word in ("how", "volcanoes", "work"):
        assert word not in spoken.replace(",", " ").replace(".", " ").split(), (language, spoken)
    assert "How do volcanoes work?" in str(script["title"])


def test_a_question_in_the_movies_language_is_quoted_in_its_narration() -> None:
    de = offline_text.write_script("Wie funktionieren Vulkane?", 3, "general", "de")
    assert de["narration"][0].startswith("Unsere Frage heute lautet: „Wie funktionieren Vulkane?“")  # type: ignore[index]
    assert "Reise durch Wie" not in " ".join(de["narration"])  # type: ignore[arg-type]
    assert offline_text.question_languages("¿Cómo funcionan los volcanes?") == {"es"}
    assert offline_text.question_languages("How do volcanoes work?") == {"en"}
    assert offline_text.question_languages("Vulkane") == set()
    en = offline_text.write_script("Tell me about the Civil War", 3, "general", "en")
    assert "the Civil War" in en["narration"][0]  # type: ignore[index]
