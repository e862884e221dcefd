"""``redact``: configured secrets and anything shaped like one are replaced by ``[redacted]``, other
text is left as it is; and every error text moviegen makes from a provider's answer is redacted."""

from __future__ import annotations

import asyncio
import time
import traceback
from urllib.parse import quote, quote_plus

import dagster as dg
import httpx
import openai
import pytest
from replicate.exceptions import ReplicateError

from movie_assets.movie_files.reports import RunReport, read_run_report, write_run_report
from movie_assets.orchestration.steps import _clean_error
from resources.providers.base import ErrorCategory, ProviderError, describe_failure
from resources.providers.openai.client import OpenAISession, map_error
from resources.providers.replicate.client import ReplicateSession, _map_error
from resources.runtime.secrets import MESSAGE_LIMIT, REDACTED, redact, register_secret
from resources.storage import ArtifactStore

KEY = "sk-proj-Zq7UNITCANARYx9Lw2Pp4Rr6Tt8Vv0Xx"
URL = "https://api.openai.com/v1/images/generations"


@pytest.fixture(autouse=True)
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment without the machine's own keys, so what is redacted is what the test sets."""
    import os

    for name in list(os.environ):
        if name.upper().endswith(("_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD", "_CREDENTIALS", "_URL")):
            monkeypatch.delenv(name)


# -- configured secrets ---------------------------------------------------------------------------

def test_the_values_of_key_and_token_variables_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "plain-looking-openai-key-1")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "plainreplicatetoken")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEJr//////////wEaDOsession")
    monkeypatch.setenv("MY_SERVICE_PASSWORD", "hunter2hunter2")
    monkeypatch.setenv("SOME_CLIENT_SECRET", "clientsecretvalue")
    monkeypatch.setenv("SHORT_TOKEN", "abc1234")  # under 8 characters: an ordinary word could match it
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "publicaccesskeyid")  # names a key, is not one
    text = ("failed with plain-looking-openai-key-1, plainreplicatetoken, wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY, "
            "FwoGZXIvYXdzEJr//////////wEaDOsession, hunter2hunter2 and clientsecretvalue; abc1234 publicaccesskeyid")
    assert redact(text) == f"failed with {REDACTED}, {REDACTED}, {REDACTED}, {REDACTED}, {REDACTED} and {REDACTED}; " \
                           "abc1234 publicaccesskeyid"


def test_the_environment_is_read_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "first-key-value")
    assert redact("first-key-value second-key-value") == f"{REDACTED} second-key-value"
    monkeypatch.setenv("OPENAI_API_KEY", "second-key-value")
    assert redact("first-key-value second-key-value") == f"first-key-value {REDACTED}"


def test_passwords_of_database_urls_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://dagster:pgpassword42@db:5432/dagster")
    monkeypatch.setenv("MOVIEGEN_LIMITS_URL", "postgresql://u:otherpassword@db/limits")
    assert redact("could not connect: password pgpassword42 rejected; otherpassword too") == \
        f"could not connect: password {REDACTED} rejected; {REDACTED} too"
    assert redact("postgresql://dagster:pgpassword42@db:5432/dagster") == f"postgresql://dagster:{REDACTED}@db:5432/dagster"


def test_registered_secrets() -> None:
    register_secret("registered-value-77")
    register_secret("short")  # ignored
    assert redact("the key registered-value-77 is short") == f"the key {REDACTED} is short"


