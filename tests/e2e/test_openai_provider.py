"""The OpenAI providers through the real SDK against a local server speaking OpenAI's protocol."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from movie_assets.builder.recipes import RECIPES
from movie_assets.domain.blueprint import NodeKey
from movie_assets.domain.words import onto_text
from resources.providers.base import SUGGESTIONS, ErrorCategory, ImagePrompts, MalformedAnswer, ProviderError, Script
from resources.providers.offline.media import PiperSpeech
from resources.providers.openai.client import (
    OpenAIImages,
    OpenAILLM,
    OpenAISession,
    OpenAISpeech,
    OpenAITranscription,
)
from resources.runtime.limits import Throttle, parse_model_limits
from resources.runtime.media import mp3_duration_ms, png_size, wav_bytes, wav_to_mp3
from resources.runtime.retry import RetryPolicy, parse_duration, wait_hint
from tests.servers.openai_server import (
    BAD_BASE64,
    INVALID_JSON,
    MISSING_FIELD,
    NOT_MEDIA,
    POLICY,
    QUOTA,
    RATE_LIMITED,
    SERVER_ERROR,
    TRUNCATED,
    FakeOpenAI,
    Malformed,
    Scripted,
    error,
)
from tests.unit.fakes import hand_context, small_request


@pytest.fixture
def server():
    with FakeOpenAI() as s:
        yield s


def session(server: FakeOpenAI, **kw: object) -> OpenAISession:
    return OpenAISession(api_key="sk-test", base_url=server.base_url, **kw)  # type: ignore[arg-type]


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def test_structured_script_through_the_sdk(server: FakeOpenAI) -> None:
    llm = OpenAILLM(session(server))
    result = run(llm.generate("script", "Write ... exactly 4 segments", Script, {}))
    assert isinstance(result.value, Script) and len(result.value.narration) == 4
    body = server.calls("/v1/chat/completions")[0].body
    assert body["model"] == "gpt-4o-mini"
    assert body["response_format"]["type"] == "json_schema" and body["response_format"]["json_schema"]["strict"] is True
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and set(schema["required"]) == {"title", "summary", "narration"}
    call = result.call
    assert call.provider == "openai" and call.request_id.startswith("req_") and call.retries == 0
    assert call.cost_usd == pytest.approx(120 * 0.15e-6 + 80 * 0.60e-6)


def test_rate_limits_are_retried_with_retry_after(server: FakeOpenAI) -> None:
    server.fail_next("/v1/chat/completions", RATE_LIMITED, RATE_LIMITED)
    result = run(OpenAILLM(session(server)).generate("image_prompts", "Write 2 prompts", ImagePrompts, {}))
    assert len(result.value.prompts) == 2 and result.call.retries == 2
    assert len(server.calls("/v1/chat/completions")) == 3


def test_server_errors_are_retried_a_bounded_number_of_times(server: FakeOpenAI) -> None:
    server.fail_next("/v1/chat/completions", *[SERVER_ERROR] * 10)
    policy = RetryPolicy(max_attempts=3, base_s=0.01)
    with pytest.raises(ProviderError, match="after 2 retries") as e:
        run(OpenAILLM(session(server, retry=policy)).generate("script", "exactly 1", Script, {}))
    assert e.value.retryable and len(server.calls("/v1/chat/completions")) == 3


@pytest.mark.parametrize(("answer", "message"), [
    (QUOTA, "quota exhausted"),
    (POLICY, "rejected by the provider's safety system: edit the prompt"),
    (error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"), "check OPENAI_API_KEY"),
])
def test_what_cannot_succeed_is_not_retried(server: FakeOpenAI, answer: Scripted, message: str) -> None:
    server.fail_next("/v1/images/generations", answer)
    with pytest.raises(ProviderError, match=message) as e:
        run(OpenAIImages(session(server)).generate("a cat", style="anime", width=1280, height=720, label="x"))
    assert not e.value.retryable and len(server.calls("/v1/images/generations")) == 1


def test_malformed_llm_output_gets_one_repair_then_a_clear_error(server: FakeOpenAI) -> None:
    answers = iter(['{"title": "T"}', '{"title": "T", "summary": "S", "narration": ["a"]}'])
    server.chat_answer = lambda body: next(answers)
    result = run(OpenAILLM(session(server)).generate("script", "exactly 1", Script, {}))
    assert result.value.narration == ["a"]
    repair = server.calls("/v1/chat/completions")[1].body["messages"]
    assert repair[-2]["role"] == "assistant" and "does not match the schema" in repair[-1]["content"]
    server.chat_answer = lambda body: "not json at all"
    with pytest.raises(ProviderError, match="does not match Script after 2 attempt"):
        run(OpenAILLM(session(server)).generate("script", "exactly 1", Script, {}))


# One call of each producer kind OpenAI serves, by the endpoint it calls.
CALLS = {
    "/v1/chat/completions": lambda s: OpenAILLM(s).generate("script", "exactly 1", Script, {}),
    "/v1/images/generations": lambda s: OpenAIImages(s).generate("a cat", style="anime", width=640, height=360, label="x"),
    "/v1/audio/speech": lambda s: OpenAISpeech(s).synthesize("Hello there.", voice_id="nova", language="en", emotion=None,
                                                             max_ms=10000),
    "/v1/audio/transcriptions": lambda s: OpenAITranscription(s).transcribe(TONE, ext="mp3", language="en", prompt="Hello there."),
}
TONE = wav_to_mp3(wav_bytes(0.2 * np.sin(2 * np.pi * 220 * np.arange(22050) / 22050), 22050))
FRAME_MS = 1000 / 30


@pytest.mark.parametrize(("path", "answer", "message"), [
    ("/v1/chat/completions", INVALID_JSON, "OpenAI answered with invalid JSON ("),
    ("/v1/chat/completions", MISSING_FIELD, "OpenAI answered without a message (no choices)"),
    ("/v1/images/generations", INVALID_JSON, "OpenAI answered with invalid JSON ("),
    ("/v1/images/generations", MISSING_FIELD, "OpenAI answered without an image (no data)"),
    ("/v1/images/generations", NOT_MEDIA, "OpenAI answered with an image that cannot be read (not an image: text '<html>"),
    ("/v1/images/generations", BAD_BASE64, "OpenAI answered with an image that cannot be read (invalid base64: "),
    ("/v1/images/generations", TRUNCATED, "OpenAI answered with an image that cannot be read (truncated PNG)"),
    ("/v1/audio/speech", NOT_MEDIA, "OpenAI answered with audio that cannot be read (not an MP3: text '<html>"),
    ("/v1/audio/speech", TRUNCATED, "OpenAI answered with audio that cannot be read (truncated MP3: "),
    ("/v1/audio/transcriptions", INVALID_JSON, "OpenAI answered with invalid JSON ("),
    ("/v1/audio/transcriptions", MISSING_FIELD, "OpenAI answered with a transcription without word timestamps ("),
], ids=["llm-invalid_json", "llm-missing_field", "images-invalid_json", "images-missing_field", "images-not_media",
        "images-bad_base64", "images-truncated", "speech-not_media", "speech-truncated", "transcription-invalid_json",
        "transcription-missing_field"])
def test_a_malformed_answer_is_the_providers_fault(server: FakeOpenAI, path: str, answer: Malformed, message: str) -> None:
    """A 200 that cannot be used (invalid JSON, a missing field, a picture or a sound that cannot be read) is
    an outage of OpenAI's, saying what was wrong: the next generate tries again (never this machine's fault)."""
    server.fail_next(path, answer)
    with pytest.raises(ProviderError) as e:
        run(CALLS[path](session(server)))
    assert (e.value.category, e.value.retryable, e.value.provider) == (ErrorCategory.outage, True, "openai")
    assert str(e.value).startswith(message) and "\n" not in str(e.value), str(e.value)
    assert e.value.suggestion == SUGGESTIONS[ErrorCategory.outage]
    assert len(server.calls(path)) == 1  # not called again at once
    run(CALLS[path](session(server)))  # the next answer is whole again, and used


def test_images_fit_the_requested_frame_exactly(server: FakeOpenAI) -> None:
    images = OpenAIImages(session(server))
    for (w, h), size in [((1280, 720), "1536x1024"), ((720, 1280), "1024x1536"), ((1080, 1080), "1024x1024")]:
        media = run(images.generate("a harbour", style="watercolor", width=w, height=h, label="x"))
        assert png_size(media.data) == (w, h) and media.extra["provider_size"] == size
        assert server.calls("/v1/images/generations")[-1].body["size"] == size
    # Of the sizes a model makes, the smallest that covers the frame: dall-e-2 makes 256, 512 and 1024 squares.
    squares = OpenAIImages(session(server), model="dall-e-2")
    for side, size in [(480, "512x512"), (720, "1024x1024")]:
        media = run(squares.generate("a harbour", style="watercolor", width=side, height=side, label="x"))
        assert png_size(media.data) == (side, side) and server.calls("/v1/images/generations")[-1].body["size"] == size


def test_reference_pictures_go_to_the_edits_endpoint_where_the_model_takes_them(server: FakeOpenAI) -> None:
    """gpt-image-1 gets a shot's approved reference pictures as ``image[]`` on /v1/images/edits (a new
    picture guided by them); dall-e-3 takes none: a plain generation, and the media says so."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buffer, "PNG")
    reference = buffer.getvalue()
    media = run(OpenAIImages(session(server)).generate("The Witness at dawn", style="cinematic", width=1280, height=720,
                                                       label="x", references=[reference]))
    (edit,) = server.calls("/v1/images/edits")
    assert edit.body["image[]"] == [reference] and edit.body["model"] == "gpt-image-1" and edit.body["size"] == "1536x1024"
    assert edit.body["prompt"].startswith("The Witness at dawn") and media.extra["references"] == 1
    assert server.calls("/v1/images/generations") == [] and png_size(media.data) == (1280, 720)
    plain = run(OpenAIImages(session(server), model="dall-e-3").generate("The Witness", style="cinematic", width=1280,
                                                                         height=720, label="x", references=[reference]))
    assert len(server.calls("/v1/images/generations")) == 1 and plain.extra["references"] == "not taken by dall-e-3"


