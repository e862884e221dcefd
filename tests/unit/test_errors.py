"""Every failure carries a category and one suggestion: ProviderError, the providers' SDK errors
mapped by their clients, and any other exception (categorize / describe_failure)."""

from __future__ import annotations

import asyncio
import errno
import re
import subprocess
from pathlib import Path

import httpx
import openai
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from replicate.exceptions import ReplicateError

from resources.providers.base import (
    SUGGESTIONS,
    UNEXPECTED,
    ErrorCategory,
    MalformedAnswer,
    ProviderError,
    Script,
    categorize,
    describe_failure,
)
from resources.providers.offline.media import OfflineImages, OfflineLLM, PiperSpeech
from resources.providers.openai.client import OpenAIImages, OpenAISession, map_error
from resources.providers.replicate.client import ReplicateSession, _map_error
from resources.providers.voices import kokoro_voice, openai_voice
from resources.runtime.disk import mount_point, ran_out_of_space, size_text

C = ErrorCategory
URL = "https://api.openai.com/v1/chat/completions"


def openai_status(cls: type[openai.APIStatusError], status: int, message: str, code: str | None = None,
                  headers: dict[str, str] | None = None) -> openai.APIStatusError:
    """A real SDK error, as the SDK makes it from an HTTP answer."""
    body = {"message": message, "type": "invalid_request_error", "code": code}
    response = httpx.Response(status, headers=headers, json={"error": body}, request=httpx.Request("POST", URL))
    return cls(message, response=response, body=body)


def category(e: BaseException) -> ErrorCategory:
    return categorize(e)[0]


# -- the categories and their suggestions ---------------------------------------------------------

def test_every_category_has_one_suggestion():
    assert set(SUGGESTIONS) == set(ErrorCategory)
    for c, text in SUGGESTIONS.items():
        assert isinstance(text, str) and text.strip() and "\n" not in text, c
    assert "moviegen edit ID --set" in SUGGESTIONS[C.content_policy]
    assert "moviegen generate ID" in SUGGESTIONS[C.outage] == SUGGESTIONS[C.rate_limit]
    assert "MOVIEGEN_PROVIDERS" in SUGGESTIONS[C.quota]
    assert "--allow-over-budget" in SUGGESTIONS[C.budget]


@pytest.mark.parametrize("c", list(ErrorCategory))
def test_default_retryable_and_suggestion_follow_the_category(c: ErrorCategory):
    e = ProviderError("it failed", provider="p", category=c)
    assert e.retryable == (c in (C.rate_limit, C.outage))
    assert e.category is c and e.suggestion == SUGGESTIONS[c]
    assert categorize(e) == (c, SUGGESTIONS[c])
    assert str(e) == "it failed"


def test_provider_error_defaults_and_overrides():
    e = ProviderError("boom", provider="p")
    assert (e.category, e.retryable, e.provider, str(e)) == (C.outage, True, "p", "boom")
    e = ProviderError("boom", provider="p", category=C.bad_input, retryable=True, suggestion="do this")
    assert (e.category, e.retryable, e.suggestion) == (C.bad_input, True, "do this")
    assert ProviderError("boom", provider="p", category=C.outage, retryable=False).retryable is False
    assert ProviderError("boom", provider="p", category="quota").category is C.quota  # type: ignore[arg-type]


def test_describe_failure():
    e = ProviderError("OpenAI billing", provider="openai", category=C.quota)
    assert describe_failure(e) == {"message": "OpenAI billing", "category": "quota", "suggestion": SUGGESTIONS[C.quota]}
    assert describe_failure(ValueError("bad value")) == {
        "message": "ValueError: bad value", "category": "local", "suggestion": UNEXPECTED}
    # One line: what follows (a tool's last messages) is a detail for --verbose.
    assert describe_failure(RuntimeError("ffmpeg encode x: exited with 1 (Encoder not found)\n[out#0] Encoder not found"))[
        "message"] == "RuntimeError: ffmpeg encode x: exited with 1 (Encoder not found)"


def test_a_malformed_answer_is_an_outage_of_the_provider():
    e = MalformedAnswer("OpenAI answered with an image that cannot be read (truncated PNG)", provider="openai")
    assert isinstance(e, ProviderError) and (e.category, e.retryable, e.provider) == (C.outage, True, "openai")
    assert categorize(e) == (C.outage, SUGGESTIONS[C.outage])


# -- OpenAI: real SDK errors through the client's map_error -----------------------------------------

