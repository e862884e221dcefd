"""The movie blueprint, declared as data, and its expansion into the exact artifacts of one request.

Five subgraphs (MusicGeneration, AudioNarrationGeneration, ImageOnly, VideoByText, VideoByImage) are
composed under the UseVideo / IsImageToVideo conditions. Cardinalities stay symbolic (1, n, n·m)
until ``expand`` turns them into nodes for one request: one node per asset partition to build.
User inputs are annotations on the artifacts that read them, not nodes.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from movie_assets.domain import prompts
from movie_assets.domain.prompts import Template
from movie_assets.domain.request import MovieRequest, OwnFile, VisualMode


class Level(enum.StrEnum):
    movie = "movie"
    segment = "segment"
    image = "image"


class ProviderKind(enum.StrEnum):
    """The kinds of provider a producer calls; each is one resource (same key) and one interface."""

    llm = "llm"
    speech = "speech"
    images = "images"
    video = "video"
    music = "music"
    transcription = "transcription"


@dataclass(frozen=True)
class ProducerDecl:
    """One provider-calling producer; ``latency_s`` is the brief's median latency of one call (the
    critical path, plans and the offline providers' simulated latency all read it from here)."""

    name: str
    kind: ProviderKind
    latency_s: float
    description: str
    # False: routed offline it makes no call (what it needs is at hand: the offline voice's own word timings).
    offline_call: bool = True


@dataclass(frozen=True)
class InputDecl:
    """A user input: request fields that one or more artifacts read, versioned per partition."""

    name: str
    level: Level
    fields: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class CheckDecl:
    """An asset check of an artifact type; ``severity`` is ERROR or WARN."""

    name: str
    severity: str
    description: str


@dataclass(frozen=True)
class ArtifactDecl:
    """An artifact type -- one Dagster asset -- and everything about it: its level (partitions), the
    subgraph it belongs to (its asset group), the artifacts and user inputs it reads, its producer
    (None: derived, no provider call), the prompt template its producer fills, its media type (its
    kinds), its check, and its own version (part of its code version)."""

    name: str
    level: Level
    subgraph: str
    producer: str | None
    deps: tuple[str, ...]
    inputs: tuple[str, ...]
    media: str
    description: str
    template: Template | None = None
    check: CheckDecl | None = None
    version: str = "1"
    reusable: bool = False  # no provider call, but costly (renders): the build cache keeps it too
    # An offline placeholder may stand in when its provider fails for good (the movie stays watchable; the
    # placeholder is marked and rebuilt next time).
    placeholder: bool = False
    tolerant: bool = False  # an aggregate still written when some of its inputs are missing or failed (it lists the gaps)
    engine_drawn: bool = False  # its pixels depend on the render engine (part of its code version)
    # Whether a request has this artifact at all, beyond its subgraph's condition (None: always).
    when: Callable[[MovieRequest], bool] | None = None
    # Deps a partition reads only in some requests: dep name -> whether this partition reads it.
    reads_when: Mapping[str, Callable[[MovieRequest, NodeKey], bool]] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Subgraph:
    """A blueprint subgraph, built for the whole movie or per segment, when its condition holds;
    ``render``: only in blueprints that render the movie."""

    name: str
    scope: Level
    condition: VisualMode | None
    render: bool = False


PRODUCERS: dict[str, ProducerDecl] = {
    p.name: p
    for p in [
        ProducerDecl("ResearchProducer", ProviderKind.llm, 20, "research: key facts, dates, names and sources (1 call)"),
        ProducerDecl("ScriptProducer", ProviderKind.llm, 50, "title, summary and narration (1 call)"),
        ProducerDecl("LookProducer", ProviderKind.llm, 10, "the movie's look: palette, lighting, camera, recurring characters and places (1 call)"),
        ProducerDecl("TextToMusicPromptProducer", ProviderKind.llm, 5, "music prompt (1 call)"),
        ProducerDecl("MusicProducer", ProviderKind.music, 10, "music track (1 call)"),
        ProducerDecl("AudioProducer", ProviderKind.speech, 10, "narration audio (n calls)"),
        ProducerDecl("NarrationTimingProducer", ProviderKind.transcription, 3,
                     "when each narration word is spoken: a transcription with word timestamps (n calls; none offline)",
                     offline_call=False),
        ProducerDecl("TextToImagePromptProducer", ProviderKind.llm, 5, "m image prompts per call (n calls)"),
        ProducerDecl("TextToImageProducer", ProviderKind.images, 30, "segment image (n·m calls)"),
        ProducerDecl("TextToVideoPromptProducer", ProviderKind.llm, 5, "movie direction prompt (n calls)"),
        ProducerDecl("TextToVideoProducer", ProviderKind.video, 90, "text-to-video clip (n calls)"),
        ProducerDecl("ImageToVideoPromptProducer", ProviderKind.llm, 5, "direction and starting image prompt (n calls)"),
        ProducerDecl("StartingImageProducer", ProviderKind.images, 30, "starting image (n calls)"),
        ProducerDecl("ImageToVideoProducer", ProviderKind.video, 120, "image-to-video clip (n calls)"),
    ]
}

