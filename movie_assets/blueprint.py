"""The movie blueprint, declared as data, and its expansion into the exact artifacts of one request.

Five subgraphs (MusicGeneration, AudioNarrationGeneration, ImageOnly, VideoByText, VideoByImage) are
composed under the UseVideo / IsImageToVideo conditions. Cardinalities stay symbolic (1, n, n·m)
until ``expand`` turns them into nodes for one request: one node per asset partition to build.
User inputs are annotations on the artifacts that read them, not nodes.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from .request import MovieRequest, VisualMode


class Level(enum.StrEnum):
    movie = "movie"
    segment = "segment"
    image = "image"


class Cardinality(enum.StrEnum):
    one = "1"
    n = "n"
    nm = "n·m"


class ProviderKind(enum.StrEnum):
    llm = "llm"
    speech = "speech"
    image = "image"
    video = "video"
    music = "music"


@dataclass(frozen=True)
class ProducerDecl:
    """One provider-calling producer; ``latency_s`` is the brief's median latency of one call."""

    name: str
    kind: ProviderKind
    latency_s: float
    cardinality: Cardinality
    description: str


@dataclass(frozen=True)
class InputDecl:
    """A user input: request fields that one or more artifacts read, versioned per partition."""

    name: str
    level: Level
    fields: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class ArtifactDecl:
    """An artifact type: one Dagster asset. ``producer`` is None for derived artifacts (no call)."""

    name: str
    level: Level
    producer: str | None
    deps: tuple[str, ...]
    inputs: tuple[str, ...]
    media: str
    description: str
    code_version: str = "1"


@dataclass(frozen=True)
class Subgraph:
    name: str
    scope: Level
    condition: VisualMode | None
    artifacts: tuple[str, ...]


PRODUCERS: dict[str, ProducerDecl] = {
    p.name: p
    for p in [
        ProducerDecl("ScriptProducer", ProviderKind.llm, 50, Cardinality.one, "title, summary and narration"),
        ProducerDecl("TextToMusicPromptProducer", ProviderKind.llm, 5, Cardinality.one, "music prompt"),
        ProducerDecl("MusicProducer", ProviderKind.music, 10, Cardinality.one, "music track"),
        ProducerDecl("AudioProducer", ProviderKind.speech, 10, Cardinality.n, "narration audio"),
        ProducerDecl("TextToImagePromptProducer", ProviderKind.llm, 5, Cardinality.n, "m image prompts per call"),
        ProducerDecl("TextToImageProducer", ProviderKind.image, 30, Cardinality.nm, "segment image"),
        ProducerDecl("TextToVideoPromptProducer", ProviderKind.llm, 5, Cardinality.n, "movie direction prompt"),
        ProducerDecl("TextToVideoProducer", ProviderKind.video, 90, Cardinality.n, "text-to-video clip"),
        ProducerDecl("ImageToVideoPromptProducer", ProviderKind.llm, 5, Cardinality.n, "direction and starting image prompt"),
        ProducerDecl("StartingImageProducer", ProviderKind.image, 30, Cardinality.n, "starting image"),
        ProducerDecl("ImageToVideoProducer", ProviderKind.video, 120, Cardinality.n, "image-to-video clip"),
    ]
}

INPUTS: dict[str, InputDecl] = {
    i.name: i
    for i in [
        InputDecl("inquiry", Level.movie, ("inquiry_prompt", "duration_seconds", "audience", "language"), "the question, length, audience and language"),
        InputDecl("voice", Level.movie, ("voice_id", "emotion", "language"), "narrator voice, emotion and language"),
        InputDecl("style", Level.movie, ("image_style",), "image style"),
        InputDecl("frame", Level.movie, ("size", "aspect_ratio"), "frame size and aspect ratio"),
        InputDecl("duration", Level.movie, ("duration_seconds",), "movie length"),
        InputDecl("assembly", Level.movie, ("assembly_strategy",), "timeline assembly strategy"),
        InputDecl("music_override", Level.movie, ("music_prompt",), "music prompt override"),
        InputDecl("narration_override", Level.segment, ("segments.i.narration",), "narration override"),
        InputDecl("segment_layout", Level.segment, ("use_video", "is_image_to_video", "images_per_segment"), "visual mode and image count of the segment"),
        InputDecl("direction_override", Level.segment, ("segments.i.movie_direction_prompt",), "movie direction prompt override"),
        InputDecl("starting_image_override", Level.segment, ("segments.i.starting_image_prompt",), "starting image prompt override"),
        InputDecl("image_prompt_override", Level.image, ("segments.i.image_prompts.j",), "image prompt override"),
    ]
}

