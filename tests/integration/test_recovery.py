"""Recovery with reduced settings through Dagster for real: a picture the provider cannot make at the movie's
size is made once at the next lower size, marked degraded (metadata, timeline, run result); the plan says it
will be tried at full settings again; while the provider still cannot, the degraded picture is kept; once it
can, the next generate builds exactly what the plan said, at full size, and the one after builds nothing."""

from __future__ import annotations

import json

import dagster as dg

from movie_assets.domain.blueprint import NodeKey
from movie_assets.interfaces import api
from movie_assets.orchestration.event_log import load_state
from resources.runtime.media import png_size
from tests.conftest import local_file, small_request

LIMITED = {"images": {"max_size": "480p"}}  # the offline pictures fail above 480p, as a model out of GPU memory would


def test_a_picture_too_big_for_the_provider_is_made_smaller_then_again_at_full_size(instance: dg.DagsterInstance, store) -> None:
    request = small_request(size="720p", duration_seconds=10, images_per_segment=2)
    movie = api.new_movie(instance, store, request, "reduced")
    images = [NodeKey("segment_image", 0, i) for i in range(2)]

    first = api.generate(instance, store, movie, resource_config=LIMITED)
    assert first.success and first.failed == {} and first.fallbacks == [] and first.warnings == {}
    assert set(first.degraded) == {str(k) for k in images}
    for how in first.degraded.values():
        assert how["from"] == "1280x720" and how["to"] == "854x480" and "ran out of memory at 1280x720" in how["reason"]
    records = load_state(instance, movie, images).records
    for key in images:
        meta = records[key].metadata
        assert meta["degraded"] is True and (meta["degraded_from"], meta["degraded_to"]) == ("1280x720", "854x480")
        assert png_size(store.read(records[key].uri)) == (854, 480)
    timeline = json.loads(local_file(first.timeline).read_text())
    assert [c.get("degraded") for c in timeline["tracks"][0]["clips"]] == ["1280x720 -> 854x480"] * 2
    assert api.status(instance, store, movie).degraded == first.degraded  # `moviegen status` lists them

    # The plan tries full settings again, saying why; only the pictures call a provider.
    plan = api.plan(instance, store, movie)
    reasons = {i.node: (i.reason, i.cause) for i in plan.items}
    assert {n for n, (r, _) in reasons.items() if r == "degraded"} == {str(k) for k in images}
    assert all(reasons[str(k)][1].startswith("degraded: retry at full settings (made at 854x480, not 1280x720: ")
               for k in images)
    assert plan.provider_calls == {"TextToImageProducer": 2}

    # The provider still cannot: the full size fails again, the degraded pictures are made again (the same
    # content) and kept; nothing below them changes.
    still = api.generate(instance, store, movie, resource_config=LIMITED)
    assert still.success and set(still.degraded) == {str(k) for k in images} and still.timeline == first.timeline
    assert {k: r.version for k, r in load_state(instance, movie, images).records.items()} == \
        {k: r.version for k, r in records.items()}

    # Healed: exactly the plan's calls, the pictures at full size, no longer degraded.
    plan = api.plan(instance, store, movie)
    healed = api.generate(instance, store, movie)
    assert healed.success and healed.degraded == {} and healed.provider_calls == plan.provider_calls == {"TextToImageProducer": 2}
    assert set(healed.built) | set(healed.skipped) == {i.node for i in plan.items}
    for record in load_state(instance, movie, images).records.values():
        assert "degraded" not in record.metadata and png_size(store.read(record.uri)) == (1280, 720)
    assert not any(c.get("degraded") for c in json.loads(local_file(healed.timeline).read_text())["tracks"][0]["clips"])

    again = api.generate(instance, store, movie)
    assert again.run_id is None and again.provider_calls == {} and api.plan(instance, store, movie).items == []
