"""Recipes: how each artifact partition is made from what it reads (through one provider call, or none
for a derived artifact).

Plain async functions, testable without Dagster. Each gets a ``RecipeContext`` (the request, the
provider clients and access to upstream artifacts) and returns a ``Produced``: the bytes to store and
the metadata a person wants to see. User overrides win over generated prompts without a call.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from movie_assets.builder.context import Produced, RecipeContext
from movie_assets.builder.render.recipes import RENDER_RECIPES
from movie_assets.builder.timeline import assemble_timeline, gap_error, placeholder_error
from movie_assets.domain import look as looks
from movie_assets.domain import prompts
from movie_assets.domain.blueprint import ARTIFACTS, OWN_FILES, NodeKey, own_file
from movie_assets.domain.inputs import take_of
from movie_assets.domain.request import (
    I2V,
    MAX_FACTS,
    SEGMENT_MS,
    SEGMENT_SECONDS,
    TI2V,
    OwnFile,
    VisualMode,
    source_kind,
    topic_of,
    video_call,
)
from movie_assets.domain.words import estimated, onto_text, script_words
from resources.providers.base import (
    DirectionPrompt,
    ErrorCategory,
    ImagePrompts,
    ImageToVideoPrompts,
    Look,
    MalformedAnswer,
    MusicPrompt,
    ProviderError,
    Research,
    Script,
    research_problems,
)
from resources.providers.capabilities import video_capability
from resources.runtime.own_media import audio_to_length, clip_to_segment, picture_to_frame


def _seed(ctx: RecipeContext, key: NodeKey) -> dict[str, int]:
    """The node's take as the provider's ``seed``, for a re-roll only: take 0 makes exactly the call it
    always made (no seed argument), so what existed before takes stays valid."""
    take = take_of(ctx.request, key)
    return {"seed": take} if take else {}


def _take(ctx: RecipeContext, key: NodeKey) -> dict[str, int]:
    """The take as metadata (kept in the build cache entry too, so ``moviegen takes`` lists it)."""
    take = take_of(ctx.request, key)
    return {"take": take} if take else {}


def _yours(own: OwnFile) -> dict[str, Any]:
    """What an artifact made from the user's file says about it (its name, never the path or URL it came from)."""
    return {"source": "your file", "file": own.name, "file_sha256": own.sha256, "file_format": own.format}


async def _own(ctx: RecipeContext, key: NodeKey) -> Produced | None:
    """The slot's artifact made from the user's own file (no call), fitted to the slot: a picture to the frame,
    a clip to the frame and the segment, narration cut at the segment, music fitted to the movie; None: the
    slot has no file of the user's."""
    own = own_file(ctx.request, key)
    if own is None:
        return None
    assert ctx.own_bytes is not None, "a context without the store's files of the user's"
    data = await ctx.own_bytes(own)
    r = ctx.request
    w, h = r.frame
    if key.asset in ("segment_image", "starting_image"):
        png = await ctx.local_work(picture_to_frame, data, w, h)
        return Produced(png, "png", "image/png", meta=_yours(own), width=w, height=h)
    if key.asset in ("text_to_video_clip", "image_to_video_clip"):
        mp4 = await ctx.local_work(clip_to_segment, data, w, h, SEGMENT_SECONDS)
        return Produced(mp4, "mp4", "video/mp4", meta=_yours(own), width=w, height=h, duration_ms=SEGMENT_MS)
    seconds = r.duration_seconds if key.asset == "music" else SEGMENT_SECONDS
    mp3, ms = await ctx.local_work(audio_to_length, data, seconds, key.asset == "music")
    return Produced(mp3, "mp3", "audio/mpeg", meta=_yours(own), duration_ms=ms)


