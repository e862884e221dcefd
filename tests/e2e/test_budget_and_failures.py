"""Budget caps, pre-flight and failure categories end to end: producers routed to OpenAI through the real
SDK against a local OpenAI-protocol server, generations run through Dagster in their own processes (the
routes are read when the definitions load), every request counted at the server.

A driver process (DRIVER) holds one Dagster instance and answers one JSON command per line, so a test
checks the server between the steps of one process without paying Dagster's start-up for each step.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from movie_assets.domain.request import load_request
from resources.providers.base import ErrorCategory
from resources.providers.openai.catalog import OPENAI_IMAGE_PRICES
from resources.providers.pricing import estimate_call_usd
from resources.runtime.budget import MICROS, TABLE, SqliteLedger
from tests.conftest import BIN, REPO, moviegen
from tests.servers.openai_server import POLICY, QUOTA, FakeOpenAI, error
from tests.servers.processes import clean_env

IMAGES = "/v1/images/generations"
N_IMAGES = 6  # examples/civil-war.yaml: 3 segments x 2 images
SHOT = re.compile(r"shot (\w+)/(\d\d_\d)")  # movie tag / image partition

DRIVER = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import dagster as dg
from movie_assets.interfaces import api
from resources.storage import ArtifactStore

instance, store = api.open_instance(), ArtifactStore()
for line in sys.stdin:
    cmd = json.loads(line)
    op, movie = cmd.pop("op"), cmd.pop("movie")
    try:
        if op == "new":
            out = api.new_movie(instance, store, cmd["request"], movie)
        elif op == "plan":
            out = api.plan(instance, store, movie, cmd.get("budget_usd")).to_json()
        elif op == "generate":
            r = api.generate(instance, store, movie, **cmd)
            out = r.to_json() | {"errors": r.errors, "fallbacks": r.fallbacks}
        elif op == "edit":
            out = api.edit(instance, store, movie, [tuple(e) for e in cmd["edits"]]).to_json()
        elif op == "status":
            out = api.status(instance, store, movie).to_json()
        else:
            raise ValueError(f"unknown op {op}")
        reply = {"ok": out}
    except Exception as e:
        reply = {"error": type(e).__name__, "message": str(e),
                 "attrs": {k: v for k, v in vars(e).items() if isinstance(v, (str, int, float, list, dict))}}
    print("@@" + json.dumps(reply, default=str), flush=True)
"""


class Driver:
    """The Python API in its own process on ``env``'s DAGSTER_HOME and settings."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        self._stderr: IO[str] = log.open("w")
        self.proc = subprocess.Popen([str(BIN / "python"), "-c", DRIVER], cwd=REPO, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@"):
                self._lines.put(line[2:])
        self._lines.put("")  # the process ended

    def send(self, op: str, movie: str, **args: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "movie": movie, **args}) + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout_s: float = 300) -> dict[str, Any]:
        line = self._lines.get(timeout=timeout_s)
        if not line:
            raise AssertionError(f"the driver ended:\n{self.log.read_text()[-3000:]}")
        return json.loads(line)

    def ok(self, op: str, movie: str, **args: Any) -> Any:
        self.send(op, movie, **args)
        reply = self.receive()
        assert "ok" in reply, f"{op} {movie}: {reply}\n{self.log.read_text()[-3000:]}"
        return reply["ok"]

    def refused(self, op: str, movie: str, **args: Any) -> dict[str, Any]:
        self.send(op, movie, **args)
        reply = self.receive()
        assert "error" in reply, f"{op} {movie} was expected to fail: {str(reply)[:2000]}"
        return reply

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def openai_env(home: Path, server: FakeOpenAI, **extra: str) -> dict[str, str]:
    """Images on OpenAI's gpt-image-1, every other producer offline (free)."""
    return {**clean_env(), "DAGSTER_HOME": str(home), "MOVIEGEN_PROVIDERS": "TextToImageProducer=openai:gpt-image-1",
            "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": server.base_url, **extra}


