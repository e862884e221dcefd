"""The Dagster UI as a user meets it: the real webserver and daemon on a home with a generated movie,
asked through GraphQL (what the UI's pages ask) and looked at in Debian's Chromium.

One movie goes through the module in order: every edit of the regeneration contract marks exactly
what `moviegen plan` rebuilds; a Materialize launched like the UI's builds exactly that; the checks'
"Execute all" and launches without a partition do what they say; the movie's link plays.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from movie_assets.domain.blueprint import ARTIFACTS, NodeKey
from movie_assets.interfaces import api
from movie_assets.orchestration.marks import CLEAR, MARK
from resources.storage import ArtifactStore
from tests.conftest import BIN, REPO, new_home, real_part, small_request
from tests.contract import CONTRACT
from tests.servers.daemon import Daemon
from tests.servers.processes import clean_env, stop_group
from tests.servers.webserver import Webserver, free_port
from tests.staleness import dagster_partitions

CHROMIUM = shutil.which("chromium")
SCREENSHOTS = os.environ.get("MOVIEGEN_SCREENSHOTS")  # docs/images: the tour's pictures (docs/ui.md)


class UI:
    def __init__(self, home: Path, web: Webserver, movie: str, media_url: str):
        self.home, self.web, self.movie, self.media_url = home, web, movie, media_url

    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        return self.web.graphql(query, variables)


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    home = new_home(tmp_path_factory.mktemp("ui") / "dagster_home")
    media_url = f"http://127.0.0.1:{free_port()}"
    env = {"MOVIEGEN_MEDIA_URL": media_url, "MOVIEGEN_RENDER": "on"}  # the movie is rendered: it must play
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        for k, v in env.items():
            mp.setenv(k, v)
        instance = dg.DagsterInstance.get()
        try:
            movie = api.new_movie(instance, ArtifactStore(), small_request(segments={"2": {"use_video": True}}), "ui")
            assert api.generate(instance, ArtifactStore(), movie).success
        finally:
            instance.dispose()
        media = _start_media(home, media_url)
        try:
            with Daemon(home, env), Webserver(home, env) as web:
                yield UI(home, web, movie, media_url)
        finally:
            stop_group(media, 10)


def _start_media(home: Path, media_url: str) -> Any:
    proc = subprocess.Popen([str(BIN / "moviegen"), "media"], cwd=REPO, start_new_session=True,
                            env={**clean_env(), "DAGSTER_HOME": str(home), "MOVIEGEN_MEDIA_URL": media_url},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(media_url + "/", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    stop_group(proc, 5)
    raise TimeoutError("moviegen media did not answer")


@pytest.fixture
def env(ui: UI, monkeypatch: pytest.MonkeyPatch) -> tuple[dg.DagsterInstance, ArtifactStore]:
    monkeypatch.setenv("DAGSTER_HOME", str(ui.home))
    monkeypatch.setenv("MOVIEGEN_MEDIA_URL", ui.media_url)
    monkeypatch.setenv("MOVIEGEN_RENDER", "on")
    return dg.DagsterInstance.get(), ArtifactStore()


# ---------------------------------------------------------------------------------------------- GraphQL

CHECKS = """query C($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode { assetChecksOrError {
  ... on AssetChecks { checks { name executionForLatestMaterialization { status evaluation { severity description
  metadataEntries { label ... on IntMetadataEntry { intValue } } } } } } } } } }"""

MATERIALIZATIONS = """query M($k: AssetKeyInput!, $p: [String!]) { assetOrError(assetKey: $k) { ... on Asset {
  assetMaterializations(partitions: $p, limit: 20) { partition runId metadataEntries { label ... on UrlMetadataEntry { url } } } } } }"""

LAUNCH = """mutation L($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""

RUN = """query R($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""

FAILURES = """query F($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { __typename
  ... on ExecutionStepFailureEvent { error { message } } } } } }"""


# What the graph and the partition views show, for every artifact asset in one aliased query (one request
# instead of two per asset: the webserver's per-request cost dominated the test).
_CHECKS_FIELDS = """assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status
  evaluation { severity description metadataEntries { label ... on IntMetadataEntry { intValue } } } } } } }"""
_OBSERVATIONS_FIELDS = """assetObservations(limit: 5000) { partition timestamp metadataEntries { label
  ... on TextMetadataEntry { text } } }"""
UI_STATE = "query S { " + " ".join(
    f'o{i}: assetOrError(assetKey: {{path: ["{asset}"]}}) {{ ... on Asset {{ {_OBSERVATIONS_FIELDS} }} }} '
    f'c{i}: assetNodeOrError(assetKey: {{path: ["{asset}"]}}) {{ ... on AssetNode {{ {_CHECKS_FIELDS} }} }}'
    for i, asset in enumerate(ARTIFACTS)) + " }"


def ui_state(ui: UI) -> tuple[set[str], dict[str, tuple[str, int]]]:
    """The partitions of the movie whose latest observation (the partition view) marks them for the next build,
    and each asset's up_to_date check as the graph shows it: (status, partitions to rebuild)."""
    data = ui.gql(UI_STATE)
    marked: set[str] = set()
    checks: dict[str, tuple[str, int]] = {}
    for i, asset in enumerate(ARTIFACTS):
        latest: dict[str, dict[str, str]] = {}
        for o in sorted(data[f"o{i}"]["assetObservations"], key=lambda o: float(o["timestamp"])):
            if o["partition"] and o["partition"].split("|", 1)[0] == ui.movie:
                latest[o["partition"]] = {e["label"]: e.get("text") for e in o["metadataEntries"]}
        marked |= {str(NodeKey.from_partition(asset, p)) for p, md in latest.items() if md.get(MARK) not in (None, CLEAR)}
        (check,) = [c for c in data[f"c{i}"]["assetChecksOrError"]["checks"] if c["name"] == "up_to_date"]
        execution = check["executionForLatestMaterialization"]
        assert execution is not None, f"{asset}: its up_to_date check shows no evaluation"
        count = {e["label"]: e.get("intValue") for e in execution["evaluation"]["metadataEntries"]}["partitions_to_rebuild"]
        checks[asset] = (execution["status"], count)
    return marked, checks


