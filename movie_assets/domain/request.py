"""The movie request: what a user asks for, validated before anything is registered or called."""

from __future__ import annotations

import enum
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

SEGMENT_SECONDS = 10
MAX_SEGMENTS = 30  # the longest movie: 300 s
MAX_IMAGES_PER_SEGMENT = 5
MAX_TAKE = 999  # takes (re-rolls) of one artifact: 0 is the first
MAX_RECURRING = 12  # recurring characters, and places, in a movie's look
MAX_SOURCES = 10  # the user's own sources for the research: URLs or pasted text
MAX_SOURCE_URL = 2000  # characters of a source URL
MAX_SOURCE_TEXT = 5000  # characters of a pasted source
MAX_FACTS = 12  # facts in a movie's research
MAX_FACT = 500  # characters of one fact
SEGMENT_MS = SEGMENT_SECONDS * 1000

# Bounds on a request or edits document, checked before (size) and while (nesting, values) it is parsed, so
# a hostile file is refused at once instead of taking minutes and gigabytes. The largest request there can
# be (30 segments, every prompt at its longest) is about 0.5 MB of text and nests 4 collections deep
# (segments -> 3 -> image_prompts -> 0) with under 1 000 values; real ones are a few KB.
MAX_DOCUMENT_BYTES = 1_000_000
MAX_NESTING = 10  # collections (mappings, lists) inside one another
MAX_VALUES = 10_000  # keys and values, each use of a YAML alias counted as a copy of what it names
MAX_PROBLEMS = 50  # problems listed in one RequestError (the rest are counted)


class Strategy(enum.StrEnum):
    """How a build uses the machine: ``sequential`` builds one partition at a time (debugging, the
    tightest budgets), ``parallel`` uses the configured limits as they are (local slots: one per core),
    ``adaptive`` sizes local slots from the machine's load and free memory and re-reads them while it
    builds. It changes how a build runs, never what it makes."""

    sequential = "sequential"
    parallel = "parallel"
    adaptive = "adaptive"


class Audience(enum.StrEnum):
    children = "children"
    general = "general"
    students = "students"
    experts = "experts"


class Language(enum.StrEnum):
    en = "en"
    es = "es"
    fr = "fr"
    de = "de"
    it = "it"
    pt = "pt"


class ImageStyle(enum.StrEnum):
    photorealistic = "photorealistic"
    cinematic = "cinematic"
    illustration = "illustration"
    watercolor = "watercolor"
    anime = "anime"


class Size(enum.StrEnum):
    p480 = "480p"
    p720 = "720p"
    p1080 = "1080p"
    p2160 = "2160p"


class AspectRatio(enum.StrEnum):
    landscape = "16:9"
    portrait = "9:16"
    square = "1:1"
    classic = "4:3"


class AssemblyStrategy(enum.StrEnum):
    ken_burns = "ken_burns"
    crossfade = "crossfade"
    cut = "cut"


class Transition(enum.StrEnum):
    """How a visual clip enters: at the start of the incoming clip, over its first ``durationMs``."""

    cut = "cut"
    fade = "fade"  # through black
    crossfade = "crossfade"
    dissolve = "dissolve"  # a noise dissolve: the incoming clip appears in scattered cells
    wipe = "wipe"
    slide = "slide"
    zoom = "zoom"


TRANSITION_MS = {Transition.cut: 0, Transition.fade: 800, Transition.crossfade: 500, Transition.dissolve: 800, Transition.wipe: 600,
                 Transition.slide: 600, Transition.zoom: 600}


class Quality(enum.StrEnum):
    """A named preset for the whole movie: the pictures' size, the frame rate and the render's video
    bitrate (QUALITIES)."""

    draft = "draft"
    standard = "standard"
    high = "high"
    premium = "premium"


@dataclass(frozen=True)
class QualitySpec:
    size: Size  # the pictures' and the render's short side
    fps: int  # frames per second of the timeline and the render
    video_kbps: int  # the render's video bitrate (kbit/s)


QUALITIES = {
    Quality.draft: QualitySpec(Size.p480, 24, 1500),  # 854x480 at 16:9
    Quality.standard: QualitySpec(Size.p720, 30, 3000),  # 1280x720
    Quality.high: QualitySpec(Size.p1080, 30, 6000),  # 1920x1080
    Quality.premium: QualitySpec(Size.p2160, 60, 15000),  # 3840x2160
}
DEFAULT_FPS = 30  # without a quality
DEFAULT_SIZE = Size.p720  # without a quality or a size


class RenderPreset(enum.StrEnum):
    """The rendered movie's resolution (short side) and quality; a render setting only. A quality's name
    renders at its size and bitrate (the frame rate stays the timeline's)."""

    p480 = "480p"
    p720 = "720p"
    p1080 = "1080p"
    p2160 = "2160p"
    draft = "draft"
    standard = "standard"
    high = "high"
    premium = "premium"


class VisualMode(enum.StrEnum):
    """Which visual branch a segment builds (the blueprint's condition on UseVideo/IsImageToVideo)."""

    image_only = "image_only"
    video_by_text = "video_by_text"
    video_by_image = "video_by_image"


class VideoMode(enum.StrEnum):
    """How a video segment is made, as the request asks: ``text`` (text-to-video), ``image`` (a generated
    starting image animated: image-to-video), ``text_and_image`` (the starting image and the full text
    prompt together: TI2V, 480p or 720p only), or ``auto`` (docs/request.md, Video modes: TI2V when the
    segment has a starting image and a prompt and the model makes TI2V at the frame's size, else I2V,
    else T2V)."""

    auto = "auto"
    text = "text"
    image = "image"
    text_and_image = "text_and_image"