INPUTS: dict[str, InputDecl] = {
    i.name: i
    for i in [
        InputDecl("inquiry", Level.movie, ("inquiry_prompt", "duration_seconds", "audience", "language"), "the question, length, audience and language"),
        InputDecl("voice", Level.movie, ("voice_id", "emotion", "language"), "narrator voice, emotion and language"),
        InputDecl("style", Level.movie, ("image_style",), "image style"),
        InputDecl("frame", Level.movie, ("size", "quality", "aspect_ratio"), "frame size and aspect ratio"),
        InputDecl("duration", Level.movie, ("duration_seconds",), "movie length"),
        InputDecl("assembly", Level.movie, ("assembly_strategy", "transition", "segments.i.transition", "quality"),
                  "timeline assembly strategy, transitions and frame rate"),
        InputDecl("render", Level.movie, ("render_preset", "quality", "size", "aspect_ratio"),
                  "render preset (resolution, frame rate and bitrate)"),
        InputDecl("music_override", Level.movie, ("music_prompt",), "music prompt override"),
        InputDecl("narration_override", Level.segment, ("segments.i.narration",), "narration override"),
        InputDecl("segment_layout", Level.segment, ("use_video", "is_image_to_video", "video_mode", "images_per_segment"),
                  "visual mode and image count of the segment"),
        # Left out of what a clip read while it asks for plain image-to-video (as before video modes existed).
        InputDecl("video_mode", Level.segment, ("video_mode", "segments.i.video_mode"),
                  "whether an image-to-video clip takes the text too (TI2V: text_and_image, or auto)"),
        InputDecl("direction_override", Level.segment, ("segments.i.movie_direction_prompt",), "movie direction prompt override"),
        InputDecl("starting_image_override", Level.segment, ("segments.i.starting_image_prompt",), "starting image prompt override"),
        InputDecl("image_prompt_override", Level.image, ("segments.i.image_prompts.j",), "image prompt override"),
        InputDecl("look_override", Level.movie, ("look",), "the look as the user edited it"),
        InputDecl("sources", Level.movie, ("sources",), "the user's own sources for the research (URLs or pasted text)"),
        InputDecl("research_override", Level.movie, ("facts",), "facts of the research as the user edited them"),
        # Left out of what a partition read while the segment carries the look (the default), like take 0.
        InputDecl("shot_look", Level.segment, ("segments.i.look",), "whether the segment's shots carry the look"),
        # Takes: which take (re-roll) of a generated artifact the movie uses; 0 (the first) is left out of what
        # a partition read (inputs.input_versions), so existing versions and build-cache keys hold.
        InputDecl("music_take", Level.movie, ("music_take",), "take of the music track"),
        InputDecl("audio_take", Level.segment, ("segments.i.audio_take",), "take of the narration audio"),
        InputDecl("clip_take", Level.segment, ("segments.i.clip_take",), "take of the video clip"),
        InputDecl("starting_image_take", Level.segment, ("segments.i.starting_image_take",), "take of the starting image"),
        InputDecl("image_take", Level.image, ("segments.i.image_takes.j",), "take of the segment image"),
        # The user's own files (the content hash of each); left out of what a partition read while none is given.
        InputDecl("music_file", Level.movie, ("music_file",), "your own music track (its content hash)"),
        InputDecl("audio_file", Level.segment, ("segments.i.audio_file",), "your own narration audio (its content hash)"),
        InputDecl("clip_file", Level.segment, ("segments.i.clip_file",), "your own clip (its content hash)"),
        InputDecl("starting_image_file", Level.segment, ("segments.i.starting_image_file",),
                  "your own starting image (its content hash)"),
        InputDecl("image_file", Level.image, ("segments.i.image_files.j",), "your own picture (its content hash)"),
    ]
}

