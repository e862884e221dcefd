"""The movie request: what a user asks for, validated before anything is registered or called."""

from __future__ import annotations

import enum
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SEGMENT_SECONDS = 10
MAX_SEGMENTS = 30  # the longest movie: 300 s
MAX_IMAGES_PER_SEGMENT = 5
SEGMENT_MS = SEGMENT_SECONDS * 1000


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
    wipe = "wipe"
    slide = "slide"
    zoom = "zoom"


TRANSITION_MS = {Transition.cut: 0, Transition.fade: 800, Transition.crossfade: 500, Transition.wipe: 600,
                 Transition.slide: 600, Transition.zoom: 600}


class RenderPreset(enum.StrEnum):
    """The rendered movie's resolution (short side) and quality; a render setting only."""

    p480 = "480p"
    p720 = "720p"
    p1080 = "1080p"
    p2160 = "2160p"


class VisualMode(enum.StrEnum):
    """Which visual branch a segment builds (the blueprint's condition on UseVideo/IsImageToVideo)."""

    image_only = "image_only"
    video_by_text = "video_by_text"
    video_by_image = "video_by_image"


def frame_size(size: Size, aspect_ratio: AspectRatio) -> tuple[int, int]:
    """Pixel width and height: the short side is the size's line count, both sides even."""
    short = int(size.value.removesuffix("p"))
    w_ratio, h_ratio = (int(x) for x in aspect_ratio.value.split(":"))
    long = round(short * max(w_ratio, h_ratio) / min(w_ratio, h_ratio) / 2) * 2
    return (long, short) if w_ratio >= h_ratio else (short, long)


