"""Budget caps of a generation, enforced per provider call through the budget ledger.

Every call with a price reserves its estimate in the ledger before it is sent and settles what it
cost: as soon as its answer is kept (before any local work on it), else when the call ends (0 when it
failed). A call that would take a scope past its cap is not sent: its partition fails with category
``budget`` and the amount, and every other partition goes on. The ledger is shared by every process
(and, with ``MOVIEGEN_LIMITS=postgres``, every machine), so concurrent generations never overshoot a
cap together (see resources/runtime/budget.py).

A generation killed mid-build leaves the reservations of its calls in flight or waiting (for a
provider's throttle, a retry) open; the next generation settles them when it opens the ledger
(``settle_orphans``): a call whose answer was kept at what it cost, every other at 0.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from movie_assets.builder import cache
from movie_assets.domain.request import MovieRequest
from resources.providers.base import ErrorCategory, ProviderError
from resources.runtime.accounts import tenant_caps
from resources.runtime.budget import BudgetExceeded, Cap, Ledger, Owner, Reservation, Unsettled, day_start
from resources.settings import budget_from_env
from resources.storage import ArtifactStore

T = TypeVar("T")

# A producer's call: (provider, model, estimated USD of one typical call).
Price = Callable[[str], tuple[str, str, float]]


def caps_for(movie: str, request: MovieRequest, override_usd: float | None = None) -> list[Cap]:
    """The caps a generation of ``movie`` runs under: the movie's (``override_usd``, e.g. from
    ``generate --budget``, else the request's ``budget_usd``, else MOVIEGEN_MOVIE_BUDGET_USD) on
    everything the movie ever spent, and the instance's per UTC day (MOVIEGEN_DAILY_BUDGET_USD). A
    tenant's movie (the hosted service's) also has its tenant's caps: per movie (the lower of the two
    movie caps holds) and per UTC day over all the tenant's movies."""
    movie_default, daily = budget_from_env()
    movie_cap = override_usd if override_usd is not None else (
        request.budget_usd if request.budget_usd is not None else movie_default)
    tenant = tenant_caps(movie)
    if tenant is not None and tenant.movie_usd is not None:
        movie_cap = tenant.movie_usd if movie_cap is None else min(movie_cap, tenant.movie_usd)
    caps = []
    if movie_cap is not None:
        caps.append(Cap(f"movie:{movie}", movie_cap))
    if tenant is not None and tenant.daily_usd is not None:
        caps.append(Cap(f"tenant:{tenant.name}", tenant.daily_usd, since=day_start()))
    if daily is not None:
        caps.append(Cap("instance", daily, since=day_start()))
    return caps


@dataclass(frozen=True)
class Standing:
    """Where one cap stands: its limit, what its scope spent (settled, plus reserved by calls in
    flight), and what is left."""

    scope: str
    limit_usd: float
    spent_usd: float
    remaining_usd: float
    period: str  # "all time" or "today (UTC)"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def standing(ledger: Ledger, movie: str, caps: list[Cap]) -> list[Standing]:
    out = []
    for cap in caps:
        if cap.scope == "instance":
            spent = ledger.spent(since=cap.since)
        elif cap.tenant is not None:
            spent = ledger.spent(movie_prefix=cap.movie_prefix, since=cap.since)
        else:
            spent = ledger.spent(movie=movie, since=cap.since)
        out.append(Standing(cap.scope, cap.limit_usd, round(spent, 6), round(max(0.0, cap.limit_usd - spent), 6),
                            "today (UTC)" if cap.since else "all time"))
    return out


class Bill:
    """One call's reservation (None: a free call, not recorded), settled once: at what the call cost as
    soon as its answer is kept (``settle``, from the thread that keeps it), else when the call ends
    (``cost``: what it cost, 0 when it failed)."""

    def __init__(self, ledger: Ledger, reservation: Reservation | None):
        self.ledger, self.reservation = ledger, reservation
        self.cost = 0.0
        self.keeping = False  # its answer is being kept: the keeper settles it
        self._settled = False
        self._lock = threading.Lock()

    @property
    def id(self) -> str | None:
        return self.reservation.id if self.reservation is not None else None

    def settle(self, cost_usd: float) -> None:
        """Settle the reservation at ``cost_usd``; later calls do nothing (a short local write)."""
        with self._lock:
            if self._settled:
                return
            self._settled = True
            if self.reservation is not None:
                self.ledger.settle(self.reservation, cost_usd)