async def _research(ctx: RecipeContext, key: NodeKey) -> Produced:
    """The research before the script. The answer to this very question (the question and the user's sources)
    is kept beside the user's edited facts: a fact edit rebuilds the research without asking again."""
    r = ctx.request
    prompt = prompts.RESEARCH.render(r.inquiry_prompt, r.audience.value, r.language.value, r.sources)
    sources = [{"n": n, "kind": source_kind(s), ("url" if source_kind(s) == "url" else "text"): s}
               for n, s in enumerate(r.sources, start=1)]
    source = "edited" if r.facts else "generated"
    asked = _question(ctx, key, prompt)
    before = await _answered(ctx, key, asked, "generated")
    if before is not None and isinstance(before["generated"], dict):
        generated = before["generated"]
        return Produced.json(_researched(generated, sources, r.facts, bool(before.get("generic"))), None, prompt,
                             source=source, answer="asked before", asked=asked, facts=len(generated["facts"]))
    result = await ctx.llm("ResearchProducer").generate("research", prompt, Research, {
        "inquiry_prompt": r.inquiry_prompt, "audience": r.audience.value, "language": r.language.value,
        "sources": list(r.sources), "max_facts": MAX_FACTS,
    })
    value = Research.model_validate(result.value.model_dump())
    problems = research_problems(value, len(r.sources), MAX_FACTS)
    if problems:
        raise MalformedAnswer(f"{result.call.provider} ({result.call.model}) answered with a research that cannot be used: "
                              + "; ".join(problems[:5]), provider=result.call.provider)
    generated = value.model_dump()
    return Produced.json(_researched(generated, sources, r.facts, result.call.provider == "offline"), result.call, prompt,
                         source=source, asked=asked, facts=len(generated["facts"]))


def _researched(generated: dict[str, Any], sources: list[dict[str, Any]], facts: dict[int, str], generic: bool) -> dict[str, Any]:
    """The research a movie uses: the generated one with the user's facts over it (by index; past the end: added,
    ``edited``), the user's sources it cites, and the answer as generated (so a fact edit asks nothing again)."""
    merged = [dict(f) for f in generated["facts"]]
    for i, text in sorted(facts.items()):
        fact = {"text": text, "source": 0, "edited": True}
        if i < len(merged):
            merged[i] = fact
        else:
            merged.append(fact)
    return {"summary": generated["summary"], "facts": merged, "dates": generated["dates"], "names": generated["names"],
            "references": generated["references"], "sources": sources, "generic": generic, "generated": generated}


async def _research_of(ctx: RecipeContext) -> dict[str, Any] | None:
    """The movie's research (None: a movie made without it)."""
    return await ctx.need(NodeKey("research")) if ctx.request.research else None


async def _script(ctx: RecipeContext, key: NodeKey) -> Produced:
    r = ctx.request
    research = await _research_of(ctx)
    prompt = prompts.SCRIPT.render(r.inquiry_prompt, r.segment_count, r.audience.value, r.language.value, research)
    result = await ctx.llm("ScriptProducer").generate("script", prompt, Script, {
        "inquiry_prompt": r.inquiry_prompt, "n": r.segment_count, "audience": r.audience.value, "language": r.language.value,
        **({"research": research} if research else {}),
    })
    script = Script.model_validate(result.value.model_dump())
    if len(script.narration) != r.segment_count:
        raise ProviderError(f"the script has {len(script.narration)} segments, expected {r.segment_count}", provider=result.call.provider)
    return Produced.json(script.model_dump(), result.call, prompt, title=script.title, summary=script.summary)


async def _look(ctx: RecipeContext, key: NodeKey) -> Produced:
    r = ctx.request
    if r.look is not None and r.look.complete:
        return Produced.json(looks.merged(None, r.look), source="override")
    script = await ctx.need(NodeKey("script"))
    research = await _research_of(ctx)
    prompt = prompts.LOOK.render(script["title"], script["summary"], r.image_style.value, script["narration"], research)
    source = "edited" if r.look else "generated"
    # The look as written for this very question is kept beside the user's fields: an edit of one field
    # rebuilds the look without asking again, and only a new question (a new script or style) asks again.
    asked = _question(ctx, key, prompt)
    before = await _answered(ctx, key, asked, "generated")
    if before is not None and isinstance(before["generated"], dict):
        generated = before["generated"]
        return Produced.json(looks.merged(generated, r.look) | {"generated": generated}, None, prompt,
                             source=source, answer="asked before", asked=asked)
    result = await ctx.llm("LookProducer").generate("look", prompt, Look, {
        "title": script["title"], "summary": script["summary"], "style": r.image_style.value,
        "topic": topic_of(r.inquiry_prompt), "narration": script["narration"],
    })
    generated = looks.tidy(result.value.model_dump())
    return Produced.json(looks.merged(generated, r.look) | {"generated": generated}, result.call, prompt, source=source, asked=asked)


