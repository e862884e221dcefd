"""Prompt templates of the LLM producers. Changing a template means bumping its version: the
artifact's code version includes it, so Dagster marks what the old template made as stale."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from movie_assets.domain import pace
from movie_assets.domain.request import MAX_FACTS, MAX_RECURRING, source_kind

AUDIENCE_NOTES = {
    "children": "Use short, vivid sentences a 9-year-old understands.",
    "general": "Be clear and engaging for a general audience.",
    "students": "Be precise and structured, like a good lesson.",
    "experts": "Be dense and accurate; assume background knowledge.",
}


def script_prompt(inquiry: str, n: int, audience: str, language: str, research: Mapping[str, Any] | None = None) -> str:
    """The script's prompt; with the movie's research, its facts, dates and names are the script's material
    (a movie made without research keeps the prompt it had, word for word)."""
    words = pace.target_words(language)
    return (
        f"Write the narration of a short explainer movie answering: {inquiry!r}.\n"
        f"It has exactly {n} segments of 10 seconds; each segment's narration is one to three sentences "
        f"of {words - 2} to {words + 1} words, which a narrator speaks in about {pace.TARGET_S:g} seconds at "
        f"{pace.WORDS_PER_SECOND.get(language, pace.WORDS_PER_SECOND['en']):g} words per second: never shorter, or "
        f"the picture runs silent. Write every word in {language} (ISO 639-1), with no phrase in another language. "
        f"{AUDIENCE_NOTES[audience]} Plain text only: no markdown, no lists, no stage directions.\n"
        + _research_note(research, "Build the narration on this research: use its facts, dates and names, invent no "
                                   "others, and do not read source numbers aloud.")
        + "Return JSON: {title, summary (one sentence), narration: [exactly n strings]}."
    )


def research_prompt(inquiry: str, audience: str, language: str, sources: Sequence[str]) -> str:
    """The research's prompt: the question, and the user's own sources numbered from 1 (URLs are cited as
    given: their pages are not fetched)."""
    listed = "".join(
        f"[{n}] URL (cite it; its page is not attached): {source}\n" if source_kind(source) == "url"
        else f"[{n}] Text the user pasted:\n\"\"\"\n{source}\n\"\"\"\n"
        for n, source in enumerate(sources, start=1)
    )
    told = (f"The user's own sources, numbered:\n{listed}Prefer facts these sources support and cite them by number; "
            "a fact from general knowledge cites 0.\n") if sources else "Every fact cites 0 (general knowledge).\n"
    return (
        f"Research the question {inquiry!r} for a short explainer movie for {audience} (language of the movie: "
        f"{language}, ISO 639-1; write the research in that language).\n"
        f"List the key facts (at most {MAX_FACTS}, each one sentence of at most 40 words, accurate and checkable), "
        "the key dates (date and what happened), the key names (people, places and organisations, with their role) "
        "and published references you know that support the facts (title and URL; an empty URL when you know none).\n"
        f"{told}"
        "Return JSON: {summary (one sentence), facts: [{text, source}], dates: [{date, event}], names: [{name, role}], "
        "references: [{title, url}]}."
    )


def _research_note(research: Mapping[str, Any] | None, use: str) -> str:
    """The research as a prompt reads it: its facts (with the source each cites), dates and names."""
    if not research:
        return ""
    facts = "".join(f"{i}. {f['text']}" + (f" [source {f['source']}]" if f.get("source") else "") + "\n"
                    for i, f in enumerate(research["facts"], start=1))
    dates = "; ".join(f"{d['date']}: {d['event']}" for d in research.get("dates", []))
    names = "; ".join(f"{e['name']} ({e['role']})" for e in research.get("names", []))
    return (f"{use}\nResearch summary: {research['summary']}\nFacts:\n{facts}"
            + (f"Dates: {dates}\n" if dates else "") + (f"Names: {names}\n" if names else ""))


def image_prompts_prompt(narration: str, summary: str, style: str, m: int, look: Mapping[str, Any] | None = None) -> str:
    return (
        f"Movie summary: {summary}\nThis segment's narration: {narration}\n"
        f"Write {m} distinct text-to-image prompts, in English, that illustrate this narration in order, "
        f"in a consistent {style} style, with no text or captions in the picture.\n"
        f"{_cast_note(look)}Return JSON: {{prompts: [exactly m strings]}}."
    )


def music_prompt_prompt(title: str, summary: str, audience: str, seconds: int) -> str:
    return (
        f"Movie: {title}. {summary}\nAudience: {audience}. Length: {seconds} s.\n"
        "Write one prompt for an instrumental music bed that sits under narration (no vocals).\n"
        "Return JSON: {prompt}."
    )


def text_to_video_prompt(narration: str, summary: str, style: str, look: Mapping[str, Any] | None = None) -> str:
    return (
        f"Movie summary: {summary}\nThis segment's narration: {narration}\n"
        f"Write one text-to-video prompt for a 10 s shot in a {style} style: subject, setting, camera "
        f"movement and lighting, no text on screen.\n{_cast_note(look)}Return JSON: {{direction}}."
    )


def image_to_video_prompt(narration: str, summary: str, style: str, look: Mapping[str, Any] | None = None) -> str:
    return (
        f"Movie summary: {summary}\nThis segment's narration: {narration}\n"
        f"Write (1) a prompt for the opening frame of a 10 s shot in a {style} style and (2) a direction "
        "prompt describing how that frame moves (camera and subject motion).\n"
        f"{_cast_note(look)}Return JSON: {{starting_image_prompt, direction}}."
    )


def look_prompt(title: str, summary: str, style: str, narration: list[str], research: Mapping[str, Any] | None = None) -> str:
    lines = "\n".join(f"{i + 1}. {text}" for i, text in enumerate(narration))
    return (
        f"Movie: {title}. {summary}\nNarration, one line per 10 s segment:\n{lines}\n"
        f"Write the movie's look: one style guide, in English, that every shot follows, in a {style} style. "
        "palette: 4-6 named colours with hex codes; lighting: one sentence; camera: lenses, framing and "
        "movement in one sentence; characters and places: the recurring people and places the narration "
        f"names or implies (at most {MAX_RECURRING} each, none if there are none), each with a short name "
        "(no '.', ':', ';' or '|') and a fixed visual description (for a person: age, build, face, hair, "
        "clothing; for a place: era, architecture or landscape, light) that every shot repeats word for word.\n"
        + _research_names(research)
        + "Return JSON: {palette, lighting, camera, characters: [{name, description}], places: [{name, description}]}."
    )


def _research_names(research: Mapping[str, Any] | None) -> str:
    """What the look's writer is told of the research: the names and dates it found (people and places true to
    the period); nothing for a movie made without research."""
    if not research:
        return ""
    names = "; ".join(f"{e['name']} ({e['role']})" for e in research.get("names", []))
    dates = "; ".join(f"{d['date']}: {d['event']}" for d in research.get("dates", []))
    return ("The research behind the movie (keep people, places, clothing and architecture true to it):\n"
            + (f"Names: {names}\n" if names else "") + (f"Dates: {dates}\n" if dates else ""))


def _cast_note(look: Mapping[str, Any] | None) -> str:
    """What a shot-writing LLM is told of the movie's look: the recurring names to call people and places
    by. The rest of the look (palette, lighting, camera, each name's fixed description) is added to
    every prompt in code (domain/look.py), so the LLM is not asked to repeat it."""
    if not look:
        return ""
    names = [e["name"] for e in [*look["characters"], *look["places"]]]
    if not names:
        return ""
    return ("Recurring characters and places: " + ", ".join(names) + ". When a shot shows one, call it by exactly "
            "that name (its fixed description is added for you).\n")


@dataclass(frozen=True)
class Template:
    """A prompt template and its version (bump it when the template's text changes)."""

    version: str
    render: Callable[..., str]


# With research, the script and the look read it (a dependency of their own, so what they made before it is rebuilt).
RESEARCH = Template("research-v1", research_prompt)
SCRIPT = Template("script-v2", script_prompt)
IMAGE_PROMPTS = Template("image-prompts-v1", image_prompts_prompt)
MUSIC_PROMPT = Template("music-prompt-v1", music_prompt_prompt)
TEXT_TO_VIDEO = Template("t2v-prompt-v1", text_to_video_prompt)
IMAGE_TO_VIDEO = Template("i2v-prompt-v1", image_to_video_prompt)
LOOK = Template("look-v1", look_prompt)
