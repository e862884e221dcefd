"""User inputs and input versions: the value of each user-input partition, and what each built
partition consumed, per dependency asset, as one hash.

When a partition is built, the hash of the data versions it read from each dependency asset (its
upstream artifact partitions, and the user-input values) is recorded in its materialization as
``dagster/input_data_version/<asset>``. A partition is stale when recomputing those hashes from the
current state gives a different answer: the same rule Dagster applies per partition, computed here
in one pass from the catalog, without a query per partition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from movie_assets.domain.blueprint import (
    ARTIFACTS,
    FILE_INPUTS,
    INPUTS,
    OPTIONAL_READS,
    TAKE_INPUTS,
    TAKES,
    Blueprint,
    Level,
    NodeKey,
    expand,
)
from movie_assets.domain.request import DEFAULT_FPS, MovieRequest, OwnFile, VideoMode, VisualMode

INPUT_NAMES: tuple[str, ...] = tuple(INPUTS)


def value_version(value: dict) -> str:
    """Data version of a user input's value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _combine(parts: list[tuple[str, str | None]]) -> str:
    text = "\n".join(f"{k}={v or 'missing'}" for k, v in sorted(parts))
    return hashlib.sha256(text.encode()).hexdigest()


def input_versions(blueprint: Blueprint, key: NodeKey, artifact_version: Callable[[NodeKey], str | None]) -> dict[str, str]:
    """Per dependency asset of ``key``: a hash of the versions it reads now."""
    request: MovieRequest = blueprint.request
    node = blueprint.nodes[key]
    decl = ARTIFACTS[key.asset]
    out: dict[str, str] = {}
    for dep_asset in decl.deps:
        if dep_asset in OPTIONAL_READS and not any(d.asset == dep_asset for d in node.deps):
            continue  # the look of a movie made without one, or of an off-look segment: not read
        out[dep_asset] = _combine([(str(d), artifact_version(d)) for d in node.deps if d.asset == dep_asset])
    for name in decl.inputs:
        level = INPUTS[name].level
        segment = key.segment if level is not Level.movie else None
        image = key.image if level is Level.image else None
        value = input_values(request, name, segment, image)
        if is_default_read(name, value):
            continue  # take 0, a segment that carries the look: read as before they existed (same versions)
        out[name] = value_version(value)
    return out


def is_default_read(name: str, value: dict) -> bool:
    """Whether this input value is one left out of input versions: a take input at the first take (0), a
    segment that carries the look."""
    if name in TAKE_INPUTS:
        return not value.get("take")
    if name in FILE_INPUTS:
        return not value.get("sha256")
    if name == "video_mode":
        return not value.get("text")
    return name == "shot_look" and not value.get("off_look")