async def _look_of(ctx: RecipeContext, segment: int) -> tuple[dict[str, Any] | None, bool]:
    """The look a segment's shots carry (None: the movie has none, or the segment is off-look), and
    whether the segment is off-look in a movie that has one."""
    r = ctx.request
    if r.carries_look(segment):
        return await ctx.need(NodeKey("look")), False
    return None, r.consistent_look


def _carried(text: str, look: dict[str, Any], picture: NodeKey | None) -> dict[str, Any]:
    """What of the look a shot carries. Reference pictures only for a shot that becomes a picture
    (``picture``; a text-to-video clip takes none), and never its own (approving a picture leaves its own
    prompt, and so the picture, as they are)."""
    carried = looks.carried(text, look)
    references = [r for r in carried.pop("references", []) if picture is not None and r["node"] != str(picture)]
    return carried | ({"references": references} if references else {})


def _shot(text: str, look: dict[str, Any] | None, off_look: bool, picture: NodeKey | None) -> dict[str, Any]:
    """A visual prompt's value: the prompt with the look (and the shot and the look it carries), or the
    shot as written for an off-look segment. A movie made without a look keeps the value it always had:
    the prompt alone. ``picture``: the node made from it."""
    if look is not None:
        return {"prompt": looks.with_look(text, look), "shot": text, "look": _carried(text, look, picture)}
    if off_look:
        return {"prompt": text, "shot": text, "off_look": True}
    return {"prompt": text}


def _asked(asked: str | None) -> dict[str, str]:
    """The question as metadata (only where a shot is kept for reuse: a movie with a look)."""
    return {"asked": asked} if asked else {}


def _question(ctx: RecipeContext, key: NodeKey, question: str) -> str:
    """What identifies the question a shot-writing LLM answers: the artifact's code version (its template
    and the model it is routed to) and the question itself."""
    return hashlib.sha256(f"{ctx.versions[key.asset]}\n{question}".encode()).hexdigest()[:24]


async def _answered(ctx: RecipeContext, key: NodeKey, asked: str, field: str = "shot") -> dict[str, Any] | None:
    """The node's current value when it answers this very question (its metadata's ``asked``; None: it
    does not, or there is none). A look edit rebuilds every visual prompt, but asks the LLM nothing it
    asked before: the same shot comes back with the new look, so the shots stay as they were and only
    the look changes. (The question is metadata, not content: a new question with the same answer
    changes nothing below.)"""
    record = ctx.record(key)
    # A degraded answer (a lighter model's, after the configured one failed) is never reused: asked again.
    if record is None or record.metadata.get("asked") != asked or record.metadata.get("degraded"):
        return None
    try:
        value = await ctx.need(key)
    except Exception:  # noqa: BLE001 - unreadable: asked again
        return None
    return value if isinstance(value, dict) and field in value else None


async def _music_prompt(ctx: RecipeContext, key: NodeKey) -> Produced:
    r = ctx.request
    if r.music_prompt:
        return Produced.json({"prompt": r.music_prompt}, source="override")
    script = await ctx.need(NodeKey("script"))
    prompt = prompts.MUSIC_PROMPT.render(script["title"], script["summary"], r.audience.value, r.duration_seconds)
    result = await ctx.llm("TextToMusicPromptProducer").generate("music_prompt", prompt, MusicPrompt, {
        "title": script["title"], "summary": script["summary"], "audience": r.audience.value, "seconds": r.duration_seconds,
    })
    return Produced.json({"prompt": result.value.prompt}, result.call, prompt, source="generated")  # type: ignore[attr-defined]


