"""In-memory providers for the fast unit tests of the build layer: small classes implementing the
provider interfaces, each call logged per producer, returning tiny real bytes (a real PNG of the
requested size; text bytes for audio and video, which the engine stores but never decodes)."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel

from movie_assets.builder.code_versions import code_versions
from movie_assets.builder.context import RecipeContext
from movie_assets.builder.engine import BuildEngine, BuildSummary, Built, Failed, Skipped
from movie_assets.domain.blueprint import PRODUCERS, Blueprint, NodeKey, ProviderKind, expand
from movie_assets.domain.records import ArtifactRecord, FailureRecord, MovieState
from movie_assets.domain.request import MovieRequest, parse_request
from movie_assets.domain.words import Heard
from resources.providers.base import (
    CallInfo,
    DirectionPrompt,
    ImagePrompts,
    ImageProvider,
    ImageToVideoPrompts,
    LLMProvider,
    Look,
    Media,
    MusicPrompt,
    MusicProvider,
    ProviderError,
    Recurring,
    Research,
    ResearchDate,
    ResearchFact,
    ResearchName,
    Script,
    SpeechProvider,
    TextResult,
    Transcript,
    TranscriptionProvider,
    VideoProvider,
)
from resources.settings import Settings
from resources.storage import ArtifactStore

MOVIE = "civil-war"
CIVIL_WAR = {"inquiry_prompt": "Tell me about the Civil War", "duration_seconds": 20, "images_per_segment": 2, "size": "480p"}
GATE_TIMEOUT_S = 20.0  # only reached when a concurrency expectation is broken; never in a passing run


def small_request(**fields: Any) -> MovieRequest:
    return parse_request({**CIVIL_WAR, **fields})


def blueprint_of(request: MovieRequest) -> Blueprint:
    """expand(request): the artifacts the providers make and the timeline. Where the blueprint can also
    render the movie (``expand(request, render=...)``), without that: rendering needs real media and a
    renderer, which the render tests cover."""
    if "render" in inspect.signature(expand).parameters:
        return expand(request, render=False)  # type: ignore[call-arg]
    return expand(request)


def png(width: int, height: int, seed: str) -> bytes:
    """A real PNG of exactly ``width`` x ``height``, its colour derived from ``seed``."""
    r, g, b = hashlib.sha256(seed.encode()).digest()[:3]
    out = io.BytesIO()
    Image.new("RGB", (width, height), (r, g, b)).save(out, "PNG", compress_level=1)
    return out.getvalue()


def narration_text(segment: int) -> str:
    return f"In part {segment} the **Union** and the _Confederacy_ fought over slavery and the future of the nation."


class Concurrency:
    """Counts calls in flight; ``gate``: each call waits until that many have been in flight at once
    (so a test sees real overlap without depending on timing)."""

    def __init__(self, gate: int | None = None):
        self.now = 0
        self.max = 0
        self.gate = gate
        self._reached: asyncio.Event | None = None

    async def __aenter__(self) -> None:
        self.now += 1
        self.max = max(self.max, self.now)
        if self.gate is not None:
            if self._reached is None:
                self._reached = asyncio.Event()
            if self.now >= self.gate:
                self._reached.set()
            try:
                await asyncio.wait_for(self._reached.wait(), GATE_TIMEOUT_S)
            except TimeoutError:
                pass  # the assertion on ``max`` reports it
        await asyncio.sleep(0)

    async def __aexit__(self, *exc: object) -> None:
        self.now -= 1


class Fakes:
    """Implements the engine's ProviderClients protocol with in-memory providers.

    ``calls`` counts provider calls per producer; ``log`` lists (producer, detail) per call.
    ``fail``: a predicate on (producer, detail) that makes a call raise ProviderError.
    ``salt``: per producer, text mixed into what it returns (to make a rebuild yield new content).
    """

    def __init__(self, *, in_flight: dict[ProviderKind, int] | None = None, gates: dict[ProviderKind, int] | None = None,
                 fail: Callable[[str, str], bool] | None = None, salt: dict[str, str] | None = None,
                 script_segments: int | None = None, image_prompt_count: int | None = None):
        self.limits = {kind: 64 for kind in ProviderKind} | dict(in_flight or {})
        self.concurrency = {kind: Concurrency((gates or {}).get(kind)) for kind in ProviderKind}
        self.fail = fail or (lambda producer, detail: False)
        self.salt = dict(salt or {})
        self.script_segments = script_segments
        self.image_prompt_count = image_prompt_count
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []
        self.asked_for: list[set[str]] = []
        self.references: dict[str, list[bytes]] = {}  # image prompt -> the reference pictures it was given

    # -- the ProviderClients protocol
    def in_flight(self, kind: ProviderKind) -> int:
        return self.limits[kind]

    def for_producers(self, producers: set[str], local: asyncio.Semaphore) -> dict[str, Any]:
        self.asked_for.append(set(producers))
        return {p: self.client(p) for p in producers}

    # -- helpers
    def client(self, producer: str) -> Any:
        kind = PRODUCERS[producer].kind
        return {ProviderKind.llm: FakeLLM, ProviderKind.speech: FakeSpeech, ProviderKind.images: FakeImages,
                ProviderKind.video: FakeVideo, ProviderKind.music: FakeMusic,
                ProviderKind.transcription: FakeTranscription}[kind](self, producer)

    def clients(self) -> dict[str, Any]:
        return {p: self.client(p) for p in PRODUCERS}

    async def enter(self, producer: str, detail: str) -> CallInfo:
        """Log one call, hold it in flight for its kind, and fail it when asked to."""
        self.calls[producer] += 1
        self.log.append((producer, detail))
        async with self.concurrency[PRODUCERS[producer].kind]:
            if self.fail(producer, detail):
                raise ProviderError(f"fake {producer} refused {detail!r}", provider="fake", retryable=False)
        return CallInfo("fake", f"fake-{PRODUCERS[producer].kind.value}", 0.001, cost_usd=0.01)


class _Fake:
    name = "fake"

    def __init__(self, fakes: Fakes, producer: str):
        self.fakes, self.producer = fakes, producer

    def salted(self, text: str) -> str:
        salt = self.fakes.salt.get(self.producer)
        return f"{text} ({salt})" if salt else text


class FakeLLM(_Fake, LLMProvider):
    async def generate(self, task: str, prompt: str, schema: type[BaseModel], context: dict[str, Any]) -> TextResult:
        detail = f"{task}:{context.get('segment', '')}"
        call = await self.fakes.enter(self.producer, detail)
        value: BaseModel
        if task == "script":
            n = self.fakes.script_segments if self.fakes.script_segments is not None else context["n"]
            value = Script(title=self.salted(f"The story of {context['inquiry_prompt'][-13:]}"),
                           summary="How a divided nation went to war and came back together.",
                           narration=[narration_text(i) for i in range(n)])
        elif task == "music_prompt":
            value = MusicPrompt(prompt=self.salted("slow strings and a distant snare"))
        elif task == "image_prompts":
            m = self.fakes.image_prompt_count if self.fakes.image_prompt_count is not None else context["m"]
            value = ImagePrompts(prompts=[self.salted(f"seg {context['segment']} picture {j}") for j in range(m)])
        elif task == "text_to_video_prompt":
            value = DirectionPrompt(direction=self.salted(f"seg {context['segment']} slow dolly over a battlefield"))
        elif task == "image_to_video_prompt":
            value = ImageToVideoPrompts(direction=self.salted(f"seg {context['segment']} camera pushes in"),
                                        starting_image_prompt=self.salted(f"seg {context['segment']} opening frame"))
        elif task == "research":
            value = Research(summary=self.salted("The war in brief."), dates=[ResearchDate(date="1861", event="the war begins")],
                             facts=[ResearchFact(text=self.salted("The war began in 1861."), source=0),
                                    *(ResearchFact(text=f"Source {n} says so.", source=n) for n in range(1, len(context["sources"]) + 1))],
                             names=[ResearchName(name="Abraham Lincoln", role="president")], references=[])
        elif task == "look":
            value = Look(palette=self.salted("oxblood #6b1f1f, parchment #efe6d2"), lighting="candle light", camera="35mm, eye level",
                         characters=[Recurring(name="The Courier", description="a young rider in a grey wool coat")], places=[])
        else:
            raise AssertionError(f"unexpected LLM task {task}")
        assert isinstance(value, schema)
        return TextResult(value, call)


class FakeSpeech(_Fake, SpeechProvider):
    async def synthesize(self, text: str, *, voice_id: str, language: str, emotion: str | None, max_ms: int) -> Media:
        call = await self.fakes.enter(self.producer, text)
        duration = min(350 * len(text.split()), max_ms)
        return Media(self.salted(f"mp3:{voice_id}:{text}").encode(), "mp3", "audio/mpeg", call, duration_ms=duration)


class FakeTranscription(_Fake, TranscriptionProvider):
    """Hears the prompt's words, a third of a second each."""

    async def transcribe(self, audio: bytes, *, ext: str, language: str, prompt: str) -> Transcript:
        call = await self.fakes.enter(self.producer, prompt)
        words = tuple(Heard(w, 330 * k, 330 * k + 300) for k, w in enumerate(prompt.split()))
        return Transcript(prompt, words, call, 330 * len(words))