class Budget:
    """The caps of one build, applied to each provider call. ``run``: the Dagster run it builds for,
    recorded with each reservation (its owner, with the process)."""

    def __init__(self, ledger: Ledger, movie: str, caps: list[Cap], price: Price, run: str = ""):
        self.ledger, self.movie, self.caps, self.price, self.run = ledger, movie, caps, price, run

    @asynccontextmanager
    async def reserve(self, producer: str, node: str) -> AsyncIterator[Bill]:
        """Reserve the estimate of one provider call of ``producer`` within the caps, for the block; the
        bill is settled when its answer is kept, else when the block ends at ``bill.cost``. A call over a
        cap is refused (ProviderError, category budget) and nothing is recorded; free calls (offline
        providers) are not recorded."""
        provider, model, estimate = self.price(producer)
        if estimate <= 0:
            yield Bill(self.ledger, None)
            return
        try:
            reservation = await asyncio.to_thread(self.ledger.reserve, movie=self.movie, provider=provider, model=model,
                                                  node=node, estimate_usd=estimate, caps=self.caps, run=self.run)
        except BudgetExceeded as e:
            if e.cap.tenant is not None:
                suggestion = ("the account's daily budget is spent: ask the service's operator to raise it "
                              "(`moviegen tenant set`), or generate again after 00:00 UTC: only what is left is built")
            elif e.cap.movie is not None:
                suggestion = ("raise the movie's budget (`moviegen edit ID --set budget_usd=N`, or `moviegen generate ID "
                              "--budget N` for one generation) and generate again: only what is left is built")
            else:
                suggestion = ("the instance's daily budget (MOVIEGEN_DAILY_BUDGET_USD) is spent: raise it, or generate "
                              "again after 00:00 UTC: only what is left is built")
            raise ProviderError(f"not built: budget ({e})", provider=provider, category=ErrorCategory.budget,
                                suggestion=suggestion) from None
        bill = Bill(self.ledger, reservation)
        try:
            yield bill
        finally:
            # Settled at once, also when the build is being cancelled (a short local write); an answer being
            # kept is settled by its keeper, at what the call cost.
            if not bill.keeping:
                bill.settle(bill.cost)

    async def charge(self, producer: str, node: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` (one provider call of ``producer``) within the caps: reserve its estimate, call,
        settle its cost. Free calls (offline providers) are not recorded."""
        async with self.reserve(producer, node) as bill:
            result = await call()
            bill.cost = cost_of(result)
            return result


def cost_of(result: Any) -> float:
    """What the call that made ``result`` cost (its ``call.cost_usd``; 0 when it names none)."""
    return float(getattr(getattr(result, "call", None), "cost_usd", 0.0) or 0.0)


def settle_orphans(ledger: Ledger, store: ArtifactStore,
                   run_ended: Callable[[str], bool] = lambda run: False) -> list[tuple[Unsettled, float]]:
    """Settle the open reservations of generations that are gone: made by a process of this machine that
    has ended, or (from another machine) for a Dagster run that has ended (``run_ended``). A call whose
    answer was kept (the build cache's answers) is settled at what it cost; every other, in flight or
    waiting for a provider's throttle or a retry when its process died, is released (0): its answer
    never arrived. A generation runs this when it opens the ledger."""
    kept: dict[str, dict[str, float]] = {}

    def answered(reservation: Reservation) -> float | None:
        if reservation.movie not in kept:
            kept[reservation.movie] = cache.answered_reservations(store, reservation.movie)
        return kept[reservation.movie].get(reservation.id)

    def gone(owner: Owner) -> bool:
        here = owner.gone()  # on this machine the process itself tells; elsewhere its run does
        return here if here is not None else bool(owner.run) and run_ended(owner.run)

    return ledger.settle_orphans(answered, gone)