# The calls a video model can be asked for (its capability table lists the ones it makes).
T2V, I2V, TI2V = "t2v", "i2v", "ti2v"
TI2V_SIZES = ("480p", "720p")  # what a text+image-to-video clip is made at


def video_call(wanted: VideoMode, size: str, direction: str, model_modes: frozenset[str] | set[str],
               model_sizes: frozenset[str] | set[str]) -> str:
    """The call an image-subgraph clip makes (``i2v`` or ``ti2v``): ``text_and_image`` asks for TI2V (what
    cannot be is refused before any call); ``auto`` takes TI2V when there is a prompt (``direction``), the
    size is 480p/720p and the routed model makes TI2V at it, else I2V."""
    if wanted is VideoMode.text_and_image:
        return TI2V
    if (wanted is VideoMode.auto and direction.strip() and size in TI2V_SIZES and TI2V in model_modes
            and any(int(s.removesuffix("p")) >= int(size.removesuffix("p")) for s in model_sizes)):
        return TI2V
    return I2V


def frame_size(size: Size, aspect_ratio: AspectRatio) -> tuple[int, int]:
    """Pixel width and height: the short side is the size's line count, both sides even."""
    short = int(size.value.removesuffix("p"))
    w_ratio, h_ratio = (int(x) for x in aspect_ratio.value.split(":"))
    long = round(short * max(w_ratio, h_ratio) / min(w_ratio, h_ratio) / 2) * 2
    return (long, short) if w_ratio >= h_ratio else (short, long)


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S")
_HTTP_URL = re.compile(r"^https?://[^\s/?#@]+(?:[/?#]\S*)?$", re.IGNORECASE)


def source_kind(source: str) -> str:
    """``url`` (a source that is one word starting with a scheme, ``https://...``) or ``text`` (pasted)."""
    return "url" if _SCHEME.match(source) and not any(c.isspace() for c in source) else "text"


def _check_source(value: str) -> str:
    """A source for the research: an http(s) URL (cited and passed to the prompt, never fetched) or pasted text."""
    text = value.strip()
    if not text:
        raise ValueError("a source is empty; allowed: an http(s) URL or pasted text")
    if source_kind(text) == "url":
        scheme = text.split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"a source URL with the scheme {scheme!r}; allowed: http and https URLs, or pasted text")
        if not _HTTP_URL.match(text):
            raise ValueError("not a URL with a host (https://host/path); allowed: http and https URLs, or pasted text")
        if len(text) > MAX_SOURCE_URL:
            raise ValueError(f"a URL of {len(text)} characters; allowed: up to {MAX_SOURCE_URL}")
    elif len(text) > MAX_SOURCE_TEXT:
        raise ValueError(f"pasted text of {len(text)} characters; allowed: up to {MAX_SOURCE_TEXT} per source "
                         f"(split it into several sources, at most {MAX_SOURCES})")
    return text


SourceText = Annotated[str, AfterValidator(_check_source)]
FactText = Annotated[str, Field(min_length=1, max_length=MAX_FACT)]
LookText = Annotated[str, Field(min_length=1, max_length=500)]
# A recurring name: also an edit path part (look.characters.NAME), and the look's clause separates with | ; :
LookName = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[^\n|;:.=]+$")]


class Reference(BaseModel):
    """A picture approved as the reference of a recurring character or place (``moviegen approve``): the
    node and the data version it had when approved, so a later re-roll of that shot does not move it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str = Field(pattern=r"^(segment_image\[\d{2}_\d\]|starting_image\[\d{2}\])$")
    version: str = Field(pattern=r"^[0-9a-f]{16,64}$")


# The user's own media: a file given for a slot instead of generating it (docs/request.md, Your own media).
MAX_OWN_SOURCE = 2000  # characters of a path or URL
OWN_KINDS = {"picture": ("PNG", "JPEG", "WebP"), "clip": ("MP4", "WebM", "MOV"), "audio": ("WAV", "MP3", "OGG", "FLAC", "M4A")}
OWN_EXT = {"PNG": "png", "JPEG": "jpg", "WebP": "webp", "MP4": "mp4", "WebM": "webm", "MOV": "mov", "WAV": "wav", "MP3": "mp3",
           "OGG": "ogg", "FLAC": "flac", "M4A": "m4a"}


def own_source_kind(source: str) -> str:
    """``url`` (http or https) or ``path`` (a local file); ValueError for anything else."""
    text = source.strip()
    if not text or "\x00" in text or "\n" in text:
        raise ValueError("an empty path, or one with a line break or NUL; allowed: a local file's path or an http(s) URL")
    if len(text) > MAX_OWN_SOURCE:
        raise ValueError(f"a path or URL of {len(text)} characters; allowed: up to {MAX_OWN_SOURCE}")
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):(?://|[^\\/])", text)
    if scheme and len(scheme.group(1)) > 1:  # C:\\pic.png is a path
        if scheme.group(1).lower() not in ("http", "https"):
            raise ValueError(f"a URL with the scheme {scheme.group(1)!r}; allowed: a local file's path or an http(s) URL")
        if not _HTTP_URL.match(text):
            raise ValueError("not a URL with a host (https://host/path); allowed: a local file's path or an http(s) URL")
        return "url"
    return "path"


class OwnFile(BaseModel):
    """The user's own file for one slot. Written in a request or an edit as a path or an http(s) URL (its
    ``source``); moviegen reads or fetches it once when the request is registered or edited, checks it and
    stores it under its content hash (``sha256``: the input's version, so the same bytes rebuild nothing and
    other bytes rebuild what uses them). The other fields are what the check found."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1, max_length=MAX_OWN_SOURCE)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    format: str | None = Field(default=None, pattern=r"^(PNG|JPEG|WebP|MP4|WebM|MOV|WAV|MP3|OGG|FLAC|M4A)$")
    bytes: StrictInt | None = Field(default=None, ge=1)
    width: StrictInt | None = Field(default=None, ge=1)
    height: StrictInt | None = Field(default=None, ge=1)
    duration_ms: StrictInt | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            own_source_kind(value)  # a bad path or URL is named by its field (music_file), not .source
            return {"source": value}
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        own_source_kind(value)
        return value.strip()

    @property
    def stored(self) -> bool:
        """Read and checked (its hash known), not only named."""
        return self.sha256 is not None and self.format is not None

    @property
    def ext(self) -> str:
        return OWN_EXT[self.format or ""]

    @property
    def name(self) -> str:
        """The file's name, for messages (the last part of its path or URL)."""
        return self.source.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0][:80] or self.source[:80]