# The artifacts a user can re-roll, and the take input of each (its value is the take, 0 = the first).
TAKES: dict[str, str] = {
    "music": "music_take",
    "segment_audio": "audio_take",
    "segment_image": "image_take",
    "text_to_video_clip": "clip_take",
    "starting_image": "starting_image_take",
    "image_to_video_clip": "clip_take",
}
TAKE_INPUTS = frozenset(TAKES.values())
# The artifacts a user can give a file for, and the input of each (its value: the file's content hash).
OWN_FILES: dict[str, str] = {
    "music": "music_file",
    "segment_audio": "audio_file",
    "segment_image": "image_file",
    "text_to_video_clip": "clip_file",
    "starting_image": "starting_image_file",
    "image_to_video_clip": "clip_file",
}
FILE_INPUTS = frozenset(OWN_FILES.values())
# What a partition reads only in some requests, and leaves out of its input versions when it does not:
# takes at 0, a segment that carries the look, the look (or research) of a movie made without one. Versions recorded
# before these existed stay valid.
# What a slot with the user's own file does not read (its prompt, its text): left out of its input versions
# then (and never stale in Dagster's view for it); every other partition of these always reads them.
OWN_FILE_UNREAD = frozenset({"music_prompt", "segment_narration", "image_prompt", "text_to_video_prompt", "image_to_video_prompt"})
OPTIONAL_READS = TAKE_INPUTS | FILE_INPUTS | OWN_FILE_UNREAD | {"shot_look", "look", "research", "video_mode"}

_VISUAL_ARTIFACTS = ("segment_image", "text_to_video_clip", "image_to_video_clip")

SUBGRAPHS: dict[str, Subgraph] = {
    g.name: g
    for g in [
        Subgraph("Research", Level.movie, None),
        Subgraph("Script", Level.movie, None),
        Subgraph("Look", Level.movie, None),
        Subgraph("MusicGeneration", Level.movie, None),
        Subgraph("AudioNarrationGeneration", Level.segment, None),
        Subgraph("ImageOnly", Level.segment, VisualMode.image_only),
        Subgraph("VideoByText", Level.segment, VisualMode.video_by_text),
        Subgraph("VideoByImage", Level.segment, VisualMode.video_by_image),
        Subgraph("Assembly", Level.segment, None),
        Subgraph("Timeline", Level.movie, None),
        Subgraph("Render", Level.movie, None, render=True),
    ]
}

def _reads_look(request: MovieRequest, key: NodeKey) -> bool:
    """A visual prompt reads the look when its segment carries it (not an off-look segment)."""
    return key.segment is not None and request.carries_look(key.segment)


_READS_LOOK = {"look": _reads_look}


def own_file(request: MovieRequest, key: NodeKey) -> OwnFile | None:
    """The user's own file for this node's slot (None: it is generated)."""
    if key.asset == "music":
        return request.music_file
    if key.segment is None or key.asset not in OWN_FILES:
        return None
    o = request.overrides(key.segment)
    if key.asset == "segment_image":
        return o.image_files.get(key.image) if key.image is not None else None
    return {"segment_audio": o.audio_file, "starting_image": o.starting_image_file}.get(key.asset, o.clip_file)


def _generated(request: MovieRequest, key: NodeKey) -> bool:
    """A slot with the user's own file reads none of what it would be generated from (its prompt, its text)."""
    return own_file(request, key) is None


def _reads_unless_own(*deps: str) -> dict[str, Callable[[MovieRequest, NodeKey], bool]]:
    assert OWN_FILE_UNREAD.issuperset(deps), "an unread dep must be an optional read (its version left out)"
    return dict.fromkeys(deps, _generated)

_LOOK = CheckDecl("prompt_carries_look", "WARN",
                  "The shot's prompt carries the movie's look: its palette, lighting and camera, and the fixed "
                  "description of every recurring character and place it names (off-look segments are listed).")
