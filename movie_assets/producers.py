"""Producer functions: build one artifact partition from its inputs by calling one provider.

Plain async functions, testable without Dagster. Each gets a ``ProduceContext`` (the request, the
provider clients and access to upstream artifacts) and returns a ``Produced``: the bytes to store and
the metadata a person wants to see. User overrides win over generated prompts without a call.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from resources.providers import (
    CallInfo,
    DirectionPrompt,
    ImagePrompts,
    ImageProvider,
    ImageToVideoPrompts,
    LLMProvider,
    Media,
    MusicPrompt,
    MusicProvider,
    ProviderError,
    Script,
    SpeechProvider,
    VideoProvider,
)

from . import prompts
from .blueprint import NodeKey
from .request import SEGMENT_MS, SEGMENT_SECONDS, MovieRequest, VisualMode


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class Produced:
    """One built artifact: its content (hashed into the data version) and its metadata."""

    data: bytes
    ext: str
    mime: str
    value: Any = None
    call: CallInfo | None = None
    prompt: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    preview: bytes | None = None  # a small JPEG shown in the Dagster UI

    @staticmethod
    def json(value: Any, call: CallInfo | None = None, prompt: str | None = None, **meta: Any) -> Produced:
        return Produced(canonical_json(value), "json", "application/json", value=value, call=call, prompt=prompt, meta=meta)

    @staticmethod
    def media(m: Media, prompt: str | None = None, **meta: Any) -> Produced:
        return Produced(m.data, m.ext, m.mime, call=m.call, prompt=prompt, meta={**m.extra, **meta},
                        width=m.width, height=m.height, duration_ms=m.duration_ms, preview=m.preview)


@dataclass
class ProduceContext:
    """What a producer may use: the request, the clients and the upstream artifacts."""

    movie: str
    request: MovieRequest
    clients: dict[str, Any]  # producer name -> the provider client it is routed to
    load_value: Callable[[NodeKey], Awaitable[Any]]
    load_bytes: Callable[[NodeKey], Awaitable[bytes]]
    load_record: Callable[[NodeKey], Any]
    load_failure: Callable[[NodeKey], str | None]
    limit: Callable[[str], asyncio.Semaphore]
    _shared: dict[Any, asyncio.Task[Any]] = field(default_factory=dict)

    def llm(self, producer: str) -> LLMProvider:
        return self.clients[producer]

    def speech(self) -> SpeechProvider:
        return self.clients["AudioProducer"]

    def images(self, producer: str) -> ImageProvider:
        return self.clients[producer]

    def video(self, producer: str) -> VideoProvider:
        return self.clients[producer]

    def music(self) -> MusicProvider:
        return self.clients["MusicProducer"]

    def shared(self, group: Any, producer: str, factory: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        """One call for every node of a group (the m image prompts of a segment come from one call),
        holding one of the provider's in-flight slots for the call, not one per node."""
        if group not in self._shared:

            async def call() -> Any:
                async with self.limit(producer):
                    return await factory()

            self._shared[group] = asyncio.ensure_future(call())
        return self._shared[group]


