"""Research before the script: the request's sources and facts (validated), the research prompt, the
research answer's checks (an unusable answer is the provider's outage), the offline research, and what
the script and the look read of it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

from movie_assets.builder.recipes import RECIPES
from movie_assets.domain import pace, prompts
from movie_assets.domain.blueprint import NodeKey, expand
from movie_assets.domain.edits import UNSET, edited_request
from movie_assets.domain.inputs import input_versions
from movie_assets.domain.request import MAX_SOURCES, RequestError, parse_request
from movie_assets.interfaces.cli import research_lines
from movie_assets.movie_files.movies import _parse_stored
from resources.providers.base import (
    CallInfo,
    ErrorCategory,
    LLMProvider,
    MalformedAnswer,
    Research,
    ResearchFact,
    TextResult,
)
from resources.providers.offline import text as offline_text
from resources.providers.offline.media import OfflineLLM
from tests.unit.fakes import Fakes, hand_context, record, small_request

PASTED = "The war began in 1861 when Confederate guns fired on Fort Sumter. It ended in 1865 at Appomattox."
URL = "https://en.wikipedia.org/wiki/American_Civil_War"


def produce(ctx: Any, key: NodeKey) -> Any:
    return asyncio.run(RECIPES[key.asset](ctx, key))


def problems(**fields: Any) -> list[str]:
    with pytest.raises(RequestError) as e:
        small_request(**fields)
    return e.value.problems


def test_sources_are_http_urls_or_pasted_text_and_bad_ones_are_named() -> None:
    ok = small_request(sources=[URL, "http://example.org/page?q=1", PASTED])
    assert ok.sources == [URL, "http://example.org/page?q=1", PASTED] and ok.research
    assert problems(sources=["ftp://example.org/a.txt"]) == [
        'sources.0: got "ftp://example.org/a.txt"; a source URL with the scheme \'ftp\'; allowed: http and https URLs, '
        "or pasted text"]
    assert "scheme 'javascript'" in problems(sources=[URL, "javascript:alert(1)"])[0].replace('"', "'")
    assert problems(sources=[URL, "file:///etc/passwd"])[0].startswith("sources.1: ")
    assert "not a URL with a host" in problems(sources=["https://"])[0]
    assert "a source is empty" in problems(sources=["   "])[0]
    assert "pasted text of 5001 characters; allowed: up to 5000" in problems(sources=["x " * 2500 + "y"])[0]
    assert "URL of 2010 characters; allowed: up to 2000" in problems(sources=["https://example.org/" + "a" * 1990])[0]
    too_many = problems(sources=[f"https://example.org/{i}" for i in range(MAX_SOURCES + 1)])
    assert too_many[0].startswith("sources: got [") and f"at most {MAX_SOURCES} items" in too_many[0]
    assert problems(sources="https://example.org")[0].startswith("sources: got \"https://example.org\"")
    # A note with a colon is text, not a URL.
    assert small_request(sources=["Note: the war began in 1861."]).sources == ["Note: the war began in 1861."]


def test_facts_are_indexed_and_research_can_be_turned_off() -> None:
    assert small_request(facts={"0": "Lincoln was president."}).facts == {0: "Lincoln was president."}
    assert problems(facts={"12": "x"}) == ["facts.12: fact index 12 is out of range; allowed: 0 to 11"]
    assert problems(facts={"0": ""})[0].startswith("facts.0: got \"\"")
    assert problems(research=False, sources=[URL]) == [
        "sources: given, but research is false; allowed: together with research: true, else remove sources"]
    without = small_request(research=False)
    assert "research" not in {k.asset for k in expand(without).nodes}
    assert expand(without).nodes[NodeKey("script")].deps == ()
    # A movie stored before research keeps its script: no research, nothing new in what the script read.
    assert _parse_stored(b'{"inquiry_prompt": "Tell me about the Civil War", "duration_seconds": 20}').research is False
    assert parse_request({"inquiry_prompt": "Tell me about the Civil War"}).research  # new movies research
    versions = input_versions(expand(without), NodeKey("script"), lambda k: "v")
    assert set(versions) == {"inquiry"}


def test_the_graph_puts_the_research_before_the_script_and_the_look() -> None:
    bp = expand(small_request(sources=[URL]))
    assert bp.nodes[NodeKey("research")].deps == ()
    assert bp.nodes[NodeKey("script")].deps == (NodeKey("research"),)
    assert NodeKey("research") in bp.nodes[NodeKey("look")].deps
    assert bp.layer[NodeKey("research")] < bp.layer[NodeKey("script")] < bp.layer[NodeKey("look")]
    versions = input_versions(bp, NodeKey("research"), lambda k: "v")
    assert set(versions) == {"inquiry", "sources", "research_override"}
    assert bp.calls(bp.nodes)["ResearchProducer"] == 1


def test_sources_and_facts_are_edited_one_at_a_time() -> None:
    movie = small_request()
    edited = edited_request(movie, [("sources.0", URL), ("sources.1", PASTED), ("facts.1", "Lincoln was president.")])
    assert edited.sources == [URL, PASTED] and edited.facts == {1: "Lincoln was president."}
    replaced = edited_request(edited, [("sources.0", "https://example.org/other")])
    assert replaced.sources == ["https://example.org/other", PASTED]
    back = edited_request(edited, [("sources.0", UNSET), ("facts.1", UNSET)])
    assert back.sources == [PASTED] and back.facts == {} and "facts" not in back.to_document()
    with pytest.raises(RequestError, match=r"sources\.3: no source 3 to replace; allowed: sources\.0 to sources\.2"):
        edited_request(edited, [("sources.3", URL)])
    with pytest.raises(RequestError, match=r"sources\.0: got \"ftp://x\.org/a\"; a source URL with the scheme 'ftp'"):
        edited_request(edited, [("sources.0", "ftp://x.org/a")])


def test_the_research_prompt_numbers_the_users_sources_and_cites_urls_unread() -> None:
    prompt = prompts.RESEARCH.render("Tell me about the Civil War", "general", "en", [URL, PASTED])
    assert f"[1] URL (cite it; its page is not attached): {URL}" in prompt
    assert f'[2] Text the user pasted:\n"""\n{PASTED}\n"""' in prompt
    assert "cite them by number; a fact from general knowledge cites 0" in prompt
    assert "Every fact cites 0" in prompts.RESEARCH.render("Tell me about the Civil War", "general", "en", [])


def test_the_script_and_look_prompts_carry_the_research_and_are_unchanged_without_it() -> None:
    research = {"summary": "The war in brief.", "facts": [{"text": "It began in 1861.", "source": 1},
                                                          {"text": "Lincoln led the Union.", "source": 0}],
                "dates": [{"date": "1865", "event": "surrender at Appomattox"}], "names": [{"name": "Lincoln", "role": "president"}]}
    script = prompts.SCRIPT.render("Tell me about the Civil War", 3, "general", "en", research)
    assert "1. It began in 1861. [source 1]\n2. Lincoln led the Union.\n" in script
    assert "Dates: 1865: surrender at Appomattox" in script and "Names: Lincoln (president)" in script
    assert script.index("exactly 3 segments") < script.index("Facts:")
    # Without research, the script's prompt is the one a movie without research is asked with: no research note.
    plain = prompts.SCRIPT.render("Tell me about the Civil War", 3, "general", "en")
    assert plain == script.replace(script[script.index("Build the narration on this research"):script.index("Return JSON")], "")
    assert "Facts:" not in plain and plain.endswith("Return JSON: {title, summary (one sentence), narration: [exactly n strings]}.")
    look = prompts.LOOK.render("T", "S.", "cinematic", ["a", "b"], research)
    assert "Names: Lincoln (president)" in look and "Dates: 1865" in look
    assert "research" not in prompts.LOOK.render("T", "S.", "cinematic", ["a", "b"])


class _Answers(LLMProvider):
    """An LLM that answers the research with a given value (schema-valid, maybe unusable)."""

    name = "fake"

    def __init__(self, value: Research):
        self.value, self.calls = value, 0

    async def generate(self, task: str, prompt: str, schema: type[BaseModel], context: dict[str, Any]) -> TextResult:
        self.calls += 1
        return TextResult(self.value, CallInfo("fake", "fake-llm", 0.1))


def _research(*facts: tuple[str, int], references: list[dict[str, str]] | None = None) -> Research:
    return Research(summary="s", facts=[ResearchFact(text=t, source=n) for t, n in facts], dates=[], names=[],
                    references=references or [])


@pytest.mark.parametrize(("answer", "why"), [
    (_research(), "no facts"),
    (_research(("A fact.", 2)), "fact 1 cites source 2, but the user gave sources 1 to 1"),
    (_research(*[(f"Fact {i}.", 0) for i in range(13)]), "13 facts, at most 12 asked"),
    (_research(("  ", 0)), "fact 1 is empty"),
    (_research(("A fact.", 0), references=[{"title": "Book", "url": "javascript:alert(1)"}]), "a URL that is not http(s)"),
])
def test_an_unusable_research_answer_is_the_providers_outage(answer: Research, why: str) -> None:
    llm = _Answers(answer)
    ctx = hand_context(small_request(sources=[URL]), clients={"ResearchProducer": llm})
    with pytest.raises(MalformedAnswer, match="fake \\(fake-llm\\) answered with a research that cannot be used") as e:
        produce(ctx, NodeKey("research"))
    assert why in str(e.value) and e.value.category is ErrorCategory.outage and e.value.retryable


def test_the_offline_research_is_generic_and_cites_what_the_user_pasted() -> None:
    generic = offline_text.research("Tell me about the Civil War", [], 12)
    assert generic["facts"] and all(f["source"] == 0 and "not researched" in f["text"] for f in generic["facts"])
    assert "generic outline" in generic["summary"]
    given = offline_text.research("Tell me about the Civil War", [URL, PASTED], 12)
    assert given["facts"][:2] == [{"text": "The war began in 1861 when Confederate guns fired on Fort Sumter.", "source": 2},
                                  {"text": "It ended in 1865 at Appomattox.", "source": 2}]
    assert given["references"] == [{"title": "Source 1 (given by the user; not read offline)", "url": URL}]
    assert {"date": "1861", "event": "The war began in 1861 when Confederate guns fired on Fort Sumter."} in given["dates"]
    assert {"name": "Fort Sumter", "role": "named in source 2"} in given["names"]
    assert len(offline_text.research("Tell me about the Civil War", [PASTED] * 10, 12)["facts"]) == 12
    assert given == offline_text.research("Tell me about the Civil War", [URL, PASTED], 12)  # deterministic


def test_the_offline_script_tells_the_first_fact_that_is_not_generic() -> None:
    request = small_request(duration_seconds=30, sources=[PASTED])
    llm = OfflineLLM()
    research = produce(hand_context(request, clients={"ResearchProducer": llm}), NodeKey("research"))
    assert research.value["generic"] and research.value["sources"] == [{"n": 1, "kind": "text", "text": PASTED}]
    assert research.call is not None and research.meta["facts"] == len(research.value["facts"])
    script = produce(hand_context(request, clients={"ScriptProducer": llm}, values={NodeKey("research"): research.value}),
                     NodeKey("script"))
    assert script.value["narration"][1].startswith("The war began in 1861 when Confederate guns fired on Fort Sumter.")
    assert "1. The war began in 1861 when Confederate guns fired on Fort Sumter. [source 1]" in script.prompt
    plain = produce(hand_context(small_request(duration_seconds=30), clients={"ResearchProducer": llm}), NodeKey("research"))
    generic = produce(hand_context(small_request(duration_seconds=30), clients={"ScriptProducer": llm},
                                   values={NodeKey("research"): plain.value}), NodeKey("script"))
    assert generic.value == offline_text.write_script("Tell me about the Civil War", 3, "general", "en")  # generic: as before


def test_a_fact_edit_keeps_the_research_written_for_the_same_question() -> None:
    fakes = Fakes()
    key = NodeKey("research")
    first = produce(hand_context(small_request(sources=[URL]), clients=fakes.clients()), key)
    assert first.call is not None and first.value["facts"][1] == {"text": "Source 1 says so.", "source": 1}
    edited = small_request(sources=[URL], facts={"1": "Lincoln was president.", "5": "The war ended in 1865."})
    again = produce(hand_context(edited, clients=fakes.clients(), values={key: first.value},
                                 records={key: record(key, "v1", asked=first.meta["asked"])}), key)
    assert again.call is None and fakes.calls == Counter({"ResearchProducer": 1})  # not asked again
    assert again.value["facts"][1] == {"text": "Lincoln was president.", "source": 0, "edited": True}
    assert again.value["facts"][-1] == {"text": "The war ended in 1865.", "source": 0, "edited": True}  # past the end: added
    assert again.value["facts"][0] == first.value["facts"][0] and again.value["generated"] == first.value["generated"]
    # A new source is a new question: asked again.
    other = small_request(sources=[URL, PASTED], facts={"1": "Lincoln was president."})
    asked = produce(hand_context(other, clients=fakes.clients(), values={key: again.value},
                                 records={key: record(key, "v2", asked=first.meta["asked"])}), key)
    assert asked.call is not None and fakes.calls == Counter({"ResearchProducer": 2})


FACT = "The war began in 1861 when Confederate guns fired on Fort Sumter."


@pytest.mark.parametrize("language,question", [("en", "Tell me about the Civil War"),
                                               ("es", "¿Por qué empezó la guerra civil?")])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_the_offline_script_tells_the_fact_in_a_segment_that_is_heard(n: int, language: str, question: str) -> None:
    """Of 2 segments, segment 1 is the closing: the fact goes into segment 0 (after the question where it is
    quoted), of 1 into the only one, of 3 or more into segment 1; every narration still fills its segment."""
    script = offline_text.write_script(question, n, "general", language, FACT)
    plain = offline_text.write_script(question, n, "general", language)
    at = 1 if n >= 3 else 0
    assert FACT in script["narration"][at]
    assert [i for i, (a, b) in enumerate(zip(script["narration"], plain["narration"], strict=True)) if a != b] == [at]
    for i, text in enumerate(script["narration"]):
        assert pace.fit_problem(i, pace.estimate_ms(text, language), len(text.split()), language) is None, text
    if language == "es" and n <= 2:  # the question is quoted first, the fact answers it
        assert script["narration"][0].startswith("Nuestra pregunta de hoy es")
    long = offline_text.write_script(question, n, "general", language, " ".join([FACT] * 6))
    assert all(pace.estimate_ms(t, language) <= pace.LONG_MS for t in long["narration"])  # a long fact is cut to fit


def test_the_offline_script_is_told_by_a_fact_the_user_wrote() -> None:
    research = {"facts": [{"text": "Generic outline", "source": 0}, {"text": "Yours.", "source": 0, "edited": True}]}
    assert offline_text.first_fact(research) == "Yours."
    assert offline_text.first_fact({"facts": [{"text": "Generic outline", "source": 0}]}) is None
    assert offline_text.first_fact(None) is None


def test_the_research_is_printed_numbered_as_the_edit_paths_count() -> None:
    request = small_request(sources=[URL, PASTED], facts={"3": "Lincoln was president."})
    research = produce(hand_context(request, clients={"ResearchProducer": OfflineLLM()}), NodeKey("research")).value
    lines = research_lines("civil-war", research, ["facts.4"])
    text = "\n".join(lines)
    assert lines[0].startswith("offline research: generic, it knows no facts")
    assert f"summary: {research['summary']}" in lines
    # The pasted text is the research's source 2, its facts cite it: printed as sources.1, its edit path.
    assert f"  facts.0   {FACT}   [cites sources.1]" in lines
    assert "  facts.3   Lincoln was president.   [yours (edited)]" in lines
    assert any(line.startswith("  facts.4 ") and "[generic, not researched]" in line for line in lines)
    assert f"  sources.0   {URL}   (a URL: cited, not read offline)" in lines
    assert f'  sources.1   "{PASTED}"' in lines
    assert "sources.2" not in text and "  1861: " + FACT in lines and "  Fort Sumter: named in source 2" in lines
    assert "counts from 1" in text and "not built yet: facts.4" in text
    assert lines[-1].startswith('edit: moviegen edit civil-war --set "facts.<i>=..."')
    real = {**research, "generic": False}  # a research of an LLM: a URL is cited, never fetched, and nothing says generic
    assert not research_lines("m", real)[0].startswith("offline") and f"  sources.0   {URL}   (a URL: cited, never fetched)" in \
        research_lines("m", real) and any(line.endswith("[general knowledge]") for line in research_lines("m", real))
    assert "facts: none" in research_lines("m", {"summary": "", "facts": []})