class LookOverride(BaseModel):
    """The movie's look as the user set it: each field given wins over the generated look (palette,
    lighting and camera one at a time; the first edit of a character or place copies the movie's
    characters, or places, here so the others stay). Complete (every generated field set): no call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    palette: LookText | None = None
    lighting: LookText | None = None
    camera: LookText | None = None
    characters: dict[LookName, LookText] | None = Field(default=None, max_length=MAX_RECURRING)
    places: dict[LookName, LookText] | None = Field(default=None, max_length=MAX_RECURRING)
    # Approved reference pictures per recurring name: passed to the shots that name it, where the images
    # provider takes reference images (docs/editing.md, The look).
    references: dict[LookName, Reference] | None = Field(default=None, max_length=2 * MAX_RECURRING)

    @property
    def complete(self) -> bool:
        """Every generated field is set (references are never generated)."""
        return all(getattr(self, f) is not None for f in type(self).model_fields if f != "references")


class SegmentOverrides(BaseModel):
    """Per-segment overrides: prompts that win over the generated ones, and visual conditions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    narration: str | None = Field(default=None, min_length=1, max_length=1000)
    use_video: StrictBool | None = None
    is_image_to_video: StrictBool | None = None
    video_mode: VideoMode | None = None  # wins over is_image_to_video (of the segment and the movie)
    starting_image_prompt: str | None = Field(default=None, min_length=1, max_length=2000)
    movie_direction_prompt: str | None = Field(default=None, min_length=1, max_length=2000)
    image_prompts: dict[int, Annotated[str, Field(max_length=2000)]] = Field(default_factory=dict)
    transition: Transition | None = None  # how this segment's first clip enters
    # Takes (re-rolls) of this segment's generated artifacts; none or 0: the first take.
    image_takes: dict[int, Annotated[StrictInt, Field(ge=0, le=MAX_TAKE)]] = Field(default_factory=dict)
    audio_take: StrictInt | None = Field(default=None, ge=0, le=MAX_TAKE)
    clip_take: StrictInt | None = Field(default=None, ge=0, le=MAX_TAKE)
    starting_image_take: StrictInt | None = Field(default=None, ge=0, le=MAX_TAKE)
    # The user's own files for this segment's slots (docs/request.md, Your own media): used instead of generating.
    image_files: dict[int, OwnFile] = Field(default_factory=dict)  # image j of an image-only segment
    starting_image_file: OwnFile | None = None  # the starting image of an image-to-video segment
    clip_file: OwnFile | None = None  # the clip of a video segment
    audio_file: OwnFile | None = None  # the narration audio
    # false: this segment's shots are off-look (a map, an archival document): their prompts are used as
    # written, without the movie's look, and the look check lists them.
    look: StrictBool | None = None

    @field_validator("image_prompts")
    @classmethod
    def _image_prompts(cls, value: dict[int, str]) -> dict[int, str]:
        for index, prompt in value.items():
            if index < 0:
                raise ValueError(f"image index {index} must be 0 or more")
            if not prompt.strip():
                raise ValueError(f"image prompt {index} is empty")
        return value


MOVIE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def validate_movie_id(movie_id: str) -> str:
    if not MOVIE_ID_RE.match(movie_id):
        raise RequestError(
            [
                f"movie id: got {_short(repr(movie_id), 80)}; allowed: 1-63 characters of lowercase letters, digits "
                "and '-', starting with a letter or digit (no '/', '..', spaces or '|')"
            ]
        )
    return movie_id