async def _music(ctx: RecipeContext, key: NodeKey) -> Produced:
    prompt = (await ctx.need(NodeKey("music_prompt")))["prompt"]
    media = await ctx.music().generate(prompt, seconds=ctx.request.duration_seconds, **_seed(ctx, key))
    return Produced.media(media, prompt, **_take(ctx, key))


async def _narration(ctx: RecipeContext, key: NodeKey) -> Produced:
    assert key.segment is not None
    override = ctx.request.overrides(key.segment).narration
    if override:
        return Produced.json({"segment": key.segment, "text": override}, source="override")
    script = await ctx.need(NodeKey("script"))
    return Produced.json({"segment": key.segment, "text": script["narration"][key.segment]}, source="script")


async def _audio(ctx: RecipeContext, key: NodeKey) -> Produced:
    r = ctx.request
    text = (await ctx.need(NodeKey("segment_narration", key.segment)))["text"]
    media = await ctx.speech().synthesize(text, voice_id=r.voice_id, language=r.language.value, emotion=r.emotion, max_ms=SEGMENT_MS,
                                          **_seed(ctx, key))
    return Produced.media(media, text, voice_id=r.voice_id, **_take(ctx, key))


async def _narration_timing(ctx: RecipeContext, key: NodeKey) -> Produced:
    """When each word of the narration is spoken, in the narration's own words (what captions show). The
    offline voice says so itself (Piper's alignments, in the audio's metadata: no call); speech from a
    provider is heard again by the transcription the timing is routed to, its words mapped onto the
    narration's. What stands in when that call fails for good: the offline voice's timings if the audio
    is an offline placeholder, else an estimate by word length (marked; the next generate calls again)."""
    assert key.segment is not None
    text = (await ctx.need(NodeKey("segment_narration", key.segment)))["text"]
    audio_key = NodeKey("segment_audio", key.segment)
    audio = ctx.record(audio_key)
    if audio is None:
        raise ProviderError(f"no narration audio for segment {key.segment} to time", provider="offline",
                            category=ErrorCategory.upstream)
    duration = int(audio.metadata.get("duration_ms") or 0)

    def value(timed: list[dict[str, Any]]) -> dict[str, Any]:
        return {"segment": key.segment, "words": timed}

    if ctx.settings.routes["NarrationTimingProducer"].provider == "offline" or ctx.placeholder:
        spoken = json.loads(audio.metadata.get("words") or "[]")
        if spoken and [w["text"] for w in spoken] == script_words(text):
            return Produced.json(value(spoken), timing=str(audio.metadata.get("word_timing") or "alignment"))
        return Produced.json(value(estimated(text, duration)), timing="estimate")
    heard = await ctx.transcriber().transcribe(await ctx.need_bytes(audio_key), ext="mp3", language=ctx.request.language.value,
                                               prompt=text)
    timed = onto_text(text, heard.words, heard.duration_ms or duration)
    return Produced.json(value(timed.words), heard.call, None, timing="transcription", heard=heard.text[:500],
                         matched=timed.matched, reheard=timed.reheard, interpolated=timed.interpolated)