class SegmentOverrides(BaseModel):
    """Per-segment overrides: prompts that win over the generated ones, and visual conditions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    narration: str | None = Field(default=None, min_length=1, max_length=1000)
    use_video: bool | None = None
    is_image_to_video: bool | None = None
    starting_image_prompt: str | None = Field(default=None, min_length=1, max_length=2000)
    movie_direction_prompt: str | None = Field(default=None, min_length=1, max_length=2000)
    image_prompts: dict[int, str] = Field(default_factory=dict)
    transition: Transition | None = None  # how this segment's first clip enters

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
                f"movie id: got {movie_id!r}; allowed: 1-63 characters of lowercase letters, digits "
                "and '-', starting with a letter or digit (no '/', '..', spaces or '|')"
            ]
        )
    return movie_id


class MovieRequest(BaseModel):
    """A movie request, as written in a YAML or JSON request file."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    inquiry_prompt: str = Field(min_length=3, max_length=2000)
    duration_seconds: int = 60
    audience: Audience = Audience.general
    language: Language = Language.en
    voice_id: str = Field(default="narrator", min_length=1, max_length=64)
    emotion: str | None = Field(default=None, max_length=64)
    use_video: bool = False
    is_image_to_video: bool = False
    images_per_segment: int = Field(default=3, ge=1, le=MAX_IMAGES_PER_SEGMENT)
    image_style: ImageStyle = ImageStyle.cinematic
    size: Size = Size.p720
    aspect_ratio: AspectRatio = AspectRatio.landscape
    assembly_strategy: AssemblyStrategy = AssemblyStrategy.ken_burns
    music_prompt: str | None = Field(default=None, min_length=1, max_length=2000)
    transition: Transition | None = None  # default: crossfade for the crossfade strategy, else cut
    render_preset: RenderPreset | None = None  # default: the preset of the request's size
    # The most this movie may spend on provider calls, all revisions together (USD; none: no cap of its
    # own). Enforced per call; changing it rebuilds nothing.
    budget_usd: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)
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
            for j in overrides.image_prompts:
                if j >= self.images_per_segment:
                    problems.append(
                        f"segments.{index}.image_prompts.{j}: image index {j} is out of range; "
                        f"allowed: 0 to {self.images_per_segment - 1} (images_per_segment={self.images_per_segment})"
                    )
        problems += self._image_to_video_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

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

    @property
    def segment_count(self) -> int:
        """Number of 10 s segments."""
        return self.duration_seconds // SEGMENT_SECONDS

    @property
    def frame(self) -> tuple[int, int]:
        return frame_size(self.size, self.aspect_ratio)

    def transition_into(self, segment: int, first_clip: bool) -> Transition:
        """How a clip of ``segment`` enters: the segment's own transition for its first clip, else the
        movie's (the crossfade strategy means crossfade)."""
        own = self.overrides(segment).transition if first_clip else None
        default = Transition.crossfade if self.assembly_strategy is AssemblyStrategy.crossfade else Transition.cut
        return own or self.transition or default

    @property
    def preset(self) -> RenderPreset:
        return self.render_preset or RenderPreset(self.size.value)

    def overrides(self, segment: int) -> SegmentOverrides:
        return self.segments.get(segment) or SegmentOverrides()

    def mode(self, segment: int) -> VisualMode:
        o = self.overrides(segment)
        use_video = self.use_video if o.use_video is None else o.use_video
        i2v = self.is_image_to_video if o.is_image_to_video is None else o.is_image_to_video
        if not use_video:
            return VisualMode.image_only
        return VisualMode.video_by_image if i2v else VisualMode.video_by_text

    def to_document(self) -> dict[str, Any]:
        """The request as plain JSON data, in the file format users write."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


class RequestError(ValueError):
    """A request (or an edit) that cannot be accepted; ``problems`` names each field and value."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid movie request:\n" + "\n".join(f"  - {p}" for p in problems))


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
    }
    if field in enums:
        return "allowed: " + ", ".join(e.value for e in enums[field])
    return ""


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    field = ".".join(str(p) for p in loc) or "request"
    msg = error.get("msg", "")
    msg = msg.removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return f"{field}: unknown field (check the spelling; see docs/request.md for the fields)"
    if error.get("type") == "missing":
        return f"{field}: required field is missing"
    got = error.get("input")
    got_text = json.dumps(got, default=str) if not isinstance(got, dict) else "{...}"
    if len(got_text) > 80:
        got_text = got_text[:77] + "..."
    allowed = _allowed(loc)
    if allowed and error.get("type") == "enum":
        return f"{field}: got {got_text}; {allowed}"
    if field == "request" or error.get("type") == "value_error" and not loc:
        return msg
    return f"{field}: got {got_text}; {msg}" + (f" ({allowed})" if allowed else "")


def parse_request(data: Any) -> MovieRequest:
    """Validate request data, raising RequestError that names every bad field, value and rule."""
    if not isinstance(data, dict):
        raise RequestError([f"request: expected a mapping of fields, got {type(data).__name__}"])
    try:
        return MovieRequest.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            if not err.get("loc") and err.get("type") == "value_error":
                problems.extend(str(err.get("msg", "")).removeprefix("Value error, ").split("\n"))
            else:
                problems.append(_describe(dict(err)))
        raise RequestError(problems) from None


class _Loader(yaml.SafeLoader):
    """YAML without YAML 1.1's base-60 numbers: ``aspect_ratio: 16:9`` stays the text "16:9" instead
    of becoming 969, and ``12:30`` is not 750."""


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
    """Parse YAML the way a person reads it (see _Loader)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def parse_document(text: str, name: str, label: str = "request file") -> Any:
    """The data of a JSON (``name`` ends in .json) or YAML document; RequestError when it is neither."""
    suffix = Path(name).suffix.lower()
    try:
        return json.loads(text) if suffix == ".json" else yaml_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise RequestError([f"{label}: {name!r} is not valid {suffix.lstrip('.') or 'YAML'}: {e}"]) from None


def load_request(path: str | Path) -> MovieRequest:
    """Read a YAML or JSON request file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RequestError([f"request file: {str(path)!r} does not exist"]) from None
    return parse_request(parse_document(text, str(path)))


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