_FRAME = CheckDecl("image_frame_size", "ERROR", "The picture has exactly the requested size and aspect ratio.")
_CLIP = CheckDecl("video_frame_and_length", "ERROR", "The clip has the requested size and lasts at least its 10 s segment.")

# One row per artifact type, in an order where every artifact comes after its dependencies.
ARTIFACTS: dict[str, ArtifactDecl] = {
    a.name: a
    for a in [
        ArtifactDecl("research", Level.movie, "Research", "ResearchProducer", (), ("inquiry", "sources", "research_override"),
                     "json", "Research before the script: key facts, dates, names and the sources they come from (the "
                     "user's own sources cited; the user's edited facts win)", template=prompts.RESEARCH,
                     when=lambda request: request.research),
        ArtifactDecl("script", Level.movie, "Script", "ScriptProducer", ("research",), ("inquiry",), "json",
                     "MovieTitle, MovieSummary and the narration of every segment, from the research", template=prompts.SCRIPT),
        ArtifactDecl("look", Level.movie, "Look", "LookProducer", ("script", "research"), ("style", "look_override"), "json",
                     "The movie's look: palette, lighting, camera language, recurring characters and places with fixed "
                     "descriptions (the user's edits win); every visual prompt carries it", template=prompts.LOOK,
                     when=lambda request: request.consistent_look),
        ArtifactDecl("music_prompt", Level.movie, "MusicGeneration", "TextToMusicPromptProducer", ("script",),
                     ("inquiry", "music_override"), "json", "MusicPrompt (the music_prompt override wins)",
                     template=prompts.MUSIC_PROMPT),
        ArtifactDecl("music", Level.movie, "MusicGeneration", "MusicProducer", ("music_prompt",), ("duration", "music_take", "music_file"), "mp3",
                     "MusicTrack: a music bed of the movie's length (or your own file, fitted to it)", placeholder=True,
                     reads_when=_reads_unless_own("music_prompt")),
        ArtifactDecl("segment_narration", Level.segment, "AudioNarrationGeneration", None, ("script",),
                     ("narration_override",), "json", "SegmentNarration (the narration override wins)"),
        ArtifactDecl("segment_audio", Level.segment, "AudioNarrationGeneration", "AudioProducer", ("segment_narration",),
                     ("voice", "audio_take", "audio_file"), "mp3", "SegmentAudio: the spoken narration of one segment (or your own "
                     "file)", placeholder=True, version="2", reads_when=_reads_unless_own("segment_narration"),
                     check=CheckDecl("narration_fits_segment", "WARN",
                                     "The narration fills its 10 s segment: at least 6 s of speech (no long silence) and "
                                     "no longer than the segment.")),
        ArtifactDecl("narration_timing", Level.segment, "AudioNarrationGeneration", "NarrationTimingProducer",
                     ("segment_narration", "segment_audio"), (), "json",
                     "NarrationTiming: when each word of the segment's narration is spoken (the offline voice's own "
                     "alignments, or a transcription of the audio with word timestamps mapped onto the narration's words)",
                     placeholder=True),
        ArtifactDecl("image_prompt", Level.image, "ImageOnly", "TextToImagePromptProducer", ("segment_narration", "script", "look"),
                     ("style", "image_prompt_override", "shot_look"), "json",
                     "SegmentImagePrompt (the image prompt override wins), with the look", template=prompts.IMAGE_PROMPTS, check=_LOOK,
                     reads_when=_READS_LOOK),
        ArtifactDecl("segment_image", Level.image, "ImageOnly", "TextToImageProducer", ("image_prompt",),
                     ("style", "frame", "image_take", "image_file"), "png",
                     "SegmentImage: one picture of an image-only segment (or your own, fitted to the frame)", check=_FRAME,
                     placeholder=True, reads_when=_reads_unless_own("image_prompt")),
        ArtifactDecl("text_to_video_prompt", Level.segment, "VideoByText", "TextToVideoPromptProducer",
                     ("segment_narration", "script", "look"), ("style", "direction_override", "shot_look"), "json",
                     "TextToMovieDirectionPrompt (the movie_direction_prompt override wins), with the look",
                     template=prompts.TEXT_TO_VIDEO, check=_LOOK, reads_when=_READS_LOOK),
        ArtifactDecl("text_to_video_clip", Level.segment, "VideoByText", "TextToVideoProducer", ("text_to_video_prompt",),
                     ("style", "frame", "clip_take", "clip_file"), "mp4", "SegmentVideo made from text (or your own clip, "
                     "fitted to the frame and the segment)", check=_CLIP, placeholder=True,
                     reads_when=_reads_unless_own("text_to_video_prompt")),
        ArtifactDecl("image_to_video_prompt", Level.segment, "VideoByImage", "ImageToVideoPromptProducer",
                     ("segment_narration", "script", "look"), ("style", "direction_override", "starting_image_override", "shot_look"),
                     "json", "ImageToMovieDirectionPrompt and StartingImagePrompt (overrides win), with the look",
                     template=prompts.IMAGE_TO_VIDEO, check=_LOOK, reads_when=_READS_LOOK),
        ArtifactDecl("starting_image", Level.segment, "VideoByImage", "StartingImageProducer", ("image_to_video_prompt",),
                     ("style", "frame", "starting_image_take", "starting_image_file"), "png",
                     "StartingImage of an image-to-video segment (or your own, fitted to the frame)", check=_FRAME,
                     placeholder=True, reads_when=_reads_unless_own("image_to_video_prompt")),
        ArtifactDecl("image_to_video_clip", Level.segment, "VideoByImage", "ImageToVideoProducer",
                     ("starting_image", "image_to_video_prompt"), ("style", "frame", "clip_take", "video_mode", "clip_file"), "mp4",
                     "SegmentVideo animated from the starting image (I2V), or made from it and the text (TI2V)", check=_CLIP, placeholder=True),
        ArtifactDecl("segment_visuals", Level.segment, "Assembly", None, _VISUAL_ARTIFACTS, ("segment_layout",), "json",
                     "The visual clips of one segment, in order (aggregates up to 5 images so the timeline reads at "
                     "most 30 partitions)", tolerant=True),
        ArtifactDecl("timeline", Level.movie, "Timeline", None,
                     ("script", "music", "segment_narration", "segment_audio", "narration_timing", "segment_visuals"),
                     ("frame", "duration", "assembly"), "json", "The Remotion timeline of the movie", version="2", tolerant=True,
                     check=CheckDecl("timeline_complete", "WARN",
                                     "Every clip of the timeline is present (no missing or failed artifacts).")),
        ArtifactDecl("segment_cut", Level.segment, "Render", None, ("timeline",), ("render",), "json",
                     "What one segment's chunk draws: its visual clips, the clip a transition into it needs, its "
                     "captions, at the render preset (a chunk re-renders only when this changes)"),
        ArtifactDecl("video_chunk", Level.segment, "Render", None, ("segment_cut",), (), "mp4",
                     "One segment of the movie, rendered (video only), encoded so that chunks join without re-encoding",
                     reusable=True, engine_drawn=True),
        ArtifactDecl("audio_mix", Level.movie, "Render", None, ("timeline",), ("render",), "json",
                     "The timeline's narration and music with its ducking (the soundtrack re-renders only when this "
                     "changes)"),
        ArtifactDecl("soundtrack", Level.movie, "Render", None, ("audio_mix",), (), "m4a",
                     "The movie's narration and ducked music, mixed once, AAC", reusable=True),
        ArtifactDecl("movie_video", Level.movie, "Render", None, ("video_chunk", "soundtrack"), (), "mp4",
                     "The movie: H.264 chunks joined by stream copy, with the soundtrack", reusable=True, engine_drawn=True,
                     check=CheckDecl("movie_matches_timeline", "ERROR",
                                     "The movie lasts the timeline's duration (± 1 frame), at the preset's size, "
                                     "with a video and an audio stream.")),
    ]
}