def ui_marks(ui: UI) -> set[str]:
    return ui_state(ui)[0]


def launch(ui: UI, *, job: str = "__ASSET_JOB", assets: list[str] = (), checks: list[tuple[str, str]] = (),  # type: ignore[assignment]
           partition: str | None = None) -> str:
    tags = [{"key": "dagster/partition", "value": partition}] if partition else []
    params = {"selector": {"repositoryLocationName": "moviegen", "repositoryName": "__repository__", "pipelineName": job,
                           "assetSelection": [{"path": [a]} for a in assets],
                           "assetCheckSelection": [{"assetKey": {"path": [a]}, "name": n} for a, n in checks]},
              "runConfigData": {}, "mode": "default", "executionMetadata": {"tags": tags}}
    result = ui.gql(LAUNCH, p=params)["launchPipelineExecution"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def wait_run(ui: UI, run_id: str, timeout_s: float = 600) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = ui.gql(RUN, id=run_id)["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(1)
    raise TimeoutError(f"run {run_id} did not finish in {timeout_s} s")


def step_failures(ui: UI, run_id: str) -> list[str]:
    events = ui.gql(FAILURES, id=run_id)["logsForRun"]["events"]
    return [e["error"]["message"] for e in events if e["__typename"] == "ExecutionStepFailureEvent"]


# ---------------------------------------------------------------------------------------------- tests

def test_every_edit_of_the_contract_marks_exactly_the_plan(ui: UI, env) -> None:
    """Edits applied one after another (the plan grows with each): after each, the partitions marked in the
    UI are exactly the existing partitions `moviegen plan` rebuilds, and each asset's up_to_date check
    warns with exactly its count of planned partitions (passed when it has none)."""
    instance, store = env
    marks, checks = ui_state(ui)
    assert marks == set() and all(status == "SUCCEEDED" for status, _ in checks.values())
    for name, edits, _ in CONTRACT:
        if edits:
            api.edit(instance, store, ui.movie, edits)
        plan = api.plan(instance, store, ui.movie)
        marks, shown = ui_state(ui)
        assert marks == dagster_partitions(i.node for i in plan.items if i.reason != "missing"), name
        per_asset = {a: sum(1 for i in plan.items if i.asset == a) for a in ARTIFACTS}
        assert shown == {a: ("FAILED" if n else "SUCCEEDED", n) for a, n in per_asset.items()}, name


def test_materialize_from_the_ui_builds_exactly_the_plan(ui: UI, env) -> None:
    """Materialize of the movie's `movie_video` partition (graph, asset or partition page; the daemon runs it):
    every partition of the plan is built, nothing else; then nothing is marked and every check passes."""
    instance, store = env
    plan = api.plan(instance, store, ui.movie)
    assert plan.items, "the edits above left a plan to build"
    run_id = launch(ui, assets=["movie_video"], checks=[("movie_video", "up_to_date")], partition=ui.movie)
    assert wait_run(ui, run_id) == "SUCCESS", step_failures(ui, run_id)
    built, images_built = set(), 0
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records:
        m = record.event_log_entry.asset_materialization
        assert m is not None
        built.add(str(NodeKey.from_partition(m.asset_key.to_user_string(), str(m.partition))))
        images_built += int(m.metadata["images_built"].value) if "images_built" in m.metadata else 0  # type: ignore[arg-type]
    assert built == dagster_partitions(i.node for i in plan.items)
    assert images_built == sum(1 for i in plan.items if NodeKey.parse(i.node).image is not None)  # each image once
    marks, checks = ui_state(ui)
    assert marks == set()
    assert all(status == "SUCCEEDED" for status, _ in checks.values())
    assert api.plan(instance, store, ui.movie).items == []


def test_execute_all_checks_and_launches_without_a_partition(ui: UI, env) -> None:
    """The checks' "Execute all" evaluates them on what exists and builds nothing; the launchpad's jobs without a
    partition fail before building."""
    instance, _ = env
    run_id = launch(ui, checks=[("segment_audio", "narration_fits_segment"), ("segment_audio", "up_to_date")])
    assert wait_run(ui, run_id) == "SUCCESS", step_failures(ui, run_id)
    checks = ui.gql(CHECKS, k={"path": ["segment_audio"]})["assetNodeOrError"]["assetChecksOrError"]["checks"]
    fits = next(c for c in checks if c["name"] == "narration_fits_segment")["executionForLatestMaterialization"]
    assert fits["status"] in ("SUCCEEDED", "FAILED") and "partition(s)" in fits["evaluation"]["description"]
    # Launched without a partition, the jobs stop in Dagster before the step starts (it cannot read the
    # inputs' versions of a non-partitioned run of partitioned assets): nothing is built.
    for job in ("build_movie", "generate_movie"):
        run_id = launch(ui, job=job)
        assert wait_run(ui, run_id) == "FAILURE"
        assert any("non-partitioned run" in m for m in step_failures(ui, run_id)), step_failures(ui, run_id)
        assert instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records == []


def test_the_movie_and_its_revisions_play_from_the_ui(ui: UI, env) -> None:
    """movie_video's materializations link to the media server, which answers Range requests (a browser's
    video seeks); revision 1's link still plays after the rebuild."""
    links = [next(e["url"] for e in m["metadataEntries"] if e["label"] == "play") for m in
             ui.gql(MATERIALIZATIONS, k={"path": ["movie_video"]}, p=[ui.movie])["assetOrError"]["assetMaterializations"]]
    assert len(links) >= 2 and len(set(links)) == len(links)  # revision 1 and the rebuild: two files
    for link in links:
        assert link.startswith(ui.media_url + "/artifacts/movies/")
        whole = httpx.get(link, timeout=30)
        assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
        part = httpx.get(link, headers={"Range": "bytes=100-199"}, timeout=30)
        assert part.status_code == 206 and part.content == whole.content[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    assert httpx.get(ui.media_url + "/artifacts/movies/../dagster.yaml", timeout=10).status_code == 404
    assert httpx.get(ui.media_url + "/artifacts/movies/ui/nothing.mp4", timeout=10).status_code == 404


@real_part(None if CHROMIUM else "Debian's chromium is not installed")
def test_in_chromium_the_marks_show_and_the_movie_plays(ui: UI, env) -> None:
    """An edit, its marks on the asset page in the UI, the rebuild, and the movie playing in the page (the video
    element's duration is the timeline's)."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    instance, store = env
    api.edit(instance, store, ui.movie, [("segments.0.narration", "The war began at Fort Sumter in April 1861.")])
    shots = Path(SCREENSHOTS) if SCREENSHOTS else ui.home.parent / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{ui.web.url}/assets/segment_audio?view=checks", wait_until="networkidle", timeout=120_000)
            _skip_dialogs(page)
            page.get_by_text("up_to_date").first.click(timeout=60_000)
            page.get_by_text("partition(s) to rebuild").first.wait_for(timeout=60_000)  # the warning's description
            page.screenshot(path=str(shots / "ui-checks-after-edit.png"))
            page.goto(f"{ui.web.url}/asset-groups", wait_until="networkidle", timeout=120_000)
            _skip_dialogs(page)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(shots / "ui-graph.png"))

            run_id = launch(ui, assets=["movie_video"], partition=ui.movie)
            assert wait_run(ui, run_id) == "SUCCESS", step_failures(ui, run_id)
            assert ui_marks(ui) == set()

            (latest,) = ui.gql(MATERIALIZATIONS, k={"path": ["movie_video"]}, p=[ui.movie])["assetOrError"]["assetMaterializations"][:1]
            link = next(e["url"] for e in latest["metadataEntries"] if e["label"] == "play")
            page.goto(link, timeout=120_000)
            duration = page.evaluate("""() => new Promise((resolve, reject) => {
                const v = document.querySelector('video');
                if (!v) return reject('no video element');
                if (v.readyState >= 1) return resolve(v.duration);
                v.addEventListener('loadedmetadata', () => resolve(v.duration));
                v.addEventListener('error', () => reject('the video does not play'));
            })""")
            page.screenshot(path=str(shots / "ui-movie-plays.png"))
        finally:
            browser.close()
    timeline = json.loads(store.read(api.timeline_uri(instance, store, ui.movie)))
    assert abs(duration * 1000 - timeline["durationMs"]) <= 1000 / 30 + 25, (duration, timeline["durationMs"])


def _skip_dialogs(page: Any) -> None:
    """Dagster's first-visit community dialog covers the page: Skip it."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.click(timeout=3000)
    except Exception:  # noqa: BLE001 - no dialog this time
        pass