class FakeImages(_Fake, ImageProvider):
    async def generate(self, prompt: str, *, style: str, width: int, height: int, label: str, seed: int = 0,
                       references: tuple[bytes, ...] = ()) -> Media:
        call = await self.fakes.enter(self.producer, prompt)
        self.fakes.references[prompt] = list(references)
        data = await asyncio.to_thread(png, width, height, self.salted(f"{style}:{prompt}"))
        return Media(data, "png", "image/png", call, width=width, height=height)


class FakeVideo(_Fake, VideoProvider):
    async def text_to_video(self, prompt: str, *, style: str, width: int, height: int, seconds: int, label: str) -> Media:
        call = await self.fakes.enter(self.producer, prompt)
        return Media(self.salted(f"mp4:t2v:{prompt}:{width}x{height}").encode(), "mp4", "video/mp4", call,
                     width=width, height=height, duration_ms=seconds * 1000)

    async def image_to_video(self, image: bytes, prompt: str, *, width: int, height: int, seconds: int, label: str) -> Media:
        assert image[:8] == b"\x89PNG\r\n\x1a\n", "the starting image reaches image-to-video as PNG bytes"
        call = await self.fakes.enter(self.producer, prompt)
        digest = hashlib.sha256(image).hexdigest()[:12]
        return Media(self.salted(f"mp4:i2v:{digest}:{prompt}").encode(), "mp4", "video/mp4", call,
                     width=width, height=height, duration_ms=seconds * 1000)

    async def text_image_to_video(self, image: bytes, prompt: str, *, style: str, width: int, height: int, seconds: int,
                                  label: str) -> Media:
        assert image[:8] == b"\x89PNG\r\n\x1a\n" and prompt.strip(), "TI2V gets both the starting image and a prompt"
        call = await self.fakes.enter(self.producer, prompt)
        digest = hashlib.sha256(image).hexdigest()[:12]
        return Media(self.salted(f"mp4:ti2v:{digest}:{prompt}:{style}").encode(), "mp4", "video/mp4", call,
                     width=width, height=height, duration_ms=seconds * 1000)


