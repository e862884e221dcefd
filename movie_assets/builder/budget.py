"""Budget caps of a generation, enforced per provider call through the budget ledger.

Every call with a price reserves its estimate in the ledger before it is sent and settles what it
cost after (0 when it failed). A call that would take a scope past its cap is not sent: its partition
fails with category ``budget`` and the amount, and every other partition goes on. The ledger is
shared by every process (and, with ``MOVIEGEN_LIMITS=postgres``, every machine), so concurrent
generations never overshoot a cap together (see resources/runtime/budget.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from movie_assets.domain.request import MovieRequest
from resources.providers.base import ErrorCategory, ProviderError
from resources.runtime.accounts import tenant_caps
from resources.runtime.budget import BudgetExceeded, Cap, Ledger, day_start
from resources.settings import budget_from_env

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


class Budget:
    """The caps of one build, applied to each provider call."""

    def __init__(self, ledger: Ledger, movie: str, caps: list[Cap], price: Price):
        self.ledger, self.movie, self.caps, self.price = ledger, movie, caps, price

    async def charge(self, producer: str, node: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` (one provider call of ``producer``) within the caps: reserve its estimate,
        call, settle its cost. Free calls (offline providers) are not recorded."""
        provider, model, estimate = self.price(producer)
        if estimate <= 0:
            return await call()
        try:
            reservation = await asyncio.to_thread(self.ledger.reserve, movie=self.movie, provider=provider, model=model,
                                                  node=node, estimate_usd=estimate, caps=self.caps)
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
        cost = 0.0
        try:
            result = await call()
            info = getattr(result, "call", None)
            cost = float(getattr(info, "cost_usd", 0.0) or 0.0)
            return result
        finally:
            # Settled at once, also when the build is being cancelled (a short local write).
            self.ledger.settle(reservation, cost)