class MovieRequest(BaseModel):
    """A movie request, as written in a YAML or JSON request file."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    inquiry_prompt: str = Field(min_length=3, max_length=2000)
    # Integers and booleans are strict: "20" or 20.0 is refused rather than guessed (YAML's 20 and true
    # are already an integer and a boolean); budget_usd, a number, takes 5 as well as 5.0.
    duration_seconds: StrictInt = 60
    audience: Audience = Audience.general
    language: Language = Language.en
    voice_id: str = Field(default="narrator", min_length=1, max_length=64)
    emotion: str | None = Field(default=None, max_length=64)
    use_video: StrictBool = False
    is_image_to_video: StrictBool = False
    # How video segments are made (none: is_image_to_video says, image or text); docs/request.md, Video modes.
    video_mode: VideoMode | None = None
    images_per_segment: StrictInt = Field(default=3, ge=1, le=MAX_IMAGES_PER_SEGMENT)
    image_style: ImageStyle = ImageStyle.cinematic
    # The pictures' size (none: the quality's, else 720p); given with a quality, it must be the quality's.
    size: Size | None = None
    # draft | standard | high | premium: the pictures' size, the frame rate and the render (none: size,
    # 30 fps and render_preset as set).
    quality: Quality | None = None
    aspect_ratio: AspectRatio = AspectRatio.landscape
    assembly_strategy: AssemblyStrategy = AssemblyStrategy.ken_burns
    music_prompt: str | None = Field(default=None, min_length=1, max_length=2000)
    transition: Transition | None = None  # default: crossfade for the crossfade strategy, else cut
    render_preset: RenderPreset | None = None  # default: the preset of the request's size
    # The most this movie may spend on provider calls, all revisions together (USD; none: no cap of its
    # own). Enforced per call; changing it rebuilds nothing.
    budget_usd: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False, strict=True)
    # How its builds use the machine (none: MOVIEGEN_STRATEGY, else adaptive); changing it rebuilds nothing.
    strategy: Strategy | None = None
    music_take: StrictInt | None = Field(default=None, ge=0, le=MAX_TAKE)  # take (re-roll) of the music; none: 0
    music_file: OwnFile | None = None  # the user's own music track instead of a generated one
    # A look for the whole movie (palette, lighting, camera, recurring characters and places), written
    # after the script and carried by every visual prompt. Movies stored before the look had none (they
    # load with false and keep their pictures until it is turned on).
    consistent_look: StrictBool = True
    look: LookOverride | None = None
    # Research before the script: key facts, dates, names and sources, which the script and the look read.
    # Movies stored before research existed load with false (their scripts stay as they are).
    research: StrictBool = True
    # The user's own sources for the research: http(s) URLs (cited and passed to the research prompt, never
    # fetched) or pasted text.
    sources: list[SourceText] = Field(default_factory=list, max_length=MAX_SOURCES)
    # Facts of the research as the user wrote them, by index (0-based): each wins over the generated fact
    # with that index; an index past the research's facts adds a fact.
    facts: dict[int, FactText] = Field(default_factory=dict)
    segments: dict[int, SegmentOverrides] = Field(default_factory=dict)

    @field_validator("inquiry_prompt")
    @classmethod
    def _inquiry(cls, value: str) -> str:
        if len(value.strip()) < 3:
            raise ValueError("must contain at least 3 non-blank characters")
        return value.strip()

    @field_validator("duration_seconds")
    @classmethod
    def _duration(cls, value: int) -> int:
        if value % SEGMENT_SECONDS or not SEGMENT_SECONDS <= value <= MAX_SEGMENTS * SEGMENT_SECONDS:
            raise ValueError(
                f"must be a multiple of {SEGMENT_SECONDS} from {SEGMENT_SECONDS} to "
                f"{MAX_SEGMENTS * SEGMENT_SECONDS} (one segment per {SEGMENT_SECONDS} s)"
            )
        return value

    @model_validator(mode="after")
    def _segment_indices(self) -> MovieRequest:
        problems = []
        for index, overrides in self.segments.items():
            if not 0 <= index < self.segment_count:
                problems.append(
                    f"segments.{index}: segment index {index} is out of range; allowed: 0 to "
                    f"{self.segment_count - 1} (duration_seconds={self.duration_seconds} gives {self.segment_count} segments)"
                )
            for field_name, images in (("image_prompts", overrides.image_prompts), ("image_takes", overrides.image_takes),
                                       ("image_files", overrides.image_files)):
                for j in images:
                    if not 0 <= j < self.images_per_segment:
                        problems.append(
                            f"segments.{index}.{field_name}.{j}: image index {j} is out of range; "
                            f"allowed: 0 to {self.images_per_segment - 1} (images_per_segment={self.images_per_segment})"
                        )
        problems += self._image_to_video_problems()
        problems += self._quality_problems()
        problems += self._research_problems()
        problems += self._video_mode_problems()
        problems += self._own_file_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _quality_problems(self) -> list[str]:
        """A quality sets the pictures' size and the render: a size or render preset that says otherwise is
        refused rather than one of them silently ignored."""
        if self.quality is None:
            return []
        spec = QUALITIES[self.quality]
        problems = []
        if self.size is not None and self.size is not spec.size:
            problems.append(f"size: got {self.size.value} with quality: {self.quality.value}, which makes {spec.size.value} "
                            f"pictures; allowed: {spec.size.value}, or leave size out (the quality sets it), or another "
                            f"quality ({', '.join(f'{q.value}: {s.size.value}' for q, s in QUALITIES.items())})")
        if self.render_preset is not None:
            problems.append(f"render_preset: got {self.render_preset.value} with quality: {self.quality.value}, which sets the "
                            f"render ({spec.size.value} at {spec.fps} fps, {spec.video_kbps} kbit/s); allowed: one of them "
                            "(leave render_preset out, or quality)")
        return problems

    def _research_problems(self) -> list[str]:
        problems = [f"facts.{i}: fact index {i} is out of range; allowed: 0 to {MAX_FACTS - 1}"
                    for i in sorted(self.facts) if not 0 <= i < MAX_FACTS]
        if not self.research:
            problems += [f"{name}: given, but research is false; allowed: together with research: true, else remove {name}"
                         for name in ("sources", "facts") if getattr(self, name)]
        return problems

    def _image_to_video_problems(self) -> list[str]:
        """``is_image_to_video`` only chooses how a video segment is made: set where no video is made, it
        would be ignored, so it is refused instead (the request says something it would not do)."""
        problems = []
        segments = range(self.segment_count)
        uses_video = {i: self.use_video if self.overrides(i).use_video is None else bool(self.overrides(i).use_video)
                      for i in segments}
        if self.is_image_to_video and not any(uses_video.values()):
            problems.append("is_image_to_video: true, but no segment uses video; allowed: together with use_video: true "
                            "(or segments.N.use_video: true), else remove is_image_to_video")
        for index, overrides in sorted(self.segments.items()):
            if overrides.is_image_to_video and index in uses_video and not uses_video[index]:
                problems.append(f"segments.{index}.is_image_to_video: true, but segment {index} does not use video; "
                                f"allowed: together with segments.{index}.use_video: true (or use_video: true)")
        return problems

    def _video_mode_problems(self) -> list[str]:
        """``video_mode`` set where no video is made is refused (as ``is_image_to_video``); given with
        ``is_image_to_video`` at the same level, they must agree; TI2V is made at 480p or 720p only."""
        problems = []
        segments = range(self.segment_count)
        uses_video = {i: self.use_video if self.overrides(i).use_video is None else bool(self.overrides(i).use_video)
                      for i in segments}
        if self.video_mode is not None and not any(uses_video.values()):
            problems.append(f"video_mode: {self.video_mode.value}, but no segment uses video; allowed: together with "
                            "use_video: true (or segments.N.use_video: true), else remove video_mode")
        # is_image_to_video true says image (or text and image), false says text; the movie's false is its
        # default (stored requests carry it) and says nothing.
        levels = [("", self.video_mode, True if self.is_image_to_video else None)]
        levels += [(f"segments.{i}.", o.video_mode, o.is_image_to_video) for i, o in sorted(self.segments.items())]
        for prefix, mode, i2v in levels:
            if mode is None or i2v is None or mode is VideoMode.auto:
                continue
            if (mode is VideoMode.text) == i2v:
                problems.append(f"{prefix}video_mode: {mode.value} with {prefix}is_image_to_video: {str(i2v).lower()}; "
                                f"allowed: one of them (video_mode wins: remove {prefix}is_image_to_video)")
        for index, overrides in sorted(self.segments.items()):
            if overrides.video_mode is not None and index in uses_video and not uses_video[index]:
                problems.append(f"segments.{index}.video_mode: {overrides.video_mode.value}, but segment {index} does not use "
                                f"video; allowed: together with segments.{index}.use_video: true (or use_video: true)")
        if self.picture_size.value not in TI2V_SIZES:
            ti2v = [i for i in segments if uses_video[i] and self.video_mode_of(i) is VideoMode.text_and_image]
            if ti2v:
                where = "video_mode" if self.video_mode is VideoMode.text_and_image and all(
                    self.overrides(i).video_mode is None for i in ti2v) else f"segments.{ti2v[0]}.video_mode"
                problems.append(f"{where}: text_and_image (TI2V) is made at {' or '.join(TI2V_SIZES)} only, but size is "
                                f"{self.picture_size.value}; allowed: size {' or '.join(TI2V_SIZES)}, or video_mode auto, image or text "
                                f"(segments {', '.join(str(i) for i in ti2v)})")
        return problems

    def _own_file_problems(self) -> list[str]:
        """A file for a slot the segment does not have would be ignored: refused instead. A file already
        checked must be of its slot's kind."""
        problems = []
        for index, o in sorted(self.segments.items()):
            if not 0 <= index < self.segment_count:
                continue
            mode = self.mode(index)
            p = f"segments.{index}."
            if o.image_files and mode is not VisualMode.image_only:
                problems.append(f"{p}image_files: given, but segment {index} uses video (its pictures are not made); allowed: "
                                f"on an image-only segment, or {p}clip_file for a video segment")
            if o.starting_image_file is not None and o.clip_file is not None:
                problems.append(f"{p}starting_image_file: given with {p}clip_file (your clip is the segment's video: no "
                                f"starting image is made); allowed: one of them")
            elif o.starting_image_file is not None and mode is not VisualMode.video_by_image:
                problems.append(f"{p}starting_image_file: given, but segment {index} is not image-to-video (it makes no "
                                f"starting image); allowed: together with {p}use_video: true and {p}video_mode: image "
                                "(or text_and_image, auto)")
            if o.clip_file is not None and mode is VisualMode.image_only:
                problems.append(f"{p}clip_file: given, but segment {index} does not use video; allowed: together with "
                                f"{p}use_video: true (or use_video: true), or {p}image_files.<j> for its pictures")
        for path, own, kind in self.own_files():
            if own.format is not None and own.format not in OWN_KINDS[kind]:
                problems.append(f"{path}: a {own.format} file; allowed: {kind}s ({', '.join(OWN_KINDS[kind])})")
        return problems

    def own_files(self) -> list[tuple[str, OwnFile, str]]:
        """Every file of the user's the request gives: (its edit path, the file, its kind: picture, clip or audio)."""
        out: list[tuple[str, OwnFile, str]] = []
        if self.music_file is not None:
            out.append(("music_file", self.music_file, "audio"))
        for index, o in sorted(self.segments.items()):
            p = f"segments.{index}."
            out += [(f"{p}image_files.{j}", f, "picture") for j, f in sorted(o.image_files.items())]
            out += [(p + name, f, kind) for name, f, kind in (("starting_image_file", o.starting_image_file, "picture"),
                                                              ("clip_file", o.clip_file, "clip"),
                                                              ("audio_file", o.audio_file, "audio")) if f is not None]
        return out

    @property
    def segment_count(self) -> int:
        """Number of 10 s segments."""
        return self.duration_seconds // SEGMENT_SECONDS

    @property
    def picture_size(self) -> Size:
        """The size pictures and clips are made at: the request's, else its quality's, else 720p."""
        return self.size or (QUALITIES[self.quality].size if self.quality else DEFAULT_SIZE)

    @property
    def frame(self) -> tuple[int, int]:
        return frame_size(self.picture_size, self.aspect_ratio)

    @property
    def fps(self) -> int:
        """Frames per second of the timeline (and so of the render): the quality's, else 30."""
        return QUALITIES[self.quality].fps if self.quality else DEFAULT_FPS

    def transition_into(self, segment: int, first_clip: bool) -> Transition:
        """How a clip of ``segment`` enters: the segment's own transition for its first clip, else the
        movie's (the crossfade strategy means crossfade)."""
        own = self.overrides(segment).transition if first_clip else None
        default = Transition.crossfade if self.assembly_strategy is AssemblyStrategy.crossfade else Transition.cut
        return own or self.transition or default

    @property
    def preset(self) -> str:
        """The render preset's name (builder/render/presets.py PRESETS): the render preset (a request gives it
        only without a quality; `moviegen render --preset` sets it), else the quality, else the one of the
        pictures' size."""
        if self.render_preset is not None:
            return self.render_preset.value
        return self.quality.value if self.quality is not None else self.picture_size.value

    def overrides(self, segment: int) -> SegmentOverrides:
        return self.segments.get(segment) or SegmentOverrides()

    def carries_look(self, segment: int) -> bool:
        """Whether this segment's visual prompts carry the movie's look."""
        return self.consistent_look and self.overrides(segment).look is not False

    def video_mode_of(self, segment: int) -> VideoMode:
        """The video mode the request asks of a segment: its own ``video_mode``, else its own
        ``is_image_to_video``, else the movie's ``video_mode``, else the movie's ``is_image_to_video``."""
        o = self.overrides(segment)
        for mode, i2v in ((o.video_mode, o.is_image_to_video), (self.video_mode, self.is_image_to_video)):
            if mode is not None:
                return mode
            if i2v is not None:
                return VideoMode.image if i2v else VideoMode.text
        return VideoMode.text

    def has_starting_image(self, segment: int) -> bool:
        """Whether the segment gives a starting image (``starting_image_prompt``): ``auto`` then builds it."""
        return self.overrides(segment).starting_image_prompt is not None

    def mode(self, segment: int) -> VisualMode:
        """The segment's visual branch: ``image`` and ``text_and_image`` share the image-to-video one (a
        starting image, a prompt, a clip: the clip's call differs); ``auto`` takes it when the segment
        gives a starting image, else text-to-video."""
        o = self.overrides(segment)
        use_video = self.use_video if o.use_video is None else o.use_video
        if not use_video:
            return VisualMode.image_only
        if o.clip_file is not None:  # the user's clip is the segment's video: no starting image is made for it
            return VisualMode.video_by_text
        wanted = self.video_mode_of(segment)
        if wanted is VideoMode.auto:
            return VisualMode.video_by_image if self.has_starting_image(segment) else VisualMode.video_by_text
        return VisualMode.video_by_text if wanted is VideoMode.text else VisualMode.video_by_image

    def to_document(self) -> dict[str, Any]:
        """The request as plain JSON data, in the file format users write."""
        doc = self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
        for overrides in doc.get("segments", {}).values():
            for name in ("image_takes", "image_files"):  # none: the document stays as it was before them
                if not overrides.get(name, True):
                    overrides.pop(name)
        for name in ("sources", "facts"):  # none: the document stays as it was before research
            if not doc.get(name, True):
                doc.pop(name)
        return doc