class FakeMusic(_Fake, MusicProvider):
    async def generate(self, prompt: str, *, seconds: int) -> Media:
        call = await self.fakes.enter(self.producer, prompt)
        return Media(self.salted(f"mp3:music:{prompt}").encode(), "mp3", "audio/mpeg", call, duration_ms=seconds * 1000)


# -- running the engine


class Run:
    """One engine run: what it emitted, its summary, and the state after it."""

    def __init__(self, engine: BuildEngine, events: list[Built | Failed | Skipped], summary: BuildSummary, before: MovieState):
        self.engine, self.events, self.summary = engine, events, summary
        self.built = {e.key: e for e in events if isinstance(e, Built)}
        self.failed = {e.key: e for e in events if isinstance(e, Failed)}
        self.skipped = {e.key: e for e in events if isinstance(e, Skipped)}
        records = dict(before.records)
        records.update({k: b.record for k, b in self.built.items()})
        failures = {k: f for k, f in before.failures.items() if k not in self.built}
        failures.update({k: FailureRecord(k, 0, "", f.message) for k, f in self.failed.items()})
        self.state = MovieState(before.movie, records, failures)

    def value(self, key: NodeKey) -> Any:
        return self.built[key].produced.value


def run_engine(store: ArtifactStore, fakes: Fakes, blueprint: Blueprint | None = None, *,
               state: MovieState | None = None, targets: dict[NodeKey, str] | None = None) -> Run:
    blueprint = blueprint or blueprint_of(small_request())
    state = state or MovieState(MOVIE)
    events: list[Built | Failed | Skipped] = []
    engine = BuildEngine(movie=MOVIE, blueprint=blueprint, state=state, store=store, clients=fakes, emit=events.append)
    targets = targets if targets is not None else {key: "missing" for key in blueprint.nodes}
    summary = asyncio.run(engine.run(targets))
    return Run(engine, events, summary, state)


def new_store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(root=str(tmp_path / "artifacts"))


def hand_context(request: MovieRequest, *, clients: dict[str, Any] | None = None, values: dict[NodeKey, Any] | None = None,
                 records: dict[NodeKey, ArtifactRecord] | None = None, failures: dict[NodeKey, str] | None = None,
                 store: ArtifactStore | None = None, in_flight: int = 8) -> RecipeContext:
    """A RecipeContext built by hand: values come from ``values`` (else from ``store`` by record)."""
    values = dict(values or {})
    records = dict(records or {})
    failures = dict(failures or {})
    limits: dict[str, asyncio.Semaphore] = {}

    async def load_bytes(key: NodeKey) -> bytes:
        if store is None or key not in records:
            raise ProviderError(f"{key} is not available", provider="storage")
        return store.read(records[key].uri)

    async def load_value(key: NodeKey) -> Any:
        if key not in values:
            values[key] = json.loads(await load_bytes(key))
        return values[key]

    def limit(producer: str) -> asyncio.Semaphore:
        kind = PRODUCERS[producer].kind
        return limits.setdefault(kind, asyncio.Semaphore(in_flight))

    return RecipeContext(movie=MOVIE, request=request, clients=clients or {}, load_value=load_value,
                          load_bytes=load_bytes, load_record=records.get, load_failure=failures.get, limit=limit,
                          versions=code_versions(Settings()))


def record(key: NodeKey, version: str, **meta: Any) -> ArtifactRecord:
    return ArtifactRecord(key, version, f"file:///nowhere/{key.asset}/{version[:16]}", 0, "", 0.0, meta)
