"""Prompt templates of the LLM producers. Changing a template means bumping its version: the
artifact's code version includes it, so Dagster marks what the old template made as stale."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

AUDIENCE_NOTES = {
    "children": "Use short, vivid sentences a 9-year-old understands.",
    "general": "Be clear and engaging for a general audience.",
    "students": "Be precise and structured, like a good lesson.",
    "experts": "Be dense and accurate; assume background knowledge.",
}


def script_prompt(inquiry: str, n: int, audience: str, language: str) -> str:
    return (
        f"Write the narration of a short explainer movie answering: {inquiry!r}.\n"
        f"It has exactly {n} segments of 10 seconds; each segment's narration is one or two sentences "
        f"of at most 24 words, spoken in about 9 seconds. Language: {language} (ISO 639-1). "
        f"{AUDIENCE_NOTES[audience]} Plain text only: no markdown, no lists, no stage directions.\n"
        "Return JSON: {title, summary (one sentence), narration: [exactly n strings]}."
    )


def image_prompts_prompt(narration: str, summary: str, style: str, m: int) -> str:
    return (
        f"Movie summary: {summary}\nThis segment's narration: {narration}\n"
        f"Write {m} distinct text-to-image prompts, in English, that illustrate this narration in order, "
        f"in a consistent {style} style, with no text or captions in the picture.\n"
        "Return JSON: {prompts: [exactly m strings]}."
    )


def music_prompt_prompt(title: str, summary: str, audience: str, seconds: int) -> str:
    return (
        f"Movie: {title}. {summary}\nAudience: {audience}. Length: {seconds} s.\n"
        "Write one prompt for an instrumental music bed that sits under narration (no vocals).\n"
        "Return JSON: {prompt}."
    )


def text_to_video_prompt(narration: str, summary: str, style: str) -> str:
    return (
        f"Movie summary: {summary}\nThis segment's narration: {narration}\n"
        f"Write one text-to-video prompt for a 10 s shot in a {style} style: subject, setting, camera "
        "movement and lighting, no text on screen.\nReturn JSON: {direction}."
    )


def image_to_video_prompt(narration: str, summary: str, style: str) -> str:
    return (
        f"Movie summary: {summary}\nThis segment's narration: {narration}\n"
        f"Write (1) a prompt for the opening frame of a 10 s shot in a {style} style and (2) a direction "
        "prompt describing how that frame moves (camera and subject motion).\n"
        "Return JSON: {starting_image_prompt, direction}."
    )


@dataclass(frozen=True)
class Template:
    """A prompt template and its version (bump it when the template's text changes)."""

    version: str
    render: Callable[..., str]


SCRIPT = Template("script-v1", script_prompt)
IMAGE_PROMPTS = Template("image-prompts-v1", image_prompts_prompt)
MUSIC_PROMPT = Template("music-prompt-v1", music_prompt_prompt)
TEXT_TO_VIDEO = Template("t2v-prompt-v1", text_to_video_prompt)
IMAGE_TO_VIDEO = Template("i2v-prompt-v1", image_to_video_prompt)
