"""The hosted service as its users meet it: `moviegen serve` on loopback, the Dagster daemon running the
queued generations, asked through a real HTTP client (httpx).

One server and daemon for the module. Tenant acme makes a movie and follows it through (create, plan,
generate, progress events, the MP4 with Range, an edit, plan == generate, revision 1 still served);
tenant bolt asks for acme's movie on every route and gets 404; bad input of every kind is answered
without a traceback.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from movie_assets.interfaces.service.app import openapi_document
from tests.conftest import REPO, moviegen, new_home, real_part
from tests.servers.daemon import Daemon
from tests.servers.service import Service
from tests.staleness import dagster_partitions

ENV = {"MOVIEGEN_RENDER": "on", "MOVIEGEN_RENDER_ENGINE": "ffmpeg"}  # the MP4 is made: it must play
REQUEST_YAML = """\
inquiry_prompt: Why is the sky blue?
duration_seconds: 20
images_per_segment: 1
size: 480p
"""


@dataclass
class Hosted:
    home: Path
    url: str
    tokens: dict[str, str]
    service: Service

    def client(self, tenant: str = "acme", token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token or self.tokens[tenant]}"},
                            timeout=60)


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosted]:
    home = new_home(tmp_path_factory.mktemp("service") / "dagster_home")
    tokens = {}
    for tenant in ("acme", "bolt"):
        made = moviegen(home, ENV, "token", "create", tenant, "--label", "tests")
        assert made.returncode == 0, made.stderr
        tokens[tenant] = made.stdout.strip()
    # The instance's storage is made once before the daemon and the service start (both would make it at once).
    assert moviegen(home, ENV, "list").returncode == 0
    with Daemon(home, ENV), Service(home, ENV, "--headers-timeout", "2", "--body-timeout", "2") as service:
        yield Hosted(home, service.url, tokens, service)


def follow(client: httpx.Client, movie: str, run_id: str, timeout_s: float = 400) -> list[tuple[str, dict[str, Any]]]:
    """The run's Server-Sent Events until its `end`."""
    events: list[tuple[str, dict[str, Any]]] = []
    kind = ""
    with client.stream("GET", f"/v1/movies/{movie}/runs/{run_id}/events", timeout=httpx.Timeout(30, read=timeout_s)) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[len("data: "):])))
                if kind == "end":
                    break
    return events