def test_preflight_refuses_what_a_model_cannot_do(server: FakeOpenAI) -> None:
    with pytest.raises(ProviderError, match="dall-e-2 cannot make landscape images"):
        run(OpenAIImages(session(server), model="dall-e-2").generate("x", style="anime", width=1280, height=720, label="x"))
    speech = OpenAISpeech(session(server))
    with pytest.raises(ProviderError, match="gpt-4o-mini-tts has no voice 'bob' for language 'de'; allowed: narrator, female, male, alloy"):
        run(speech.synthesize("Hallo", voice_id="bob", language="de", emotion=None, max_ms=10000))
    with pytest.raises(ProviderError, match="gpt-image-1: size come.s. from the movie request"):
        OpenAIImages(session(server), params={"size": "256x256", "quality": "x"})
    assert server.requests == []  # nothing reached the provider


def test_speech_and_missing_key(server: FakeOpenAI) -> None:
    media = run(OpenAISpeech(session(server)).synthesize("Hello there, this is the narrator.", voice_id="nova",
                                                         language="en", emotion="calm", max_ms=10000))
    assert media.duration_ms == mp3_duration_ms(media.data) > 1000
    body = server.calls("/v1/audio/speech")[0].body
    assert body["voice"] == "nova" and body["instructions"] == "Speak with a calm tone." and body["response_format"] == "mp3"
    with pytest.raises(ProviderError, match="OPENAI_API_KEY is not set"):
        OpenAISession(api_key="")