# -- shapes of secrets ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    (f"Incorrect API key provided: Bearer {KEY}.", f"Incorrect API key provided: Bearer {REDACTED}."),
    ("Authorization: Bearer abc.def-ghi_jkl123", f"Authorization: {REDACTED}"),
    ("<td>authorization</td><td>Bearer eyJhbGciOi.J9xyz</td>", f"<td>authorization</td><td>Bearer {REDACTED}</td>"),
    ("Token r8_Gx9AbCdEfGhIjKlMnOpQrStUvWxYz0123456 refused", f"Token {REDACTED} refused"),
    (f"key {KEY}", f"key {REDACTED}"),
    ("key sk-abcdefghijklmnop1234", f"key {REDACTED}"),
    ("key sk-svcacct-abcdefghijklmnop1234", f"key {REDACTED}"),
    ("token r8_Gx9AbCdEfGhIjKlMnOpQrStUvWxYz0123456", f"token {REDACTED}"),
    ("id AKIAIOSFODNN7EXAMPLE", f"id {REDACTED}"),
    ("GET /v1 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dXNlcjpwYXNz\r\nX-Api-Key: k-12345678\r\nCookie: s=1\r\n",
     f"GET /v1 HTTP/1.1\r\nHost: x\r\nAuthorization: {REDACTED}\r\nX-Api-Key: {REDACTED}\r\nCookie: {REDACTED}\r\n"),
    ("Proxy-Authorization: Basic Zm9vOmJhcg==", f"Proxy-Authorization: {REDACTED}"),
    ("Basic Zm9vOmJhcg== was refused", f"Basic {REDACTED} was refused"),
    ("GET https://x.io/v1/a?api_key=abc123&token=zzz&max_tokens=5&access_token=t0k",
     f"GET https://x.io/v1/a?api_key={REDACTED}&token={REDACTED}&max_tokens=5&access_token={REDACTED}"),
    ("https://b.s3.amazonaws.com/k.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20240101%2Fus-east-1"
     "&X-Amz-Date=20240101T000000Z&X-Amz-Signature=0a1b2c3d4e&X-Amz-Security-Token=FwoG",
     f"https://b.s3.amazonaws.com/k.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={REDACTED}"
     f"&X-Amz-Date=20240101T000000Z&X-Amz-Signature={REDACTED}&X-Amz-Security-Token={REDACTED}"),
    ('{"api_key": "abc", "Authorization": "Bearer x", "max_tokens": 10, "token_type": "bearer"}',
     f'{{"api_key": "{REDACTED}", "Authorization": "{REDACTED}", "max_tokens": 10, "token_type": "bearer"}}'),
    ("{'x-api-key': 'k1', 'password': 'p'}", f"{{'x-api-key': '{REDACTED}', 'password': '{REDACTED}'}}"),
    ("redis://:s3cr3tpw@cache:6379/0 and https://user:pa55word@proxy.example/v1",
     f"redis://:{REDACTED}@cache:6379/0 and https://user:{REDACTED}@proxy.example/v1"),
])
def test_shapes_of_secrets(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # redacting again changes nothing


@pytest.mark.parametrize("text", [
    "OpenAI rejected the request: Invalid size '999x999'. Supported sizes are 1024x1024, 1536x1024 and 1024x1536.",
    "OpenAI quota exhausted (insufficient_quota): add credit to the account or route this producer to another provider",
    "rejected by the provider's safety system: edit the prompt (Your request was rejected as a result of our safety system.)",
    "Replicate rate limit after 2 retries: Request was throttled. Expected available in 7 seconds.",
    "upstream segment_image[03_2] failed: OpenAI timed out after 3 retries",
    "budget: the movie's budget of $5.00 is spent ($4.9800); raise it with --budget",
    "Bearer authentication required: the Basic plan allows 5 tokens per second (max_tokens=4096, token budget 10)",
    "the narration of segment 3 asks for a risk-assessment-2024 by a sk-learn model; see https://example.com/docs?page=2",
    "CalledProcessError: Command '['ffmpeg', '-i', 'in.mp4', '-vf', 'scale=640:360']' returned non-zero exit status 1.",
    "postgresql://db:5432/dagster is unreachable; s3://bucket/prefix/movies/cw/runs/abc.json: 403 Forbidden",
    "Müdür: «Ç'est la vie» — 日本語のテキスト",
])
def test_other_text_is_left_as_it_is(text: str) -> None:
    assert redact(text) == text


def test_huge_input_is_bounded_in_time_and_length(monkeypatch: pytest.MonkeyPatch) -> None:
    # Time is this process's CPU time: the work done, which other processes on a loaded machine do not stretch.
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    page = ("<html>" + f"<p>Authorization: Bearer {KEY}</p>" * 200_000 + "</html>")  # ~10 MB echoing the key
    started = time.process_time()
    text = redact(page)
    assert time.process_time() - started < 0.5
    assert KEY not in text and len(text) < MESSAGE_LIMIT + 60 and text.endswith("more characters]")
    cut = "x" * (MESSAGE_LIMIT - 10) + KEY + "y" * 5000  # the key across the cut: never half kept
    assert KEY[:10] not in redact(cut) and redact(cut).startswith("x" * (MESSAGE_LIMIT - 10) + REDACTED[:10])
    assert len(redact("z" * 100_000, None)) == 100_000  # no limit: kept whole
    started = time.process_time()
    for _ in range(1000):
        redact("OpenAI rejected the request: Invalid size '999x999'. Supported sizes are 1024x1024 and 1536x1024.")
    assert time.process_time() - started < 1.0  # well under a millisecond per message


# -- every error text made from a provider's answer -----------------------------------------------

def test_provider_errors_and_descriptions_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "plain-looking-openai-key-1")
    e = ProviderError("OpenAI refused the key (Incorrect API key provided: plain-looking-openai-key-1)", provider="openai",
                      category=ErrorCategory.authentication)
    assert str(e) == f"OpenAI refused the key (Incorrect API key provided: {REDACTED})"
    info = describe_failure(httpx.HTTPStatusError(
        f"Client error '403 Forbidden' for url '{URL}?api_key=abc123'", request=httpx.Request("GET", URL),
        response=httpx.Response(403)))
    assert info["message"] == f"HTTPStatusError: Client error '403 Forbidden' for url '{URL}?api_key={REDACTED}'"
    assert describe_failure(RuntimeError(f"boom {KEY}"))["message"] == f"RuntimeError: boom {REDACTED}"