@pytest.mark.parametrize(("error", "expected", "retryable"), [
    (openai_status(openai.RateLimitError, 429, "You exceeded your current quota", "insufficient_quota"), C.quota, False),
    (openai_status(openai.RateLimitError, 429, "Rate limit reached for requests", "rate_limit_exceeded"), C.rate_limit, True),
    (openai_status(openai.BadRequestError, 400, "Your request was rejected by our safety system", "moderation_blocked"),
     C.content_policy, False),
    (openai_status(openai.BadRequestError, 400, "Blocked", "content_policy_violation"), C.content_policy, False),
    (openai_status(openai.AuthenticationError, 401, "Incorrect API key provided", "invalid_api_key"), C.authentication, False),
    (openai_status(openai.PermissionDeniedError, 403, "The key has no access to this project"), C.authentication, False),
    (openai_status(openai.BadRequestError, 400, "Invalid value for 'quality'", "invalid_value"), C.bad_input, False),
    (openai_status(openai.UnprocessableEntityError, 422, "Unprocessable"), C.bad_input, False),
    (openai_status(openai.NotFoundError, 404, "Unknown endpoint"), C.bad_input, False),
    (openai_status(openai.NotFoundError, 404, "The model `gpt-9` does not exist or you do not have access to it.",
                   "model_not_found"), C.configuration, False),
    (openai_status(openai.InternalServerError, 500, "The server had an error"), C.outage, True),
    (openai_status(openai.InternalServerError, 503, "Service unavailable"), C.outage, True),
    (openai_status(openai.ConflictError, 409, "Conflict"), C.outage, True),
    (openai.APITimeoutError(request=httpx.Request("POST", URL)), C.outage, True),
    (openai.APIConnectionError(request=httpx.Request("POST", URL)), C.outage, True),
])
def test_openai_errors(error: openai.OpenAIError, expected: ErrorCategory, retryable: bool):
    mapped = map_error(error, retries=2)
    assert isinstance(mapped, ProviderError) and mapped.provider == "openai"
    assert (mapped.category, mapped.retryable) == (expected, retryable)
    assert categorize(mapped)[0] is expected and categorize(mapped)[1]


def test_openai_preflight_refusals_are_configuration():
    with pytest.raises(ProviderError) as e:
        OpenAISession(api_key="")
    assert (e.value.category, e.value.retryable) == (C.configuration, False)
    assert "OPENAI_API_KEY" in e.value.suggestion
    session = OpenAISession(api_key="sk-test")
    with pytest.raises(ProviderError) as e:
        OpenAIImages(session, "dall-e-2").preflight(1920, 1080)
    assert (e.value.category, e.value.retryable) == (C.configuration, False)
    with pytest.raises(ProviderError) as e:
        OpenAIImages(session, "no-such-image-model")
    assert e.value.category is C.configuration
    with pytest.raises(ProviderError) as e:
        OpenAIImages(session, "gpt-image-1", {"size": "1024x1024"})  # a ModelParams clash
    assert (e.value.category, e.value.retryable) == (C.configuration, False)


# -- Replicate: real SDK errors through the client's error mapping ----------------------------------

@pytest.mark.parametrize(("status", "expected", "retryable"), [
    (401, C.authentication, False),
    (403, C.authentication, False),
    (402, C.quota, False),
    (429, C.rate_limit, True),
    (400, C.bad_input, False),
    (422, C.bad_input, False),
    (500, C.outage, True),
    (503, C.outage, True),
    (None, C.outage, True),
])
def test_replicate_errors(status: int | None, expected: ErrorCategory, retryable: bool):
    error = ReplicateError(title="error", status=status, detail=f"status {status}")
    mapped = _map_error(error, "black-forest-labs/flux-schnell", retries=1)
    assert (mapped.provider, mapped.category, mapped.retryable) == ("replicate", expected, retryable)
    assert categorize(mapped) == (expected, mapped.suggestion)


def test_replicate_missing_token_and_voices_are_configuration():
    with pytest.raises(ProviderError) as e:
        ReplicateSession(api_token="")
    assert (e.value.category, e.value.retryable) == (C.configuration, False)
    assert "REPLICATE_API_TOKEN" in e.value.suggestion
    for call in (lambda: kokoro_voice("kokoro", "narrator", "de"), lambda: kokoro_voice("kokoro", "bob", "en"),
                 lambda: openai_voice("tts-1", "bob", "en")):
        with pytest.raises(ProviderError) as e:
            call()
        assert (e.value.category, e.value.retryable) == (C.configuration, False)


# -- offline providers --------------------------------------------------------------------------------

