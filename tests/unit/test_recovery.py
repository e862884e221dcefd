"""Recovery with reduced settings: which failures are reducible (and why), and the next lower settings."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from replicate.exceptions import ReplicateError

from movie_assets.builder.checks import problem
from movie_assets.builder.code_versions import code_versions
from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.plan import reasons
from movie_assets.domain.recovery import Ask, lower_size, lower_steps, next_lower, steps_of
from movie_assets.domain.request import AspectRatio, Size
from resources.providers.base import ErrorCategory, Limit, ProviderError, limit_in, reducible
from resources.providers.offline.media import OfflineImages, OfflineVideo
from resources.providers.openai.client import OpenAIImages, OpenAILLM, OpenAISession, map_error
from resources.providers.replicate.client import ReplicateImages, ReplicateSession, ReplicateVideo, _map_error
from resources.runtime.media import mp4_info
from resources.runtime.retry import RetryPolicy
from resources.settings import current
from tests.conftest import small_request
from tests.servers.openai_server import FakeOpenAI, Scripted
from tests.servers.replicate_server import FakeReplicate
from tests.unit.fakes import Fakes, blueprint_of, new_store, run_engine
from tests.unit.fakes import small_request as fakes_request
from tests.unit.test_errors import URL, openai_status

# -- the ladder ---------------------------------------------------------------------------------------------


def test_the_size_ladder_goes_down_one_step_and_stops_at_480p():
    assert [lower_size(s) for s in (Size.p2160, Size.p1080, Size.p720, Size.p480)] == [Size.p1080, Size.p720, Size.p480, None]


def test_steps_halve_down_to_one():
    assert [lower_steps(s) for s in (50, 28, 3, 2, 1, None)] == [25, 14, 1, 1, None, None]


@pytest.mark.parametrize(("full", "limit", "lowered", "to"), [
    (Ask(Size.p1080, 28), "size", "size", Ask(Size.p720, 28)),
    (Ask(Size.p720, 28), "memory", "size", Ask(Size.p480, 28)),
    (Ask(Size.p480, 28), "memory", "steps", Ask(Size.p480, 14)),  # the lowest size: fewer steps
    (Ask(Size.p720, None), "timeout", "size", Ask(Size.p480, None)),
    (Ask(Size.p480, 4), "timeout", "steps", Ask(Size.p480, 2)),
    (Ask(Size.p1080, 28), "steps", "steps", Ask(Size.p1080, 14)),  # a steps limit lowers the steps, not the size
    (Ask(Size.p480, None, "gpt-4o", "gpt-4o-mini"), "timeout", "model", Ask(Size.p480, None, "gpt-4o-mini")),
    (Ask(Size.p480, 1, "tts-1-hd", "tts-1"), "memory", "model", Ask(Size.p480, 1, "tts-1")),
])
def test_next_lower_settings(full: Ask, limit: str, lowered: str, to: Ask):
    reduction = next_lower(full, limit, "why")
    assert reduction is not None and (reduction.lowered, reduction.to, reduction.full) == (lowered, to, full)


@pytest.mark.parametrize(("full", "limit"), [
    (Ask(Size.p480, None), "size"),     # nothing lower
    (Ask(Size.p480, None), "memory"),   # the lowest size and no steps
    (Ask(Size.p1080, None), "steps"),   # no steps configured
    (Ask(Size.p480, 1), "timeout"),     # one step is the least
    (Ask(Size.p1080, 28), "duration"),  # a clip's length is no setting here (docs/providers.md)
    (Ask(Size.p1080, 28), "content_policy"),
    (Ask(Size.p480, None, "gpt-4o-mini", ""), "timeout"),  # no lighter model
    (Ask(Size.p480, None, "gpt-4o", "gpt-4o-mini"), "size"),  # a size limit is no model's
])
def test_nothing_lower(full: Ask, limit: str):
    assert next_lower(full, limit) is None


def test_a_lower_size_that_asks_the_provider_the_same_is_skipped():
    """A model that makes one size whatever the frame: a lower frame would only repeat the call."""
    assert next_lower(Ask(Size.p720, None), "memory", same_call=frozenset({"size"})) is None
    reduction = next_lower(Ask(Size.p720, 8), "memory", same_call=frozenset({"size"}))
    assert reduction is not None and reduction.to == Ask(Size.p720, 4)


def test_the_metadata_says_from_to_and_why():
    reduction = next_lower(Ask(Size.p720, None), "size", "too big")
    assert reduction is not None
    assert reduction.metadata(AspectRatio.landscape) == {"degraded": True, "degraded_from": "1280x720",
                                                         "degraded_to": "854x480", "degraded_reason": "too big"}
    steps = next_lower(Ask(Size.p480, 28), "memory", "oom")
    assert steps is not None and steps.metadata(AspectRatio("9:16"))["degraded_from"] == "28 steps"
    assert steps.metadata(AspectRatio("9:16"))["degraded_to"] == "14 steps"


def test_steps_are_read_from_the_model_parameters():
    assert steps_of({"num_inference_steps": 28, "go_fast": True}) == 28
    assert steps_of({"steps": 4}) == 4
    assert steps_of({"go_fast": True}) is None and steps_of({"steps": True}) is None


# -- what is reducible --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "limit"), [
    ("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.77 GiB total capacity)", Limit.memory),
    ("torch.OutOfMemoryError: CUDA out of memory.", Limit.memory),
    ("Invalid value: '1792x1024'. Supported values are: '256x256', '512x512', and '1024x1024'.", Limit.size),
    ("resolution 1080p is not supported by this model", Limit.size),
    ("width must be at most 1440", Limit.size),
    ("duration 10 is not supported; use 5 or 6", Limit.duration),
    ("num_inference_steps must be less than or equal to 4", Limit.steps),
    ("Your request was rejected by our safety system", None),
    ("Invalid value for 'quality'", None),
    ("Internal server error", None),
])
def test_limits_named_in_provider_messages(message: str, limit: Limit | None):
    assert limit_in(message) is limit


def test_openai_size_refusals_and_timeouts_are_reducible():
    refused = map_error(openai_status(openai.BadRequestError, 400, "Invalid value: '1792x1024'. Supported values are: "
                                                                   "'1024x1024'.", "invalid_value"))
    assert refused.category is ErrorCategory.bad_input and reducible(refused) is Limit.size
    timeout = map_error(openai.APITimeoutError(request=httpx.Request("POST", URL)))
    assert timeout.category is ErrorCategory.outage and reducible(timeout) is Limit.timeout
    policy = map_error(openai_status(openai.BadRequestError, 400, "rejected by our safety system", "moderation_blocked"))
    assert reducible(policy) is None
    assert reducible(map_error(openai_status(openai.RateLimitError, 429, "slow down"))) is None


def test_replicate_refusals_of_a_size_are_reducible():
    assert reducible(_map_error(ReplicateError(status=422, detail="resolution: 1080p is not supported"), "m", 0)) is Limit.size
    assert reducible(_map_error(ReplicateError(status=422, detail="prompt is required"), "m", 0)) is None
    assert reducible(_map_error(ReplicateError(status=401, detail="size not supported"), "m", 0)) is None  # a key problem first


class OutOfMemoryError(RuntimeError):
    """As torch names its CUDA out-of-memory error (torch.cuda.OutOfMemoryError)."""


def test_local_model_memory_and_timeouts_are_reducible():
    assert reducible(OutOfMemoryError("CUDA out of memory")) is Limit.memory
    assert reducible(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB")) is Limit.memory
    assert reducible(MemoryError()) is Limit.memory
    assert reducible(TimeoutError()) is Limit.timeout
    assert reducible(httpx.ReadTimeout("read timed out")) is Limit.timeout
    assert reducible(RuntimeError("something else")) is None
    assert reducible(ValueError("CUDA out of memory")) is None  # not a model's error
    assert reducible(ProviderError("no key", provider="openai", category=ErrorCategory.configuration)) is None


def test_the_offline_size_limit_is_a_reducible_memory_failure_and_the_lower_size_is_made():
    images = OfflineImages(max_size="480p")
    with pytest.raises(ProviderError) as refused:
        asyncio.run(images.generate("a lighthouse", style="cinematic", width=1280, height=720, label="x"))
    assert reducible(refused.value) is Limit.memory and "ran out of memory at 1280x720" in str(refused.value)
    made = asyncio.run(images.generate("a lighthouse", style="cinematic", width=854, height=480, label="x"))
    assert (made.width, made.height) == (854, 480)
    with pytest.raises(ProviderError) as clip:
        asyncio.run(OfflineVideo(max_size="480p").text_to_video("a lighthouse", style="cinematic", width=1280, height=720,
                                                                seconds=10, label="x"))
    assert reducible(clip.value) is Limit.memory


def test_what_each_client_asks_its_provider_at_a_frame():
    """Recovery lowers a size only where the provider is then asked less."""
    openai_images = OpenAIImages(OpenAISession(api_key="sk-test", base_url=URL), "dall-e-2")
    assert openai_images.asked_size(480, 480) == "512x512" and openai_images.asked_size(720, 720) == "1024x1024"
    replicate = ReplicateSession(api_token="r8_test", base_url=URL)
    assert ReplicateVideo(replicate, "wan-video/wan-2.2-5b-fast").asked_size(1280, 720) == "720p"
    assert ReplicateVideo(replicate, "wan-video/wan-2.2-5b-fast").asked_size(854, 480) == "480p"
    assert ReplicateVideo(replicate, "minimax/video-01").asked_size(854, 480) == ReplicateVideo(replicate, "minimax/video-01").asked_size(1280, 720)
    flux = ReplicateImages(replicate, "black-forest-labs/flux-schnell")
    assert flux.asked_size(1280, 720) == flux.asked_size(854, 480)  # an aspect ratio: nothing less to ask


def test_a_degraded_picture_is_checked_at_the_size_it_was_made_at():
    request = small_request(size="720p")
    png = asyncio.run(OfflineImages().generate("a lighthouse", style="cinematic", width=854, height=480, label="x")).data
    assert problem("segment_image", png, None, request) == "image is 854x480, expected 1280x720"
    degraded = {"degraded": True, "degraded_from": "1280x720", "degraded_to": "854x480"}
    assert problem("segment_image", png, None, request, None, degraded) is None


# -- the engine: one retry at the next lower settings -------------------------------------------------------


def test_a_script_whose_model_times_out_is_written_once_by_the_lighter_model_and_planned_again(tmp_path: Path):
    """The script is critical: a timeout of its model (the real SDK against the loopback OpenAI server) is tried
    once on the provider's lighter model; the script is marked degraded and the plan asks the model again."""
    bp = blueprint_of(fakes_request())
    with FakeOpenAI() as server:
        server.fail_when("/v1/chat/completions", lambda b: b["model"] == "gpt-4o", Scripted(200, {}, delay_s=5))
        session = OpenAISession(api_key="sk-test", base_url=server.base_url, timeout_s=2.5, retry=RetryPolicy(max_attempts=1))

        class Routed(Fakes):
            def client(self, producer: str) -> Any:
                return OpenAILLM(session, "gpt-4o") if producer == "ScriptProducer" else super().client(producer)

        run = run_engine(new_store(tmp_path), Routed(), bp)
        assert [c.body["model"] for c in server.calls("/v1/chat/completions")] == ["gpt-4o", "gpt-4o-mini"]
    script = run.built[NodeKey("script")]
    assert script.produced.call is not None and script.produced.call.model == "gpt-4o-mini"
    meta = script.record.metadata
    assert (meta["degraded"], meta["degraded_from"], meta["degraded_to"]) == (True, "gpt-4o", "gpt-4o-mini")
    assert meta["degraded_reason"].startswith("OpenAI timed out")
    assert not run.failed and run.summary.degraded == {NodeKey("script"): {"from": "gpt-4o", "to": "gpt-4o-mini",
                                                                          "reason": meta["degraded_reason"]}}
    why = reasons(bp, run.state, code_versions(current()))
    assert why[NodeKey("script")] == ("degraded", f"degraded: retry at full settings (made at gpt-4o-mini, not gpt-4o: "
                                                  f"{meta['degraded_reason']})")
    assert {k for k, (r, _) in why.items() if r != "upstream"} == {NodeKey("script")}