def piper_speaks(text: str) -> tuple[bytes, list[dict[str, Any]]]:
    """The offline Piper voice as the server's speaker: its MP3 and its own alignment of every word."""
    media = asyncio.run(PiperSpeech().synthesize(text, voice_id="nova", language="en", emotion=None, max_ms=10000))
    return media.data, media.extra["words"]


def test_transcription_times_the_words_of_real_speech_within_a_frame(server: FakeOpenAI) -> None:
    """whisper-1 through the SDK (verbose_json, word timestamps) on speech Piper spoke and aligned: the
    narration's own words, mapped from what was heard (punctuation gone, a number and a name heard
    differently), are timed within one frame (1/30 s) of Piper's alignment of the same audio."""
    server.speak = piper_speaks
    server.mishear = {"1861": "eighteen sixty one", "lincoln": "linkin"}
    text = "In 1861, President Lincoln called for volunteers; the war had begun."
    speech = run(OpenAISpeech(session(server)).synthesize(text, voice_id="nova", language="en", emotion=None, max_ms=10000))
    piper = server.spoken[next(iter(server.spoken))]
    heard = run(OpenAITranscription(session(server)).transcribe(speech.data, ext="mp3", language="en", prompt=text))
    body = server.calls("/v1/audio/transcriptions")[0].body
    assert body["model"] == "whisper-1" and body["response_format"] == "verbose_json"
    assert body["timestamp_granularities[]"] == "word" and body["language"] == "en" and body["prompt"] == text
    assert body["file"] == [speech.data]  # the very audio the narration is
    assert [h.text for h in heard.words][:5] == ["In", "eighteen", "sixty", "one", "President"]
    assert heard.call.cost_usd == pytest.approx(speech.duration_ms / 60_000 * 0.006, abs=1e-6) and heard.call.cost_usd > 0
    timed = onto_text(text, heard.words, speech.duration_ms)
    assert [w["text"] for w in timed.words] == text.split() == [w["text"] for w in piper]
    assert timed.reheard == 2 and timed.interpolated == 0  # 1861 and Lincoln
    for mine, theirs in zip(timed.words, piper, strict=True):
        assert abs(mine["startMs"] - theirs["startMs"]) <= FRAME_MS and abs(mine["endMs"] - theirs["endMs"]) <= FRAME_MS, (mine, theirs)
    with pytest.raises(ProviderError, match="answers without word timestamps"):
        run(OpenAITranscription(session(server), model="gpt-4o-transcribe").transcribe(speech.data, ext="mp3", language="en", prompt=text))
    assert len(server.calls("/v1/audio/transcriptions")) == 1  # refused before any call


