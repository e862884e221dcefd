"""The narration's own words timed by what a recognizer heard (movie_assets/domain/words.py)."""

from __future__ import annotations

from movie_assets.domain.words import Heard, estimated, onto_text


def heard(*words: tuple[str, int, int]) -> list[Heard]:
    return [Heard(w, a, b) for w, a, b in words]


def test_the_script_words_take_the_times_they_were_heard_at() -> None:
    text = "In 1861, the nation's well-known Union split."
    timing = onto_text(text, heard(("in", 0, 200), ("eighteen", 250, 500), ("sixty", 500, 700), ("one", 700, 900),
                                   ("the", 950, 1000), ("nations", 1000, 1400), ("well", 1450, 1600), ("known", 1600, 1800),
                                   ("onion", 1850, 2200), ("split", 2250, 2600)), 3000)
    assert [w["text"] for w in timing.words] == text.split()  # captions show the script's words
    by = {w["text"]: (w["startMs"], w["endMs"]) for w in timing.words}
    assert by["In"] == (0, 200) and by["the"] == (950, 1000) and by["nation's"] == (1000, 1400)
    assert by["1861,"] == (250, 900)  # heard as three words: their span
    assert by["well-known"] == (1450, 1800)  # heard as two
    assert by["Union"] == (1850, 2200)  # misheard, one for one
    assert by["split."] == (2250, 2600)
    assert (timing.matched, timing.reheard, timing.interpolated) == (4, 3, 0)


def test_words_heard_as_nothing_fall_in_the_pause_between_their_neighbours() -> None:
    timing = onto_text("one two three four", heard(("one", 0, 300), ("four", 1300, 1600)), 2000)
    assert timing.words == [{"text": "one", "startMs": 0, "endMs": 300}, {"text": "two", "startMs": 300, "endMs": 675},
                            {"text": "three", "startMs": 675, "endMs": 1300}, {"text": "four", "startMs": 1300, "endMs": 1600}]
    assert timing.interpolated == 2
    tail = onto_text("one two", heard(("one", 0, 300)), 1000).words  # at the end: until the audio ends
    assert tail[1] == {"text": "two", "startMs": 300, "endMs": 1000}


def test_extra_words_heard_are_ignored_and_nothing_heard_is_an_estimate() -> None:
    timing = onto_text("a b", heard(("uh", 0, 100), ("a", 100, 200), ("um", 200, 300), ("b", 300, 400)), 500)
    assert [(w["startMs"], w["endMs"]) for w in timing.words] == [(100, 200), (300, 400)]
    nothing = onto_text("aa bbbb", [], 600)
    assert nothing.words == estimated("aa bbbb", 600) == [{"text": "aa", "startMs": 0, "endMs": 200},
                                                          {"text": "bbbb", "startMs": 200, "endMs": 600}]
    assert nothing.interpolated == 2 and onto_text("", heard(("x", 0, 1)), 10).words == []
