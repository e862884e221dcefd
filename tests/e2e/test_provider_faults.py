"""What real providers do, survived: 429 storms across two movies at once within the in-flight
limit, content-policy rejections and errors that fail one partition and keep every other."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import BIN, GENERATE, REPO, generate_at_once
from tests.servers.openai_server import POLICY, RATE_LIMITED, SERVER_ERROR, FakeOpenAI
from tests.servers.processes import clean_env
from tests.servers.replicate_server import FakeReplicate


def env_for(home: Path, server: FakeOpenAI, routes: str, attempts: int = 6) -> dict[str, str]:
    return {**clean_env(), "DAGSTER_HOME": str(home), "MOVIEGEN_PROVIDERS": routes, "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": server.base_url, "MOVIEGEN_OPENAI_MAX_IN_FLIGHT": "2",
            "MOVIEGEN_OPENAI_MAX_ATTEMPTS": str(attempts)}


def register_two_movies(env: dict[str, str]) -> None:
    for movie in ("one", "two"):
        subprocess.run([str(BIN / "moviegen"), "new", "examples/civil-war.yaml", "--id", movie], cwd=REPO, env=env, check=True,
                       capture_output=True)


def generate_two_movies_at_once(env: dict[str, str]) -> list[dict]:
    """`generate` of movies "one" and "two" in two processes at the same time; both must succeed."""
    return generate_at_once([("one", env), ("two", env)])


def test_429_storm_two_movies_share_the_in_flight_limit(home: Path) -> None:
    with FakeOpenAI() as server:
        # More attempts than the storm has 429s: however the two processes' calls interleave (one call may meet
        # every 429 in a row while the other process is busy elsewhere), no call runs out of retries.
        env = env_for(home, server, "TextToImageProducer=openai", attempts=10)
        register_two_movies(env)
        server.delay_s = 0.2
        server.fail_next("/v1/images/generations", *[RATE_LIMITED] * 8)
        results = generate_two_movies_at_once(env)
        assert [r["provider_calls"]["TextToImageProducer"] for r in results] == [6, 6]
        assert len(server.calls("/v1/images/generations")) == 12 + 8  # every 429 retried, nothing else
        assert server.max_in_flight <= 2  # the limit held across both processes
        assert server.max_in_flight == 2


def test_policy_rejection_and_outage_fail_one_partition_only(home: Path) -> None:
    with FakeOpenAI() as server:
        env = env_for(home, server, "TextToImageProducer=openai,AudioProducer=openai")
        request = home / "req.yaml"
        request.write_text((REPO / "examples/civil-war.yaml").read_text()
                           + "  0:\n    image_prompts:\n      1: FORBIDDEN scene\n")
        subprocess.run([str(BIN / "moviegen"), "new", str(request), "--id", "m"], cwd=REPO, env=env, check=True, capture_output=True)
        server.fail_when("/v1/images/generations", lambda b: "FORBIDDEN" in b["prompt"], POLICY)
        server.fail_when("/v1/audio/speech", lambda b: b["input"].startswith("So that was"), SERVER_ERROR)
        proc = subprocess.run([str(BIN / "python"), "-c", GENERATE, "m"], cwd=REPO, env=env, capture_output=True, text=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        failed = {f["node"]: f["error"] for f in result["failed"]}
        assert set(failed) == {"segment_image[00_1]", "segment_audio[02]"}
        assert "rejected by the provider's safety system: edit the prompt" in failed["segment_image[00_1]"]
        assert "after 5 retries" in failed["segment_audio[02]"]
        forbidden = [c for c in server.calls("/v1/images/generations") if "FORBIDDEN" in c.body["prompt"]]
        assert len(forbidden) == 1  # a policy rejection is never retried
        assert result["provider_calls"]["TextToImageProducer"] == 5 and result["timeline"]
        timeline = json.loads(Path(result["timeline"].removeprefix("file://")).read_text())
        assert {e["partition"] for e in timeline["errors"]} == {"m|00_1", "m|02"}
        # Fix the prompt, the outage ends: the next generate calls only what failed.
        server.rules.clear()
        subprocess.run([str(BIN / "moviegen"), "edit", "m", "--set", "segments.0.image_prompts.1=a calm scene"], cwd=REPO,
                       env=env, check=True, capture_output=True)
        retry = json.loads(subprocess.run([str(BIN / "python"), "-c", GENERATE, "m"], cwd=REPO, env=env, capture_output=True,
                                          text=True).stdout.strip().splitlines()[-1])
        assert retry["failed"] == [] and retry["provider_calls"] == {"AudioProducer": 1, "TextToImageProducer": 1}


def test_replicate_create_storm_two_movies_share_the_in_flight_limit(home: Path) -> None:
    """Replicate's SDK never retries a create: moviegen does, within the shared limits."""
    throttled = {"status": 429, "title": "Too Many Requests", "detail": "Request was throttled. Your rate limit resets in ~0s."}
    with FakeReplicate(polls_to_finish=1) as server:
        env = {**clean_env(), "DAGSTER_HOME": str(home), "MOVIEGEN_PROVIDERS": "TextToImageProducer=replicate",
               "REPLICATE_API_TOKEN": "r8_test", "REPLICATE_BASE_URL": server.base_url,
               "MOVIEGEN_REPLICATE_MAX_IN_FLIGHT": "2",
               "MOVIEGEN_REPLICATE_MAX_ATTEMPTS": "10"}  # more than the storm's 8 throttles (see env_for)
        register_two_movies(env)
        server.create_delay_s = 0.2
        server.create_script.extend([throttled] * 8)
        results = generate_two_movies_at_once(env)
        assert [r["provider_calls"]["TextToImageProducer"] for r in results] == [6, 6]
        assert len(server.creates()) == 12 + 8
        assert server.max_in_flight_creates == 2  # never more than the limit, across both processes
