"""Producers routed to OpenAI (MOVIEGEN_PROVIDERS) generate a whole movie through the real SDK
against a local OpenAI-protocol server; the recorded calls match the plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resources.settings import Route, RoutingError, parse_params, parse_routes
from tests.conftest import REPO, moviegen
from tests.servers.openai_server import FakeOpenAI
from tests.servers.replicate_server import FakeReplicate


def test_parse_routes() -> None:
    routes = parse_routes("*=openai,TextToImageProducer=openai:dall-e-3")
    assert routes["ScriptProducer"] == Route("openai", "gpt-4o-mini")
    assert routes["NarrationTimingProducer"] == Route("openai", "whisper-1")  # follows the speech
    assert parse_routes("")["NarrationTimingProducer"] == Route("offline", "speech-alignment")  # Piper's own: no call
    assert parse_routes("AudioProducer=replicate")["NarrationTimingProducer"] == Route("replicate", "vaibhavs10/incredibly-fast-whisper")
    assert parse_routes("*=openai,AudioProducer=offline")["NarrationTimingProducer"].provider == "offline"
    named = parse_routes("AudioProducer=replicate,NarrationTimingProducer=openai")  # named on its own: as named
    assert named["NarrationTimingProducer"] == Route("openai", "whisper-1")
    assert routes["AudioProducer"] == Route("openai", "gpt-4o-mini-tts")
    assert routes["TextToImageProducer"] == Route("openai", "dall-e-3")
    assert routes["MusicProducer"].provider == "offline"  # OpenAI makes no music
    for bad, message in [("Nope=openai", "unknown producer 'Nope'"), ("ScriptProducer=acme", "unknown provider 'acme'"),
                         ("MusicProducer=openai", "openai has no music models"), ("ScriptProducer", "expected PRODUCER=PROVIDER")]:
        with pytest.raises(RoutingError, match=message):
            parse_routes(bad)


def test_parse_model_params() -> None:
    routes = parse_routes("TextToImageProducer=openai")
    assert parse_params('{"TextToImageProducer": {"quality": "high"}}', routes) == {"TextToImageProducer": {"quality": "high"}}
    for bad, message in [("{", "is not JSON"), ("[]", "expected a JSON object"),
                         ('{"Nope": {}}', "unknown producer 'Nope'"),
                         ('{"TextToImageProducer": 3}', "TextToImageProducer: expected an object"),
                         ('{"ScriptProducer": {"temperature": 0}}', "ScriptProducer runs offline")]:
        with pytest.raises(RoutingError, match=message):
            parse_params(bad, routes)


def costs_of(plan: dict) -> dict[str, float]:
    return {i["node"]: i["cost_usd"] for i in plan["items"]}


def test_movie_through_openai(home: Path) -> None:
    with FakeOpenAI() as server:
        env = {"MOVIEGEN_PROVIDERS": "*=openai", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": server.base_url}
        assert moviegen(home, env, "new", "examples/civil-war.yaml", "--id", "cw").returncode == 0
        plan = json.loads(moviegen(home, env, "plan", "cw", "--json").stdout)
        proc = moviegen(home, env, "generate", "cw", "--json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = json.loads(proc.stdout)
        assert out["provider_calls"] == plan["provider_calls"]
        chat = server.calls("/v1/chat/completions")
        assert len(chat) == 1 + 1 + 1 + 1 + 3  # research, script, look, music prompt, one image-prompt call per segment
        # The research's facts reach the script's prompt, and its names the look's.
        research, script, look = (next(c for c in chat if c.body["response_format"]["json_schema"]["name"] == name)
                                  for name in ("Research", "Script", "Look"))
        assert "Research the question 'Tell me about the Civil War'" in research.body["messages"][-1]["content"]
        assert "1. The test war began in 1861.\n" in script.body["messages"][-1]["content"]
        assert "Names: Test Lincoln (test president)" in look.body["messages"][-1]["content"]
        assert len(server.calls("/v1/images/generations")) == 6 and len(server.calls("/v1/audio/speech")) == 3
        assert len(server.calls("/v1/audio/transcriptions")) == 3  # the captions' timings follow the speech
        assert {c.body["voice"] for c in server.calls("/v1/audio/speech")} == {"nova"}
        assert out["cost_usd"] > 0 and out["failed"] == []
        # Plan: 6 LLM calls (~900 tokens each) and the research (~2 700 tokens), 6 landscape images at $0.063
        # (1536x1024, medium), 3 narrations and their 3 transcriptions (10 s at $0.006 a minute); music and video offline.
        assert plan["estimated_cost_usd"] == pytest.approx(6 * (600 * 0.15e-6 + 300 * 0.60e-6) + (1800 * 0.15e-6 + 900 * 0.60e-6)
                                                           + 6 * 0.063 + 3 * 0.15 * 0.012 + 3 * 10 / 60 * 0.006)
        assert costs_of(plan)["research"] == pytest.approx(1800 * 0.15e-6 + 900 * 0.60e-6, abs=1e-6)
        # Each partition's share: an image's own call, a segment's image prompts splitting their one call.
        costs = {i["node"]: i["cost_usd"] for i in plan["items"]}
        assert sum(costs.values()) == pytest.approx(plan["estimated_cost_usd"], abs=1e-5)
        assert costs["segment_image[00_0]"] == pytest.approx(0.063) and costs["segment_narration[00]"] == 0
        assert costs["image_prompt[00_0]"] > 0 and costs["image_prompt[00_0]"] == pytest.approx(costs["image_prompt[00_1]"])
        status = json.loads(moviegen(home, env, "status", "cw", "--json").stdout)
        assert status["cost_usd"] == out["cost_usd"] and status["revisions"] == 1
        history = json.loads(moviegen(home, env, "history", "cw", "--json").stdout)
        assert history[0]["cost_usd"] == out["cost_usd"]
        timeline = json.loads(moviegen(home, env, "timeline", "cw", "--print").stdout)
        assert timeline["title"] == "A Test Movie" and timeline["errors"] == []
        # The same request back on the offline providers: the routed producers' code versions differ,
        # so exactly what OpenAI made is stale.
        offline = json.loads(moviegen(home, {}, "plan", "cw", "--json").stdout)
        stale = {i["node"] for i in offline["items"] if i["reason"] == "stale"}
        assert "script" in stale and "segment_image[00_0]" in stale and "music" not in stale
        # A model parameter is part of its producer's code version: exactly the images are stale.
        tuned = {**env, "MOVIEGEN_MODEL_PARAMS": '{"TextToImageProducer": {"quality": "high"}}'}
        plan = json.loads(moviegen(home, tuned, "plan", "cw", "--json").stdout)
        stale = {i["node"] for i in plan["items"] if i["reason"] == "stale"}
        assert stale == {f"segment_image[{s:02d}_{i}]" for s in range(3) for i in range(2)}
        assert plan["provider_calls"] == {"TextToImageProducer": 6}
        assert plan["estimated_cost_usd"] == pytest.approx(6 * 0.25)  # high quality, landscape


def test_missing_key_fails_before_any_call(home: Path) -> None:
    with FakeOpenAI() as server:
        env = {"MOVIEGEN_PROVIDERS": "ScriptProducer=openai", "OPENAI_BASE_URL": server.base_url}
        moviegen(home, env, "new", "examples/civil-war.yaml", "--id", "cw")
        planned = moviegen(home, env, "plan", "cw")  # pre-flight: reported before anything is spent
        assert planned.returncode == 0 and "[configuration]" in planned.stdout
        assert "OPENAI_API_KEY is not set" in planned.stdout and "-> set OPENAI_API_KEY" in planned.stdout
        proc = moviegen(home, env, "generate", "cw")
        assert proc.returncode == 5  # refused before any call, not a run that fails
        assert "nothing was sent" in proc.stderr and "OPENAI_API_KEY is not set" in proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        assert server.requests == []


def test_movie_through_both_providers(home: Path, tmp_path: Path) -> None:
    """Script and prompts on OpenAI; images, video, music and speech on Replicate; one segment of
    each visual mode. The calls each server recorded match the plan."""
    request = tmp_path / "mixed.yaml"
    request.write_text((REPO / "examples/mixed-modes.yaml").read_text().replace("images_per_segment: 3", "images_per_segment: 2")
                       + "voice_id: af_bella\n")
    with FakeOpenAI() as oa, FakeReplicate(polls_to_finish=1) as rp:
        env = {"MOVIEGEN_PROVIDERS": "*=openai,*=replicate", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": oa.base_url,
               "REPLICATE_API_TOKEN": "r8_test", "REPLICATE_BASE_URL": rp.base_url}
        assert moviegen(home, env, "new", str(request), "--id", "mixed").returncode == 0
        plan = json.loads(moviegen(home, env, "plan", "mixed", "--json").stdout)
        proc = moviegen(home, env, "generate", "mixed", "--json")
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout)
        assert out["provider_calls"] == plan["provider_calls"] and out["failed"] == []
        models = [path.split("/")[3] + "/" + path.split("/")[4] for path, _ in rp.creates()]
        assert sorted(models) == sorted(
            ["black-forest-labs/flux-schnell"] * 3  # 2 images of segment 0 + the starting image of segment 2
            + ["minimax/video-01"] * 2 + ["meta/musicgen"] + ["jaaari/kokoro-82m"] * 3
            + ["vaibhavs10/incredibly-fast-whisper"] * 3)  # the captions' timings follow the speech to Replicate
        whisper = [body["input"] for path, body in rp.creates() if "whisper" in path]
        assert {(i["timestamp"], i["task"], i["language"]) for i in whisper} == {("word", "transcribe", "english")}
        assert all(i["audio"].startswith("data:audio/mpeg;base64,") for i in whisper)
        llm = plan["provider_calls"]
        assert len(oa.calls("/v1/chat/completions")) == sum(
            llm.get(p, 0) for p in ("ResearchProducer", "ScriptProducer", "LookProducer", "TextToMusicPromptProducer", "TextToImagePromptProducer",
                                    "TextToVideoPromptProducer", "ImageToVideoPromptProducer"))
        assert oa.calls("/v1/images/generations") == [] and oa.calls("/v1/audio/speech") == []
        timeline = json.loads(moviegen(home, env, "timeline", "mixed", "--print").stdout)
        assert timeline["errors"] == [] and [c["type"] for c in timeline["tracks"][0]["clips"]] == ["image", "image", "video", "video"]
        assert (timeline["width"], timeline["height"]) == (480, 854)
