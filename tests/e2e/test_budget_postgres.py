"""The budget ledger on a real PostgreSQL 15 (MOVIEGEN_LIMITS=postgres): a cap holds across processes
(and so across machines, which reach the server the same way), and the ledger behaves as on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg2
import pytest

from resources.runtime.budget import TABLE, BudgetExceeded, Cap, PgLedger, make_ledger
from tests.conftest import real_part
from tests.servers import postgres
from tests.unit.test_budget import check_cap_held, run_workers

pytestmark = real_part(postgres.available())


@pytest.fixture(scope="module")
def pg():  # noqa: ANN201
    with postgres.Postgres() as server:
        yield server


def _rows(url: str) -> list[tuple]:
    with psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql")) as conn, conn.cursor() as cur:
        cur.execute(f"select id, reserved_at, estimate_micros, actual_micros, settled_at from {TABLE}")
        return cur.fetchall()


def _clear(url: str) -> None:
    with psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql")) as conn, conn.cursor() as cur:
        cur.execute(f"drop table if exists {TABLE}")


def test_reserve_and_settle_on_postgres(pg: postgres.Postgres, monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(pg.url)
    monkeypatch.setenv("MOVIEGEN_LIMITS", "postgres")
    monkeypatch.delenv("MOVIEGEN_LIMITS_URL", raising=False)
    monkeypatch.setenv("DAGSTER_PG_URL", pg.url)  # the postgresql+psycopg2:// form Dagster's config uses
    ledger = make_ledger()
    assert isinstance(ledger, PgLedger)
    caps = [Cap("movie:m", 0.10)]
    made, refused = [], []
    for _ in range(5):
        try:
            made.append(ledger.reserve(movie="m", provider="openai", model="gpt-image-1", node="n", estimate_usd=0.03,
                                       caps=caps))
        except BudgetExceeded as exc:
            refused.append(exc)
    assert len(made) == 3 and len(refused) == 2 and refused[0].spent_usd == pytest.approx(0.09)
    assert ledger.spent() == pytest.approx(0.09)  # nothing recorded for the refused calls
    ledger.settle(made[0], 0.01)
    ledger.settle(made[1], 0.0)
    ledger.settle(made[1], 0.0)  # again, same amount: nothing changes
    assert ledger.spent() == pytest.approx(0.04) and ledger.totals() == pytest.approx({"openai": 0.04})
    assert ledger.per_movie() == pytest.approx({"m": 0.04})
    assert [u.reservation for u in ledger.unsettled()] == [made[2]]
    assert ledger.settle_orphans() == []  # this process still runs: its call is in flight
    with psycopg2.connect(pg.url.replace("postgresql+psycopg2", "postgresql")) as conn, conn.cursor() as cur:
        cur.execute(f"update {TABLE} set owner = %s where id = %s", ("another-host:12:345.0 run r1", made[2].id))
    settled = ledger.settle_orphans(gone=lambda owner: owner.run == "r1")  # another machine's, its run ended
    assert [(u.reservation, cost) for u, cost in settled] == [(made[2], 0.0)] and ledger.unsettled() == []
    ledger.close()
    assert PgLedger(pg.url).spent(movie="m") == pytest.approx(0.01)  # a fresh connection sees the same


def test_the_cap_holds_across_processes_on_postgres(pg: postgres.Postgres, tmp_path: Path) -> None:
    _clear(pg.url)
    records = run_workers(pg.url, tmp_path)
    figures = check_cap_held(records, _rows(pg.url), PgLedger(pg.url))
    print("postgres cross-process budget:", json.dumps(figures))
    assert figures["max_overshoot_usd"] == 0