RENDER_ARTIFACTS = frozenset(a.name for a in ARTIFACTS.values() if a.subgraph == "Render")

ARTIFACT_ORDER: tuple[str, ...] = tuple(ARTIFACTS)
_ARTIFACT_RANK = {name: i for i, name in enumerate(ARTIFACT_ORDER)}


def segment_suffix(segment: int) -> str:
    """The segment part of a partition key: ``03``."""
    return f"{segment:02d}"


def image_suffix(segment: int, image: int) -> str:
    """The segment-image part of a partition key: ``03_2`` (segment 3, image 2)."""
    return f"{segment:02d}_{image}"


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
        if self.segment is None:
            return None
        return segment_suffix(self.segment) if self.image is None else image_suffix(self.segment, self.image)

    def partition_key(self, movie: str) -> str:
        """The partition's name within the movie's graph (``civil-war|03_2``); its Dagster partition is
        ``partitions.node_partition`` (an image: its segment's, ``civil-war|03``)."""
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


def call_group(request: MovieRequest, key: NodeKey, offline: Collection[str] = ()) -> tuple[str, NodeKey] | None:
    """The provider call that builds this node, shared by nodes built by one call; None: no call.

    A prompt whose override is set takes the override and needs no call; the m image prompts of a
    segment come from one TextToImagePromptProducer call. ``offline``: the producers routed offline (a
    producer that makes no call offline, ``ProducerDecl.offline_call``, then makes none).
    """
    decl = ARTIFACTS[key.asset]
    if decl.producer is None or (decl.producer in offline and not PRODUCERS[decl.producer].offline_call):
        return None
    if own_file(request, key) is not None:  # the user's own file: no call
        return None
    o = request.overrides(key.segment) if key.segment is not None else None
    if key.asset == "music_prompt" and request.music_prompt:
        return None
    if key.asset == "look" and request.look is not None and request.look.complete:
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