def changed_inputs(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """The dependency assets whose consumed versions differ (all of them when nothing was recorded). An
    optional read (take 0, the look...) is left out when not read (``input_versions``): one recorded
    ("none": not read) has changed when it is left out now."""
    if not recorded:
        return sorted(current)
    changed = {name for name in current if recorded.get(name) != current[name]}
    changed |= {name for name in OPTIONAL_READS if name not in current and recorded.get(name, "none") != "none"}
    return sorted(changed)


def take_of(request: MovieRequest, key: NodeKey) -> int:
    """The take of a node the request asks for (0: the first; also for artifacts without takes)."""
    if key.asset not in TAKES:
        return 0
    return int(input_values(request, TAKES[key.asset], key.segment, key.image)["take"])


def take_path(key: NodeKey) -> str:
    """The request path (an edit path) of a node's take: ``segments.1.image_takes.2``, ``music_take``."""
    if key.asset not in TAKES:
        raise ValueError(f"{key}: not an artifact with takes; allowed: {', '.join(sorted(TAKES))}")
    if key.segment is None:
        return "music_take"
    if key.image is not None:
        return f"segments.{key.segment}.image_takes.{key.image}"
    return f"segments.{key.segment}.{TAKES[key.asset]}"


def build_key(consumed: dict[str, str], code_version: str) -> str:
    """The build cache's key of an artifact: exactly what it was made from."""
    return hashlib.sha256(json.dumps([consumed, code_version], sort_keys=True).encode()).hexdigest()[:32]


def _file(own: OwnFile | None) -> dict:
    """A file input's value: the content hash of the user's file (none: generated). Only the bytes count: the
    same file from another path or URL changes nothing."""
    return {"sha256": own.sha256 if own is not None else None}


def input_values(request: MovieRequest, name: str, segment: int | None = None, image: int | None = None) -> dict:
    """The value of one user input for one partition, as versioned data."""
    o = request.overrides(segment) if segment is not None else None
    values: dict[str, object] = {
        "inquiry": lambda: {
            "inquiry_prompt": request.inquiry_prompt,
            "duration_seconds": request.duration_seconds,
            "audience": request.audience.value,
            "language": request.language.value,
        },
        "voice": lambda: {"voice_id": request.voice_id, "emotion": request.emotion, "language": request.language.value},
        "style": lambda: {"image_style": request.image_style.value},
        "frame": lambda: {"size": request.picture_size.value, "aspect_ratio": request.aspect_ratio.value},
        "duration": lambda: {"duration_seconds": request.duration_seconds},
        "assembly": lambda: {
            "assembly_strategy": request.assembly_strategy.value,
            "transition": request.transition.value if request.transition else None,
            "segment_transitions": {str(i): o.transition.value for i, o in sorted(request.segments.items()) if o.transition},
            # The timeline's frame rate, where a quality makes it other than 30 (so versions made before
            # qualities existed hold).
            **({"fps": request.fps} if request.fps != DEFAULT_FPS else {}),
        },
        "render": lambda: {"preset": request.preset, "frame": list(request.frame)},
        "music_override": lambda: {"music_prompt": request.music_prompt},
        "narration_override": lambda: {"narration": o.narration if o else None},
        "segment_layout": lambda: {
            "mode": request.mode(segment or 0).value,
            "images_per_segment": request.images_per_segment if request.mode(segment or 0) is VisualMode.image_only else 0,
        },
        "direction_override": lambda: {"movie_direction_prompt": o.movie_direction_prompt if o else None},
        "starting_image_override": lambda: {"starting_image_prompt": o.starting_image_prompt if o else None},
        "image_prompt_override": lambda: {"image_prompt": o.image_prompts.get(image) if o and image is not None else None},
        "look_override": lambda: {"look": request.look.model_dump(exclude_none=True) if request.look else None},
        "sources": lambda: {"sources": list(request.sources)},
        "research_override": lambda: {"facts": {str(i): text for i, text in sorted(request.facts.items())}},
        "shot_look": lambda: {"off_look": bool(o and o.look is False)},
        # The clip takes the text too (TI2V) when asked (text_and_image) or allowed (auto); which call auto
        # makes then follows from the routed model, part of the clip's code version.
        "video_mode": lambda: {"text": request.video_mode_of(segment or 0) in (VideoMode.text_and_image, VideoMode.auto)},
        "music_take": lambda: {"take": request.music_take or 0},
        "audio_take": lambda: {"take": (o.audio_take if o else None) or 0},
        "clip_take": lambda: {"take": (o.clip_take if o else None) or 0},
        "starting_image_take": lambda: {"take": (o.starting_image_take if o else None) or 0},
        "image_take": lambda: {"take": o.image_takes.get(image, 0) if o and image is not None else 0},
        "music_file": lambda: _file(request.music_file),
        "audio_file": lambda: _file(o.audio_file if o else None),
        "clip_file": lambda: _file(o.clip_file if o else None),
        "starting_image_file": lambda: _file(o.starting_image_file if o else None),
        "image_file": lambda: _file(o.image_files.get(image) if o and image is not None else None),
    }
    return values[name]()  # type: ignore[operator]


def input_partitions(request: MovieRequest, name: str) -> list[tuple[int | None, int | None]]:
    """The (segment, image) partitions of an input that this request uses: for a take input, those of
    the artifacts it has (an image-only segment's images have an ``image_take``, a video segment a
    ``clip_take``), so a registration observes no take partition nothing reads."""
    if name in TAKE_INPUTS:
        return sorted({(k.segment, k.image) for k in expand(request).nodes if TAKES.get(k.asset) == name},
                      key=lambda p: (p[0] or 0, p[1] or 0))
    level = INPUTS[name].level
    if level is Level.movie:
        return [(None, None)]
    if level is Level.segment:
        return [(i, None) for i in range(request.segment_count)]
    return [(i, j) for i in range(request.segment_count) for j in range(request.images_per_segment)]
