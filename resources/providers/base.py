"""Provider interfaces and the typed results they return.

Each provider kind (LLM, speech, image, video, music) is an interface with several implementations:
the built-in offline one (a product feature: real media, no keys, no network) and real providers.
Producers talk to these interfaces only; resources pick the implementation from configuration.
"""

from __future__ import annotations

import abc
import asyncio
import errno
import os
import re
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel

from movie_assets.domain.words import Heard
from resources.runtime.disk import disk_full, is_no_space
from resources.runtime.secrets import redact
from resources.runtime.slots import Slots, local_work

T = TypeVar("T")


class ErrorCategory(StrEnum):
    """What kind of failure a failed call is: it decides whether trying again can help and what to do."""

    bad_input = "bad_input"            # the provider rejected the request's content (bad prompt/params)
    content_policy = "content_policy"  # safety system / moderation
    authentication = "authentication"  # bad or missing-permission key
    quota = "quota"                    # billing / exhausted quota / payment required
    rate_limit = "rate_limit"
    outage = "outage"                  # provider 5xx, timeouts, unreachable, prediction failed/canceled, malformed answer
    local = "local"                    # this machine: disk full, memory, ffmpeg/tool failure, unexpected bug
    storage = "storage"                # artifact storage (S3 / local folder) unreachable or refusing
    configuration = "configuration"    # routes, model params, missing key, model cannot do the asked mode/size/voice/language
    budget = "budget"                  # a budget cap stopped the call
    upstream = "upstream"              # a dependency failed


# One thing to do about each kind of failure. "ID" stands for the movie id (``for_movie``).
RETRY_LATER = "retry later: `moviegen generate ID` rebuilds only what failed"
SUGGESTIONS: dict[ErrorCategory, str] = {
    ErrorCategory.bad_input: "edit the request (moviegen edit ID --set ...) so the provider accepts it, and generate again",
    ErrorCategory.content_policy: "edit the prompt (moviegen edit ID --set ...) and generate again",
    ErrorCategory.authentication: "check the provider's key (OPENAI_API_KEY / REPLICATE_API_TOKEN) and generate again",
    ErrorCategory.quota: "add credit to the provider account or route the producer to another provider (MOVIEGEN_PROVIDERS)",
    ErrorCategory.rate_limit: RETRY_LATER,
    ErrorCategory.outage: RETRY_LATER,
    ErrorCategory.local: "check this machine (free disk space and memory, ffmpeg) and generate again: "
                         "`moviegen generate ID` rebuilds only what failed",
    ErrorCategory.storage: "check the artifact storage (MOVIEGEN_STORAGE: folder or S3 bucket, endpoint, credentials) "
                           "and generate again",
    ErrorCategory.configuration: "fix the configuration the message names (MOVIEGEN_PROVIDERS, MOVIEGEN_MODEL_PARAMS, "
                                 "keys) or the request, and generate again",
    ErrorCategory.budget: "raise the budget (--budget or budget_usd) or generate with --allow-over-budget",
    ErrorCategory.upstream: "fix the failure it depends on",
}


UNEXPECTED = "an unexpected error: run the command with --verbose and report the traceback"
RETRYABLE = frozenset({ErrorCategory.rate_limit, ErrorCategory.outage})


class Limit(StrEnum):
    """Why a failed call may succeed at reduced settings (recovery: one retry at the next lower settings,
    movie_assets/domain/recovery.py). Any other failure is not reducible."""

    size = "size"          # the provider (or a local model) refused the size or resolution asked
    duration = "duration"  # the provider refused the clip's length
    steps = "steps"        # the provider refused the number of diffusion steps
    timeout = "timeout"    # the call took too long: less to make may finish in time
    memory = "memory"      # a GPU or memory limit of the model that made it (CUDA / torch out of memory)


class ProviderError(Exception):
    """A provider call failed. ``category`` says what kind of failure it is, ``retryable`` whether
    trying again later can succeed (by default: rate limits and outages only), ``suggestion`` the one
    thing to do about it. ``str(e)`` is the message alone, secrets redacted (runtime/secrets.py): it
    often quotes a provider's answer, which may echo the key. ``retries`` and ``latency_s``: what the
    call that failed for good cost in attempts and time, when a client knows (for the metrics)."""

    retries: int = 0
    latency_s: float | None = None

    def __init__(self, message: str, *, provider: str, retryable: bool | None = None,
                 category: ErrorCategory = ErrorCategory.outage, suggestion: str | None = None,
                 limit: Limit | None = None):
        super().__init__(redact(message))
        self.provider = provider
        self.limit = Limit(limit) if limit is not None else None  # reducible: reduced settings may succeed
        self.category = ErrorCategory(category)
        self.retryable = self.category in RETRYABLE if retryable is None else retryable
        self.suggestion = SUGGESTIONS[self.category] if suggestion is None else redact(suggestion)