def request_file(folder: Path, tag: str, prompts: dict[str, str] | None = None) -> Path:
    """examples/civil-war.yaml with every image prompt set, each naming its movie and image (``shot TAG/SS_J``),
    so the server tells which movie and partition a request is for."""
    data = yaml.safe_load((REPO / "examples/civil-war.yaml").read_text())
    for s in range(3):
        data["segments"].setdefault(s, {})["image_prompts"] = {
            j: f"{(prompts or {}).get(f'{s:02d}_{j}', 'a quiet landscape')}, shot {tag}/{s:02d}_{j}" for j in range(2)}
    path = folder / f"{tag}.json"
    path.write_text(json.dumps(data))
    return path


def shots(server: FakeOpenAI, start: int = 0) -> list[str]:
    """The image partition (``SS_J``) of each image request from the ``start``-th on."""
    return [shot for _, shot in tagged(server)[start:]]


def tagged(server: FakeOpenAI) -> list[tuple[str, str]]:
    """(movie tag, image partition) of each image request."""
    return [SHOT.search(c.body["prompt"]).groups() for c in server.calls(IMAGES)]  # type: ignore[union-attr,misc]


def suffix(node: str) -> str:
    """``segment_image[01_1]`` -> ``01_1``."""
    return node.split("[")[1].rstrip("]")


def image_price() -> float:
    width, height = load_request(REPO / "examples/civil-war.yaml").frame
    price = estimate_call_usd("openai", "images", "gpt-image-1", width=width, height=height)
    assert price == OPENAI_IMAGE_PRICES["gpt-image-1"]["medium"]["1536x1024"]  # 480p 16:9 is landscape
    return price


def read_timeline(uri: str) -> dict[str, Any]:
    return json.loads(Path(uri.removeprefix("file://")).read_text())


def test_a_movie_cap_sends_exactly_what_it_allows_then_a_raised_cap_replaces_the_placeholders(
        home: Path, tmp_path: Path) -> None:
    """The movie's cap first given to generate (``budget_usd=``, as ``moviegen generate --budget``), then
    raised in its request (``budget_usd``)."""
    k = 4  # of N_IMAGES image calls the cap allows
    with FakeOpenAI() as server, Driver(openai_env(home, server), tmp_path / "driver.log") as driver:
        driver.ok("new", "m", request=str(request_file(tmp_path, "m")))
        plan = driver.ok("plan", "m")
        assert plan["provider_calls"]["TextToImageProducer"] == N_IMAGES and plan["problems"] == []
        per_call = plan["estimated_cost_usd"] / N_IMAGES  # every other producer is offline: free
        assert per_call == pytest.approx(image_price())
        cap = round(k * per_call, 6)

        capped = driver.ok("plan", "m", budget_usd=cap)
        assert capped["budget"] == [{"scope": "movie:m", "limit_usd": cap, "spent_usd": 0.0, "remaining_usd": cap,
                                     "period": "all time"}]
        assert capped["over_budget"]["scope"] == "movie:m"

        # Over budget: refused before any call.
        refused = driver.refused("generate", "m", budget_usd=cap)
        assert refused["error"] == "OverBudget" and "nothing was sent" in refused["message"]
        assert refused["attrs"]["estimate_usd"] == pytest.approx(N_IMAGES * per_call)
        assert refused["attrs"]["remaining_usd"] == pytest.approx(cap) and refused["attrs"]["scope"] == "movie:m"
        assert server.requests == []

        # Allowed over budget: exactly k images are sent, the others fail [budget] and get placeholders.
        first = driver.ok("generate", "m", budget_usd=cap, allow_over_budget=True)
        sent = shots(server)
        assert len(sent) == k == len(set(sent)) and first["provider_calls"]["TextToImageProducer"] == k
        assert first["cost_usd"] == pytest.approx(cap)
        over = {suffix(node): info for node, info in first["errors"].items()}
        assert len(over) == N_IMAGES - k and not set(over) & set(sent)
        assert set(first["errors"]) == set(first["fallbacks"])
        for info in over.values():
            assert info["category"] == "budget" and info["message"].startswith("not built: budget"), info
            assert info["suggestion"].startswith("raise the movie's budget (`moviegen edit")  # the cap that stopped it
        assert first["budget"] == [{"scope": "movie:m", "limit_usd": cap, "spent_usd": cap, "remaining_usd": 0.0,
                                    "period": "all time"}]
        ledger = SqliteLedger(home / "limits" / "budget.sqlite")
        assert ledger.spent(movie="m") == pytest.approx(cap) and ledger.unsettled() == []
        timeline = read_timeline(first["timeline"])
        assert sorted(e["partition"] for e in timeline["errors"]) == sorted(f"m|{s}" for s in over)
        assert {(e["reason"], e["category"]) for e in timeline["errors"]} == {("placeholder", "budget")}

        # The cap raised in the request: the plan fits without --allow-over-budget, exactly the n-k missing
        # images are sent.
        raised = round(N_IMAGES * per_call, 6)
        driver.ok("edit", "m", edits=[["budget_usd", raised]])
        replan = driver.ok("plan", "m")
        assert replan["budget"] == [{"scope": "movie:m", "limit_usd": raised, "spent_usd": cap,
                                     "remaining_usd": round(raised - cap, 6), "period": "all time"}]
        assert replan["provider_calls"] == {"TextToImageProducer": N_IMAGES - k} and replan["over_budget"] is None
        second = driver.ok("generate", "m")
        assert sorted(shots(server, k)) == sorted(over)
        assert second["provider_calls"]["TextToImageProducer"] == N_IMAGES - k
        assert second["failed"] == [] and second["fallbacks"] == [] and second["success"]
        assert ledger.spent(movie="m") == pytest.approx(raised)
        status = driver.ok("status", "m")
        assert status["placeholders"] == {} and status["errors"] == {} and status["to_build"] == 0
        assert read_timeline(second["timeline"])["errors"] == []
        assert len(server.requests) == N_IMAGES  # nothing else reached OpenAI


