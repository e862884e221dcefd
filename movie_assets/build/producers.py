"""Producer functions: build one artifact partition from its inputs by calling one provider.

Plain async functions, testable without Dagster. Each gets a ``ProduceContext`` (the request, the
provider clients and access to upstream artifacts) and returns a ``Produced``: the bytes to store and
the metadata a person wants to see. User overrides win over generated prompts without a call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from movie_assets.build.context import ProduceContext, Produced
from movie_assets.build.render.produce import RENDER_PRODUCE
from movie_assets.build.timeline import assemble_timeline, gap_error, placeholder_error
from movie_assets.domain import prompts
from movie_assets.domain.blueprint import ARTIFACTS, NodeKey
from movie_assets.domain.inputs import take_of
from movie_assets.domain.request import SEGMENT_MS, SEGMENT_SECONDS, VisualMode
from resources.providers.base import (
    DirectionPrompt,
    ImagePrompts,
    ImageToVideoPrompts,
    MusicPrompt,
    ProviderError,
    Script,
)


def _seed(ctx: ProduceContext, key: NodeKey) -> dict[str, int]:
    """The node's take as the provider's ``seed``, for a re-roll only: take 0 makes exactly the call it
    always made (no seed argument), so what existed before takes stays valid."""
    take = take_of(ctx.request, key)
    return {"seed": take} if take else {}


def _take(ctx: ProduceContext, key: NodeKey) -> dict[str, int]:
    """The take as metadata (kept in the build cache entry too, so ``moviegen takes`` lists it)."""
    take = take_of(ctx.request, key)
    return {"take": take} if take else {}


async def _script(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    prompt = prompts.SCRIPT.render(r.inquiry_prompt, r.segment_count, r.audience.value, r.language.value)
    result = await ctx.llm("ScriptProducer").generate("script", prompt, Script, {
        "inquiry_prompt": r.inquiry_prompt, "n": r.segment_count, "audience": r.audience.value, "language": r.language.value,
    })
    script = Script.model_validate(result.value.model_dump())
    if len(script.narration) != r.segment_count:
        raise ProviderError(f"the script has {len(script.narration)} segments, expected {r.segment_count}", provider=result.call.provider)
    return Produced.json(script.model_dump(), result.call, prompt, title=script.title, summary=script.summary)


async def _music_prompt(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    if r.music_prompt:
        return Produced.json({"prompt": r.music_prompt}, source="override")
    script = await ctx.load_value(NodeKey("script"))
    prompt = prompts.MUSIC_PROMPT.render(script["title"], script["summary"], r.audience.value, r.duration_seconds)
    result = await ctx.llm("TextToMusicPromptProducer").generate("music_prompt", prompt, MusicPrompt, {
        "title": script["title"], "summary": script["summary"], "audience": r.audience.value, "seconds": r.duration_seconds,
    })
    return Produced.json({"prompt": result.value.prompt}, result.call, prompt, source="generated")  # type: ignore[attr-defined]


async def _music(ctx: ProduceContext, key: NodeKey) -> Produced:
    prompt = (await ctx.load_value(NodeKey("music_prompt")))["prompt"]
    media = await ctx.music().generate(prompt, seconds=ctx.request.duration_seconds, **_seed(ctx, key))
    return Produced.media(media, prompt, **_take(ctx, key))


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
    media = await ctx.speech().synthesize(text, voice_id=r.voice_id, language=r.language.value, emotion=r.emotion, max_ms=SEGMENT_MS,
                                          **_seed(ctx, key))
    return Produced.media(media, text, voice_id=r.voice_id, **_take(ctx, key))


async def _image_prompt(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    assert key.segment is not None and key.image is not None
    override = r.overrides(key.segment).image_prompts.get(key.image)
    if override:
        return Produced.json({"prompt": override}, source="override")
    narration = (await ctx.load_value(NodeKey("segment_narration", key.segment)))["text"]
    script = await ctx.load_value(NodeKey("script"))
    prompt = prompts.IMAGE_PROMPTS.render(narration, script["summary"], r.image_style.value, r.images_per_segment)

    async def call() -> Any:
        return await ctx.llm("TextToImagePromptProducer").generate("image_prompts", prompt, ImagePrompts, {
            "narration": narration, "summary": script["summary"], "style": r.image_style.value, "m": r.images_per_segment, "segment": key.segment,
        })

    result = await ctx.shared(("image_prompts", key.segment), "TextToImagePromptProducer", call)
    generated = result.value.prompts
    if len(generated) <= key.image:
        raise ProviderError(f"the LLM wrote {len(generated)} image prompts, expected {r.images_per_segment}", provider=result.call.provider)
    return Produced.json({"prompt": generated[key.image]}, result.call, prompt, source="generated")


def _label(ctx: ProduceContext, key: NodeKey) -> str:
    label = f"Segment {key.segment:02d} · Image {key.image}" if key.image is not None else f"Segment {key.segment:02d}"
    return label + (" · placeholder" if ctx.placeholder else "")


async def _segment_image(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    prompt = (await ctx.load_value(NodeKey("image_prompt", key.segment, key.image)))["prompt"]
    w, h = r.frame
    media = await ctx.images("TextToImageProducer").generate(prompt, style=r.image_style.value, width=w, height=h, label=_label(ctx, key),
                                                             **_seed(ctx, key))
    return Produced.media(media, prompt, **_take(ctx, key))


async def _t2v_prompt(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    override = r.overrides(key.segment).movie_direction_prompt  # type: ignore[arg-type]
    if override:
        return Produced.json({"direction": override}, source="override")
    narration = (await ctx.load_value(NodeKey("segment_narration", key.segment)))["text"]
    script = await ctx.load_value(NodeKey("script"))
    prompt = prompts.TEXT_TO_VIDEO.render(narration, script["summary"], r.image_style.value)
    result = await ctx.llm("TextToVideoPromptProducer").generate("text_to_video_prompt", prompt, DirectionPrompt, {
        "narration": narration, "summary": script["summary"], "style": r.image_style.value, "segment": key.segment,
    })
    return Produced.json({"direction": result.value.direction}, result.call, prompt, source="generated")  # type: ignore[attr-defined]


async def _t2v_clip(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    direction = (await ctx.load_value(NodeKey("text_to_video_prompt", key.segment)))["direction"]
    w, h = r.frame
    media = await ctx.video("TextToVideoProducer").text_to_video(direction, style=r.image_style.value, width=w, height=h, seconds=SEGMENT_SECONDS, label=_label(ctx, key),
                                                                 **_seed(ctx, key))
    return Produced.media(media, direction, **_take(ctx, key))


async def _i2v_prompt(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    o = r.overrides(key.segment)  # type: ignore[arg-type]
    if o.movie_direction_prompt and o.starting_image_prompt:
        return Produced.json({"direction": o.movie_direction_prompt, "starting_image_prompt": o.starting_image_prompt}, source="override")
    narration = (await ctx.load_value(NodeKey("segment_narration", key.segment)))["text"]
    script = await ctx.load_value(NodeKey("script"))
    prompt = prompts.IMAGE_TO_VIDEO.render(narration, script["summary"], r.image_style.value)
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
    media = await ctx.images("StartingImageProducer").generate(prompt, style=r.image_style.value, width=w, height=h, label=_label(ctx, key) + " · start",
                                                               **_seed(ctx, key))
    return Produced.media(media, prompt, **_take(ctx, key))


async def _i2v_clip(ctx: ProduceContext, key: NodeKey) -> Produced:
    r = ctx.request
    direction = (await ctx.load_value(NodeKey("image_to_video_prompt", key.segment)))["direction"]
    image = await ctx.load_bytes(NodeKey("starting_image", key.segment))
    w, h = r.frame
    media = await ctx.video("ImageToVideoProducer").image_to_video(image, direction, width=w, height=h, seconds=SEGMENT_SECONDS, label=_label(ctx, key),
                                                                   **_seed(ctx, key))
    return Produced.media(media, direction, **_take(ctx, key))


async def _segment_visuals(ctx: ProduceContext, key: NodeKey) -> Produced:
    """No provider call: the segment's visual clips in order, each pinned to its artifact version."""
    r = ctx.request
    assert key.segment is not None
    mode = r.mode(key.segment)
    if mode is VisualMode.image_only:
        sources = [NodeKey("segment_image", key.segment, j) for j in range(r.images_per_segment)]
    elif mode is VisualMode.video_by_text:
        sources = [NodeKey("text_to_video_clip", key.segment)]
    else:
        sources = [NodeKey("image_to_video_clip", key.segment)]
    clips, errors = [], []
    for src in sources:
        rec, failure = ctx.load_record(src), ctx.load_failure(src)
        if rec is None or failure:
            errors.append(gap_error(src, ctx.movie, failure, has_previous=rec is not None, info=ctx.failure_info(src)))
        elif (placeholder := placeholder_error(src, ctx.movie, rec.metadata)) is not None:
            errors.append(placeholder)
        if rec is None:
            continue
        clips.append({
            "asset": src.asset, "partition": src.partition_key(ctx.movie), "version": rec.version, "uri": rec.uri,
            "kind": "image" if src.asset == "segment_image" else "video",
            "width": rec.metadata.get("width"), "height": rec.metadata.get("height"), "duration_ms": rec.metadata.get("duration_ms"),
            **({"fallback": True} if rec.metadata.get("fallback") else {}),
        })
    return Produced.json({"segment": key.segment, "mode": mode.value, "clips": clips, "errors": errors})


async def _timeline(ctx: ProduceContext, key: NodeKey) -> Produced:
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
    **RENDER_PRODUCE,
}

assert set(PRODUCE) == set(ARTIFACTS), "every artifact type needs exactly one produce function"