_VISUAL_ARTIFACTS = ("segment_image", "text_to_video_clip", "image_to_video_clip")

ARTIFACTS: dict[str, ArtifactDecl] = {
    a.name: a
    for a in [
        ArtifactDecl("script", Level.movie, "ScriptProducer", (), ("inquiry",), "json", "MovieTitle, MovieSummary and the narration of every segment"),
        ArtifactDecl("music_prompt", Level.movie, "TextToMusicPromptProducer", ("script",), ("inquiry", "music_override"), "json", "MusicPrompt (the music_prompt override wins)"),
        ArtifactDecl("music", Level.movie, "MusicProducer", ("music_prompt",), ("duration",), "mp3", "MusicTrack: a music bed of the movie's length"),
        ArtifactDecl("segment_narration", Level.segment, None, ("script",), ("narration_override",), "json", "SegmentNarration (the narration override wins)"),
        ArtifactDecl("segment_audio", Level.segment, "AudioProducer", ("segment_narration",), ("voice",), "mp3", "SegmentAudio: the spoken narration of one segment"),
        ArtifactDecl("image_prompt", Level.image, "TextToImagePromptProducer", ("segment_narration", "script"), ("style", "image_prompt_override"), "json", "SegmentImagePrompt (the image prompt override wins)"),
        ArtifactDecl("segment_image", Level.image, "TextToImageProducer", ("image_prompt",), ("style", "frame"), "png", "SegmentImage: one picture of an image-only segment"),
        ArtifactDecl("text_to_video_prompt", Level.segment, "TextToVideoPromptProducer", ("segment_narration", "script"), ("style", "direction_override"), "json", "TextToMovieDirectionPrompt (the movie_direction_prompt override wins)"),
        ArtifactDecl("text_to_video_clip", Level.segment, "TextToVideoProducer", ("text_to_video_prompt",), ("style", "frame"), "mp4", "SegmentVideo made from text"),
        ArtifactDecl("image_to_video_prompt", Level.segment, "ImageToVideoPromptProducer", ("segment_narration", "script"), ("style", "direction_override", "starting_image_override"), "json", "ImageToMovieDirectionPrompt and StartingImagePrompt (overrides win)"),
        ArtifactDecl("starting_image", Level.segment, "StartingImageProducer", ("image_to_video_prompt",), ("style", "frame"), "png", "StartingImage of an image-to-video segment"),
        ArtifactDecl("image_to_video_clip", Level.segment, "ImageToVideoProducer", ("starting_image", "image_to_video_prompt"), ("style", "frame"), "mp4", "SegmentVideo animated from the starting image"),
        ArtifactDecl("segment_visuals", Level.segment, None, _VISUAL_ARTIFACTS, ("segment_layout",), "json", "The visual clips of one segment, in order (aggregates up to 5 images so the timeline reads at most 30 partitions)"),
        ArtifactDecl("timeline", Level.movie, None, ("script", "music", "segment_narration", "segment_audio", "segment_visuals"), ("frame", "duration", "assembly"), "json", "The Remotion timeline of the movie"),
    ]
}

SUBGRAPHS: tuple[Subgraph, ...] = (
    Subgraph("Script", Level.movie, None, ("script",)),
    Subgraph("MusicGeneration", Level.movie, None, ("music_prompt", "music")),
    Subgraph("AudioNarrationGeneration", Level.segment, None, ("segment_narration", "segment_audio")),
    Subgraph("ImageOnly", Level.segment, VisualMode.image_only, ("image_prompt", "segment_image")),
    Subgraph("VideoByText", Level.segment, VisualMode.video_by_text, ("text_to_video_prompt", "text_to_video_clip")),
    Subgraph("VideoByImage", Level.segment, VisualMode.video_by_image, ("image_to_video_prompt", "starting_image", "image_to_video_clip")),
    Subgraph("Assembly", Level.segment, None, ("segment_visuals",)),
    Subgraph("Timeline", Level.movie, None, ("timeline",)),
)

