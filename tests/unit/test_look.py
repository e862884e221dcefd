"""The movie's look: its clause in every visual prompt, the user's edits over the generated look, the
check that flags prompts without it, and the graph (which partitions read it)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from movie_assets.builder.checks import look_problem
from movie_assets.builder.recipes import RECIPES
from movie_assets.domain.blueprint import NodeKey, call_group, expand
from movie_assets.domain.edits import UNSET, edited_request, parse_assignment
from movie_assets.domain.inputs import input_versions
from movie_assets.domain.look import LOOK_MARK, as_override, look_problems, merged, shot_of, tidy, with_look
from movie_assets.domain.look import carried as looks_carried
from movie_assets.domain.request import RequestError, parse_request
from movie_assets.movie_files.movies import _parse_stored
from resources.providers.offline import text as offline_text
from resources.providers.offline.pictures import draw_picture, look_colours, shot_type
from tests.unit.fakes import CIVIL_WAR, MOVIE, Fakes, hand_context, narration_text, record, small_request

LOOK = {
    "palette": "oxblood #6b1f1f, parchment #efe6d2",
    "lighting": "candle light",
    "camera": "35mm, eye level",
    "characters": [{"name": "The Courier", "description": "a young rider in a grey wool coat"}],
    "places": [{"name": "Fort Sumter", "description": "a brick sea fort at dusk"}],
}
RESEARCH_VALUE = {"summary": "The war in brief.", "facts": [{"text": "The war began in 1861.", "source": 0}],
                  "dates": [{"date": "1861", "event": "the war begins"}], "names": [{"name": "Abraham Lincoln", "role": "president"}],
                  "references": [], "sources": []}
SCRIPT_VALUE = {"title": "The Civil War", "summary": "A nation divided.", "narration": [narration_text(0), narration_text(1)]}


def produce(ctx: Any, key: NodeKey) -> Any:
    return asyncio.run(RECIPES[key.asset](ctx, key))


def test_a_prompt_carries_the_look_and_the_descriptions_of_the_names_it_shows() -> None:
    prompt = with_look("The courier rides past the harbour", LOOK)
    assert prompt.startswith("The courier rides past the harbour" + LOOK_MARK)
    assert "oxblood #6b1f1f" in prompt and "candle light" in prompt and "35mm, eye level" in prompt
    assert "a young rider in a grey wool coat" in prompt  # named (any case, whole words)
    assert "a brick sea fort" not in prompt  # not named: its description is not added
    assert look_problems(prompt, LOOK) == []
    assert shot_of(prompt) == "The courier rides past the harbour"
    assert with_look(prompt, LOOK) == prompt  # composing again replaces the clause, never stacks it
    assert "rider" not in with_look("Couriers at work", LOOK)  # 'Couriers' is not the name 'The Courier'


def test_look_problems_name_what_a_prompt_lacks() -> None:
    assert look_problems("The Courier at Fort Sumter", LOOK) == [
        "no palette", "no lighting", "no camera",
        "names 'The Courier' without its description", "names 'Fort Sumter' without its description",
    ]


def test_the_check_flags_off_look_shots_and_prompts_without_the_look() -> None:
    carried = {"prompt": with_look("The Courier at dawn", LOOK), "shot": "The Courier at dawn", "look": LOOK}
    assert look_problem("image_prompt", carried) is None
    cut = carried | {"prompt": shot_of(carried["prompt"])}
    assert look_problem("image_prompt", cut) == (
        "does not carry the look: prompt: no palette; prompt: no lighting; prompt: no camera; "
        "prompt: names 'The Courier' without its description")
    assert "off-look" in look_problem("image_prompt", {"prompt": "a map of 1861", "off_look": True})
    assert look_problem("image_prompt", {"prompt": "a map of 1861"}) is None  # a movie made without a look
    i2v = {"direction": with_look("slow pan", LOOK), "starting_image_prompt": "The Courier", "look": LOOK}
    assert look_problem("image_to_video_prompt", i2v).startswith("does not carry the look: starting_image_prompt: no palette")


def test_a_generated_look_is_tidied_into_what_the_request_accepts() -> None:
    raw = {"palette": "red\nblue", "lighting": "x" * 900, "camera": "",
           "characters": [{"name": "Dr. King: preacher", "description": "a tall man"}, {"name": "dr  king preacher", "description": "dup"}]
           + [{"name": f"P{i}", "description": "d"} for i in range(20)],
           "places": [{"name": "|;", "description": "nothing left of the name"}]}
    look = tidy(raw)
    assert look["palette"] == "red blue" and len(look["lighting"]) == 500 and look["camera"] == "-"
    assert look["characters"][0]["name"] == "Dr King preacher" and len(look["characters"]) == 12
    assert look["places"] == []
    parse_request({**CIVIL_WAR, "look": as_override(look)})  # valid as the request's look


def test_the_users_fields_win_over_the_generated_look() -> None:
    request = small_request(look={"palette": "black and white", "characters": {"Lincoln": "a tall bearded man"}})
    look = merged(LOOK, request.look)
    assert look["palette"] == "black and white" and look["lighting"] == "candle light"
    assert look["characters"] == [{"name": "Lincoln", "description": "a tall bearded man"}]
    assert look["places"] == LOOK["places"]
    assert not request.look.complete and call_group(request, NodeKey("look")) is not None
    complete = small_request(look=as_override(LOOK))
    assert complete.look.complete and call_group(complete, NodeKey("look")) is None  # no call: nothing to ask


@pytest.mark.parametrize(("look", "problem"), [
    ({"palette": ""}, "look.palette"),
    ({"characters": {"Dr. King": "a preacher"}}, "look.characters.Dr. King"),
    ({"characters": {f"n{i}": "d" for i in range(13)}}, "look.characters"),
    ({"mood": "sad"}, "look.mood"),
    ({"lighting": "x" * 501}, "look.lighting"),
])
def test_a_bad_look_is_refused_naming_the_field(look: dict, problem: str) -> None:
    with pytest.raises(RequestError) as e:
        parse_request({**CIVIL_WAR, "look": look})
    assert any(p.startswith(problem) for p in e.value.problems), e.value.problems


def test_an_edit_keeps_only_what_the_user_changed_and_a_cast_edit_starts_from_the_cast() -> None:
    current = small_request()
    edited = edited_request(current, [parse_assignment("look.palette=ink black #101010, bone #f4f1ea")], look=LOOK)
    assert edited.look.palette == "ink black #101010, bone #f4f1ea"  # '#' is not a comment
    assert edited.look.lighting is None and edited.look.characters is None  # the rest stays the generated look's
    again = edited_request(edited, [("look.characters.Lincoln", "a tall bearded man")], look=merged(LOOK, edited.look))
    assert again.look.palette == "ink black #101010, bone #f4f1ea" and set(again.look.characters) == {"The Courier", "Lincoln"}
    assert again.look.places is None  # only the kind edited is copied
    dropped = edited_request(again, [("look.characters.The Courier", UNSET)], look=merged(LOOK, again.look))
    assert set(dropped.look.characters) == {"Lincoln"}
    with pytest.raises(RequestError, match="look.mood: not an editable path"):
        edited_request(current, [("look.mood", "sad")], look=LOOK)


def test_the_graph_reads_the_look_only_where_shots_carry_it() -> None:
    request = small_request(duration_seconds=30, segments={"1": {"look": False}, "2": {"use_video": True}})
    bp = expand(request)
    look = NodeKey("look")
    assert bp.nodes[look].deps == (NodeKey("script"), NodeKey("research"))
    assert look in bp.nodes[NodeKey("image_prompt", 0, 0)].deps and look in bp.nodes[NodeKey("text_to_video_prompt", 2)].deps
    assert look not in bp.nodes[NodeKey("image_prompt", 1, 0)].deps  # the off-look segment
    versions = input_versions(bp, NodeKey("image_prompt", 1, 0), lambda k: "v")
    assert "look" not in versions and versions["shot_look"]
    assert "shot_look" not in input_versions(bp, NodeKey("image_prompt", 0, 0), lambda k: "v")  # the default: left out
    without = expand(small_request(consistent_look=False))
    assert look not in without.nodes and "LookProducer" not in without.calls(without.nodes)


def test_a_request_stored_before_the_look_loads_without_one() -> None:
    old = b'{"inquiry_prompt": "Tell me about the Civil War", "duration_seconds": 20}'
    assert _parse_stored(old).consistent_look is False
    assert _parse_stored(b'{"inquiry_prompt": "Tell me about the Civil War", "consistent_look": true}').consistent_look
    assert parse_request({"inquiry_prompt": "Tell me about the Civil War"}).consistent_look  # new movies have one


def test_the_look_producer_asks_once_and_prompts_carry_what_it_wrote() -> None:
    fakes = Fakes()
    request = small_request()
    ctx = hand_context(request, clients=fakes.clients(), values={NodeKey("script"): SCRIPT_VALUE, NodeKey("research"): RESEARCH_VALUE})
    look = produce(ctx, NodeKey("look"))
    assert look.meta["source"] == "generated" and fakes.calls == Counter({"LookProducer": 1})
    assert "Narration, one line per 10 s segment" in look.prompt and "Abraham Lincoln (president)" in look.prompt and look.value["characters"][0]["name"] == "The Courier"

    values = {NodeKey("script"): SCRIPT_VALUE, NodeKey("research"): RESEARCH_VALUE, NodeKey("look"): look.value,
              NodeKey("segment_narration", 0): {"segment": 0, "text": narration_text(0)}}
    ctx = hand_context(request, clients=fakes.clients(), values=values)
    prompt = produce(ctx, NodeKey("image_prompt", 0, 0))
    assert prompt.value["prompt"] == with_look("seg 0 picture 0", look.value) and prompt.value["shot"] == "seg 0 picture 0"
    assert "The Courier" in prompt.prompt  # the shot writer is told the recurring names

    request = small_request(segments={"0": {"image_prompts": {"1": "The Courier at the gate"}}})
    ctx = hand_context(request, clients=fakes.clients(), values=values)
    overridden = produce(ctx, NodeKey("image_prompt", 0, 1))
    assert overridden.call is None and overridden.value["shot"] == "The Courier at the gate"
    assert "a young rider in a grey wool coat" in overridden.value["prompt"]  # a user's shot carries the look too

    off = small_request(segments={"0": {"look": False, "image_prompts": {"1": "a map of 1861"}}})
    ctx = hand_context(off, clients=fakes.clients(), values=values)
    assert produce(ctx, NodeKey("image_prompt", 0, 1)).value == {"prompt": "a map of 1861", "shot": "a map of 1861", "off_look": True}


def test_the_offline_look_gives_each_style_its_colours_and_a_recurring_cast() -> None:
    look = offline_text.look("the Civil War", "cinematic")
    assert look_colours(with_look("a field", look)) == [(12, 20, 38), (214, 120, 54), (31, 78, 90), (242, 232, 213)]  # the palette's four
    prompts = offline_text.image_prompts(narration_text(0), "A nation divided.", "cinematic", 3, 0, look)
    assert prompts[0].startswith("wide establishing shot of The Crossroads, where")
    assert "The Witness" in prompts[1] and "The Witness" in prompts[2]
    assert offline_text.image_prompts(narration_text(0), "A nation divided.", "cinematic", 3, 0) == \
        offline_text.image_prompts(narration_text(0), "A nation divided.", "cinematic", 3, 0, None)
    assert shot_type(with_look("a field at dusk", look | {"camera": "close-up portraits"})) == shot_type("a field at dusk")
    recoloured = with_look("a field", look | {"palette": "ink #101010, bone #f4f1ea"})
    assert draw_picture(recoloured, "cinematic", 320, 180, "x")[0] != draw_picture(with_look("a field", look), "cinematic", 320, 180, "x")[0]


def test_a_prompt_rebuilt_with_the_same_question_keeps_its_shot_without_a_call() -> None:
    """A look edit rebuilds every visual prompt; the LLM is not asked again what it answered before."""
    fakes = Fakes()
    request = small_request()
    values = {NodeKey("script"): SCRIPT_VALUE, NodeKey("research"): RESEARCH_VALUE, NodeKey("look"): LOOK,
              NodeKey("segment_narration", 0): {"segment": 0, "text": narration_text(0)}}
    first = produce(hand_context(request, clients=fakes.clients(), values=values), NodeKey("image_prompt", 0, 0))
    assert first.call is not None and first.meta["asked"] and "asked" not in first.value  # metadata, not content
    key = NodeKey("image_prompt", 0, 0)
    repainted = LOOK | {"palette": "ink black #101010, bone #f4f1ea"}
    again = hand_context(request, clients=fakes.clients(), values=values | {NodeKey("look"): repainted, key: first.value},
                         records={key: record(key, "v1", asked=first.meta["asked"])})
    second = produce(again, key)
    assert second.call is None and second.meta["answer"] == "asked before" and fakes.calls == Counter({"TextToImagePromptProducer": 1})
    assert second.value["shot"] == first.value["shot"] and "ink black #101010" in second.value["prompt"]
    renamed = LOOK | {"characters": [{"name": "The Rider", "description": "a rider"}]}  # a new name: a new question
    third = hand_context(request, clients=fakes.clients(), values=values | {NodeKey("look"): renamed, key: first.value},
                         records={key: record(key, "v1", asked=first.meta["asked"])})
    assert produce(third, key).call is not None and fakes.calls == Counter({"TextToImagePromptProducer": 2})


def test_a_look_edit_reuses_the_look_written_for_the_same_question() -> None:
    fakes = Fakes()
    values = {NodeKey("script"): SCRIPT_VALUE, NodeKey("research"): RESEARCH_VALUE}
    first = produce(hand_context(small_request(), clients=fakes.clients(), values=values), NodeKey("look"))
    assert first.call is not None and first.value["generated"]["palette"] == "oxblood #6b1f1f, parchment #efe6d2"
    key = NodeKey("look")
    edited = small_request(look={"lighting": "hard noon sun"})
    again = produce(hand_context(edited, clients=fakes.clients(), values=values | {key: first.value}, records={key: record(key, "v1", asked=first.meta["asked"])}), key)
    assert again.call is None and fakes.calls == Counter({"LookProducer": 1})  # not asked again
    assert again.value["lighting"] == "hard noon sun" and again.value["palette"] == first.value["palette"]
    restyled = small_request(look={"lighting": "hard noon sun"}, image_style="watercolor")  # a new question
    third = produce(hand_context(restyled, clients=fakes.clients(), values=values | {key: first.value}, records={key: record(key, "v1", asked=first.meta["asked"])}), key)
    assert third.call is not None and third.value["lighting"] == "hard noon sun"  # the user's field stays


def test_an_approved_reference_is_carried_only_by_the_shots_that_name_it() -> None:
    request = small_request(look={"references": {"The Courier": {"node": "segment_image[01_0]", "version": "ab" * 32},
                                                 "Nobody": {"node": "segment_image[00_0]", "version": "cd" * 32}}})
    look = merged(LOOK, request.look)
    assert look["references"] == [{"name": "The Courier", "node": "segment_image[01_0]", "version": "ab" * 32}]  # known names only
    assert looks_carried("The Courier rides", look)["references"] == look["references"]
    assert "references" not in looks_carried("A quiet harbour", look)
    assert not request.look.complete  # references are never generated: they make no look complete
    with pytest.raises(RequestError, match="look.references.The Courier.node"):
        parse_request({**CIVIL_WAR, "look": {"references": {"The Courier": {"node": "music", "version": "ab" * 32}}}})


def test_a_shot_gets_the_reference_pictures_of_who_it_names_but_never_its_own(tmp_path: Any) -> None:
    from tests.unit.fakes import new_store, png

    store = new_store(tmp_path)
    reference = png(32, 18, "the courier")
    store.write(f"movies/{MOVIE}/segment_image/01_0/{'ab' * 8}.png", reference)
    fakes = Fakes()
    request = small_request(look={"references": {"The Courier": {"node": "segment_image[01_0]", "version": "ab" * 32}}})
    look = merged(LOOK, request.look)
    values = {NodeKey("script"): SCRIPT_VALUE, NodeKey("research"): RESEARCH_VALUE, NodeKey("look"): look}
    for segment in (0, 1):
        values[NodeKey("segment_narration", segment)] = {"segment": segment, "text": narration_text(segment)}
    named = {"segments": {"0": {"image_prompts": {"0": "The Courier at the gate"}}, "1": {"image_prompts": {"0": "The Courier rests"}}}}
    request = small_request(look=request.look.model_dump(exclude_none=True), **named)
    for segment in (0, 1):
        values[NodeKey("image_prompt", segment, 0)] = produce(hand_context(request, values=values), NodeKey("image_prompt", segment, 0)).value
    ctx = hand_context(request, clients=fakes.clients(), values=values, store=store)
    ctx.load_version = lambda key, version: _read(store, key, version)
    for segment in (0, 1):
        produce(ctx, NodeKey("segment_image", segment, 0))
    other = with_look("The Courier at the gate", look)
    assert fakes.references[other] == [reference]  # another shot naming the character gets its picture
    assert fakes.references[with_look("The Courier rests", look)] == []  # the approved picture itself does not
    assert "references" not in values[NodeKey("image_prompt", 1, 0)]["look"]
    offline = draw_picture(other, "cinematic", 320, 180, "x", references=(reference,))[0]
    assert offline != draw_picture(other, "cinematic", 320, 180, "x")[0]  # the offline painter shows it


async def _read(store: Any, key: NodeKey, version: str) -> bytes:
    return store.read(f"movies/{MOVIE}/{key.asset}/{key.partition_suffix}/{version[:16]}.png")


@pytest.mark.parametrize("asset", ["text_to_video_prompt", "image_to_video_prompt"])
def test_video_prompts_keep_their_shots_for_the_same_question(asset: str) -> None:
    fakes = Fakes()
    mode = {"use_video": True, "is_image_to_video": asset == "image_to_video_prompt"}
    request = small_request(segments={"0": mode})
    key = NodeKey(asset, 0)
    values = {NodeKey("script"): SCRIPT_VALUE, NodeKey("research"): RESEARCH_VALUE, NodeKey("look"): LOOK,
              NodeKey("segment_narration", 0): {"segment": 0, "text": narration_text(0)}}
    first = produce(hand_context(request, clients=fakes.clients(), values=values), key)
    repainted = LOOK | {"palette": "ink black #101010, bone #f4f1ea"}
    again = produce(hand_context(request, clients=fakes.clients(), values=values | {NodeKey("look"): repainted, key: first.value},
                                 records={key: record(key, "v1", asked=first.meta["asked"])}), key)
    assert first.call is not None and again.call is None and sum(fakes.calls.values()) == 1
    assert again.value["shot"] == first.value["shot"] and "ink black #101010" in again.value["direction"]
    assert "references" not in again.value["look"]
