"""The budget ledger: reservations against caps, settlement, totals, and a cap that holds across
threads and processes (SQLite here; tests/e2e/test_budget_postgres.py runs the same check on PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from movie_assets.builder.budget import settle_orphans
from movie_assets.builder.cache import keep_answer
from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.errors import OverBudget
from movie_assets.domain.plan import Plan
from movie_assets.movie_files.layout import answer_path
from movie_assets.orchestration.generation import check_plan
from resources.providers.base import Answer, CallInfo
from resources.runtime.budget import (
    MICROS,
    TABLE,
    BudgetExceeded,
    Cap,
    Ledger,
    Owner,
    PgLedger,
    SqliteLedger,
    day_start,
    make_ledger,
    this_process,
)
from resources.storage import ArtifactStore

REPO = Path(__file__).resolve().parents[2]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _ledger(tmp_path: Path, clock: Callable[[], float] | None = None) -> SqliteLedger:
    return SqliteLedger(tmp_path / "budget.sqlite", **({"clock": clock} if clock else {}))


def _reserve(ledger: Ledger, usd: float, caps: list[Cap], movie: str = "m", provider: str = "openai") -> Any:
    return ledger.reserve(movie=movie, provider=provider, model="gpt-image-1", node="segment_image|m|00_0",
                          estimate_usd=usd, caps=caps)


def test_reserve_settle_spent_totals(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    a = _reserve(ledger, 0.04, [], movie="a")
    b = _reserve(ledger, 0.50, [], movie="a", provider="replicate")
    c = _reserve(ledger, 0.02, [], movie="b")
    assert (a.movie, a.provider, a.model, a.estimate_usd) == ("a", "openai", "gpt-image-1", 0.04)
    assert ledger.spent() == pytest.approx(0.56)  # open reservations count at their estimate
    ledger.settle(a, 0.035)
    ledger.settle(b, 0.0)  # a failed call
    assert ledger.spent() == pytest.approx(0.055)
    assert ledger.spent(movie="a") == pytest.approx(0.035)
    assert ledger.spent(provider="openai") == pytest.approx(0.055)
    assert ledger.spent(movie="a", provider="replicate") == 0.0
    assert ledger.totals() == pytest.approx({"openai": 0.055, "replicate": 0.0})
    assert ledger.totals(movie="b") == pytest.approx({"openai": 0.02})
    assert ledger.per_movie() == pytest.approx({"a": 0.035, "b": 0.02})
    assert [u.reservation for u in ledger.unsettled()] == [c]
    ledger.settle(a, 0.035)  # settling again with the same amount does nothing
    with pytest.raises(ValueError, match="already settled at \\$0.035"):
        ledger.settle(a, 0.04)
    ledger.settle(c, 0.02)
    assert ledger.unsettled() == []
    # Another ledger object (another process would do the same) sees the same entries.
    assert _ledger(tmp_path).per_movie() == pytest.approx({"a": 0.035, "b": 0.02})


def test_a_cap_allows_exactly_k_of_n_reservations(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    caps = [Cap("movie:m", 0.10)]
    made, refused = [], []
    for _ in range(5):
        try:
            made.append(_reserve(ledger, 0.03, caps))
        except BudgetExceeded as exc:
            refused.append(exc)
    assert len(made) == 3 and len(refused) == 2  # 3 × 0.03 ≤ 0.10 < 4 × 0.03
    exc = refused[0]
    assert exc.cap == caps[0] and exc.spent_usd == pytest.approx(0.09) and exc.needed_usd == pytest.approx(0.03)
    assert str(exc) == "movie 'm' budget $0.10 reached: $0.09 spent or reserved, the next call needs $0.03"
    assert ledger.spent() == pytest.approx(0.09)  # nothing recorded for the refused calls
    assert len(ledger.unsettled()) == 3
    # Exactly at the limit is allowed (whole micro-dollars: no float drift).
    _reserve(ledger, 0.01, caps)
    assert ledger.spent(movie="m") == pytest.approx(0.10)
    with pytest.raises(BudgetExceeded):
        _reserve(ledger, 0.000001, caps)
    # A free call still fits a cap reached exactly; other movies are not in this movie's cap.
    _reserve(ledger, 0.0, caps)
    _reserve(ledger, 0.5, [Cap("movie:other", 1.0)], movie="other")
    # The instance cap counts every movie: the first cap that would be exceeded refuses.
    with pytest.raises(BudgetExceeded) as info:
        _reserve(ledger, 0.2, [Cap("movie:third", 1.0), Cap("instance", 0.75)], movie="third")
    assert info.value.cap.scope == "instance" and info.value.spent_usd == pytest.approx(0.60)
    with pytest.raises(ValueError, match="given for a call of movie"):
        _reserve(ledger, 0.01, [Cap("movie:other", 1.0)])
    with pytest.raises(ValueError, match="scope"):
        Cap("project", 1.0)
    with pytest.raises(ValueError, match="estimate_usd"):
        _reserve(ledger, -0.01, [])


def test_since_excludes_earlier_spend(tmp_path: Path) -> None:
    monday = 1_717_977_600.0  # 2024-06-10 00:00 UTC
    assert day_start(monday + 86_399.5) == monday and day_start(monday) == monday
    clock = Clock(monday + 23 * 3600)
    ledger = _ledger(tmp_path, clock)
    daily = lambda: [Cap("movie:m", 1.0), Cap("instance", 0.05, since=day_start(clock.now))]
    _reserve(ledger, 0.05, daily())
    with pytest.raises(BudgetExceeded) as info:
        _reserve(ledger, 0.01, daily())
    assert str(info.value) == ("instance budget since 2024-06-10 00:00 UTC $0.05 reached: $0.05 spent or reserved, "
                               "the next call needs $0.01")
    clock.now = monday + 86_400 + 60  # the next UTC day
    late = _reserve(ledger, 0.05, daily())  # yesterday's spend no longer counts for the day
    assert ledger.spent(since=day_start(clock.now)) == pytest.approx(0.05)
    assert ledger.spent() == pytest.approx(0.10)  # the movie's all-time cap still counts both
    assert ledger.totals(since=day_start(clock.now)) == pytest.approx({"openai": 0.05})
    assert ledger.per_movie(since=monday + 86_400) == pytest.approx({"m": 0.05})
    clock.now += 3600
    ledger.settle(late, 0.04)  # an entry stays in the period of its reservation
    assert ledger.spent(since=monday + 86_400) == pytest.approx(0.04)


def test_settling_below_the_estimate_frees_the_difference(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    caps = [Cap("movie:m", 0.10)]
    first = _reserve(ledger, 0.06, caps)
    with pytest.raises(BudgetExceeded):
        _reserve(ledger, 0.06, caps)
    ledger.settle(first, 0.01)
    second = _reserve(ledger, 0.06, caps)
    assert ledger.spent() == pytest.approx(0.07)
    ledger.settle(second, 0.0)  # a call that failed before it was charged frees all of it
    assert ledger.spent() == pytest.approx(0.01)
    # A call charged more than its estimate is recorded as charged (the one way to overshoot).
    third = _reserve(ledger, 0.09, caps)
    ledger.settle(third, 0.12)
    assert ledger.spent() == pytest.approx(0.13)


DEAD = ("import os, sys; from pathlib import Path; from resources.runtime.budget import SqliteLedger; "
        "ledger = SqliteLedger(Path(sys.argv[1])); "
        "[ledger.reserve(movie='m', provider='replicate', model='minimax/video-01', node=f'text_to_video_clip|m|0{i}', "
        "estimate_usd=0.5, caps=[], run='run-1') for i in range(3)]; print(os.getpid(), flush=True); os._exit(9)")


def test_a_dead_process_reservation_counts_until_settled_or_released(tmp_path: Path) -> None:
    """A process killed with three calls reserved (one whose answer was kept, two in flight or waiting):
    they count at their estimates until ``settle_orphans`` finds the process gone, then the answered one
    at what it cost and the others at 0. A live process's reservations (this one's) are never touched."""
    proc = subprocess.run([sys.executable, "-c", DEAD, str(tmp_path / "budget.sqlite")], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 9, proc.stderr  # died without settling
    ledger = _ledger(tmp_path)
    mine = _reserve(ledger, 0.25, [])
    left = [u for u in ledger.unsettled() if u.reservation != mine]
    assert [u.reservation.node for u in left] == [f"text_to_video_clip|m|0{i}" for i in range(3)]
    owner = Owner.parse(left[0].owner)
    assert owner is not None and (owner.host, owner.pid, owner.run) == (socket.gethostname(), int(proc.stdout), "run-1")
    assert owner.start is not None and owner.gone() is True
    assert this_process().gone() is False
    assert ledger.spent(movie="m") == 1.75  # counted at their estimates: the calls may have been charged
    with pytest.raises(BudgetExceeded):
        _reserve(ledger, 0.6, [Cap("movie:m", 2.0)])

    answered = {left[1].reservation.id: 0.42}
    settled = ledger.settle_orphans(lambda r: answered.get(r.id))
    assert sorted((u.reservation.node, cost) for u, cost in settled) == [
        ("text_to_video_clip|m|00", 0.0), ("text_to_video_clip|m|01", 0.42), ("text_to_video_clip|m|02", 0.0)]
    assert [u.reservation for u in ledger.unsettled()] == [mine]  # this process still runs: its call is in flight
    assert ledger.spent(movie="m") == pytest.approx(0.25 + 0.42)
    assert ledger.settle_orphans() == []  # nothing left to settle; another process running it finds the same
    _reserve(ledger, 0.6, [Cap("movie:m", 2.0)])


def test_who_owns_a_reservation_and_whether_it_is_gone() -> None:
    me = this_process("r1")
    assert Owner.parse(str(me)) == me and str(me).endswith(" run r1")
    assert me.gone() is False
    reused = dataclasses.replace(me, start=(me.start or 0) + 1)  # the pid of a process that ended, since reused
    assert reused.gone() is True
    legacy = Owner.parse(f"{socket.gethostname()}:{os.getpid()}")  # written before start times were kept
    assert legacy is not None and legacy.start is None and legacy.gone() is False  # the pid runs: maybe it
    elsewhere = Owner.parse("another-host:12:345.0 run r2")
    assert elsewhere == Owner("another-host", 12, 345.0, "r2") and elsewhere.gone() is None  # cannot tell here
    assert Owner.parse("not an owner") is None


def test_orphans_of_another_machine_are_settled_when_their_run_ended(tmp_path: Path) -> None:
    """Another machine's process cannot be looked up here: its reservations are settled once the run they
    built for has ended, a call whose answer the build cache kept at what it cost (the process died
    between keeping the answer and settling), every other at 0."""
    ledger, store = _ledger(tmp_path), ArtifactStore(root=str(tmp_path / "artifacts"))
    entries = {}
    for run in ("ended", "ended-answered", "running", ""):
        entries[run] = _reserve(ledger, 0.1, [])
        with sqlite3.connect(tmp_path / "budget.sqlite") as conn:  # as another machine's process wrote it
            conn.execute(f"update {TABLE} set owner = ? where id = ?", (f"another-host:12:345.0{' run ' + run if run else ''}",
                                                                         entries[run].id))
    key = NodeKey("segment_image", 0, 0)
    keep_answer(store, answer_path("m", key.asset, key.partition_suffix, "k"), key,
                Answer((b"the picture",), CallInfo("openai", "gpt-image-1", 1.0, 0.063)), entries["ended-answered"].id)
    settled = settle_orphans(ledger, store, run_ended=lambda run: run.startswith("ended"))
    assert sorted((Owner.parse(u.owner).run, cost) for u, cost in settled) == [  # type: ignore[union-attr]
        ("ended", 0.0), ("ended-answered", 0.063)]
    assert [Owner.parse(u.owner).run for u in ledger.unsettled()] == ["running", ""]  # type: ignore[union-attr]


def test_make_ledger_follows_the_limits_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.delenv("MOVIEGEN_LIMITS", raising=False)
    ledger = make_ledger()
    assert isinstance(ledger, SqliteLedger) and ledger.path == tmp_path / "limits" / "budget.sqlite"
    assert make_ledger() is ledger
    _reserve(ledger, 0.01, [])
    assert (tmp_path / "limits" / "budget.sqlite").exists()
    monkeypatch.setenv("MOVIEGEN_LIMITS", "postgres")
    monkeypatch.delenv("MOVIEGEN_LIMITS_URL", raising=False)
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    with pytest.raises(ValueError, match="MOVIEGEN_LIMITS_URL or DAGSTER_PG_URL"):
        make_ledger()
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://u:p@db:5432/dagster")
    pg = make_ledger()  # connects on first use
    assert isinstance(pg, PgLedger) and pg.url == "postgresql://u:p@db:5432/dagster"
    monkeypatch.setenv("MOVIEGEN_LIMITS", "redis")
    with pytest.raises(ValueError, match="allowed: local, postgres"):
        make_ledger()


# --- the cap across processes ---------------------------------------------------------------------------
# Shared with tests/e2e/test_budget_postgres.py. Every worker thread reserves random small amounts
# against one instance cap until it is refused; it settles most reservations at their estimate, some
# below (down to 0: failed calls), some later than the next reservation, and abandons a few (never
# settled, as by a process that died). Writes are serialized and each stamps its entry with the time
# read inside the write lock, so replaying the entries' reservations and settlements in time order
# gives the ledger's total after every write: the test checks it never exceeded the cap.

PROCESSES, THREADS = 4, 3
CAP_USD = 2.0
ESTIMATES = (5_000, 20_000)  # micro-dollars: $0.005 to $0.02


def open_ledger(target: str) -> Ledger:
    return PgLedger(target) if target.startswith("postgresql") else SqliteLedger(Path(target))


def budget_worker(target: str, worker: int, barrier: Any, out: str) -> None:
    ledger = open_ledger(target)
    ledger.spent()  # connect (and create the table) before the race
    barrier.wait(timeout=300)
    records: list[list[dict[str, Any]]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def run(thread: int) -> None:
        try:
            rng = random.Random(worker * 100 + thread)
            pending: list[tuple[Any, dict[str, Any]]] = []
            caps = [Cap("instance", CAP_USD)]
            while True:
                estimate = rng.randint(*ESTIMATES)
                try:
                    reservation = ledger.reserve(movie=f"movie-{worker}", provider=("openai", "replicate")[thread % 2],
                                                 model="m", node=f"n{thread}", estimate_usd=estimate / MICROS, caps=caps)
                except BudgetExceeded:
                    break
                time.sleep(rng.uniform(0, 0.002))  # the call (no time is measured or asserted)
                kind = rng.random()
                actual = None if kind < 0.1 else estimate if kind < 0.65 else rng.randint(0, estimate)
                record = {"id": reservation.id, "estimate": estimate, "actual": actual, "worker": worker}
                records[thread].append(record)
                if actual is not None:
                    pending.append((reservation, record))
                if pending and rng.random() < 0.6:  # settle an earlier call: several stay open at once
                    earlier, earlier_record = pending.pop(0)
                    ledger.settle(earlier, earlier_record["actual"] / MICROS)
            for reservation, record in pending:
                ledger.settle(reservation, record["actual"] / MICROS)
        except BaseException as exc:  # noqa: BLE001 - reported by the parent
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    Path(out).write_text(json.dumps([r for thread in records for r in thread]))


def run_workers(target: str, folder: Path) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    outs = [folder / f"worker-{i}.json" for i in range(PROCESSES)]
    procs = [ctx.Process(target=budget_worker, args=(target, i, barrier, str(out))) for i, out in enumerate(outs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
        assert p.exitcode == 0
    return [r for out in outs for r in json.loads(out.read_text())]


def check_cap_held(records: list[dict[str, Any]], rows: list[tuple[str, float, int, int | None, float | None]],
                   ledger: Ledger) -> dict[str, Any]:
    """``rows``: the table's (id, reserved_at, estimate_micros, actual_micros, settled_at). Returns the
    figures measured."""
    cap = round(CAP_USD * MICROS)
    # Every reservation a worker made is in the ledger as the worker settled it (or left it), and no other.
    assert sorted((r["id"], r["estimate"], r["actual"]) for r in records) == sorted((i, e, a) for i, _, e, a, _ in rows)
    events = sorted([(at, estimate) for _, at, estimate, _, _ in rows]
                    + [(at, actual - estimate) for _, _, estimate, actual, at in rows if actual is not None])
    assert len({at for at, _ in events}) == len(events)  # writes are serialized: no two at the same time
    total = peak = 0
    for _, change in events:
        total += change
        peak = max(peak, total)
    final = sum(a if a is not None else e for _, _, e, a, _ in rows)
    worker = {r["id"]: r["worker"] for r in records}
    in_order = [worker[i] for i, *_ in sorted(rows, key=lambda row: row[1])]
    switches = sum(1 for a, b in zip(in_order, in_order[1:], strict=False) if a != b)  # how much the processes interleaved
    assert total == final == round(ledger.spent() * MICROS)
    assert {u.reservation.id for u in ledger.unsettled()} == {r["id"] for r in records if r["actual"] is None}
    # Never over the cap; and every thread stopped at a refusal, which means the total was then within
    # one estimate of the cap.
    assert peak <= cap
    assert peak > cap - ESTIMATES[1]
    return {"reservations": len(rows), "settled_below_estimate": sum(1 for r in records if r["actual"] is not None
                                                                      and r["actual"] < r["estimate"]),
            "left_open": sum(1 for r in records if r["actual"] is None), "peak_usd": peak / MICROS,
            "max_overshoot_usd": max(0, peak - cap) / MICROS, "gap_to_cap_usd": (cap - peak) / MICROS,
            "final_usd": final / MICROS, "process_switches": switches}


def test_the_cap_holds_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite"
    records = run_workers(str(path), tmp_path)
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"select id, reserved_at, estimate_micros, actual_micros, settled_at from {TABLE}").fetchall()
    figures = check_cap_held(records, rows, SqliteLedger(path))
    print("sqlite cross-process budget:", json.dumps(figures))
    assert figures["max_overshoot_usd"] == 0


def test_a_refusal_never_shows_more_left_than_the_cap() -> None:
    """The cap is shown at the precision of what is left: "$0.2205 of $0.2205", not "$0.2205 of $0.22"."""
    cap = {"scope": "movie", "limit_usd": 0.2205, "spent_usd": 0.0, "remaining_usd": 0.2205, "period": "all time"}
    with pytest.raises(OverBudget) as refused:
        check_plan(Plan("m", [], {}, 0.0, 1, estimated_cost_usd=0.3, budget=[cap]))
    assert "has left ($0.2205 of $0.2205, all time)" in str(refused.value)