class GraphError(ValueError):
    """A blueprint that is not a build graph: a cycle, or a dependency on a node it does not have."""


def _find_cycle(nodes: Mapping[NodeKey, Node], among: set[NodeKey]) -> list[NodeKey]:
    """One cycle among ``among`` (every node there lies on or behind a cycle), as a closed path."""
    start = min(among)
    path, seen = [start], {start: 0}
    while True:
        nxt = min(d for d in nodes[path[-1]].deps if d in among)
        if nxt in seen:
            return [*path[seen[nxt]:], nxt]
        seen[nxt] = len(path)
        path.append(nxt)


def _rank(key: NodeKey) -> tuple[int, int, int]:
    return (_ARTIFACT_RANK.get(key.asset, len(_ARTIFACT_RANK)), key.segment or 0, key.image or 0)


@dataclass(frozen=True)
class Blueprint:
    """A request's expanded blueprint: every node (asset partition) the movie needs, with its deps.
    Checked when it is made: every dependency is a node of it, and there is no cycle (``GraphError``
    names the nodes on it)."""

    request: MovieRequest
    nodes: Mapping[NodeKey, Node]

    def __post_init__(self) -> None:
        self.layers  # noqa: B018 - a blueprint that is not a graph is refused when it is made

    @cached_property
    def layers(self) -> list[list[NodeKey]]:
        """Kahn's algorithm: layer 0 depends on nothing, each later layer only on earlier ones."""
        missing = sorted({f"{k} needs {d}" for k, n in self.nodes.items() for d in n.deps if d not in self.nodes})
        if missing:
            raise GraphError("dependencies on nodes the blueprint does not have: " + "; ".join(missing[:10]))
        waiting = {k: len(set(n.deps)) for k, n in self.nodes.items()}
        dependents: dict[NodeKey, list[NodeKey]] = {k: [] for k in self.nodes}
        for node in self.nodes.values():
            for d in set(node.deps):
                dependents[d].append(node.key)
        layer = sorted((k for k, n in waiting.items() if n == 0), key=_rank)
        layers: list[list[NodeKey]] = []
        while layer:
            layers.append(layer)
            ready = []
            for k in layer:
                for child in dependents[k]:
                    waiting[child] -= 1
                    if waiting[child] == 0:
                        ready.append(child)
            layer = sorted(ready, key=_rank)
        placed = sum(len(x) for x in layers)
        if placed != len(self.nodes):
            cycle = _find_cycle(self.nodes, {k for k, n in waiting.items() if n > 0})
            raise GraphError("the blueprint has a cycle: " + " -> ".join(str(k) for k in cycle))
        return layers

    @cached_property
    def layer(self) -> dict[NodeKey, int]:
        return {k: i for i, keys in enumerate(self.layers) for k in keys}

    @cached_property
    def order(self) -> list[NodeKey]:
        """A topological order: layer by layer."""
        return [k for keys in self.layers for k in keys]

    @cached_property
    def dependents(self) -> dict[NodeKey, list[NodeKey]]:
        out: dict[NodeKey, list[NodeKey]] = {k: [] for k in self.nodes}
        for node in self.nodes.values():
            for d in node.deps:
                out[d].append(node.key)
        return out

    def _latency(self, key: NodeKey) -> float:
        """The brief's median latency of the call that builds ``key`` (0: it makes none)."""
        node = self.nodes[key]
        return node.producer.latency_s if node.producer and call_group(self.request, key) is not None else 0.0

    @cached_property
    def priority(self) -> dict[NodeKey, float]:
        """The longest remaining path of provider latency from each node to the end of the build, its
        own call included (with a tenth of a millisecond per node on it, so that among equals the longer
        chain goes first): the engine gives free provider and local slots to the work the movie waits on."""
        out: dict[NodeKey, float] = {}
        for k in reversed(self.order):
            out[k] = self._latency(k) + 1e-4 + max((out[c] for c in self.dependents[k]), default=0.0)
        return {k: round(v, 4) for k, v in out.items()}

    def calls(self, keys: Iterable[NodeKey], offline: Collection[str] = frozenset(PRODUCERS)) -> Counter[str]:
        """Provider calls per producer needed to build these nodes, with ``offline`` the producers routed
        offline (default: every one, as when nothing is configured)."""
        groups = {g for k in keys if (g := call_group(self.request, k, offline)) is not None}
        return Counter(producer for producer, _ in groups)

    def critical_path_s(self, keys: Iterable[NodeKey] | None = None) -> float:
        """Longest chain of provider latencies through the nodes built, with full parallelism."""
        build = set(self.nodes if keys is None else keys)
        finish: dict[NodeKey, float] = {}
        for k in self.order:
            start = max((finish[d] for d in self.nodes[k].deps), default=0.0)
            finish[k] = start + (self._latency(k) if k in build else 0.0)
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


