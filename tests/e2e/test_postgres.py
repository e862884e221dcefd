"""The shipped production configuration (deploy/dagster.yaml) for real: instance storage on a
PostgreSQL 15 started on loopback, artifacts, inbox and compute logs on a real S3-compatible server,
generations from the CLI and from the inbox sensor through the daemon's queue."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import REPO, generate_at_once, moviegen, real_part
from tests.servers import postgres
from tests.servers.daemon import Daemon
from tests.servers.processes import clean_env
from tests.servers.s3_server import BUCKET, SeaweedS3

pytestmark = real_part(postgres.available())

POOLS_REQUEST = "inquiry_prompt: How do rivers shape valleys?\nduration_seconds: 10\nimages_per_segment: 3\nsize: 480p\n"


@pytest.fixture(scope="module")
def pg():  # noqa: ANN201
    with postgres.Postgres() as server:
        yield server


def test_production_configuration_generates_on_postgres_and_s3(tmp_path: Path, pg: postgres.Postgres, s3: SeaweedS3) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    prefix = f"prod-{time.time_ns()}"
    env = {**s3.env(prefix), "DAGSTER_PG_URL": pg.url, "MOVIEGEN_LOG_BUCKET": BUCKET}

    # The CLI: register, generate, edit, regenerate exactly the edit.
    assert moviegen(home, env, "new", "examples/civil-war.yaml", "--id", "cw").returncode == 0
    first = moviegen(home, env, "generate", "cw", "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    out = json.loads(first.stdout)
    assert out["failed"] == [] and out["timeline"].startswith(f"s3://{BUCKET}/{prefix}/movies/cw/timeline/")
    moviegen(home, env, "edit", "cw", "--set", "segments.2.image_prompts.0=a river crossing at dawn")
    second = json.loads(moviegen(home, env, "generate", "cw", "--json").stdout)
    assert second["provider_calls"] == {"TextToImageProducer": 1} and second["revision"] == 2

    # The inbox sensor, the queued run coordinator and a run worker, all on the same PostgreSQL.
    store_env = dict(env)
    with Daemon(home, store_env) as daemon:
        s3.client().put_object(Bucket=BUCKET, Key=f"{prefix}/inbox/rivers.yaml",
                               Body=b"inquiry_prompt: How do rivers shape valleys?\nduration_seconds: 10\nsize: 480p\n")
        deadline = time.monotonic() + 120
        key = f"{prefix}/movies/rivers/revisions/000001.json"
        while time.monotonic() < deadline:
            try:
                revision = json.loads(s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read())
                break
            except s3.client().exceptions.NoSuchKey:
                time.sleep(0.5)
        else:
            raise AssertionError("no movie from the S3 inbox in 120 s:\n" + daemon.log_text()[-4000:])
        # The revision is written at the end of the step; the run finishes just after.
        while time.monotonic() < deadline and _run_statuses(pg) != ["SUCCESS"] * 3:
            time.sleep(0.5)
    assert revision["failed"] == {} and revision["calls"] > 0

    # Everything Dagster knows lives in PostgreSQL; nothing fell back to SQLite in DAGSTER_HOME.
    with psycopg2.connect(pg.url.replace("postgresql+psycopg2", "postgresql")) as conn, conn.cursor() as cur:
        cur.execute("select count(*), count(*) filter (where status = 'SUCCESS') from runs")
        assert cur.fetchone() == (3, 3), _run_statuses(pg)
        cur.execute("select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'")
        materializations = cur.fetchone()[0]
        cur.execute("select partition from dynamic_partitions where partitions_def_name = 'movies' order by partition")
        assert [r[0] for r in cur.fetchall()] == ["cw", "rivers"]
        cur.execute("select distinct partitions_def_name from dynamic_partitions order by 1")
        assert {"movies", "segments"} <= {r[0] for r in cur.fetchall()}  # and the segment sets of the movies' modes
    assert materializations >= 25 + 3  # the first movie, then the edited image, its segment and the timeline
    assert not list(home.rglob("*.db"))
    # Compute logs went to S3 too.
    logs = s3.client().list_objects_v2(Bucket=BUCKET, Prefix="dagster-compute-logs/").get("KeyCount", 0)
    assert logs > 0


def _run_statuses(pg: postgres.Postgres) -> list[str]:
    with psycopg2.connect(pg.url.replace("postgresql+psycopg2", "postgresql")) as conn, conn.cursor() as cur:
        cur.execute("select status from runs order by create_timestamp")
        return [r[0] for r in cur.fetchall()]


@pytest.mark.parametrize("limits", ["postgres", "local"])
def test_provider_pools_hold_across_machines(limits: str, tmp_path: Path, pg: postgres.Postgres, s3: SeaweedS3) -> None:
    """Two "machines" (two DAGSTER_HOMEs, so no shared lock files) on one PostgreSQL instance generate a
    movie each at once. With MOVIEGEN_LIMITS=postgres the OpenAI limit (2 in flight) holds across both;
    with per-machine limits each machine allows 2, so the provider sees more."""
    from tests.servers.openai_server import FakeOpenAI

    with FakeOpenAI() as server:
        # Answer only once the limit could have been passed, so overlap is not left to timing (at most 60 s):
        # shared, once 2 requests are in flight at once (the most a shared limit of 2 allows); the control,
        # once 3 are, which per-machine limits of 2 allow and a shared limit of 2 never does.
        server.answer_when_in_flight = 2 if limits == "postgres" else 3
        prefix = f"pools-{limits}-{time.time_ns()}"
        env = {**s3.env(prefix), "DAGSTER_PG_URL": pg.url, "MOVIEGEN_LOG_BUCKET": BUCKET, "MOVIEGEN_LIMITS": limits,
               "MOVIEGEN_PROVIDERS": "TextToImageProducer=openai", "OPENAI_API_KEY": "sk-test",
               "OPENAI_BASE_URL": server.base_url, "MOVIEGEN_OPENAI_MAX_IN_FLIGHT": "2"}
        homes = []
        for machine in ("a", "b"):
            home = tmp_path / machine
            home.mkdir()
            shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
            homes.append(home)
        movies = [f"{limits}-one", f"{limits}-two"]
        request = tmp_path / "pictures.yaml"  # one segment of 3 pictures: more image calls at once than the limit of 2
        request.write_text(POOLS_REQUEST)
        for movie in movies:
            assert moviegen(homes[0], env, "new", str(request), "--id", movie).returncode == 0
        generate_at_once([(movie, {**clean_env(), **env, "DAGSTER_HOME": str(home)})
                          for movie, home in zip(movies, homes, strict=True)])
        assert len(server.calls("/v1/images/generations")) == 6
        if limits == "postgres":
            assert server.max_in_flight == 2
        else:
            assert server.max_in_flight > 2  # what a shared pool prevents