def test_two_movies_at_once_never_overshoot_the_daily_cap(home: Path, tmp_path: Path) -> None:
    """Two processes generate a movie each under one MOVIEGEN_DAILY_BUDGET_USD that allows 7 of their 12
    images. Every image request is held at the server until both movies have one in flight, so their
    reservations race for the last dollars."""
    price = image_price()
    allowed = 7
    cap = round(allowed * price, 6)
    with FakeOpenAI() as server:
        env = openai_env(home, server, MOVIEGEN_DAILY_BUDGET_USD=f"{cap:.6f}")
        server.hold_after[IMAGES] = 0
        with Driver(env, tmp_path / "a.log") as a, Driver(env, tmp_path / "b.log") as b:
            for movie in ("a", "b"):
                a.ok("new", movie, request=str(request_file(tmp_path, movie)))
            # At most 3 image calls in flight per movie: the first cannot take the whole cap before the other starts.
            for driver, movie in ((a, "a"), (b, "b")):
                driver.send("generate", movie, allow_over_budget=True, resource_config={"images": {"max_in_flight": 3}})
            both = server.wait_until(lambda: {movie for movie, _ in tagged(server)} == {"a", "b"})
            server.release.set()
            results = {"a": a.receive(), "b": b.receive()}
        assert both, f"the two movies' image calls never overlapped: {[c.body['prompt'] for c in server.calls(IMAGES)]}"
        for movie, reply in results.items():
            assert "ok" in reply, f"{movie}: {reply}"
        out = {movie: reply["ok"] for movie, reply in results.items()}

        requests = Counter(movie for movie, _ in tagged(server))
        calls = {movie: r["provider_calls"].get("TextToImageProducer", 0) for movie, r in out.items()}
        assert calls == dict(requests) and all(calls.values())
        budget_failures = {movie: [n for n, e in r["errors"].items() if e["category"] == "budget"] for movie, r in out.items()}
        assert {movie: len(f) for movie, f in budget_failures.items()} == {m: N_IMAGES - calls[m] for m in calls}
        for r in out.values():
            assert set(r["errors"]) == set(r["fallbacks"])  # nothing failed but for the budget; all have placeholders
            assert [b["scope"] for b in r["budget"]] == ["instance"]

        # The ledger: every entry settled; at no moment (reservations in flight included) above the cap.
        with sqlite3.connect(home / "limits" / "budget.sqlite") as conn:
            rows = conn.execute(f"select reserved_at, estimate_micros, actual_micros, settled_at, movie from {TABLE}").fetchall()
        events = sorted([(at, est) for at, est, _, _, _ in rows] + [(at, act - est) for _, est, act, at, _ in rows])
        total = peak = 0
        for _, change in events:
            total += change
            peak = max(peak, total)
        ledger = SqliteLedger(home / "limits" / "budget.sqlite")
        spent = ledger.spent()
        priced = len(server.calls(IMAGES)) * price
        figures = {"cap_usd": cap, "requests": dict(requests), "ledger_spent_usd": round(spent, 6),
                   "ledger_peak_usd": peak / MICROS, "requests_priced_usd": round(priced, 6),
                   "max_overshoot_usd": round(max(0.0, peak / MICROS - cap, spent - cap, priced - cap), 6)}
        print("two movies under one daily cap:", json.dumps(figures))
        assert all(act is not None for _, _, act, _, _ in rows) and ledger.unsettled() == []
        assert figures["max_overshoot_usd"] == 0
        # Estimates equal prices here, so the cap is reached exactly: 7 images, no more, no fewer.
        assert sum(requests.values()) == allowed and spent == pytest.approx(cap)