def test_wait_hints_from_headers() -> None:
    assert wait_hint({"retry-after-ms": "250"}) == 0.25
    assert wait_hint({"Retry-After": "3"}) == 3.0
    assert wait_hint({"x-ratelimit-reset-requests": "6m0s"}) == 360.0
    assert wait_hint({"x-ratelimit-reset-tokens": "120ms"}) == pytest.approx(0.12)
    assert parse_duration("1.5s") == 1.5 and parse_duration("nonsense") is None


def test_timeouts_are_retried_then_fail_the_call(server: FakeOpenAI) -> None:
    server.delay_s = 1.0
    slow = session(server, timeout_s=0.2, retry=RetryPolicy(max_attempts=2, base_s=0.01))
    with pytest.raises(ProviderError, match="OpenAI timed out after 1 retry") as e:
        run(OpenAILLM(slow).generate("script", "exactly 1", Script, {}))
    assert e.value.retryable and len(server.calls("/v1/chat/completions")) == 2


def test_portable_voices_and_model_parameters_reach_the_model(server: FakeOpenAI) -> None:
    speech = OpenAISpeech(session(server), params={"speed": 1.1, "instructions": "Speak slowly."})
    media = run(speech.synthesize("Hola a todos.", voice_id="narrator", language="es", emotion="calm", max_ms=10000))
    body = server.calls("/v1/audio/speech")[0].body
    assert body["voice"] == "alloy" == media.extra["voice"]  # the portable narrator on OpenAI
    assert body["speed"] == 1.1 and body["instructions"] == "Speak slowly."  # configured beats the default tone
    run(OpenAIImages(session(server), params={"quality": "high", "background": "opaque"})
        .generate("a map", style="anime", width=640, height=480, label="x"))
    body = server.calls("/v1/images/generations")[0].body
    assert (body["quality"], body["background"], body["size"]) == ("high", "opaque", "1536x1024")
    run(OpenAILLM(session(server), params={"temperature": 0.2}).generate("script", "exactly 1", Script, {}))
    assert server.calls("/v1/chat/completions")[0].body["temperature"] == 0.2