async def _script(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    prompt = prompts.script_prompt(r.inquiry_prompt, r.n, r.audience.value, r.language.value)
    result = await ctx.llm("ScriptProducer").generate("script", prompt, Script, {
        "inquiry_prompt": r.inquiry_prompt, "n": r.n, "audience": r.audience.value, "language": r.language.value,
    })
    script = Script.model_validate(result.value.model_dump())
    if len(script.narration) != r.n:
        raise ProviderError(f"the script has {len(script.narration)} segments, expected {r.n}", provider=result.call.provider)
    return Produced.json(script.model_dump(), result.call, prompt, title=script.title, summary=script.summary)


async def _music_prompt(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    if r.music_prompt:
        return Produced.json({"prompt": r.music_prompt}, source="override")
    script = await ctx.load_value(NodeKey("script"))
    prompt = prompts.music_prompt_prompt(script["title"], script["summary"], r.audience.value, r.duration_seconds)
    result = await ctx.llm("TextToMusicPromptProducer").generate("music_prompt", prompt, MusicPrompt, {
        "title": script["title"], "summary": script["summary"], "audience": r.audience.value, "seconds": r.duration_seconds,
    })
    return Produced.json({"prompt": result.value.prompt}, result.call, prompt, source="generated")  # type: ignore[attr-defined]


async def _music(ctx: ProduceContext, key: NodeKey) -> Produced:
    prompt = (await ctx.load_value(NodeKey("music_prompt")))["prompt"]
    media = await ctx.music().generate(prompt, seconds=ctx.request.duration_seconds)
    return Produced.media(media, prompt)


async def _narration(ctx: ProduceContext, key: NodeKey) -> Produced:
    assert key.segment is not None
    override = ctx.request.overrides(key.segment).narration
    if override:
        return Produced.json({"segment": key.segment, "text": override}, source="override")
    script = await ctx.load_value(NodeKey("script"))
    return Produced.json({"segment": key.segment, "text": script["narration"][key.segment]}, source="script")


async def _audio(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    text = (await ctx.load_value(NodeKey("segment_narration", key.segment)))["text"]
    media = await ctx.speech().synthesize(text, voice_id=r.voice_id, language=r.language.value, emotion=r.emotion, max_ms=SEGMENT_MS)
    return Produced.media(media, text, voice_id=r.voice_id)


async def _image_prompt(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    assert key.segment is not None and key.image is not None
    override = r.overrides(key.segment).image_prompts.get(key.image)
    if override:
        return Produced.json({"prompt": override}, source="override")
    narration = (await ctx.load_value(NodeKey("segment_narration", key.segment)))["text"]
    script = await ctx.load_value(NodeKey("script"))
    prompt = prompts.image_prompts_prompt(narration, script["summary"], r.image_style.value, r.m)

    async def call() -> Any:
        return await ctx.llm("TextToImagePromptProducer").generate("image_prompts", prompt, ImagePrompts, {
            "narration": narration, "summary": script["summary"], "style": r.image_style.value, "m": r.m, "segment": key.segment,
        })

    result = await ctx.shared(("image_prompts", key.segment), "TextToImagePromptProducer", call)
    generated = result.value.prompts
    if len(generated) <= key.image:
        raise ProviderError(f"the LLM wrote {len(generated)} image prompts, expected {r.m}", provider=result.call.provider)
    return Produced.json({"prompt": generated[key.image]}, result.call, prompt, source="generated")


def _label(key: NodeKey) -> str:
    if key.image is not None:
        return f"Segment {key.segment:02d} · Image {key.image}"
    return f"Segment {key.segment:02d}"


async def _segment_image(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    prompt = (await ctx.load_value(NodeKey("image_prompt", key.segment, key.image)))["prompt"]
    w, h = r.frame
    media = await ctx.images("TextToImageProducer").generate(prompt, style=r.image_style.value, width=w, height=h, label=_label(key))
    return Produced.media(media, prompt)


async def _t2v_prompt(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    override = r.overrides(key.segment).movie_direction_prompt  # type: ignore[arg-type]
    if override:
        return Produced.json({"direction": override}, source="override")
    narration = (await ctx.load_value(NodeKey("segment_narration", key.segment)))["text"]
    script = await ctx.load_value(NodeKey("script"))
    prompt = prompts.text_to_video_prompt(narration, script["summary"], r.image_style.value)
    result = await ctx.llm("TextToVideoPromptProducer").generate("text_to_video_prompt", prompt, DirectionPrompt, {
        "narration": narration, "summary": script["summary"], "style": r.image_style.value, "segment": key.segment,
    })
    return Produced.json({"direction": result.value.direction}, result.call, prompt, source="generated")  # type: ignore[attr-defined]


async def _t2v_clip(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    direction = (await ctx.load_value(NodeKey("text_to_video_prompt", key.segment)))["direction"]
    w, h = r.frame
    media = await ctx.video("TextToVideoProducer").text_to_video(direction, style=r.image_style.value, width=w, height=h, seconds=SEGMENT_SECONDS, label=_label(key))
    return Produced.media(media, direction)


async def _i2v_prompt(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    o = r.overrides(key.segment)  # type: ignore[arg-type]
    if o.movie_direction_prompt and o.starting_image_prompt:
        return Produced.json({"direction": o.movie_direction_prompt, "starting_image_prompt": o.starting_image_prompt}, source="override")
    narration = (await ctx.load_value(NodeKey("segment_narration", key.segment)))["text"]
    script = await ctx.load_value(NodeKey("script"))
    prompt = prompts.image_to_video_prompt(narration, script["summary"], r.image_style.value)
    result = await ctx.llm("ImageToVideoPromptProducer").generate("image_to_video_prompt", prompt, ImageToVideoPrompts, {
        "narration": narration, "summary": script["summary"], "style": r.image_style.value, "segment": key.segment,
    })
    v: ImageToVideoPrompts = result.value  # type: ignore[assignment]
    return Produced.json({
        "direction": o.movie_direction_prompt or v.direction,
        "starting_image_prompt": o.starting_image_prompt or v.starting_image_prompt,
    }, result.call, prompt, source="generated")


async def _starting_image(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    prompt = (await ctx.load_value(NodeKey("image_to_video_prompt", key.segment)))["starting_image_prompt"]
    w, h = r.frame
    media = await ctx.images("StartingImageProducer").generate(prompt, style=r.image_style.value, width=w, height=h, label=_label(key) + " · start")
    return Produced.media(media, prompt)


async def _i2v_clip(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    direction = (await ctx.load_value(NodeKey("image_to_video_prompt", key.segment)))["direction"]
    image = await ctx.load_bytes(NodeKey("starting_image", key.segment))
    w, h = r.frame
    media = await ctx.video("ImageToVideoProducer").image_to_video(image, direction, width=w, height=h, seconds=SEGMENT_SECONDS, label=_label(key))
    return Produced.media(media, direction)


async def _segment_visuals(ctx: ProduceContext, key: NodeKey) -> Produced:
    """No provider call: the segment's visual clips in order, each pinned to its artifact version."""
    r = ctx.request
    assert key.segment is not None
    mode = r.mode(key.segment)
    if mode is VisualMode.image_only:
        sources = [NodeKey("segment_image", key.segment, j) for j in range(r.m)]
    elif mode is VisualMode.video_by_text:
        sources = [NodeKey("text_to_video_clip", key.segment)]
    else:
        sources = [NodeKey("image_to_video_clip", key.segment)]
    clips, errors = [], []
    for src in sources:
        rec, failure = ctx.load_record(src), ctx.load_failure(src)
        if rec is None or failure:
            errors.append(gap_error(src, ctx.movie, failure, has_previous=rec is not None))
        if rec is None:
            continue
        clips.append({
            "asset": src.asset, "partition": src.partition_key(ctx.movie), "version": rec.version, "uri": rec.uri,
            "kind": "image" if src.asset == "segment_image" else "video",
            "width": rec.metadata.get("width"), "height": rec.metadata.get("height"), "duration_ms": rec.metadata.get("duration_ms"),
        })
    return Produced.json({"segment": key.segment, "mode": mode.value, "clips": clips, "errors": errors})


def gap_error(key: NodeKey, movie: str, failure: str | None, has_previous: bool) -> dict[str, str]:
    """A timeline error entry: a missing artifact, or a failed one (whose previous version, if any,
    is still used so the movie stays complete)."""
    if failure:
        message = failure + ("; the previous version is used" if has_previous else "")
        return {"asset": key.asset, "partition": key.partition_key(movie), "reason": "failed", "message": message}
    return {"asset": key.asset, "partition": key.partition_key(movie), "reason": "missing", "message": "not generated yet"}


async def _timeline(ctx: ProduceContext, key: NodeKey) -> Produced:
    from .timeline import assemble_timeline

    timeline = await assemble_timeline(ctx)
    return Produced.json(timeline, None, None, clips=sum(len(t["clips"]) for t in timeline["tracks"]), errors=len(timeline["errors"]))


PRODUCE: dict[str, Callable[[ProduceContext, NodeKey], Awaitable[Produced]]] = {
    "script": _script,
    "music_prompt": _music_prompt,
    "music": _music,
    "segment_narration": _narration,
    "segment_audio": _audio,
    "image_prompt": _image_prompt,
    "segment_image": _segment_image,
    "text_to_video_prompt": _t2v_prompt,
    "text_to_video_clip": _t2v_clip,
    "image_to_video_prompt": _i2v_prompt,
    "starting_image": _starting_image,
    "image_to_video_clip": _i2v_clip,
    "segment_visuals": _segment_visuals,
    "timeline": _timeline,
}
