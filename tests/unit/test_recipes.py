"""Producer functions, called with a RecipeContext built by hand: overrides win without a call, the
script's segment count is enforced, the m image prompts of a segment share one LLM call, and
segment_visuals lists its clips in order with their versions and gaps."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from movie_assets.builder.recipes import RECIPES
from movie_assets.domain.blueprint import NodeKey
from resources.providers.base import Media, ProviderError
from tests.unit.fakes import MOVIE, Fakes, blueprint_of, hand_context, narration_text, png, record, small_request

SCRIPT_VALUE = {"title": "The Civil War", "summary": "A nation divided.", "narration": [narration_text(0), narration_text(1)]}


def produce(ctx: Any, key: NodeKey) -> Any:
    return asyncio.run(RECIPES[key.asset](ctx, key))


def test_music_prompt_override_wins_without_a_call() -> None:
    request = small_request(music_prompt="solo cello, slow")
    fakes = Fakes()
    produced = produce(hand_context(request, clients=fakes.clients()), NodeKey("music_prompt"))  # no script to read either

    assert produced.value == {"prompt": "solo cello, slow"} and produced.meta["source"] == "override"
    assert produced.call is None and fakes.calls == Counter()
    assert "TextToMusicPromptProducer" not in blueprint_of(request).calls(blueprint_of(request).nodes)


def test_generated_music_prompt_is_one_call() -> None:
    fakes = Fakes()
    ctx = hand_context(small_request(), clients=fakes.clients(), values={NodeKey("script"): SCRIPT_VALUE})
    produced = produce(ctx, NodeKey("music_prompt"))

    assert produced.value == {"prompt": "slow strings and a distant snare"} and produced.meta["source"] == "generated"
    assert produced.call is not None and "The Civil War" in produced.prompt
    assert fakes.calls == Counter({"TextToMusicPromptProducer": 1})


def test_narration_override_wins_over_the_script() -> None:
    request = small_request(segments={1: {"narration": "Lincoln speaks at Gettysburg."}})
    ctx = hand_context(request, values={NodeKey("script"): SCRIPT_VALUE})

    assert produce(ctx, NodeKey("segment_narration", 1)).value == {"segment": 1, "text": "Lincoln speaks at Gettysburg."}
    from_script = produce(ctx, NodeKey("segment_narration", 0))
    assert from_script.value == {"segment": 0, "text": narration_text(0)} and from_script.meta["source"] == "script"
    assert from_script.call is None


def test_image_prompt_override_wins_and_the_other_image_still_gets_a_generated_prompt() -> None:
    request = small_request(consistent_look=False, segments={0: {"image_prompts": {1: "a steam locomotive at dawn"}}})
    fakes = Fakes()
    values = {NodeKey("script"): SCRIPT_VALUE, NodeKey("segment_narration", 0): {"segment": 0, "text": narration_text(0)}}
    ctx = hand_context(request, clients=fakes.clients(), values=values)

    overridden = produce(ctx, NodeKey("image_prompt", 0, 1))
    assert overridden.value == {"prompt": "a steam locomotive at dawn"} and overridden.call is None
    assert fakes.calls == Counter()
    generated = produce(ctx, NodeKey("image_prompt", 0, 0))
    assert generated.value == {"prompt": "seg 0 picture 0"} and generated.call is not None
    assert fakes.calls == Counter({"TextToImagePromptProducer": 1})


def test_direction_overrides_win_without_a_call() -> None:
    request = small_request(consistent_look=False, duration_seconds=30, segments={
        0: {"use_video": True, "movie_direction_prompt": "aerial shot of Gettysburg"},
        1: {"use_video": True, "is_image_to_video": True, "movie_direction_prompt": "the flag waves",
            "starting_image_prompt": "a flag on a pole"},
        2: {"use_video": True, "is_image_to_video": True, "movie_direction_prompt": "the crowd cheers"},
    })
    fakes = Fakes()
    values = {NodeKey("script"): SCRIPT_VALUE, NodeKey("segment_narration", 2): {"segment": 2, "text": "The war ends."}}
    ctx = hand_context(request, clients=fakes.clients(), values=values)

    t2v = produce(ctx, NodeKey("text_to_video_prompt", 0))
    assert t2v.value == {"direction": "aerial shot of Gettysburg"} and t2v.call is None
    i2v = produce(ctx, NodeKey("image_to_video_prompt", 1))
    assert i2v.value == {"direction": "the flag waves", "starting_image_prompt": "a flag on a pole"} and i2v.call is None
    assert fakes.calls == Counter()

    # Only the direction is overridden: one call for the starting image prompt, the override still wins.
    half = produce(ctx, NodeKey("image_to_video_prompt", 2))
    assert half.value == {"direction": "the crowd cheers", "starting_image_prompt": "seg 2 opening frame"}
    assert fakes.calls == Counter({"ImageToVideoPromptProducer": 1})
    assert blueprint_of(request).calls(blueprint_of(request).nodes)["ImageToVideoPromptProducer"] == 1


def test_script_with_the_wrong_number_of_segments_is_refused() -> None:
    request = small_request(duration_seconds=30)
    research = {NodeKey("research"): produce(hand_context(request, clients=Fakes().clients()), NodeKey("research")).value}
    with pytest.raises(ProviderError, match="the script has 2 segments, expected 3"):
        produce(hand_context(request, clients=Fakes(script_segments=2).clients(), values=research), NodeKey("script"))

    produced = produce(hand_context(request, clients=Fakes().clients(), values=research), NodeKey("script"))
    assert len(produced.value["narration"]) == 3 and produced.meta["title"] == produced.value["title"]
    assert "exactly 3 segments" in produced.prompt


@pytest.mark.parametrize("in_flight", [1, 4])
def test_the_image_prompts_of_a_segment_come_from_one_shared_call(in_flight: int) -> None:
    request = small_request(consistent_look=False, images_per_segment=4)
    fakes = Fakes()
    values = {NodeKey("script"): SCRIPT_VALUE, NodeKey("segment_narration", 1): {"segment": 1, "text": narration_text(1)}}
    ctx = hand_context(request, clients=fakes.clients(), values=values, in_flight=in_flight)
    keys = [NodeKey("image_prompt", 1, j) for j in range(4)]

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(RECIPES["image_prompt"](ctx, k) for k in keys))

    produced = asyncio.run(asyncio.wait_for(all_at_once(), 30))
    assert [p.value["prompt"] for p in produced] == [f"seg 1 picture {j}" for j in range(4)]
    assert fakes.calls == Counter({"TextToImagePromptProducer": 1})
    assert len({id(p.call) for p in produced}) == 1, "every node carries the one call"


def test_too_few_generated_image_prompts_fail_only_the_missing_ones() -> None:
    request = small_request(consistent_look=False, images_per_segment=3)
    fakes = Fakes(image_prompt_count=2)
    values = {NodeKey("script"): SCRIPT_VALUE, NodeKey("segment_narration", 0): {"segment": 0, "text": narration_text(0)}}
    ctx = hand_context(request, clients=fakes.clients(), values=values)

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(RECIPES["image_prompt"](ctx, NodeKey("image_prompt", 0, j)) for j in range(3)),
                                    return_exceptions=True)

    first, second, third = asyncio.run(all_at_once())
    assert first.value == {"prompt": "seg 0 picture 0"} and second.value == {"prompt": "seg 0 picture 1"}
    assert isinstance(third, ProviderError) and "wrote 2 image prompts, expected 3" in str(third)
    assert fakes.calls == Counter({"TextToImagePromptProducer": 1})


def test_segment_image_is_asked_for_the_request_frame() -> None:
    asked: list[dict[str, Any]] = []
    fakes = Fakes()

    class Spy:
        async def generate(self, prompt: str, **kw: Any) -> Media:
            asked.append({"prompt": prompt, **kw})
            return await fakes.client("TextToImageProducer").generate(prompt, **kw)

    request = small_request(aspect_ratio="9:16", image_style="watercolor")
    ctx = hand_context(request, clients={"TextToImageProducer": Spy()},
                       values={NodeKey("image_prompt", 1, 0): {"prompt": "a quiet field"}})
    produced = produce(ctx, NodeKey("segment_image", 1, 0))

    assert asked == [{"prompt": "a quiet field", "style": "watercolor", "width": 480, "height": 854,
                      "label": "Segment 01 · Image 0"}]
    assert (produced.ext, produced.width, produced.height) == ("png", 480, 854)
    assert produced.data == png(480, 854, "watercolor:a quiet field")


def test_segment_visuals_lists_clips_in_order_with_versions_and_gaps() -> None:
    request = small_request(consistent_look=False, images_per_segment=4)
    v = {j: f"{j}" * 64 for j in range(4)}
    records = {NodeKey("segment_image", 1, j): record(NodeKey("segment_image", 1, j), v[j], width=854, height=480)
               for j in (0, 2, 3)}  # image 1 was never made
    failures = {NodeKey("segment_image", 1, 3): "fake TextToImageProducer refused it"}  # image 3 failed since its last build
    ctx = hand_context(request, records=records, failures=failures)

    value = produce(ctx, NodeKey("segment_visuals", 1)).value
    assert value["segment"] == 1 and value["mode"] == "image_only"
    assert [(c["partition"], c["version"]) for c in value["clips"]] == [
        (f"{MOVIE}|01_0", v[0]), (f"{MOVIE}|01_2", v[2]), (f"{MOVIE}|01_3", v[3])]
    assert all(c["kind"] == "image" and (c["width"], c["height"]) == (854, 480) for c in value["clips"])
    assert [c["uri"] for c in value["clips"]] == [records[NodeKey("segment_image", 1, j)].uri for j in (0, 2, 3)]
    assert value["errors"] == [
        {"asset": "segment_image", "partition": f"{MOVIE}|01_1", "reason": "missing", "message": "not generated yet"},
        {"asset": "segment_image", "partition": f"{MOVIE}|01_3", "reason": "failed",
         "message": "fake TextToImageProducer refused it; the previous version is used"},
    ]


def test_segment_visuals_of_a_video_segment_is_its_one_clip() -> None:
    request = small_request(segments={0: {"use_video": True, "is_image_to_video": True}})
    key = NodeKey("image_to_video_clip", 0)
    ctx = hand_context(request, records={key: record(key, "a" * 64, width=854, height=480, duration_ms=10000),
                                         NodeKey("segment_image", 0, 0): record(NodeKey("segment_image", 0, 0), "b" * 64)})

    value = produce(ctx, NodeKey("segment_visuals", 0)).value
    assert value["mode"] == "video_by_image" and value["errors"] == []
    assert value["clips"] == [{"asset": "image_to_video_clip", "partition": f"{MOVIE}|00", "version": "a" * 64,
                               "uri": ctx.load_record(key).uri, "kind": "video", "width": 854, "height": 480,
                               "duration_ms": 10000}]