def _exists(decl: ArtifactDecl, request: MovieRequest, segment: int | None, render: bool) -> bool:
    """Whether a request has this artifact (in this segment): its subgraph's condition and its row's."""
    subgraph = SUBGRAPHS[decl.subgraph]
    if (subgraph.render and not render) or (decl.when is not None and not decl.when(request)):
        return False
    return subgraph.condition is None or (segment is not None and request.mode(segment) is subgraph.condition)


def partitions_of(decl: ArtifactDecl, request: MovieRequest, render: bool = False) -> list[NodeKey]:
    """The partitions of one artifact type that a request has: 1, one per segment or one per image, of
    the segments whose visual mode has it."""
    if decl.level is Level.movie:
        return [NodeKey(decl.name)] if _exists(decl, request, None, render) else []
    segments = [i for i in range(request.segment_count) if _exists(decl, request, i, render)]
    if decl.level is Level.segment:
        return [NodeKey(decl.name, i) for i in segments]
    return [NodeKey(decl.name, i, j) for i in segments for j in range(request.images_per_segment)]


def _upstream(key: NodeKey, dep: ArtifactDecl, present: Mapping[str, list[NodeKey]]) -> list[NodeKey]:
    """The partitions of ``dep`` that partition ``key`` reads, by the cardinality rules: a movie-level
    artifact is read whole; within a level, the same partition; a finer level reads the coarser
    partition it lies in (an image its segment); a coarser level reads every finer partition in it
    (a segment its images, the movie every segment). Partitions the request does not have are none."""
    return [d for d in present.get(dep.name, ())
            if (key.segment is None or d.segment is None or d.segment == key.segment)
            and (key.image is None or d.image is None or d.image == key.image)]


def expand(request: MovieRequest, render: bool = False) -> Blueprint:
    """Expand the blueprint for one request, from the artifact rows alone: each row's partitions (n
    segments, m images, per-segment visual modes), and its edges to the partitions of its deps by the
    cardinality rules. ``render``: the rendered movie and its chunks too."""
    present = {decl.name: partitions_of(decl, request, render) for decl in ARTIFACTS.values()}
    nodes: dict[NodeKey, Node] = {}
    for decl in ARTIFACTS.values():
        for key in present[decl.name]:
            deps = [d for name in decl.deps
                    if name not in decl.reads_when or decl.reads_when[name](request, key)
                    for d in _upstream(key, ARTIFACTS[name], present)]
            nodes[key] = Node(key, tuple(deps))
    return Blueprint(request=request, nodes=nodes)