class RequestError(ValueError):
    """A request (or an edit) that cannot be accepted; ``problems`` names each field and value."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid movie request:\n" + "\n".join(f"  - {p}" for p in problems))


class DocumentError(RequestError):
    """A request or edits file refused before its fields are looked at (missing, a folder, unreadable, too
    large, not UTF-8, not YAML/JSON, beyond the parser's bounds): one problem naming the file, and the
    message is that one line."""

    def __init__(self, problem: str):
        super().__init__([problem])
        self.args = (problem,)


def _allowed(loc: tuple[Any, ...]) -> str:
    field = str(loc[-1]) if loc else ""
    enums = {
        "audience": Audience,
        "language": Language,
        "image_style": ImageStyle,
        "size": Size,
        "aspect_ratio": AspectRatio,
        "assembly_strategy": AssemblyStrategy,
        "transition": Transition,
        "render_preset": RenderPreset,
        "quality": Quality,
        "strategy": Strategy,
        "video_mode": VideoMode,
    }
    if field in enums:
        return "allowed: " + ", ".join(e.value for e in enums[field])
    return ""


def _short(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    cut = " ".join(text[: limit * 4].split())
    return cut if len(cut) <= limit and len(text) <= limit * 4 else cut[: limit - 3] + "..."


def _text(value: Any) -> str:
    """str(value), for any value: Python refuses to print an integer of more than 4 300 digits."""
    try:
        return str(value)
    except ValueError:
        return "a number too long to show"


def _preview(value: Any, limit: int = 80) -> str:
    """``value`` as JSON, cut at ``limit`` characters. It never looks at more of the value than it shows,
    so a huge, deeply nested or self-referencing value costs no more than a small one."""
    parts: list[str] = []
    room = limit + 1

    def put(text: str) -> bool:
        nonlocal room
        parts.append(text[:room])
        room -= len(text)
        return room > 0

    def walk(v: Any) -> bool:
        if isinstance(v, dict | list | tuple | set | frozenset):
            opening, closing = ("{", "}") if isinstance(v, dict) else ("[", "]")
            if not put(opening):
                return False
            for i, item in enumerate(v.items() if isinstance(v, dict) else v):
                if i and not put(", "):
                    return False
                if isinstance(v, dict) and not (walk(_text(item[0])[:room]) and put(": ")):
                    return False
                if not walk(item[1] if isinstance(v, dict) else item):
                    return False
            return put(closing)
        if isinstance(v, str):
            return put(json.dumps(v[:room]))
        try:
            text = json.dumps(v) if v is None or isinstance(v, bool | int | float) else json.dumps(_text(v)[:room])
        except ValueError:  # an integer too long to print
            text = "a number too long to show"
        return put(text)

    walk(value)
    text = "".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# What a value of the wrong type should have been (pydantic's error type -> the rule, in the docs' words).
_EXPECTED = {
    "int_type": "expected an integer (a whole number without quotes, e.g. 60)",
    "int_parsing": "expected an integer (a whole number without quotes, e.g. 60)",
    "int_from_float": "expected an integer (a whole number without quotes, e.g. 60)",
    "bool_type": "expected true or false (without quotes)",
    "bool_parsing": "expected true or false (without quotes)",
    "float_type": "expected a number (without quotes, e.g. 5 or 0.5)",
    "float_parsing": "expected a number (without quotes, e.g. 5 or 0.5)",
    "string_type": "expected text",
    "dict_type": "expected a mapping of fields",
    "model_type": "expected a mapping of fields",
    "model_attributes_type": "expected a mapping of fields",
    "invalid_key": "field names are text",
}


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    field = _short(".".join(_short(_text(p), 40) for p in loc), 120) or "request"
    msg = error.get("msg", "")
    msg = msg.removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return f"{field}: unknown field (check the spelling; see docs/request.md for the fields)"
    if error.get("type") == "missing":
        return f"{field}: required field is missing"
    got = error.get("input")
    got_text = _preview(got) if not isinstance(got, dict) else "{...}"
    allowed = _allowed(loc)
    if allowed and error.get("type") == "enum":
        return f"{field}: got {got_text}; {allowed}"
    if field == "request" or error.get("type") == "value_error" and not loc:
        return _short(msg, 500)
    msg = _EXPECTED.get(str(error.get("type")), msg)
    return f"{field}: got {got_text}; {_short(msg, 500)}" + (f" ({allowed})" if allowed else "")


def _at_most(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    return [*problems[:MAX_PROBLEMS], f"... and {len(problems) - MAX_PROBLEMS} more problems (fix these first)"]


def _beyond_bounds(data: Any) -> str | None:
    """What makes data too large to validate (nesting, values: a value used twice counts twice), or None.
    It stops at the bound, so a huge, shared or self-referencing structure costs no more than a small one."""
    values, stack = 0, [(data, 0)]
    while stack:
        value, nesting = stack.pop()
        values += 1
        if values > MAX_VALUES:
            return f"more than {MAX_VALUES} values; a request has at most about 1 000"
        if isinstance(value, dict | list | tuple | set | frozenset):
            if nesting + 1 > MAX_NESTING:
                return f"nested deeper than {MAX_NESTING} levels; a request nests at most 4"
            items = itertools.chain(value, value.values()) if isinstance(value, dict) else value
            stack.extend((item, nesting + 1) for item in itertools.islice(items, MAX_VALUES))
    return None


def parse_request(data: Any) -> MovieRequest:
    """Validate request data, raising RequestError that names every bad field, value and rule (and
    nothing else, whatever the data: any type, size or nesting)."""
    if not isinstance(data, dict):
        raise RequestError([f"request: expected a mapping of fields, got {type(data).__name__}"])
    beyond = _beyond_bounds(data)
    if beyond:
        raise RequestError([f"request: {beyond}"])
    try:
        return MovieRequest.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False):
            if not err.get("loc") and err.get("type") == "value_error":
                problems.extend(str(err.get("msg", "")).removeprefix("Value error, ").split("\n"))
            else:
                problems.append(_describe(dict(err)))
        raise RequestError(_at_most(problems)) from None
    except RecursionError:
        raise RequestError([f"request: nested deeper than {MAX_NESTING} levels"]) from None


class _Refused(yaml.MarkedYAMLError):
    """A YAML document beyond a bound: nested too deep, too many values, an alias inside its own anchor."""


class _Loader(yaml.SafeLoader):
    """YAML without YAML 1.1's base-60 numbers: ``aspect_ratio: 16:9`` stays the text "16:9" instead
    of becoming 969, and ``12:30`` is not 750.

    Bounded while it is composed, before any Python object is built: at most MAX_NESTING collections
    inside one another and MAX_VALUES keys and values in all, where each use of an alias counts as a
    copy of what it names. So ten lines of nested aliases ("billion laughs", also through ``<<`` merge
    keys) are refused at once instead of expanding to gigabytes; a few anchors for repeated text are fine."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nesting = 0
        self._values = 0  # so far in the document, aliases expanded
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, nesting), aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:
                raise _Refused(problem=f"the alias *{_short(str(event.anchor), 40)} is used inside its own anchor "
                                       "(a cycle); allowed: aliases of values defined before",
                               problem_mark=event.start_mark)
            self._values += size[0]
        else:
            self._values += 1
            collection = isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent)
            self._nesting += collection
            if self._nesting > MAX_NESTING:
                raise _Refused(problem=f"nested deeper than {MAX_NESTING} levels; a request nests at most 4",
                               problem_mark=event.start_mark)
            node = super().compose_node(parent, index)
            self._nesting -= collection
            size = self._size_of(node)
            self._sizes[id(node)] = size
        if self._values > MAX_VALUES:
            raise _Refused(problem=f"more than {MAX_VALUES} values (each use of an alias counts as a copy of what "
                                   "it names); a request has at most about 1 000", problem_mark=event.start_mark)
        if self._nesting + size[1] > MAX_NESTING:
            raise _Refused(problem=f"nested deeper than {MAX_NESTING} levels (aliases expanded); a request nests at "
                                   "most 4", problem_mark=event.start_mark)
        return node

    def _size_of(self, node: yaml.Node) -> tuple[int, int]:
        if isinstance(node, yaml.ScalarNode):
            return 1, 0
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
        sizes = [self._sizes[id(c)] for c in children]
        return 1 + sum(v for v, _ in sizes), 1 + max((n for _, n in sizes), default=0)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def yaml_load(text: str) -> Any:
    """Parse YAML the way a person reads it, within the bounds above (see _Loader); any failure is a
    yaml.YAMLError (a value that cannot be built, e.g. ``0x_`` or a 5 000-digit number, too)."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except (ValueError, OverflowError) as e:
        raise yaml.YAMLError(f"a value cannot be read: {_short(str(e), 200)}") from None
    finally:
        loader.dispose()


class _Beyond(ValueError):
    """A JSON document beyond a bound (nesting, values)."""


def _json_load(text: str) -> Any:
    """JSON within the same bounds as YAML (it has no aliases: the values are what is written)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise _Beyond(f"nested deeper than {MAX_NESTING} levels; a request nests at most 4") from None
    beyond = _beyond_bounds(data)
    if beyond:
        raise _Beyond(beyond)
    return data


