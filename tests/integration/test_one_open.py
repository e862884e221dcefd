"""One generation, one open: a generate opens the movie, expands its blueprint, reads its state from the
event log and checks its artifacts once; the plan made before the build is the one the build executes.
Counted with cProfile (every call, whatever module it is called from) around a real generation."""

from __future__ import annotations

import cProfile
import pstats
from collections import Counter

import dagster as dg

from movie_assets.domain.plan import Plan
from movie_assets.interfaces import api
from resources.storage import ArtifactStore
from tests.conftest import small_request

COUNTED = ("open_movie", "expand", "load_state", "find_damaged", "require_movie", "make_plan", "predict")


def _calls(profile: cProfile.Profile) -> Counter[str]:
    stats = pstats.Stats(profile)
    out: Counter[str] = Counter()
    for (filename, _, name), (_, calls, *_) in stats.stats.items():  # type: ignore[attr-defined]
        if name in COUNTED and "/movie_assets/" in filename:
            out[name] += calls
    return out


def test_a_generation_opens_the_movie_once(instance: dg.DagsterInstance, store: ArtifactStore) -> None:
    movie = api.new_movie(instance, store, small_request(), "once")
    plans: list[Plan] = []
    profile = cProfile.Profile()
    profile.enable()
    result = api.generate(instance, store, movie, on_plan=plans.append)
    profile.disable()
    assert result.success and result.built
    counts = _calls(profile)
    assert counts["open_movie"] == counts["expand"] == counts["load_state"] == counts["find_damaged"] == 1, counts
    assert counts["require_movie"] == 1 and counts["predict"] == 1, counts
    # the plan made before the build, and the (cheap, in-memory) plan after it for the Dagster UI
    assert counts["make_plan"] == 2, counts
    assert sorted(result.built) == sorted(i.node for i in plans[0].items)

    # what the build recorded is what the event log says: the next plan (a fresh open) has nothing to do
    assert api.plan(instance, store, movie).items == []
    api.edit(instance, store, movie, [("segments.1.narration", "A new narration for the second part of the war.")])
    profile = cProfile.Profile()
    profile.enable()
    again = api.generate(instance, store, movie, on_plan=plans.append)
    profile.disable()
    assert again.success and sorted(again.built) == sorted(i.node for i in plans[1].items)
    assert _calls(profile)["open_movie"] == 1
    assert api.plan(instance, store, movie).items == []

    # The offline narration fills its segments; the short one written by hand is reported by the plan
    # (foreseen), the generation (measured) and the check evaluation the UI shows on segment_audio.
    assert plans[0].warnings == [] and result.warnings == {}
    assert [w["node"] for w in plans[1].warnings] == ["segment_audio[01]"]
    assert list(again.warnings) == ["segment_audio[01]"] and again.warnings["segment_audio[01]"].startswith("segment 1: ")
    assert "too short" in again.warnings["segment_audio[01]"] and "more words in segments.1.narration" in again.warnings["segment_audio[01]"]
    evaluations = [e.dagster_event.event_specific_data for e in instance.all_logs(again.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]  # type: ignore[union-attr]
    fits = next(e for e in evaluations if e.check_name == "narration_fits_segment")  # type: ignore[union-attr]
    assert not fits.passed and "segment 1: " in fits.description  # type: ignore[union-attr]