def test_a_clip_whose_model_runs_out_of_gpu_memory_at_720p_is_made_at_480p(tmp_path: Path):
    """Wan2.2 on Replicate (the real SDK against the loopback Replicate server) fails at 720p with CUDA out of
    memory: the clip is asked once more at 480p (Wan's other resolution), conformed to 854x480, marked degraded."""
    bp = blueprint_of(fakes_request(size="720p", segments={"1": {"use_video": True}}))
    clip = NodeKey("text_to_video_clip", 1)
    with FakeReplicate(polls_to_finish=1) as server:
        server.fail_prediction_when(lambda model, inp: inp.get("resolution") == "720p",
                                    "CUDA out of memory. Tried to allocate 4.00 GiB (GPU 0; 22.20 GiB total capacity)")
        session = ReplicateSession(api_token="r8_test", base_url=server.base_url, poll_s=0.01)

        class Routed(Fakes):
            def client(self, producer: str) -> Any:
                if producer == "TextToVideoProducer":
                    return ReplicateVideo(session, "wan-video/wan-2.2-5b-fast")
                return super().client(producer)

        run = run_engine(new_store(tmp_path), Routed(), bp)
        assert [body["input"]["resolution"] for _, body in server.creates()] == ["720p", "480p"]
    assert not run.failed
    meta = run.built[clip].record.metadata
    assert (meta["degraded_from"], meta["degraded_to"]) == ("1280x720", "854x480") and "CUDA out of memory" in meta["degraded_reason"]
    assert mp4_info(run.built[clip].produced.data)[:2] == (854, 480)
    timeline = run.value(NodeKey("timeline"))
    assert [c.get("degraded") for c in timeline["tracks"][0]["clips"] if c["segment"] == 1] == ["1280x720 -> 854x480"]