def generate(client: httpx.Client, movie: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    answer = client.post(f"/v1/movies/{movie}/generate", json={})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    return body, follow(client, movie, body["run_id"])


@pytest.fixture(scope="module")
def made(hosted: Hosted) -> dict[str, Any]:
    """acme's movie `sky`, generated once through the queue (the flow test goes on from it)."""
    with hosted.client() as c:
        created = c.post("/v1/movies", params={"id": "sky"}, content=REQUEST_YAML, headers={"Content-Type": "application/yaml"})
        assert created.status_code == 201, created.text
        assert created.json()["id"] == "sky" and created.headers["location"] == "/v1/movies/sky"
        plan = c.get("/v1/movies/sky/plan").json()
        assert plan["items"] and plan["provider_calls"]["ScriptProducer"] == 1 and plan["estimated_cost_usd"] == 0
        assert {i["reason"] for i in plan["items"]} == {"missing"}
        answer = c.post("/v1/movies/sky/generate", json={})
        assert answer.status_code == 202, answer.text
        body = answer.json()
        # While the generation is queued or runs: deleting, or a second generation, is refused.
        busy = c.delete("/v1/movies/sky")
        assert busy.status_code == 409 and busy.json()["error"]["category"] == "busy", busy.text
        again = c.post("/v1/movies/sky/generate")
        assert again.status_code == 409 and body["run_id"] in again.json()["error"]["message"]
        return {"plan": plan, "generated": body, "events": follow(c, "sky", body["run_id"])}


def test_create_plan_generate_progress_play_edit_and_revisions(hosted: Hosted, made: dict[str, Any]) -> None:
    """create -> plan -> generate (a queued run the daemon runs) -> progress events -> the MP4 with a 206 Range
    answer -> edit -> what the plan showed is exactly what the generation built -> revision 1 still served."""
    plan, events = made["plan"], made["events"]
    kinds = [k for k, _ in events]
    assert "planned" in kinds and "built" in kinds and kinds[-1] == "end", kinds
    end = events[-1][1]
    assert end["status"] == "SUCCESS" and end["revision"]["revision"] == 1, end
    # Progress is told per Dagster partition (a segment's images are one partition of an image asset).
    assert set(end["built"]) == set(end["planned"]) == dagster_partitions(i["node"] for i in plan["items"])
    assert {e["node"] for k, e in events if k == "built"} == set(end["built"])
    with hosted.client() as c:
        status = c.get("/v1/movies/sky/status").json()
        assert status["to_build"] == 0 and not status["failures"] and status["active_runs"] == []
        video = status["movie_video"]
        assert video.startswith("/v1/movies/sky/artifacts/movie_video/") and video.endswith(".mp4")
        whole = c.get(video)
        assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
        part = c.get(video, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == whole.content[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
        assert c.get("/v1/movies/sky/video", follow_redirects=False).headers["location"] == video

        edited = c.post("/v1/movies/sky/edits", json={"set": {"segments.1.narration": "Blue light scatters the most."}})
        assert edited.status_code == 200, edited.text
        after = edited.json()["plan"]
        assert after["items"] and "segment_narration[01]" in {i["node"] for i in after["items"]}
        assert c.get("/v1/movies/sky/plan").json()["items"] == after["items"]
        _, events = generate(c, "sky")
        end = events[-1][1]
        assert end["status"] == "SUCCESS" and end["revision"]["revision"] == 2
        # plan == generate: the run planned exactly the plan's partitions, and built them all but those planned only as
        # `upstream` whose inputs turned out unchanged (skipped at run time: docs/architecture.md)
        assert set(end["planned"]) == dagster_partitions(i["node"] for i in after["items"])
        reasons: dict[str, set[str]] = {}
        for i in after["items"]:
            reasons.setdefault(next(iter(dagster_partitions([i["node"]]))), set()).add(i["reason"])
        assert set(end["built"]) <= set(end["planned"])
        assert all(reasons[n] == {"upstream"} for n in set(end["planned"]) - set(end["built"])), reasons
        assert c.get("/v1/movies/sky/plan").json()["items"] == []

        history = c.get("/v1/movies/sky/history").json()["revisions"]
        assert [r["revision"] for r in history] == [1, 2]
        first, second = history[0]["movie_video"], history[1]["movie_video"]
        assert first == video and second != first
        assert c.get("/v1/movies/sky/video", params={"revision": 1}, follow_redirects=False).headers["location"] == first
        old = c.get(first, headers={"Range": "bytes=0-99"})
        assert old.status_code == 206 and old.content == whole.content[:100]
        timeline = c.get("/v1/movies/sky/timeline", params={"revision": 1}).json()
        srcs = [clip["src"] for t in timeline["tracks"] for clip in t["clips"] if "src" in clip]
        assert srcs and all(s.startswith("/v1/movies/sky/artifacts/") for s in srcs)
        assert c.get(srcs[0]).status_code == 200
        exported = c.get("/v1/movies/sky/export", params={"format": "fcpxml"})
        assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
        assert f"{hosted.url}/v1/movies/sky/artifacts/" in exported.text and str(hosted.home) not in exported.text
        assert c.post("/v1/movies/sky/verify", params={"quick": True}).json()["damaged"] == {}
        would = c.post("/v1/movies/sky/prune", json={"keep_revisions": 1, "dry_run": True})
        assert would.status_code == 200, would.text
        assert would.json()["pruned_revisions"] == [1] and first in would.json()["removed"]  # as the tenant's artifact URLs
        assert "acme--" not in would.text and c.get(first, headers={"Range": "bytes=0-9"}).status_code == 206  # nothing removed
        assert 'movie="sky"' in c.get("/v1/metrics").text


def test_tenants_see_only_their_own_movies(hosted: Hosted, made: dict[str, Any]) -> None:
    """bolt gets 404 for acme's movie on every route, with the same answer as for a movie nobody has; its
    artifacts too; bolt's own `sky` is another movie; a revoked token is refused; the rate limit answers 429."""
    run_id = made["generated"]["run_id"]
    with hosted.client("acme") as acme:
        artifact = acme.get("/v1/movies/sky/status").json()["movie_video"]
    values = {"movie": "sky", "run_id": run_id, "number": "1", "path": artifact.split("/artifacts/", 1)[1]}
    bodies = {"/edits": {"set": {"voice_id": "onyx"}}, "/reroll": {"node": "music"}, "/pick": {"node": "music", "take": 0},
              "/approve": {"node": "segment_image[00_0]", "name": "x"}, "/generate": {}}
    params = {"/takes": {"node": "music"}, "/export": {"format": "otio"}}
    routes = [(m, p) for m, p in _api_routes() if "{movie}" in p]
    assert len(routes) >= 20, routes
    with hosted.client("bolt") as bolt:
        for method, path in routes:
            tail = "/" + path.rsplit("/", 1)[1] if not path.endswith("}") else ""
            answers = []
            for movie in ("sky", "nobody-has-this"):
                url = path.format(**(values | {"movie": movie}))
                r = bolt.request(method, url, json=bodies.get(tail) if method == "POST" else None, params=params.get(tail))
                answers.append((r.status_code, json.dumps(r.json()).replace(movie, "ID")))
            assert answers[0][0] == 404, (method, path, answers[0])
            assert answers[0] == answers[1], (method, path, answers)  # no hint that acme's exists
        assert bolt.get("/v1/movies").json()["movies"] == []
        mine = bolt.post("/v1/movies", params={"id": "sky"}, content=REQUEST_YAML, headers={"Content-Type": "application/yaml"})
        assert mine.status_code == 201
        assert bolt.get("/v1/movies/sky/history").json()["revisions"] == []
        assert bolt.delete("/v1/movies/sky").status_code == 200
    with hosted.client("acme") as acme:  # bolt's delete left acme's movie alone
        assert len(acme.get("/v1/movies/sky/history").json()["revisions"]) == 2
        assert acme.get(artifact, headers={"Range": "bytes=0-9"}).status_code == 206

    made_token = moviegen(hosted.home, ENV, "token", "create", "bolt", "--rate", "3")
    limited = made_token.stdout.strip()
    with hosted.client(token=limited) as c:
        assert [c.get("/v1/movies").status_code for _ in range(3)] == [200, 200, 200]
        refused = c.get("/v1/movies")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["category"] == "rate"
    revoked = moviegen(hosted.home, ENV, "token", "revoke", limited)
    assert revoked.returncode == 0, revoked.stderr
    with hosted.client(token=limited) as c:
        assert c.get("/v1/movies").status_code == 401
    for bad in ("nonsense", "mgt_000000000000_" + "x" * 43, hosted.tokens["acme"][:-1] + "!"):
        assert httpx.get(hosted.url + "/v1/movies", headers={"Authorization": f"Bearer {bad}"}).status_code == 401
    listed = moviegen(hosted.home, ENV, "token", "list", "--json")
    assert hosted.tokens["acme"].split("_", 2)[2] not in listed.stdout  # never a secret
    stored = (hosted.home / "service" / "accounts.sqlite").read_bytes()
    assert hosted.tokens["acme"].split("_", 2)[2].encode() not in stored  # hashed, not stored in plain text


def test_tenant_budget_caps_show_in_the_plan(hosted: Hosted, made: dict[str, Any]) -> None:
    """A tenant's caps (per movie: the lower one holds; per UTC day over its movies) are caps of every plan."""
    assert moviegen(hosted.home, ENV, "tenant", "set", "acme", "--daily-usd", "5", "--movie-usd", "0.5").returncode == 0
    try:
        with hosted.client() as c:
            caps = {b["scope"]: b for b in c.get("/v1/movies/sky/plan", params={"budget_usd": 2}).json()["budget"]}
            assert caps["movie:sky"]["limit_usd"] == 0.5 and caps["tenant:acme"]["limit_usd"] == 5
            assert caps["tenant:acme"]["period"] == "today (UTC)"
            assert c.get("/v1/me").json()["daily_usd"] == 5
    finally:
        moviegen(hosted.home, ENV, "tenant", "set", "acme")


def test_bad_input_is_answered_without_a_traceback(hosted: Hosted) -> None:
    with hosted.client() as c:
        answers = []
        big = c.post("/v1/movies", content=b"a" * 1_000_001, headers={"Content-Type": "application/json"})
        assert big.status_code == 413
        answers.append(big)
        broken = c.post("/v1/movies", content=b'{"inquiry_prompt": ', headers={"Content-Type": "application/json"})
        assert broken.status_code == 422 and "not valid json" in broken.json()["error"]["message"]
        answers.append(broken)
        yaml = c.post("/v1/movies", content=b"inquiry_prompt: [unclosed", headers={"Content-Type": "application/yaml"})
        assert yaml.status_code == 422 and "line 1" in yaml.json()["error"]["message"]
        answers.append(yaml)
        field = c.post("/v1/movies", json={"inquiry_prompt": "Rivers", "duration_seconds": 7})
        assert field.status_code == 422 and any("duration_seconds" in e for e in field.json()["error"]["errors"])
        assert field.json()["error"]["exit_code"] == 2
        answers.append(field)
        edit = c.post("/v1/movies/sky/edits", json={"set": {"segments.1.nope": 1}})
        assert edit.status_code == 422 and "segments.1.nope" in edit.text
        answers.append(edit)
        # A file of the user's through the service: a URL, never a path of the server's disk (refused unread).
        local = c.post("/v1/movies/sky/edits", json={"set": {"segments.1.image_files.0": "/etc/passwd"}})
        assert local.status_code == 422 and "a local path is refused here" in local.text and "root:" not in local.text
        answers.append(local)
        created = c.post("/v1/movies", json={"inquiry_prompt": "Rivers", "duration_seconds": 10, "music_file": "../x.mp3"})
        assert created.status_code == 422 and "music_file: '../x.mp3': a local path is refused here" in created.text
        answers.append(created)
        pick = c.post("/v1/movies/sky/pick", json={"node": "music", "take": "two"})
        assert pick.status_code == 422 and "take" in pick.text
        answers.append(pick)
        for url in ("/v1/nothing", "/v1/movies/..%2F..%2Fdagster.yaml/status", "/v1/movies/sky/artifacts/../../x",
                    "/v1/movies/sky/artifacts/%2e%2e/request.json", "/v1/movies/SKY/status", "/v1/movies/a..b/status"):
            r = c.get(url)
            assert r.status_code == 404, (url, r.status_code)
            answers.append(r)
        ids = c.post("/v1/movies", params={"id": "../etc"}, content=REQUEST_YAML, headers={"Content-Type": "application/yaml"})
        assert ids.status_code == 422 and "id" in ids.json()["error"]["message"]
        answers.append(ids)
        for r in answers:
            assert "Traceback" not in r.text and "File \"" not in r.text and r.json()["error"]["message"]
    # A slow client holds nothing: the server answers others meanwhile, and closes a connection whose headers
    # (or body) do not arrive in time (the module's server: 2 s).
    host, port = hosted.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as slow, socket.create_connection((host, int(port))) as slow_body:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never ends its headers
        slow_body.sendall(b"POST /v1/movies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Authorization: Bearer " + hosted.tokens["acme"].encode() + b"\r\nContent-Length: 100\r\n\r\n{")
        started = time.monotonic()
        assert httpx.get(hosted.url + "/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 2
        slow.settimeout(10)
        assert slow.recv(100) == b""  # closed by the server
        slow_body.settimeout(10)
        assert b" 408 " in slow_body.recv(1000).split(b"\r\n")[0]


def test_openapi_document_is_committed() -> None:
    """docs/openapi.json is the service's document (regenerate: `python -m movie_assets.interfaces.service.openapi`)."""
    committed = json.loads((REPO / "docs" / "openapi.json").read_text())
    assert committed == json.loads(json.dumps(openapi_document()))


def _api_routes() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in openapi_document()["paths"].items() for method in item]


CHROMIUM = shutil.which("chromium")

DURATION_JS = """(video) => new Promise((resolve, reject) => {
    if (video.readyState >= 1) return resolve(video.duration);
    video.addEventListener('loadedmetadata', () => resolve(video.duration));
    video.addEventListener('error', () => reject('the video does not play'));
    video.load();
})"""


@real_part(None if CHROMIUM else "Debian's chromium is not installed")
def test_in_the_studio_make_edit_regenerate_and_play(hosted: Hosted) -> None:
    """In Chromium: sign in, make a movie with the form, see its plan, generate and follow it, edit one narration
    inline (the plan updates), regenerate, and the new MP4 plays with the timeline's duration; revision 1 plays too."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(hosted.url + "/", timeout=60_000)
            page.fill("input[name=token]", hosted.tokens["acme"])
            page.click("#sign-in button[type=submit]")
            page.fill("input[name=inquiry_prompt]", "How do tides work?")
            page.fill("input[name=id]", "tides")
            page.select_option("select[name=duration_seconds]", "10")
            page.select_option("select[name=size]", "480p")
            page.click("#new-movie-form button[type=submit]")
            page.wait_for_selector("#plan-summary:has-text('The next generate builds')", timeout=60_000)
            page.click("#generate")
            page.wait_for_selector("#progress-text[data-done=SUCCESS]", timeout=300_000)
            page.wait_for_selector("#player-box:not([hidden])", timeout=120_000)
            first = page.get_attribute("#player", "src")

            narration = page.locator("textarea[data-narration='0']")
            assert narration.input_value()  # the generated narration, to edit in place
            narration.fill("The moon pulls the oceans into two bulges.")
            narration.blur()
            page.wait_for_function(
                "document.querySelector('#plan-summary').textContent.includes('The next generate builds')", timeout=120_000)
            assert "segment_narration[00]" in (page.text_content("#plan details") or "")
            page.click("#generate")
            page.wait_for_selector("#progress-text[data-done=SUCCESS]", timeout=300_000)
            page.wait_for_function(f"document.querySelector('#player').getAttribute('src') !== {json.dumps(first)}",
                                   timeout=120_000)
            duration = page.locator("#player").evaluate(DURATION_JS)
            with hosted.client() as c:
                timeline = c.get("/v1/movies/tides/timeline").json()
            assert abs(duration * 1000 - timeline["durationMs"]) <= 1000 / 30 + 25, (duration, timeline["durationMs"])
            assert page.locator("textarea[data-narration='0']").input_value() == "The moon pulls the oceans into two bulges."

            old = page.locator("#revisions li[data-revision='1'] video")
            assert old.get_attribute("src") == first
            assert old.evaluate(DURATION_JS) > 0  # revision 1 still plays
            page.screenshot(path=str(hosted.home.parent / "studio.png"), full_page=True)
        finally:
            browser.close()


def test_the_cli_reads_through_the_service(hosted: Hosted, made: dict[str, Any]) -> None:
    """`moviegen list/status/plan/history --server URL` (or MOVIEGEN_URL) answer from the service, with its exit codes."""
    remote = {"MOVIEGEN_URL": hosted.url, "MOVIEGEN_TOKEN": hosted.tokens["acme"]}
    listed = moviegen(hosted.home, remote, "list")
    assert listed.returncode == 0 and "sky" in listed.stdout.split(), listed.stderr
    status = moviegen(hosted.home, remote, "status", "sky", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["movie"] == "sky", status.stderr
    shown = moviegen(hosted.home, {}, "status", "sky", "--server", hosted.url, "--token", hosted.tokens["acme"])
    assert shown.returncode == 0 and f"{hosted.url}/v1/movies/sky/artifacts/movie_video/" in shown.stdout, shown.stderr
    assert moviegen(hosted.home, remote, "plan", "sky").returncode == 0
    assert "first generation" in moviegen(hosted.home, remote, "history", "sky").stdout
    other = moviegen(hosted.home, {**remote, "MOVIEGEN_TOKEN": hosted.tokens["bolt"]}, "status", "sky")
    assert other.returncode == 2 and "no movie 'sky'" in other.stderr
    assert moviegen(hosted.home, {**remote, "MOVIEGEN_TOKEN": "nonsense"}, "list").returncode == 1