class MalformedAnswer(ProviderError):
    """A provider answered, with success, something that cannot be used: invalid JSON, a missing field,
    base64 that is not a picture, truncated or undecodable media, an output file that cannot be
    downloaded. The provider's fault, never this machine's: an ``outage`` (the next generate tries again;
    an offline placeholder stands in meanwhile). The message names the provider and what was wrong."""

    def __init__(self, message: str, *, provider: str):
        super().__init__(message, provider=provider, category=ErrorCategory.outage)


# A full disk (ENOSPC, EDQUOT) is told apart before these: it names the disk (runtime/disk.py).
_LOCAL_ERRNOS = {
    errno.ENOMEM: "free memory on this machine (close other programs or build fewer things at once) and generate again",
    errno.EMFILE: "too many open files: raise the open-file limit (ulimit -n) and generate again",
}
_MEMORY = _LOCAL_ERRNOS[errno.ENOMEM]


_CATEGORIES = frozenset(c.value for c in ErrorCategory)


def _module(e: BaseException) -> str:
    return type(e).__module__ or ""


def categorize(e: BaseException) -> tuple[ErrorCategory, str]:
    """The category of any failure and the one thing to do about it. An exception that names its own
    ``category`` (an ErrorCategory value, e.g. ``StorageError.category == "storage"``) is taken at its
    word, with its ``suggestion`` when it has one."""
    if isinstance(e, ProviderError):
        return e.category, e.suggestion
    named = getattr(e, "category", None)  # e.g. resources.storage.StorageError (not imported: a sibling layer)
    if isinstance(named, str) and named in _CATEGORIES:
        category, suggestion = ErrorCategory(named), getattr(e, "suggestion", None)
        return category, suggestion if isinstance(suggestion, str) and suggestion else SUGGESTIONS[category]
    if isinstance(e, MemoryError):
        return ErrorCategory.local, _MEMORY
    if is_no_space(e):
        return ErrorCategory.local, disk_full(e).suggestion  # type: ignore[arg-type]
    if isinstance(e, OSError) and e.errno in _LOCAL_ERRNOS:
        return ErrorCategory.local, _LOCAL_ERRNOS[e.errno]
    module = _module(e)
    if module.startswith(("botocore", "boto3")):
        return ErrorCategory.storage, SUGGESTIONS[ErrorCategory.storage]
    if module.startswith(("httpx", "httpcore")):  # a provider's download or connection, outside its mapped calls
        return ErrorCategory.outage, SUGGESTIONS[ErrorCategory.outage]
    if isinstance(e, subprocess.CalledProcessError | subprocess.TimeoutExpired):
        cmd = e.cmd if isinstance(e.cmd, str) else (e.cmd or ["a tool"])[0]
        cmd = os.path.basename(str(cmd).split()[0]) if str(cmd).strip() else "a tool"
        return ErrorCategory.local, f"the local tool {cmd} failed: read its message, fix the cause and generate again"
    if isinstance(e, FileNotFoundError):
        missing = redact(e.filename or "a file or tool")
        return ErrorCategory.local, f"{missing} was not found on this machine: install it or fix the path, and generate again"
    if module == "resources.runtime.media":  # MediaError: ffmpeg or a media file (not imported: it pulls numpy)
        return ErrorCategory.local, ("a local media tool (ffmpeg) failed: read its message; if it persists, "
                                     "run the command with --verbose and report the traceback")
    return ErrorCategory.local, UNEXPECTED


# What a provider (or a local model) says when what was asked is too big for it. Checked in this order: a
# memory limit first (a CUDA OOM message often names the size it failed at).
_LIMIT_WORDS: tuple[tuple[Limit, re.Pattern[str]], ...] = (
    (Limit.memory, re.compile(r"CUDA out of memory|OutOfMemoryError|out of memory|\bOOM\b|CUBLAS_STATUS_ALLOC_FAILED"
                              r"|not enough (GPU |video )?memory", re.IGNORECASE)),
    (Limit.duration, re.compile(r"\b(duration|num_frames|seconds|length)\b.{0,60}\b(not supported|unsupported|too long"
                                r"|must be (at most|less|<=)|exceeds|invalid)|\b(unsupported|invalid) (duration|num_frames|length)",
                                re.IGNORECASE)),
    (Limit.steps, re.compile(r"\b(num_inference_steps|steps)\b.{0,60}\b(not supported|unsupported|too (many|large)"
                             r"|must be (at most|less|<=)|exceeds|invalid)", re.IGNORECASE)),
    (Limit.size, re.compile(r"\b(size|resolution|width|height|dimensions?|megapixels?)\b.{0,60}\b(not supported|unsupported"
                            r"|too (large|big)|must be (at most|one of|less|<=)|exceeds|invalid|supported values)"
                            r"|\b(unsupported|invalid) (size|resolution|dimensions?)"
                            r"|\b\d{3,4}x\d{3,4}\b.{0,60}\b(not supported|unsupported|supported values)", re.IGNORECASE)),
)