def test_a_kill_during_calls_in_flight_and_throttled_leaves_only_the_real_answers_in_the_budget(
        home: Path, tmp_path: Path) -> None:
    """A generation under a movie cap of exactly its 6 pictures, OpenAI throttled to 2 calls in flight, is
    killed when 2 pictures were answered, 2 are in flight at the server and 2 wait for the throttle:
    all 6 reserved. The next generate releases the dead generation's 4 open reservations (their answers
    never arrived), so the cap has room for exactly the 4 pictures it still needs, and spends them."""
    price = image_price()
    with FakeOpenAI() as server:
        env = openai_env(home, server, MOVIEGEN_OPENAI_MAX_IN_FLIGHT="2", MOVIEGEN_MOVIE_BUDGET_USD=f"{N_IMAGES * price:.6f}")
        cli_env = {k: v for k, v in env.items() if k.startswith(("MOVIEGEN_", "OPENAI_"))}
        assert moviegen(home, cli_env, "new", str(request_file(tmp_path, "k")), "--id", "k").returncode == 0
        server.hold_after[IMAGES] = 2  # two pictures are answered; the next ones stay in flight at the server
        proc = subprocess.Popen([str(BIN / "moviegen"), "generate", "k", "--quiet"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ledger = home / "limits" / "budget.sqlite"

        def entries() -> list[tuple[str, int | None]]:
            if not ledger.exists():
                return []
            with sqlite3.connect(ledger) as conn:
                return conn.execute(f"select node, actual_micros from {TABLE}").fetchall()

        try:
            assert server.wait_until(lambda: len(server.answered(IMAGES)) == 2 and len(server.calls(IMAGES)) == 4)
            deadline = time.monotonic() + 120
            while not (len(rows := entries()) == N_IMAGES and sum(a is not None for _, a in rows) == 2):
                assert proc.poll() is None and time.monotonic() < deadline, f"the ledger never held 6 reservations: {rows}"
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(30)
            server.release.set()
        answered = {shot for _, shot in tagged(server)[:2]}
        assert SqliteLedger(ledger).spent(movie="k") == pytest.approx(N_IMAGES * price)  # the cap looks used up

        proc2 = moviegen(home, cli_env, "generate", "k", "--json", "--quiet")
        assert proc2.returncode == 0, proc2.stdout[-2000:] + proc2.stderr[-3000:]
        out = json.loads(proc2.stdout)
        assert out["failed"] == [] and out["provider_calls"]["TextToImageProducer"] == N_IMAGES - 2
        asked_again = shots(server, 4)
        assert len(asked_again) == N_IMAGES - 2 and not set(asked_again) & answered  # what was answered is not bought again
        assert out["budget"] == [{"scope": "movie:k", "limit_usd": round(N_IMAGES * price, 6), "spent_usd": round(N_IMAGES * price, 6),
                                  "remaining_usd": 0.0, "period": "all time"}]
        with sqlite3.connect(ledger) as conn:
            rows = conn.execute(f"select actual_micros from {TABLE} order by reserved_at").fetchall()
        settled = sorted(a / MICROS for (a,) in rows)
        assert settled == pytest.approx([0.0] * 4 + [price] * N_IMAGES)  # the dead generation's 4 released
        assert SqliteLedger(ledger).unsettled() == []


def test_missing_key_is_found_before_any_request(home: Path, tmp_path: Path) -> None:
    with FakeOpenAI() as server:
        env = {"MOVIEGEN_PROVIDERS": "TextToImageProducer=openai", "OPENAI_BASE_URL": server.base_url}
        assert moviegen(home, env, "new", "examples/civil-war.yaml", "--id", "cw").returncode == 0
        plan = moviegen(home, env, "plan", "cw")
        assert plan.returncode == 0, plan.stderr[-2000:]
        assert "pre-flight: these calls cannot succeed; `generate` refuses until they are fixed:" in plan.stdout
        assert ("  TextToImageProducer (openai:gpt-image-1) [configuration]: TextToImageProducer is routed to "
                "openai:gpt-image-1 but OPENAI_API_KEY is not set\n"
                "      -> set OPENAI_API_KEY, or route TextToImageProducer to 'offline' in MOVIEGEN_PROVIDERS\n") in plan.stdout
        generate = moviegen(home, env, "generate", "cw")
        assert generate.returncode == 5, generate.stdout + generate.stderr[-2000:]
        assert "error: nothing was sent; these calls cannot succeed:" in generate.stderr
        assert "TextToImageProducer (openai:gpt-image-1) [configuration]" in generate.stderr
        assert "OPENAI_API_KEY is not set" in generate.stderr
        assert server.requests == []


# One image per failure class; a 500 has a short retry-after so its one retry does not wait long.
FAULTS = {
    "00_0": ("BLOCKED", POLICY, ErrorCategory.content_policy),
    "00_1": ("BADKEY", error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
             ErrorCategory.authentication),
    "01_0": ("NOCREDIT", QUOTA, ErrorCategory.quota),
    "01_1": ("DOWN", error(500, "The server had an error while processing your request.", "server_error",
                           headers={"retry-after-ms": "10"}), ErrorCategory.outage),
}


def test_each_failure_class_has_its_category_and_suggestion(home: Path, tmp_path: Path) -> None:
    with FakeOpenAI() as server:
        env = openai_env(home, server, MOVIEGEN_OPENAI_MAX_ATTEMPTS="2")
        for shot, (_, answer, _) in FAULTS.items():
            server.fail_when(IMAGES, lambda body, shot=shot: f"shot f/{shot}" in body["prompt"], answer)
        request = request_file(tmp_path, "f", {shot: f"{word} scene" for shot, (word, _, _) in FAULTS.items()})
        expected = {f"segment_image[{shot}]": category.value for shot, (_, _, category) in FAULTS.items()}

        # The Python API (placeholders on, the default).
        with Driver(env, tmp_path / "driver.log") as driver:
            driver.ok("new", "f", request=str(request))
            result = driver.ok("generate", "f")
        assert {node: e["category"] for node, e in result["errors"].items()} == expected
        suggestions = {node: e["suggestion"] for node, e in result["errors"].items()}
        for node, words in {"00_0": "edit the prompt", "00_1": "OPENAI_API_KEY", "01_0": "credit",
                            "01_1": "retry later"}.items():
            assert words in suggestions[f"segment_image[{node}]"], suggestions
        assert sorted(result["fallbacks"]) == sorted(expected)
        assert result["provider_calls"]["TextToImageProducer"] == 2  # the two images without a fault
        sent = Counter(shots(server))
        assert sent == {"00_0": 1, "00_1": 1, "01_0": 1, "01_1": 2, "02_0": 1, "02_1": 1}  # only the outage retried
        assert "rejected by the provider's safety system" in result["errors"]["segment_image[00_0]"]["message"]
        assert "check OPENAI_API_KEY" in result["errors"]["segment_image[00_1]"]["message"]
        assert "quota exhausted" in result["errors"]["segment_image[01_0]"]["message"]
        timeline = read_timeline(result["timeline"])
        assert {e["partition"]: (e["reason"], e["category"]) for e in timeline["errors"]} == {
            f"f|{suffix(node)}": ("placeholder", category) for node, category in expected.items()}
        assert all(e["suggestion"] for e in timeline["errors"])

        # The CLI without placeholders: one FAILED line per partition with its category, then its suggestion.
        cli_env = {k: v for k, v in env.items() if k.startswith(("MOVIEGEN_", "OPENAI_"))}
        proc = moviegen(home, cli_env | {"MOVIEGEN_FALLBACK": "off"}, "generate", "f", "--quiet")
        assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
        lines = proc.stdout.splitlines()
        failed = {m.group(1): (m.group(2), i) for i, line in enumerate(lines)
                  if (m := re.match(r"  FAILED (\S+) \[(\w+)\]: ", line))}
        assert {node: category for node, (category, _) in failed.items()} == expected, proc.stdout
        assert all(lines[i + 1].startswith("      -> ") for _, i in failed.values())
        with_suggestion = {node: lines[i + 1].removeprefix("      -> ") for node, (_, i) in failed.items()}
        cli_timeline = read_timeline(next(line for line in lines if line.startswith("timeline: ")).removeprefix("timeline: "))
        assert {e["partition"]: (e["reason"], e.get("category")) for e in cli_timeline["errors"]} == {
            f"f|{suffix(node)}": ("failed", category) for node, category in expected.items()}
        assert {f"segment_image[{e['partition'].split('|')[1]}]": e["suggestion"] for e in cli_timeline["errors"]} == suggestions

        # --json: category, suggestion and placeholder per failed entry (placeholders on again).
        proc = moviegen(home, cli_env, "generate", "f", "--json", "--quiet")
        assert proc.returncode == 1, proc.stderr[-2000:]
        out = json.loads(proc.stdout)
        assert {f["node"]: f["category"] for f in out["failed"]} == expected
        for f in out["failed"]:
            assert f["suggestion"] == suggestions[f["node"]] and f["placeholder"] is True, f
        assert out["provider_calls"] == {}  # only the four faults were tried again, and failed again
        assert Counter(shots(server)) == {"00_0": 3, "00_1": 3, "01_0": 3, "01_1": 6, "02_0": 1, "02_1": 1}

        # Metrics count the calls that failed for good, and their retries: 4 per generate, the outage retried once.
        metrics = json.loads(moviegen(home, cli_env, "status", "f", "--json").stdout)["metrics"]["producers"]["TextToImageProducer"]
        assert metrics["failed_calls"] == 12 and metrics["retries"] == 3 and metrics["calls"] == 2, metrics
        scrape = moviegen(home, cli_env, "metrics", "f").stdout
        assert 'moviegen_failed_calls_total{movie="f",producer="TextToImageProducer",provider="openai"} 12.0' in scrape, scrape

        # Each suggestion as printed, with the movie's id in place of the word ID (and only there: the quota
        # suggestion names MOVIEGEN_PROVIDERS).
        assert with_suggestion == {node: re.sub(r"\bID\b", "f", s) for node, s in suggestions.items()}