async def _image_prompt(ctx: RecipeContext, key: NodeKey) -> Produced:
    r = ctx.request
    assert key.segment is not None and key.image is not None
    look, off_look = await _look_of(ctx, key.segment)
    picture = NodeKey("segment_image", key.segment, key.image)
    override = r.overrides(key.segment).image_prompts.get(key.image)
    if override:
        return Produced.json(_shot(override, look, off_look, picture), source="override")
    narration = (await ctx.need(NodeKey("segment_narration", key.segment)))["text"]
    script = await ctx.need(NodeKey("script"))
    prompt = prompts.IMAGE_PROMPTS.render(narration, script["summary"], r.image_style.value, r.images_per_segment, look)
    asked = _question(ctx, key, prompt) if r.consistent_look else None
    if asked and (before := await _answered(ctx, key, asked)) is not None:
        return Produced.json(_shot(before["shot"], look, off_look, picture), None, prompt, source="generated", answer="asked before", asked=asked)

    async def call() -> Any:
        return await ctx.llm("TextToImagePromptProducer").generate("image_prompts", prompt, ImagePrompts, {
            "narration": narration, "summary": script["summary"], "style": r.image_style.value, "m": r.images_per_segment, "segment": key.segment,
            "look": look,
        })

    result = await ctx.shared(("image_prompts", key.segment), "TextToImagePromptProducer", call)
    generated = result.value.prompts
    if len(generated) <= key.image:
        raise ProviderError(f"the LLM wrote {len(generated)} image prompts, expected {r.images_per_segment}", provider=result.call.provider)
    return Produced.json(_shot(generated[key.image], look, off_look, picture), result.call, prompt, source="generated", **_asked(asked))


def _label(ctx: RecipeContext, key: NodeKey) -> str:
    label = f"Segment {key.segment:02d} · Image {key.image}" if key.image is not None else f"Segment {key.segment:02d}"
    return label + (" · placeholder" if ctx.placeholder else "")


async def _references(ctx: RecipeContext, value: dict[str, Any]) -> dict[str, Any]:
    """The approved reference pictures of the recurring characters and places this shot names (its prompt
    carries them, never its own: ``_carried``), as the images provider's ``references``."""
    pinned = (value.get("look") or {}).get("references", [])
    if not pinned or ctx.load_version is None:
        return {}
    return {"references": [await ctx.load_version(NodeKey.parse(r["node"]), r["version"]) for r in pinned]}


async def _segment_image(ctx: RecipeContext, key: NodeKey) -> Produced:
    r = ctx.request
    value = await ctx.need(NodeKey("image_prompt", key.segment, key.image))
    prompt = value["prompt"]
    w, h = ctx.frame
    media = await ctx.images("TextToImageProducer").generate(prompt, style=r.image_style.value, width=w, height=h, label=_label(ctx, key),
                                                             **_seed(ctx, key), **await _references(ctx, value))
    return Produced.media(media, prompt, **_take(ctx, key))


async def _t2v_prompt(ctx: RecipeContext, key: NodeKey) -> Produced:
    r = ctx.request
    assert key.segment is not None
    look, off_look = await _look_of(ctx, key.segment)
    override = r.overrides(key.segment).movie_direction_prompt
    if override:
        return Produced.json(_direction(override, look, off_look), source="override")
    narration = (await ctx.need(NodeKey("segment_narration", key.segment)))["text"]
    script = await ctx.need(NodeKey("script"))
    prompt = prompts.TEXT_TO_VIDEO.render(narration, script["summary"], r.image_style.value, look)
    asked = _question(ctx, key, prompt) if r.consistent_look else None
    if asked and (before := await _answered(ctx, key, asked)) is not None:
        return Produced.json(_direction(before["shot"], look, off_look), None, prompt, source="generated", answer="asked before", asked=asked)
    result = await ctx.llm("TextToVideoPromptProducer").generate("text_to_video_prompt", prompt, DirectionPrompt, {
        "narration": narration, "summary": script["summary"], "style": r.image_style.value, "segment": key.segment, "look": look,
    })
    return Produced.json(_direction(result.value.direction, look, off_look), result.call, prompt,  # type: ignore[attr-defined]
                         source="generated", **_asked(asked))


def _direction(text: str, look: dict[str, Any] | None, off_look: bool) -> dict[str, Any]:
    """A text-to-video prompt's value: ``direction`` is what the video provider gets (with the look)."""
    value = _shot(text, look, off_look, None)  # a text-to-video clip takes no reference picture
    return {"direction": value.pop("prompt"), **value}