def limit_in(message: str) -> Limit | None:
    """The limit a provider's error message names (a size, length or steps it cannot make, memory it ran
    out of), or None: the message says nothing reduced settings could fix."""
    return next((limit for limit, words in _LIMIT_WORDS if words.search(message)), None)


def reducible(e: BaseException) -> Limit | None:
    """Whether a failed call may succeed at reduced settings, and why (None: it may not). A provider error
    says so itself (``ProviderError.limit``, set by the clients from the provider's answer); a bare error of
    a local model is read by its type and message (``torch.cuda.OutOfMemoryError``, ``MemoryError``, a
    timeout). A content-policy, key, quota, budget or configuration failure never is: a smaller picture is
    refused the same."""
    if isinstance(e, ProviderError):
        return e.limit
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return Limit.memory
    if isinstance(e, TimeoutError | asyncio.TimeoutError) or (
            _module(e).startswith(("httpx", "httpcore")) and "Timeout" in type(e).__name__):
        return Limit.timeout
    if isinstance(e, RuntimeError) and limit_in(str(e)) is Limit.memory:  # torch's older "CUDA out of memory"
        return Limit.memory
    return None


def describe_failure(e: BaseException) -> dict[str, str]:
    """A failure as shown to a user: its message (one line, secrets redacted: what follows its first line,
    such as a tool's last messages, is for ``--verbose``), category and the one thing to do about it. A
    full disk says so, with the free space on the disk that ran out."""
    category, suggestion = categorize(e)
    if is_no_space(e):
        message = str(disk_full(e))  # type: ignore[arg-type]
    else:
        message = str(e) if isinstance(e, ProviderError) else f"{type(e).__name__}: {e}"
    lines = [line for line in message.splitlines() if line.strip()]
    return {"message": redact(lines[0] if lines else message), "category": category.value, "suggestion": redact(suggestion)}


class ModelParams:
    """A provider client for one model, with the producer's configured model parameters
    (MOVIEGEN_MODEL_PARAMS) merged into every call.

    ``decided`` are the inputs the request decides (prompt, size, voice, ...): configuring one is
    refused when the client is made, before any call. Other inputs the client sends by default
    (an output format, a prompt optimizer) can be overridden."""

    name: str = ""  # the provider
    default_model: str = ""
    decided: frozenset[str] = frozenset()

    def __init__(self, session: Any, model: str | None = None, params: dict[str, Any] | None = None,
                 local: Slots | asyncio.Semaphore | None = None):
        self.session, self.model = session, model or self.default_model
        self.params = dict(params or {})
        self.local = local  # the machine's local-work slots, for the work on an answer (None: none)
        clash = sorted(set(self.params) & self.decided)
        if clash:
            raise ProviderError(f"MOVIEGEN_MODEL_PARAMS for {self.model}: {', '.join(clash)} come(s) from the movie "
                                f"request and cannot be configured; configurable are the model's other inputs",
                                provider=self.name, category=ErrorCategory.configuration)

    def _merge(self, defaults: dict[str, Any], decided: dict[str, Any]) -> dict[str, Any]:
        return {**defaults, **self.params, **decided}

    async def _local(self, fn: Callable[..., T], *args: Any) -> T:
        """CPU-heavy work on an answer (conforming it to the frame, transcoding) in a thread, within the
        machine's local-work slots: after the answer was kept (``answered``), never before."""
        return await local_work(self.local, fn, *args)


@dataclass(frozen=True)
class CallInfo:
    """What one provider call cost: shown as metadata on the artifact it produced."""

    provider: str
    model: str
    latency_s: float
    cost_usd: float = 0.0
    request_id: str | None = None
    retries: int = 0


@dataclass(frozen=True)
class Media:
    """A media file produced by a provider."""

    data: bytes
    ext: str
    mime: str
    call: CallInfo
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    preview: bytes | None = None  # a small JPEG, when the provider has the picture at hand anyway