def test_offline_fault_injection_is_bad_input_and_not_retryable():
    with pytest.raises(ProviderError) as e:
        asyncio.run(OfflineImages(fail_when="FAIL").generate("a FAIL picture", style="s", width=64, height=36, label="x"))
    assert (e.value.category, e.value.retryable) == (C.bad_input, False)
    with pytest.raises(ProviderError) as e:
        asyncio.run(OfflineLLM().generate("no-such-task", "p", Script, {}))
    assert (e.value.category, e.value.retryable) == (C.configuration, False)
    with pytest.raises(ProviderError) as e:
        asyncio.run(PiperSpeech().synthesize("hello", voice_id="narrator", language="xx", emotion=None, max_ms=1000))
    assert (e.value.category, e.value.retryable) == (C.configuration, False)


# -- any other exception ----------------------------------------------------------------------------------

def test_machine_failures_are_local_and_name_the_cause():
    c, s = categorize(OSError(errno.ENOSPC, "No space left on device"))
    assert c is C.local and "disk space" in s
    c, s = categorize(OSError(errno.ENOMEM, "Cannot allocate memory"))
    assert c is C.local and "memory" in s
    c, s = categorize(MemoryError())
    assert c is C.local and "memory" in s
    c, s = categorize(OSError(errno.EMFILE, "Too many open files"))
    assert c is C.local and "open files" in s


def test_a_full_disk_names_the_disk_its_free_space_and_what_was_written(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "artifacts" / "movies" / "m" / "x.png"  # gone (or never made): its disk is its folder's
    mount = mount_point(tmp_path)
    info = describe_failure(OSError(errno.ENOSPC, "No space left on device", str(target)))
    assert info["category"] == "local"
    assert re.fullmatch(rf"disk full: \d+(\.\d)? [KMGT]?B free on {re.escape(str(mount))} \(writing {re.escape(str(target))}\)",
                        info["message"]), info["message"]
    assert info["suggestion"] == (f"free disk space on {mount} (or point MOVIEGEN_SCRATCH_DIR or MOVIEGEN_STORAGE at a disk "
                                  "with room) and generate again: `moviegen generate ID` rebuilds only what failed")
    monkeypatch.setenv("MOVIEGEN_SCRATCH_DIR", str(tmp_path / "scratch"))
    in_scratch = describe_failure(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "scratch" / "mg-1.ab" / "o.mp4")))
    assert in_scratch["message"].endswith(f"(in the scratch folder {tmp_path / 'scratch'} (MOVIEGEN_SCRATCH_DIR))")
    quota = describe_failure(OSError(errno.EDQUOT, "Disk quota exceeded", str(target)))
    assert quota["message"].startswith("disk quota exceeded: ") and "(or raise your quota there)" in quota["suggestion"]
    unnamed = describe_failure(OSError(errno.ENOSPC, "No space left on device"))  # a write's error names no file
    assert unnamed["message"] == "disk full" and "this machine (the artifact and scratch folders)" in unnamed["suggestion"]


def test_a_tool_that_ran_out_of_space():
    assert ran_out_of_space(228, "")  # ffmpeg's -ENOSPC
    assert ran_out_of_space(1, "[out#0/mp4 @ 0x55] Error writing trailer: No space left on device")
    assert ran_out_of_space(1, "Error: ENOSPC: no space left on device, write '/tmp/x'")  # Node (Remotion)
    assert not ran_out_of_space(183, "Invalid data found when processing input") and not ran_out_of_space(1, "")
    assert [size_text(n) for n in (0, 1023, 32 * 1024, 1536 * 1024, 10**9, 3 * 10**12)] == [
        "0 B", "1023 B", "32 KB", "1.5 MB", "954 MB", "2.7 TB"]


def test_tool_failures_are_local():
    c, s = categorize(subprocess.CalledProcessError(1, ["/opt/bin/ffmpeg", "-i", "in.mp4"]))
    assert c is C.local and "ffmpeg" in s and "/opt/bin" not in s
    c, s = categorize(subprocess.TimeoutExpired("ffprobe -v error", 30))
    assert c is C.local and "ffprobe" in s
    try:
        subprocess.run(["moviegen-no-such-tool"], check=True)
    except FileNotFoundError as e:
        c, s = categorize(e)
    assert c is C.local and "moviegen-no-such-tool" in s


def test_storage_failures():
    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject")
    assert categorize(error) == (C.storage, SUGGESTIONS[C.storage])
    assert category(EndpointConnectionError(endpoint_url="http://localhost:1")) is C.storage
    assert describe_failure(error)["message"].startswith("ClientError: An error occurred (AccessDenied)")


def test_unmapped_transport_errors_are_outages():
    assert category(httpx.ConnectError("connection refused")) is C.outage


def test_anything_else_is_an_unexpected_local_error():
    assert categorize(ValueError("bad")) == (C.local, UNEXPECTED)
    assert categorize(KeyError("x")) == (C.local, UNEXPECTED)
    assert categorize(PermissionError(errno.EACCES, "denied")) == (C.local, UNEXPECTED)