async def _t2v_clip(ctx: RecipeContext, key: NodeKey) -> Produced:
    r = ctx.request
    direction = (await ctx.need(NodeKey("text_to_video_prompt", key.segment)))["direction"]
    w, h = ctx.frame
    media = await ctx.video("TextToVideoProducer").text_to_video(direction, style=r.image_style.value, width=w, height=h, seconds=SEGMENT_SECONDS, label=_label(ctx, key),
                                                                 **_seed(ctx, key))
    return Produced.media(media, direction, **_take(ctx, key))


async def _i2v_prompt(ctx: RecipeContext, key: NodeKey) -> Produced:
    r = ctx.request
    assert key.segment is not None
    look, off_look = await _look_of(ctx, key.segment)
    picture = NodeKey("starting_image", key.segment)
    o = r.overrides(key.segment)
    if o.movie_direction_prompt and o.starting_image_prompt:
        return Produced.json(_i2v(o.movie_direction_prompt, o.starting_image_prompt, look, off_look, picture),
                             source="override")
    narration = (await ctx.need(NodeKey("segment_narration", key.segment)))["text"]
    script = await ctx.need(NodeKey("script"))
    prompt = prompts.IMAGE_TO_VIDEO.render(narration, script["summary"], r.image_style.value, look)
    asked = _question(ctx, key, prompt) if r.consistent_look else None
    if asked and (before := await _answered(ctx, key, asked)) is not None and "direction_shot" in before:
        return Produced.json(_i2v(o.movie_direction_prompt or before["direction_shot"], o.starting_image_prompt or before["shot"],
                                  look, off_look, picture), None, prompt, source="generated", answer="asked before", asked=asked)
    result = await ctx.llm("ImageToVideoPromptProducer").generate("image_to_video_prompt", prompt, ImageToVideoPrompts, {
        "narration": narration, "summary": script["summary"], "style": r.image_style.value, "segment": key.segment, "look": look,
    })
    v: ImageToVideoPrompts = result.value  # type: ignore[assignment]
    return Produced.json(_i2v(o.movie_direction_prompt or v.direction, o.starting_image_prompt or v.starting_image_prompt, look, off_look, picture),
                         result.call, prompt, source="generated", **_asked(asked))


def _i2v(direction: str, starting: str, look: dict[str, Any] | None, off_look: bool, picture: NodeKey) -> dict[str, Any]:
    """An image-to-video prompt's value: the direction and the starting image prompt, each with the look
    (the shots they were made from kept beside them when the movie has a look)."""
    if look is not None:
        return {"direction": looks.with_look(direction, look), "starting_image_prompt": looks.with_look(starting, look),
                "shot": starting, "direction_shot": direction, "look": _carried(f"{starting} {direction}", look, picture)}
    if off_look:
        return {"direction": direction, "starting_image_prompt": starting, "shot": starting, "direction_shot": direction,
                "off_look": True}
    return {"direction": direction, "starting_image_prompt": starting}


async def _starting_image(ctx: RecipeContext, key: NodeKey) -> Produced:
    r = ctx.request
    value = await ctx.need(NodeKey("image_to_video_prompt", key.segment))
    prompt = value["starting_image_prompt"]
    w, h = ctx.frame
    media = await ctx.images("StartingImageProducer").generate(prompt, style=r.image_style.value, width=w, height=h, label=_label(ctx, key) + " · start",
                                                               **_seed(ctx, key), **await _references(ctx, value))
    return Produced.media(media, prompt, **_take(ctx, key))


def clip_call(ctx: RecipeContext, segment: int, direction: str) -> str:
    """The call an image-to-video segment's clip makes: ``ti2v`` or ``i2v`` (request.video_call: the mode
    asked, the size, whether there is a prompt, and what the routed model makes)."""
    client = ctx.video("ImageToVideoProducer")
    capability = video_capability(getattr(client, "name", ""), getattr(client, "model", ""))
    modes, sizes = (capability.modes, frozenset(capability.sizes)) if capability else (frozenset(), frozenset())
    r = ctx.request
    return video_call(r.video_mode_of(segment), r.picture_size.value, direction, modes, sizes)