@dataclass(frozen=True)
class Answer:
    """A paid call's answer as it arrived, before any local work on it (conforming it to the frame,
    transcoding): the files the provider charged for, the call, and what finishing it needs besides the
    files (plain values)."""

    files: tuple[bytes, ...]
    call: CallInfo
    meta: dict[str, Any] = field(default_factory=dict)


class Answers(abc.ABC):
    """Where a build keeps a paid call's answer the moment it arrives; the build engine sets one per node
    (``ANSWERS``) around the node's call."""

    @abc.abstractmethod
    def recalled(self) -> Answer | None:
        """The answer an earlier build kept for this very call and never finished (None: make the call)."""

    @abc.abstractmethod
    async def keep(self, answer: Answer) -> None:
        """Store the answer (and settle what the call cost): a process killed after this loses nothing
        it paid for."""


ANSWERS: ContextVar[Answers | None] = ContextVar("moviegen_answers", default=None)


async def answered(call: Callable[[], Awaitable[Answer]]) -> Answer:
    """A paid call's answer: the one an earlier build kept for this very call (then no call is made), else
    the call's, kept as soon as it arrives, before the caller does any local work on it. Every provider
    that charges wraps its call in this; without ``ANSWERS`` set (a client used on its own) it just calls."""
    answers = ANSWERS.get()
    if answers is not None and (kept := answers.recalled()) is not None:
        return kept
    answer = await call()
    if answers is not None:
        await answers.keep(answer)
    return answer


@dataclass(frozen=True)
class TextResult:
    value: BaseModel
    call: CallInfo


class Script(BaseModel):
    title: str
    summary: str
    narration: list[str]


class ImagePrompts(BaseModel):
    prompts: list[str]


class MusicPrompt(BaseModel):
    prompt: str


class DirectionPrompt(BaseModel):
    direction: str


class ImageToVideoPrompts(BaseModel):
    direction: str
    starting_image_prompt: str


class ResearchFact(BaseModel):
    text: str
    source: int  # the number of the user's source it comes from (1, 2...), 0: general knowledge


class ResearchDate(BaseModel):
    date: str
    event: str


class ResearchName(BaseModel):
    name: str
    role: str


class ResearchReference(BaseModel):
    title: str
    url: str  # "" when the model knows none


class Research(BaseModel):
    """The research before the script, as an LLM writes it (``ResearchProducer``)."""

    summary: str
    facts: list[ResearchFact]
    dates: list[ResearchDate]
    names: list[ResearchName]
    references: list[ResearchReference]


MAX_RESEARCH_ITEMS = 30  # dates, names and references each
MAX_RESEARCH_TEXT = 1000  # characters of any one text of a research


def research_problems(research: Research, sources: int, max_facts: int) -> list[str]:
    """What makes a research answer unusable beyond its schema (an empty or overlong list, a fact citing a
    source the user did not give, a reference that is not an http(s) URL). The recipe raises a
    MalformedAnswer with them: an answer that cannot be used, like invalid JSON."""
    problems = []
    if not research.facts:
        problems.append("no facts")
    if len(research.facts) > max_facts:
        problems.append(f"{len(research.facts)} facts, at most {max_facts} asked")
    for name in ("dates", "names", "references"):
        if len(getattr(research, name)) > MAX_RESEARCH_ITEMS:
            problems.append(f"{len(getattr(research, name))} {name}, at most {MAX_RESEARCH_ITEMS}")
    texts = [research.summary, *(f.text for f in research.facts), *(d.date + d.event for d in research.dates),
             *(n.name + n.role for n in research.names), *(r.title + r.url for r in research.references)]
    if any(len(t) > MAX_RESEARCH_TEXT for t in texts):
        problems.append(f"a text longer than {MAX_RESEARCH_TEXT} characters")
    for i, fact in enumerate(research.facts):
        if not fact.text.strip():
            problems.append(f"fact {i + 1} is empty")
        if not 0 <= fact.source <= sources:
            problems.append(f"fact {i + 1} cites source {fact.source}, but the user gave "
                            + (f"sources 1 to {sources}" if sources else "no sources") + " (0: general knowledge)")
    problems += [f"reference {r.title[:60]!r} has a URL that is not http(s): {r.url[:80]!r}"
                 for r in research.references if r.url and not re.match(r"^https?://\S+$", r.url)]
    return problems


class Recurring(BaseModel):
    name: str
    description: str


class Look(BaseModel):
    """The movie's look, as an LLM writes it (``LookProducer``)."""

    palette: str
    lighting: str
    camera: str
    characters: list[Recurring]
    places: list[Recurring]