def test_a_model_limit_holds_within_the_provider_limit(server: FakeOpenAI, tmp_path) -> None:  # noqa: ANN001
    """gpt-image-1 at 1 in flight inside OpenAI's 4: images queue for their model while chat calls
    keep using the provider's other slots."""
    server.delay_s = 0.15
    provider = Throttle("openai", 4, 600, state_dir=tmp_path)
    image_limit = Throttle("openai:gpt-image-1", 1, 600, state_dir=tmp_path)
    s = session(server, throttle=provider, model_throttles={"gpt-image-1": image_limit})

    async def both() -> None:
        images = OpenAIImages(s)
        llm = OpenAILLM(s)
        await asyncio.gather(*[images.generate(f"map {i}", style="anime", width=64, height=64, label="x") for i in range(4)],
                             *[llm.generate("script", "exactly 1", Script, {}) for _ in range(6)])

    run(both())
    assert len(server.calls("/v1/images/generations")) == 4 and len(server.calls("/v1/chat/completions")) == 6
    assert server.max_path_in_flight["/v1/images/generations"] == 1
    assert server.max_in_flight == 4  # the chat calls used the rest of the provider's budget


def test_model_limits_parse() -> None:
    assert parse_model_limits("replicate:minimax/video-01=2/30, openai:gpt-image-1=4/50") == {
        "replicate": {"minimax/video-01": (2, 30)}, "openai": {"gpt-image-1": (4, 50)}}
    for bad in ("minimax/video-01=2/30", "replicate:minimax/video-01=2", "acme:x=1/1", "openai:gpt-image-1=0/5"):
        with pytest.raises(ValueError, match="expected PROVIDER:MODEL=IN_FLIGHT/PER_MINUTE"):
            parse_model_limits(bad)


def test_the_research_is_asked_through_the_sdk_and_its_facts_reach_the_script(server: FakeOpenAI) -> None:
    llm = OpenAILLM(session(server))
    request = small_request(duration_seconds=30, sources=["https://example.org/war", "The war ended in 1865."])
    research = run(RECIPES["research"](hand_context(request, clients={"ResearchProducer": llm}), NodeKey("research")))
    asked = server.calls("/v1/chat/completions")[0].body
    assert asked["response_format"]["json_schema"]["name"] == "Research"
    assert set(asked["response_format"]["json_schema"]["schema"]["required"]) == {"summary", "facts", "dates", "names", "references"}
    prompt = asked["messages"][-1]["content"]
    assert "[1] URL (cite it; its page is not attached): https://example.org/war" in prompt
    assert '[2] Text the user pasted:\n"""\nThe war ended in 1865.\n"""' in prompt
    assert research.value["facts"][2] == {"text": "Source 2 says the test war ended in 1865.", "source": 2}
    assert research.value["generic"] is False and research.call.provider == "openai" and research.call.cost_usd > 0
    script = run(RECIPES["script"](hand_context(request, clients={"ScriptProducer": llm}, values={NodeKey("research"): research.value}),
                                   NodeKey("script")))
    told = server.calls("/v1/chat/completions")[1].body["messages"][-1]["content"]
    assert "3. Source 2 says the test war ended in 1865. [source 2]\n" in told and "Names: Test Lincoln (test president)" in told
    assert len(script.value["narration"]) == 3


def test_a_research_citing_a_source_not_given_is_the_providers_outage(server: FakeOpenAI) -> None:
    server.chat_answer = lambda body: {"summary": "s", "facts": [{"text": "A fact.", "source": 3}], "dates": [], "names": [],
                                       "references": []}
    llm = OpenAILLM(session(server))
    with pytest.raises(MalformedAnswer, match=r"openai \(gpt-4o-mini\) answered with a research that cannot be used: "
                                              r"fact 1 cites source 3, but the user gave sources 1 to 1") as e:
        run(RECIPES["research"](hand_context(small_request(sources=["https://example.org/war"]), clients={"ResearchProducer": llm}),
                                NodeKey("research")))
    assert e.value.category is ErrorCategory.outage and e.value.retryable