def _parse_problem(e: Exception) -> str:
    """A parser's complaint on one line: what, and where (line and column)."""
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        what = " ".join(_short(str(p), 120) for p in (e.context, e.problem) if p)
        return what + (f" (line {mark.line + 1}, column {mark.column + 1})" if mark else "")
    return _short(str(e), 300)


def _too_large(label: str, name: str, size: int | None = None) -> DocumentError:
    size_text = f"{size} bytes" if size is not None else f"more than {MAX_DOCUMENT_BYTES} bytes"
    return DocumentError(f"{label}: {_short(repr(name), 120)} is too large ({size_text}); allowed: up to "
                         f"{MAX_DOCUMENT_BYTES // 1_000_000} MB ({MAX_DOCUMENT_BYTES} bytes; a request needs a few KB)")


def decode_document(raw: bytes, name: str, label: str = "request file") -> str:
    """The text of a request or edits file's bytes: at most MAX_DOCUMENT_BYTES of UTF-8 (a leading byte
    order mark is allowed); RequestError naming the file otherwise."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _too_large(label, name, None if len(raw) == MAX_DOCUMENT_BYTES + 1 else len(raw))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DocumentError(f"{label}: {_short(repr(name), 120)} is not UTF-8 text (byte 0x{raw[e.start]:02x} at "
                            f"offset {e.start}); allowed: YAML or JSON saved as UTF-8") from None


def read_document(path: str | Path, label: str = "request file") -> str:
    """Read a request or edits file given by a user (the CLI), at most MAX_DOCUMENT_BYTES + 1 bytes of it;
    RequestError naming the file when it is missing, a folder, unreadable, too large or not UTF-8."""
    shown = _short(repr(str(path)), 120)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise DocumentError(f"{label}: {shown} does not exist") from None
    except IsADirectoryError:
        raise DocumentError(f"{label}: {shown} is a folder; allowed: a YAML or JSON file") from None
    except (OSError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise DocumentError(f"{label}: {shown} cannot be read ({_short(why)}); allowed: a readable YAML or JSON file") from None
    return decode_document(raw, str(path), label)


def parse_document(text: str, name: str, label: str = "request file") -> Any:
    """The data of a JSON (``name`` ends in .json) or YAML document; RequestError when it is neither, or
    beyond the bounds (size, nesting, values, aliases)."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise _too_large(label, name, len(text.encode("utf-8", "replace")))
    suffix = Path(name).suffix.lower()
    try:
        return _json_load(text) if suffix == ".json" else yaml_load(text)
    except (json.JSONDecodeError, yaml.YAMLError, ValueError, RecursionError) as e:
        verdict = "is refused" if isinstance(e, _Refused | _Beyond) else f"is not valid {'json' if suffix == '.json' else 'yaml'}"
        raise DocumentError(f"{label}: {_short(repr(name), 120)} {verdict}: {_parse_problem(e)}") from None


def load_request(path: str | Path) -> MovieRequest:
    """Read a YAML or JSON request file."""
    return parse_request(parse_document(read_document(path), str(path)))


_LEADS = re.compile(
    r"^(please\s+)?(tell me about|tell me|explain|what (was|were|is|are)|who (was|were|is|are)|"
    r"how (did|does|do)|why (did|does|do)|describe|teach me about|a movie about|make a movie about|"
    r"cuéntame sobre|háblame de|explícame|parle-moi de|explique-moi|erzähl mir von|erkläre|"
    r"parlami di|spiegami|fale-me sobre|me fale sobre|explique)\s+",
    re.IGNORECASE,
)


def topic_of(inquiry: str) -> str:
    """'Tell me about the Civil War?' -> 'the Civil War'."""
    text = inquiry.strip().splitlines()[0] if inquiry.strip() else inquiry
    text = _LEADS.sub("", text).strip().rstrip("?.!").strip()
    words = text.split()
    if len(words) > 10:
        text = " ".join(words[:10])
    return text or inquiry.strip()