# Artifacts in an order where every artifact comes after its dependencies.
ARTIFACT_ORDER: tuple[str, ...] = tuple(ARTIFACTS)


@dataclass(frozen=True, order=True)
class NodeKey:
    """One artifact partition of a movie: ``segment_image[03_2]``, ``segment_audio[04]``, ``script``."""

    asset: str
    segment: int | None = None
    image: int | None = None

    @property
    def level(self) -> Level:
        return ARTIFACTS[self.asset].level

    @property
    def partition_suffix(self) -> str | None:
        if self.image is not None:
            return f"{self.segment:02d}_{self.image}"
        if self.segment is not None:
            return f"{self.segment:02d}"
        return None

    def partition_key(self, movie: str) -> str:
        """The Dagster partition key string (``civil-war|03_2``)."""
        suffix = self.partition_suffix
        return movie if suffix is None else f"{movie}|{suffix}"

    def __str__(self) -> str:
        suffix = self.partition_suffix
        return self.asset if suffix is None else f"{self.asset}[{suffix}]"

    @staticmethod
    def parse(text: str) -> NodeKey:
        if "[" not in text:
            return NodeKey(text)
        asset, suffix = text.rstrip("]").split("[")
        if "_" in suffix:
            s, i = suffix.split("_")
            return NodeKey(asset, int(s), int(i))
        return NodeKey(asset, int(suffix))

    @staticmethod
    def from_partition(asset: str, partition_key: str) -> NodeKey:
        """Inverse of ``partition_key``: the node of an asset partition (movie id dropped)."""
        suffix = partition_key.split("|", 1)[1] if "|" in partition_key else None
        return NodeKey.parse(asset if suffix is None else f"{asset}[{suffix}]")


@dataclass(frozen=True)
class Node:
    key: NodeKey
    deps: tuple[NodeKey, ...]

    @property
    def decl(self) -> ArtifactDecl:
        return ARTIFACTS[self.key.asset]

    @property
    def producer(self) -> ProducerDecl | None:
        return PRODUCERS[self.decl.producer] if self.decl.producer else None


def _segment_artifacts(mode: VisualMode) -> list[str]:
    names: list[str] = []
    for sg in SUBGRAPHS:
        if sg.scope is not Level.movie and (sg.condition is None or sg.condition is mode):
            names.extend(sg.artifacts)
    return names


def call_group(request: MovieRequest, key: NodeKey) -> tuple[str, NodeKey] | None:
    """The provider call that builds this node, shared by nodes built by one call; None: no call.

    A prompt whose override is set takes the override and needs no call; the m image prompts of a
    segment come from one TextToImagePromptProducer call.
    """
    decl = ARTIFACTS[key.asset]
    if decl.producer is None:
        return None
    o = request.overrides(key.segment) if key.segment is not None else None
    if key.asset == "music_prompt" and request.music_prompt:
        return None
    if key.asset == "image_prompt":
        if o and key.image in o.image_prompts:
            return None
        return decl.producer, NodeKey("image_prompt", key.segment)
    if key.asset == "text_to_video_prompt" and o and o.movie_direction_prompt:
        return None
    if key.asset == "image_to_video_prompt" and o and o.movie_direction_prompt and o.starting_image_prompt:
        return None
    return decl.producer, key


@dataclass(frozen=True)
class Blueprint:
    """A request's expanded blueprint: every node (asset partition) the movie needs, with its deps."""

    request: MovieRequest
    nodes: Mapping[NodeKey, Node]

    @cached_property
    def order(self) -> list[NodeKey]:
        rank = {name: i for i, name in enumerate(ARTIFACT_ORDER)}
        return sorted(self.nodes, key=lambda k: (rank[k.asset], k.segment or 0, k.image or 0))

    @cached_property
    def dependents(self) -> dict[NodeKey, list[NodeKey]]:
        out: dict[NodeKey, list[NodeKey]] = {k: [] for k in self.nodes}
        for node in self.nodes.values():
            for d in node.deps:
                out[d].append(node.key)
        return out

    def calls(self, keys: Iterable[NodeKey]) -> Counter[str]:
        """Provider calls per producer needed to build these nodes."""
        groups = {g for k in keys if (g := call_group(self.request, k)) is not None}
        return Counter(producer for producer, _ in groups)

    def critical_path_s(self, keys: Iterable[NodeKey] | None = None) -> float:
        """Longest chain of provider latencies through the nodes built, with full parallelism."""
        build = set(self.nodes if keys is None else keys)
        finish: dict[NodeKey, float] = {}
        for k in self.order:
            node = self.nodes[k]
            start = max((finish[d] for d in node.deps), default=0.0)
            cost = 0.0
            if k in build and call_group(self.request, k) is not None and node.producer:
                cost = node.producer.latency_s
            finish[k] = start + cost
        return max(finish.values(), default=0.0)

    def downstream(self, keys: Iterable[NodeKey]) -> set[NodeKey]:
        """These nodes and everything that depends on them."""
        seen: set[NodeKey] = set()
        stack = list(keys)
        while stack:
            k = stack.pop()
            if k in seen or k not in self.nodes:
                continue
            seen.add(k)
            stack.extend(self.dependents[k])
        return seen