async def simulate_latency(started: float, latency_s: float) -> None:
    """Wait out the rest of a call's simulated latency (work already done counts toward it)."""
    remaining = latency_s - (time.monotonic() - started)
    if remaining > 0:
        await asyncio.sleep(remaining)


class LLMProvider(abc.ABC):
    """Structured text generation: the script and every prompt."""

    name: str

    @abc.abstractmethod
    async def generate(self, task: str, prompt: str, schema: type[BaseModel], context: dict[str, Any]) -> TextResult:
        """Answer ``prompt`` with JSON matching ``schema``. ``context`` holds the same facts, structured."""


class SpeechProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def synthesize(self, text: str, *, voice_id: str, language: str, emotion: str | None, max_ms: int,
                         seed: int = 0) -> Media:
        """Speak ``text``; offline voices try to fit it into ``max_ms``. ``seed``: the take (0: the first;
        a model without a seed simply makes a new reading)."""


class ImageProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def generate(self, prompt: str, *, style: str, width: int, height: int, label: str, seed: int = 0,
                       references: Sequence[bytes] = ()) -> Media:
        """A picture of exactly ``width`` × ``height`` pixels. ``seed``: the take; ``references``: PNGs of the
        recurring characters and places the prompt names, for a model that takes reference images (one
        that does not ignores them and says so in ``Media.extra["references"]``)."""


def _lines(size: str) -> int:
    return int(size.removesuffix("p"))


@dataclass(frozen=True)
class VideoCapability:
    """What a video model can make (its row in a provider's catalog): the calls (``t2v``, ``i2v``, ``ti2v``),
    the frame sizes it makes (short side: ``480p``...; a smaller frame gets the clip conformed down, a
    larger one is refused), the clip lengths it makes (s; a segment's 10 s is reached by holding the last frame, up to
    ``max_hold_s`` more), and whether it takes a seed (else a new take is simply a new call) or reference
    pictures. A request it cannot serve is refused before any call (builder/preflight.py, and the client)."""

    modes: frozenset[str]
    sizes: tuple[str, ...]
    seconds: tuple[int, ...]
    seed: bool = False
    references: bool = False
    max_hold_s: int = 10

    def problem(self, model: str, call: str, size: str, seconds: int) -> str | None:
        """Why ``model`` cannot make this clip (None: it can)."""
        names = {"t2v": "text-to-video", "i2v": "image-to-video", "ti2v": "text+image-to-video (TI2V)"}
        if call not in self.modes:
            return (f"{model} cannot make {names[call]}; it makes {', '.join(names[m] for m in sorted(self.modes))}")
        if _lines(size) > max(_lines(s) for s in self.sizes):  # smaller frames: the clip is conformed down
            return f"{model} cannot make {size} clips; it makes {', '.join(self.sizes)}"
        if seconds - max(self.seconds) > self.max_hold_s:
            return (f"{model} makes clips of {', '.join(f'{s} s' for s in self.seconds)}: a {seconds} s clip would hold its "
                    f"last frame over {self.max_hold_s} s")
        return None


class VideoProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def text_to_video(self, prompt: str, *, style: str, width: int, height: int, seconds: int, label: str,
                            seed: int = 0) -> Media:
        """A clip of ``seconds`` from a text prompt (``seed``: the take)."""

    @abc.abstractmethod
    async def image_to_video(self, image: bytes, prompt: str, *, width: int, height: int, seconds: int, label: str,
                             seed: int = 0) -> Media:
        """A clip of ``seconds`` animating ``image`` (``seed``: the take); ``prompt`` directs the motion."""

    @abc.abstractmethod
    async def text_image_to_video(self, image: bytes, prompt: str, *, style: str, width: int, height: int, seconds: int, label: str,
                                  seed: int = 0) -> Media:
        """TI2V: a clip of ``seconds`` made from ``image`` and the text ``prompt`` together (both needed: an
        empty prompt is refused), at 480p or 720p (``seed``: the take)."""


class MusicProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def generate(self, prompt: str, *, seconds: int, seed: int = 0) -> Media:
        """A music track of ``seconds`` (``seed``: the take)."""


@dataclass(frozen=True)
class Transcript:
    """What a recognizer heard in an audio file: its text and each word with when it is spoken."""

    text: str
    words: tuple[Heard, ...]
    call: CallInfo
    duration_ms: int | None = None


class TranscriptionProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def transcribe(self, audio: bytes, *, ext: str, language: str, prompt: str) -> Transcript:
        """What is said in ``audio`` (a file of type ``ext``) in ``language``, with word timestamps.
        ``prompt``: the text the speaker read (a hint for spelling; the words heard may still differ)."""