async def _i2v_clip(ctx: RecipeContext, key: NodeKey) -> Produced:
    r = ctx.request
    assert key.segment is not None
    value = await ctx.need(NodeKey("image_to_video_prompt", key.segment))
    direction = value["direction"]
    image = await ctx.need_bytes(NodeKey("starting_image", key.segment))
    w, h = ctx.frame
    video = ctx.video("ImageToVideoProducer")
    if clip_call(ctx, key.segment, direction) == TI2V:
        # TI2V: the text is the whole shot, what the starting image shows and how it moves, with the look.
        text = f"{value['starting_image_prompt']} {direction}"
        media = await video.text_image_to_video(image, text, style=r.image_style.value, width=w, height=h, seconds=SEGMENT_SECONDS,
                                                label=_label(ctx, key), **_seed(ctx, key))
        return Produced.media(media, text, video_mode=TI2V, **_take(ctx, key))
    media = await video.image_to_video(image, direction, width=w, height=h, seconds=SEGMENT_SECONDS, label=_label(ctx, key),
                                       **_seed(ctx, key))
    return Produced.media(media, direction, video_mode=I2V, **_take(ctx, key))


async def _segment_visuals(ctx: RecipeContext, key: NodeKey) -> Produced:
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
        rec, failure = ctx.record(src), ctx.failure(src)
        if rec is None or failure:
            errors.append(gap_error(src, ctx.movie, failure, has_previous=rec is not None, info=ctx.failure_detail(src)))
        elif (placeholder := placeholder_error(src, ctx.movie, rec.metadata)) is not None:
            errors.append(placeholder)
        if rec is None:
            continue
        clips.append({
            "asset": src.asset, "partition": src.partition_key(ctx.movie), "version": rec.version, "uri": rec.uri,
            "kind": "image" if src.asset == "segment_image" else "video",
            "width": rec.metadata.get("width"), "height": rec.metadata.get("height"), "duration_ms": rec.metadata.get("duration_ms"),
            **({"fallback": True} if rec.metadata.get("fallback") else {}),
            **({"degraded": f"{rec.metadata.get('degraded_from')} -> {rec.metadata.get('degraded_to')}"}
               if rec.metadata.get("degraded") else {}),
        })
    return Produced.json({"segment": key.segment, "mode": mode.value, "clips": clips, "errors": errors})


async def _timeline(ctx: RecipeContext, key: NodeKey) -> Produced:
    timeline = await assemble_timeline(ctx)
    return Produced.json(timeline, None, None, clips=sum(len(t["clips"]) for t in timeline["tracks"]), errors=len(timeline["errors"]))


RECIPES: dict[str, Callable[[RecipeContext, NodeKey], Awaitable[Produced]]] = {
    "research": _research,
    "script": _script,
    "look": _look,
    "music_prompt": _music_prompt,
    "music": _music,
    "segment_narration": _narration,
    "segment_audio": _audio,
    "narration_timing": _narration_timing,
    "image_prompt": _image_prompt,
    "segment_image": _segment_image,
    "text_to_video_prompt": _t2v_prompt,
    "text_to_video_clip": _t2v_clip,
    "image_to_video_prompt": _i2v_prompt,
    "starting_image": _starting_image,
    "image_to_video_clip": _i2v_clip,
    "segment_visuals": _segment_visuals,
    "timeline": _timeline,
    **RENDER_RECIPES,
}



def _yours_first(recipe: Callable[[RecipeContext, NodeKey], Awaitable[Produced]]) -> Callable[[RecipeContext, NodeKey], Awaitable[Produced]]:
    """A slot's recipe that makes the user's own file instead, for a partition the request names one for."""

    @functools.wraps(recipe)  # the UI's code reference still names the recipe
    async def produce(ctx: RecipeContext, key: NodeKey) -> Produced:
        yours = await _own(ctx, key)
        return yours if yours is not None else await recipe(ctx, key)

    return produce


RECIPES.update({asset: _yours_first(RECIPES[asset]) for asset in OWN_FILES})

assert set(RECIPES) == set(ARTIFACTS), "every artifact type needs exactly one recipe"