def expand(request: MovieRequest) -> Blueprint:
    """Expand the blueprint for one request: n segments, m images, per-segment visual modes."""
    nodes: dict[NodeKey, Node] = {}

    def add(key: NodeKey, deps: Iterable[NodeKey]) -> None:
        nodes[key] = Node(key, tuple(deps))

    script = NodeKey("script")
    add(script, [])
    add(NodeKey("music_prompt"), [script])
    add(NodeKey("music"), [NodeKey("music_prompt")])
    for i in range(request.n):
        mode = request.mode(i)
        narration = NodeKey("segment_narration", i)
        add(narration, [script])
        add(NodeKey("segment_audio", i), [narration])
        names = _segment_artifacts(mode)
        visuals: list[NodeKey] = []
        if "image_prompt" in names:
            for j in range(request.m):
                prompt = NodeKey("image_prompt", i, j)
                add(prompt, [narration, script])
                image = NodeKey("segment_image", i, j)
                add(image, [prompt])
                visuals.append(image)
        if "text_to_video_prompt" in names:
            prompt = NodeKey("text_to_video_prompt", i)
            add(prompt, [narration, script])
            clip = NodeKey("text_to_video_clip", i)
            add(clip, [prompt])
            visuals.append(clip)
        if "image_to_video_prompt" in names:
            prompt = NodeKey("image_to_video_prompt", i)
            add(prompt, [narration, script])
            start = NodeKey("starting_image", i)
            add(start, [prompt])
            clip = NodeKey("image_to_video_clip", i)
            add(clip, [start, prompt])
            visuals.append(clip)
        add(NodeKey("segment_visuals", i), visuals)
    timeline_deps = [script, NodeKey("music")]
    for i in range(request.n):
        timeline_deps += [NodeKey("segment_narration", i), NodeKey("segment_audio", i), NodeKey("segment_visuals", i)]
    add(NodeKey("timeline"), timeline_deps)
    return Blueprint(request=request, nodes=nodes)


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
        "frame": lambda: {"size": request.size.value, "aspect_ratio": request.aspect_ratio.value},
        "duration": lambda: {"duration_seconds": request.duration_seconds},
        "assembly": lambda: {"assembly_strategy": request.assembly_strategy.value},
        "music_override": lambda: {"music_prompt": request.music_prompt},
        "narration_override": lambda: {"narration": o.narration if o else None},
        "segment_layout": lambda: {
            "mode": request.mode(segment or 0).value,
            "images_per_segment": request.m if request.mode(segment or 0) is VisualMode.image_only else 0,
        },
        "direction_override": lambda: {"movie_direction_prompt": o.movie_direction_prompt if o else None},
        "starting_image_override": lambda: {"starting_image_prompt": o.starting_image_prompt if o else None},
        "image_prompt_override": lambda: {"image_prompt": o.image_prompts.get(image) if o and image is not None else None},
    }
    return values[name]()  # type: ignore[operator]


def input_partitions(request: MovieRequest, name: str) -> list[tuple[int | None, int | None]]:
    """The (segment, image) partitions of an input that this request uses."""
    level = INPUTS[name].level
    if level is Level.movie:
        return [(None, None)]
    if level is Level.segment:
        return [(i, None) for i in range(request.n)]
    return [(i, j) for i in range(request.n) for j in range(request.m)]
