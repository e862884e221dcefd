"""The catalog kept between reads (tests/unit/test_catalog.py) on PostgreSQL storage, as the production
configuration has it: there Dagster stores an event and updates its asset's record in two transactions, and
every process shares one event log table. The same reads, on a PostgreSQL 15 started on loopback (the plan
built from them is the storage's no more than on SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import real_part
from tests.servers import postgres
from tests.unit.test_catalog import (  # noqa: F401 - collected here, on this module's instance
    test_a_repeated_read_asks_one_question,
    test_what_a_run_records_after_a_read_is_in_the_next_read,
    test_what_a_running_run_plans_after_a_read_is_in_the_next_read,
)

pytestmark = real_part(postgres.available())


@pytest.fixture(scope="module")
def pg():  # noqa: ANN201
    with postgres.Postgres() as server:
        yield server


@pytest.fixture
def instance(home: Path, pg: postgres.Postgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """The home's instance with its storage on PostgreSQL (emptied first: each test starts with no events)."""
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nstorage:\n  postgres:\n    postgres_url:\n"
                                       "      env: DAGSTER_PG_URL\n")
    monkeypatch.setenv("DAGSTER_PG_URL", pg.url)
    inst = dg.DagsterInstance.get()
    inst.wipe()
    try:
        yield inst
    finally:
        inst.dispose()
