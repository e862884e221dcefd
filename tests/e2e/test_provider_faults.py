"""What real providers do, survived: 429 storms across two movies at once within the in-flight
limit, content-policy rejections and errors that fail one partition and keep every other, malformed
answers and an unreachable provider (an outage of the provider's, one line each, no traceback)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.conftest import BIN, GENERATE, REPO, generate_at_once
from tests.servers import openai_server, replicate_server
from tests.servers.openai_server import POLICY, RATE_LIMITED, SERVER_ERROR, FakeOpenAI
from tests.servers.processes import clean_env
from tests.servers.replicate_server import FakeReplicate, closed_port


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
        # The narration again, and its timing (routed with the speech: a transcription of the new audio).
        assert retry["failed"] == [] and retry["provider_calls"] == {"AudioProducer": 1, "NarrationTimingProducer": 1,
                                                                     "TextToImageProducer": 1}


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


def generate(env: dict[str, str], movie: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "moviegen"), "generate", movie, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def failure_lines(proc: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str, str]]:
    """node -> (FAILED or PLACEHOLDER, category, message) of each failure line a generate printed; none of
    them with a traceback or blamed on this machine, and each followed by its suggestion."""
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and "report the traceback" not in text and "[local]" not in text, text[-4000:]
    lines = proc.stdout.splitlines()
    found = {m[2]: (m[1], m[3], m[4], i) for i, line in enumerate(lines)
             if (m := re.fullmatch(r"  (FAILED|PLACEHOLDER) (\S+) \[(\w+)\]: (.+)", line))}
    assert all(lines[i + 1].startswith("      -> ") for *_, i in found.values()), proc.stdout
    return {node: (how, category, message) for node, (how, category, message, _) in found.items()}


RETRY = "      -> retry later: `moviegen generate m` rebuilds only what failed"
PLACEHOLDER = "; an offline placeholder takes its place until it is rebuilt"


def test_malformed_openai_answers_are_openai_outages_and_the_next_generate_rebuilds_them(home: Path) -> None:
    """The LLM answering invalid JSON, an image cut short, speech that is an HTML page: one line each,
    [outage] with what was wrong, placeholders where pictures and narration fail; no traceback."""
    with FakeOpenAI() as server:
        env = env_for(home, server, "TextToImagePromptProducer=openai,TextToImageProducer=openai,AudioProducer=openai")
        subprocess.run([str(BIN / "moviegen"), "new", "examples/civil-war.yaml", "--id", "m"], cwd=REPO, env=env, check=True,
                       capture_output=True)
        server.fail_when("/v1/chat/completions", lambda b: "So that was" in json.dumps(b["messages"]), openai_server.INVALID_JSON)
        server.fail_when("/v1/images/generations", lambda b: b["prompt"].startswith("test prompt 1"), openai_server.TRUNCATED)
        server.fail_when("/v1/audio/speech", lambda b: b["input"].startswith("So that was"), openai_server.NOT_MEDIA)
        proc = generate(env, "m")
        assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
        failed = failure_lines(proc)
        bad_json = ("FAILED", "outage", "OpenAI answered with invalid JSON (")
        truncated = ("PLACEHOLDER", "outage", "OpenAI answered with an image that cannot be read (truncated PNG)" + PLACEHOLDER)
        assert {node: (how, category, message[:len(bad_json[2])] if how == "FAILED" and category == "outage" else message)
                for node, (how, category, message) in failed.items() if category != "upstream"} == {
            "image_prompt[02_0]": bad_json, "image_prompt[02_1]": bad_json,
            "segment_image[00_1]": truncated, "segment_image[01_1]": truncated,
            "segment_audio[02]": ("PLACEHOLDER", "outage", "OpenAI answered with audio that cannot be read (not an MP3: text "
                                  "'<html><head><title>502 Bad Gateway</title></head'...)" + PLACEHOLDER)}, proc.stdout
        assert {node for node, (_, category, _) in failed.items() if category == "upstream"} == {
            "segment_image[02_0]", "segment_image[02_1]"}
        assert proc.stdout.count(RETRY) == 5, proc.stdout
        # The answers are whole again: the next generate calls for exactly what failed.
        server.rules.clear()
        retry = json.loads(generate(env, "m", "--json", "--quiet").stdout)
        assert retry["failed"] == [] and retry["provider_calls"] == {"AudioProducer": 1, "NarrationTimingProducer": 1,
                                                                     "TextToImageProducer": 4, "TextToImagePromptProducer": 1}


def test_malformed_replicate_outputs_and_an_unreachable_replicate_are_replicate_outages(home: Path, tmp_path: Path) -> None:
    """Images, video, music and speech on Replicate: unreachable, then outputs that cannot be used (a page,
    a file cut short, a URL that answers 404 or no one answers): one [outage] line each naming the model
    and what was wrong, no traceback; the next generate rebuilds exactly what failed."""
    request = tmp_path / "r.yaml"
    request.write_text("inquiry_prompt: Tell me about the Civil War\nduration_seconds: 30\nvoice_id: narrator\nsize: 480p\n"
                       "aspect_ratio: '16:9'\nimages_per_segment: 1\nsegments:\n  1:\n    use_video: true\n"
                       "  2:\n    narration: So that was the Civil War.\n")
    routes = "TextToImageProducer=replicate,TextToVideoProducer=replicate,MusicProducer=replicate,AudioProducer=replicate"
    with FakeReplicate(polls_to_finish=1) as server:
        env = {**clean_env(), "DAGSTER_HOME": str(home), "MOVIEGEN_PROVIDERS": routes, "REPLICATE_API_TOKEN": "r8_test",
               "REPLICATE_BASE_URL": f"http://127.0.0.1:{closed_port()}", "MOVIEGEN_REPLICATE_MAX_ATTEMPTS": "2"}
        subprocess.run([str(BIN / "moviegen"), "new", str(request), "--id", "m"], cwd=REPO, env=env, check=True, capture_output=True)
        down = generate(env, "m")
        assert down.returncode == 1, down.stdout + down.stderr[-3000:]
        unreachable = f"cannot reach Replicate at {env['REPLICATE_BASE_URL']} after 1 retry: All connection attempts failed"
        assert failure_lines(down) == {node: ("PLACEHOLDER", "outage", unreachable + PLACEHOLDER) for node in (
            "segment_image[00_0]", "text_to_video_clip[01]", "segment_image[02_0]", "music",
            "segment_audio[00]", "segment_audio[01]", "segment_audio[02]",
            "narration_timing[00]", "narration_timing[01]", "narration_timing[02]")}, down.stdout

        env["REPLICATE_BASE_URL"] = server.base_url
        server.malform_when(lambda model, inp: "flux" in model, replicate_server.TRUNCATED)
        server.malform_when(lambda model, inp: "video" in model, replicate_server.URL_404)
        server.malform_when(lambda model, inp: "musicgen" in model, replicate_server.NOT_MEDIA)
        server.malform_when(lambda model, inp: inp.get("text", "").startswith("So that was"), replicate_server.URL_UNREACHABLE)
        proc = generate(env, "m")
        assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
        failed = {node: (how, category, re.sub(r"\bp[0-9a-f]{12}\b", "P", re.sub(r"127\.0\.0\.1:\d+", "HOST", message)))
                  for node, (how, category, message) in failure_lines(proc).items()}
        flux = ("PLACEHOLDER", "outage", "Replicate's black-forest-labs/flux-schnell prediction P answered with an image that "
                                         "cannot be read (truncated PNG)" + PLACEHOLDER)
        assert failed == {
            "segment_image[00_0]": flux, "segment_image[02_0]": flux,
            "text_to_video_clip[01]": ("PLACEHOLDER", "outage", "Replicate's minimax/video-01 prediction P answered with an "
                                       "output URL that cannot be downloaded: http://HOST/files/P (404 Not Found)" + PLACEHOLDER),
            "music": ("PLACEHOLDER", "outage", "Replicate's meta/musicgen prediction P answered with audio that cannot be read "
                      "(not an audio file: text '<html><head><title>Not Found</title></head><body'...)" + PLACEHOLDER),
            "segment_audio[02]": ("PLACEHOLDER", "outage", "cannot download the output of Replicate's jaaari/kokoro-82m "
                                  "prediction P from http://HOST/files/P: All connection attempts failed" + PLACEHOLDER),
        }, proc.stdout
        server.malform_rules.clear()
        retry = json.loads(generate(env, "m", "--json", "--quiet").stdout)
        assert retry["failed"] == [] and retry["provider_calls"] == {"AudioProducer": 1, "MusicProducer": 1,
                                                                     "NarrationTimingProducer": 1,
                                                                     "TextToImageProducer": 2, "TextToVideoProducer": 1}