def test_one_reduced_retry_only_and_its_failure_is_told(tmp_path: Path):
    """A picture that fails at the lower size too is not lowered again: it fails (no placeholder here), its
    message telling both tries; the other pictures are built as usual."""
    request = fakes_request(size="720p", segments={"1": {"image_prompts": {"0": "a LIMITED lighthouse"}}})
    bp = blueprint_of(request)
    tries: list[tuple[int, int]] = []

    class Limited(OfflineImages):
        async def generate(self, prompt: str, *, width: int, height: int, **kw: Any) -> Any:
            if "LIMITED" in prompt:
                tries.append((width, height))
                self.max_size = "360p"  # this shot needs more memory than the model has at any size it is asked
            else:
                self.max_size = ""
            return await super().generate(prompt, width=width, height=height, **kw)

    class Routed(Fakes):
        def client(self, producer: str) -> Any:
            return Limited() if producer == "TextToImageProducer" else super().client(producer)

    run = run_engine(new_store(tmp_path), Routed(), bp)
    failed = NodeKey("segment_image", 1, 0)
    assert tries == [(1280, 720), (854, 480)]  # once at full size, once lower, no more
    assert set(run.failed) >= {failed} and failed not in run.built
    assert run.failed[failed].message == ("Limited ran out of memory at 1280x720 (max_size='360p': the offline model's "
                                          "size limit); tried again at 854x480: Limited ran out of memory at 854x480 "
                                          "(max_size='360p': the offline model's size limit)")
    assert all(k in run.built and "degraded" not in run.built[k].record.metadata
               for k in bp.nodes if k.asset == "segment_image" and k != failed)