def test_openai_errors_echoing_the_key_are_mapped_without_it() -> None:
    body = {"message": f"Incorrect API key provided: Bearer {KEY}", "type": "invalid_request_error",
            "code": "invalid_api_key"}
    response = httpx.Response(401, json={"error": body}, request=httpx.Request("POST", URL))
    e = map_error(openai.AuthenticationError(body["message"], response=response, body=body))
    assert e.category is ErrorCategory.authentication and KEY not in str(e) and "Bearer [redacted]" in str(e)

    async def refused(**kwargs: object) -> None:
        raise openai.AuthenticationError(body["message"], response=response, body=body)

    session = OpenAISession(api_key="a-configured-key-1234")
    with pytest.raises(ProviderError) as raised:
        asyncio.run(session.call(refused))
    # Not chained to the SDK's error, whose text is the raw answer: a traceback shows no key.
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert KEY not in "".join(traceback.format_exception(raised.value))
    assert redact("the configured a-configured-key-1234") == f"the configured {REDACTED}"  # registered by the session


def test_replicate_errors_echoing_the_token_are_mapped_without_it() -> None:
    token = "r8_UNITCANARYabcdefghijklmnopqrstuvwxyz012"
    e = _map_error(ReplicateError(status=401, detail=f"Invalid token: Token {token}"), "m", 0)
    assert e.category is ErrorCategory.authentication and token not in str(e)
    ReplicateSession(api_token="a-configured-token-5678")
    assert redact("a-configured-token-5678") == REDACTED


def test_a_step_raises_no_secret_in_its_error_or_its_causes() -> None:
    plain = ValueError("no secret here")
    assert _clean_error(plain) is plain  # left as it is: its type and traceback stay
    try:
        try:
            raise RuntimeError(f"answer: Authorization: Bearer {KEY}")
        except RuntimeError as inner:
            raise ValueError("the build stopped") from inner
    except ValueError as outer:
        clean = _clean_error(outer)
    assert isinstance(clean, dg.Failure) and KEY not in str(clean.description)
    assert "the build stopped" in clean.description and REDACTED in clean.description


def test_run_reports_are_stored_and_read_redacted(tmp_path) -> None:  # noqa: ANN001
    store = ArtifactStore(root=str(tmp_path))
    report = RunReport(movie="m", run_id="r1", failed={"script": f"refused {KEY}"},
                       errors={"script": {"message": f"refused {KEY}", "category": "authentication", "suggestion": "s",
                                          "detail": f"Traceback ... Bearer {KEY}"}})
    write_run_report(store, report)
    assert report.failed["script"] == f"refused {KEY}"  # the caller's report is not changed
    assert KEY.encode() not in b"".join(p.read_bytes() for p in tmp_path.rglob("*.json"))
    stored = read_run_report(store, "m", "r1")
    assert stored is not None and stored.failed == {"script": f"refused {REDACTED}"}
    assert stored.errors["script"]["detail"] == f"Traceback ... Bearer {REDACTED}"


def test_the_cli_prints_errors_and_tracebacks_redacted(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from movie_assets.interfaces import cli

    def fails(outer: type[Exception]) -> int:
        try:
            raise RuntimeError(f"the proxy answered: Authorization: Bearer {KEY}")
        except RuntimeError as e:
            raise outer(f"cannot go on with {KEY}") from e

    monkeypatch.setattr(cli, "cmd_status", lambda args: fails(ValueError))
    assert cli.main(["status", "m"]) == cli.EXIT_INVALID
    assert capsys.readouterr().err == f"error: cannot go on with {REDACTED}\n"
    monkeypatch.setattr(cli, "cmd_generate", lambda args: fails(LookupError))
    assert cli.main(["generate", "m"]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith(f"error [local]: LookupError: cannot go on with {REDACTED}\n") and KEY not in err
    assert cli.main(["generate", "m", "--verbose"]) == cli.EXIT_FAILED  # the traceback, its cause too
    err = capsys.readouterr().err
    assert "Traceback" in err and "The above exception was the direct cause" in err and KEY not in err
    assert f"Authorization: {REDACTED}" in err


def test_a_configured_secret_is_found_json_escaped_and_url_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY+x"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    escaped = secret.replace("/", "\\/")
    text = f'{{"k": "{escaped}"}} then {quote(secret, safe="")} then {quote_plus(secret)} then {secret}'
    out = redact(text, None)
    assert out.count(REDACTED) == 4 and "K7MDENG" not in out
