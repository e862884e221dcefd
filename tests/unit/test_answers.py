"""Paid answers reach storage first: a provider's answer is kept in the build cache the moment it
arrives, before the local work on it (which waits for a local slot), and its reservation is settled at
what it cost; a build stopped in between makes the artifact from the kept answer, with no call."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from movie_assets.builder.budget import Budget
from movie_assets.builder.engine import BuildEngine, Built, Failed, Skipped, predict
from movie_assets.domain.blueprint import PRODUCERS, NodeKey, ProviderKind
from movie_assets.domain.records import MovieState
from movie_assets.movie_files.layout import answers_folder
from resources.providers.base import Answer, ImageProvider, Media, answered
from resources.runtime.budget import SqliteLedger
from resources.runtime.media import fit_to_frame
from resources.runtime.slots import Slots, local_work
from resources.storage import ArtifactStore
from tests.unit.fakes import GATE_TIMEOUT_S, MOVIE, Fakes, blueprint_of, new_store, png, small_request

PRICE = 0.04  # one picture
IMAGES = 4  # small_request(): 2 segments x 2 images
PICTURES = [NodeKey("segment_image", s, j) for s in range(2) for j in range(2)]


class PaidImages(ImageProvider):
    """An images provider that charges (as OpenAI and Replicate do): its answer, a picture larger than the
    frame, goes through ``answered`` and is then conformed to the frame on a local slot."""

    name = "fake"

    def __init__(self, owner: PaidFakes):
        self.owner = owner

    async def generate(self, prompt: str, *, style: str, width: int, height: int, label: str, seed: int = 0,
                       references: Sequence[bytes] = ()) -> Media:
        async def ask() -> Answer:
            call = await self.owner.enter("TextToImageProducer", prompt)
            return Answer((png(1536, 1024, prompt),), dataclasses.replace(call, cost_usd=PRICE))

        answer = await answered(ask)
        self.owner.answered += 1
        if self.owner.answered == IMAGES:
            self.owner.all_answered.set()
        if any(part in prompt for part in self.owner.broken):
            raise RuntimeError(f"the local work on {prompt!r} failed")
        data = await local_work(self.owner.local, fit_to_frame, answer.files[0], width, height)
        return Media(data, "png", "image/png", answer.call, width=width, height=height)


class PaidFakes(Fakes):
    """The in-memory providers, pictures from PaidImages. ``block_local``: every local slot is taken from the
    start of the build (the offline speech and music of a real build), so the work on an answer waits."""

    def __init__(self, block_local: bool = False, broken: frozenset[str] = frozenset()):
        super().__init__()
        self.block_local, self.broken = block_local, broken
        self.local: Slots | asyncio.Semaphore | None = None
        self.answered = 0
        self.all_answered = asyncio.Event()
        self._blocker: asyncio.Task[None] | None = None

    def for_producers(self, producers: set[str], local: Any) -> dict[str, Any]:
        self.local = local
        if self.block_local:
            self._blocker = asyncio.ensure_future(self._hold(local))
        return super().for_producers(producers, local)

    @staticmethod
    async def _hold(local: Slots) -> None:
        for _ in range(local.capacity):
            await local.acquire()
        await asyncio.Event().wait()  # until the build is stopped

    def client(self, producer: str) -> Any:
        return PaidImages(self) if PRODUCERS[producer].kind is ProviderKind.images else super().client(producer)

    def price(self, producer: str) -> tuple[str, str, float]:
        return ("fake", "fake-images", PRICE) if PRODUCERS[producer].kind is ProviderKind.images else ("fake", "fake", 0.0)


def engine(store: ArtifactStore, fakes: PaidFakes, ledger: SqliteLedger, events: list[Any],
           state: MovieState | None = None) -> BuildEngine:
    return BuildEngine(movie=MOVIE, blueprint=blueprint_of(small_request()), state=state or MovieState(MOVIE), store=store,
                       clients=fakes, emit=events.append, budget=Budget(ledger, MOVIE, [], fakes.price))


def kept_answers(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "artifacts" / answers_folder(MOVIE)).rglob("*.json"))


def targets() -> dict[NodeKey, str]:
    return {key: "missing" for key in blueprint_of(small_request()).nodes}


def test_an_answer_is_kept_before_the_local_work_and_a_stopped_build_makes_it_without_calling(tmp_path: Path) -> None:
    store, ledger = new_store(tmp_path), SqliteLedger(tmp_path / "budget.sqlite")
    first = PaidFakes(block_local=True)
    events: list[Built | Failed | Skipped] = []

    async def stopped_while_local_work_waits() -> None:
        task = asyncio.ensure_future(engine(store, first, ledger, events).run(targets()))
        await asyncio.wait_for(first.all_answered.wait(), GATE_TIMEOUT_S)
        # Every picture was answered; the work on them waits for a local slot, and so does every artifact made
        # from them. What was paid for is stored already, and settled at what it cost.
        assert len(kept_answers(tmp_path)) == IMAGES
        assert not (tmp_path / "artifacts" / "movies" / MOVIE / "segment_image").exists()
        assert ledger.unsettled() == [] and ledger.spent() == IMAGES * PRICE
        task.cancel()  # the build stops (as a killed process would, but for the cleanup)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(stopped_while_local_work_waits())
    assert first.calls["TextToImageProducer"] == IMAGES
    assert not any(isinstance(e, Built) and e.key in PICTURES for e in events)

    # The plan of the next build calls no picture: it makes them from their answers.
    bp = blueprint_of(small_request())
    plan = predict(MOVIE, bp, MovieState(MOVIE), store, targets())
    assert "TextToImageProducer" not in plan.calls and not set(PICTURES) & plan.calling
    assert set(PICTURES) <= plan.reused

    second = PaidFakes()
    events = []
    summary = asyncio.run(engine(store, second, ledger, events).run(targets()))
    assert second.calls["TextToImageProducer"] == 0 and "TextToImageProducer" not in summary.calls
    built = {e.key: e for e in events if isinstance(e, Built)}
    assert set(PICTURES) <= set(built) and set(PICTURES) <= set(summary.reused)
    for key in PICTURES:
        produced = built[key].produced
        assert produced.data == fit_to_frame(png(1536, 1024, produced.prompt or ""), 854, 480)  # from the kept answer
        assert produced.meta["reused"] == "answered earlier by fake:fake-images"
        assert produced.call is not None and produced.call.cost_usd == PRICE  # the artifact's cost, paid once
    assert kept_answers(tmp_path) == []  # dropped: the build cache has the artifacts now
    assert ledger.spent() == IMAGES * PRICE and ledger.unsettled() == []  # nothing charged again

    third = PaidFakes()
    asyncio.run(engine(store, third, ledger, []).run(targets()))
    assert third.calls == {}  # every artifact from the build cache


def test_a_kept_answer_whose_local_work_fails_is_tried_once_more_then_called_again(tmp_path: Path) -> None:
    store, ledger = new_store(tmp_path), SqliteLedger(tmp_path / "budget.sqlite")
    broken = frozenset({"seg 0 picture 1"})
    failing = PaidFakes(broken=broken)
    events: list[Any] = []
    asyncio.run(engine(store, failing, ledger, events).run(targets()))
    assert [e.key for e in events if isinstance(e, Failed)][:1] == [NodeKey("segment_image", 0, 1)]
    assert len(kept_answers(tmp_path)) == 1  # paid for: kept for the next build (a local failure is retried from it)
    assert ledger.spent() == IMAGES * PRICE and ledger.unsettled() == []

    again = PaidFakes(broken=broken)
    asyncio.run(engine(store, again, ledger, []).run(targets()))
    assert again.calls["TextToImageProducer"] == 0  # made from the kept answer, which failed again: dropped
    assert kept_answers(tmp_path) == []

    fixed = PaidFakes()
    events = []
    asyncio.run(engine(store, fixed, ledger, events).run(targets()))
    assert fixed.calls["TextToImageProducer"] == 1 and not any(isinstance(e, Failed) for e in events)
    assert ledger.spent() == (IMAGES + 1) * PRICE
