"""A provider that echoes the key in its error answers leaks it nowhere: not in the CLI's output (plain,
--verbose, --json), not in any file under DAGSTER_HOME (Dagster's SQLite run and event storage, compute
logs, artifacts, run reports, revisions, timelines).

Producers are routed to OpenAI through the real SDK against the local OpenAI-protocol server, which
answers images with a 401 quoting the Authorization header (as OpenAI's "Incorrect API key provided"
does), speech with an OpenAI 500 error whose message lists every request header, and the music prompt
with a plain-text 502 page listing them (as some proxies do).
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

from tests.conftest import moviegen
from tests.servers.openai_server import FakeOpenAI

IMAGES, SPEECH, CHAT = "/v1/images/generations", "/v1/audio/speech", "/v1/chat/completions"
# The smallest movie: 1 segment, 1 image.
REQUEST = {"inquiry_prompt": "Tell me about lighthouses", "duration_seconds": 10, "images_per_segment": 1,
           "size": "480p", "aspect_ratio": "16:9", "voice_id": "nova"}


def leaks(data: bytes, needles: list[bytes]) -> list[bytes]:
    return [n for n in needles if n in data]


def test_a_provider_echoing_the_key_leaks_it_nowhere(home: Path, tmp_path: Path) -> None:
    token = f"test-LEAKCANARY-{secrets.token_hex(16)}"
    key = f"sk-{token}"
    needles = [key.encode(), token.encode(), token.rsplit("-", 1)[1].encode()]
    with FakeOpenAI() as server:
        server.api_key = key
        server.echo_auth = {IMAGES: 401, SPEECH: 500, CHAT: 502}
        env = {"MOVIEGEN_PROVIDERS": "TextToImageProducer=openai:gpt-image-1,AudioProducer=openai,"
                                     "TextToMusicPromptProducer=openai",
               "OPENAI_API_KEY": key, "OPENAI_BASE_URL": server.base_url,
               "MOVIEGEN_OPENAI_MAX_ATTEMPTS": "2"}  # the 5xx are retried once: the retry path too
        request = tmp_path / "request.json"
        request.write_text(json.dumps(REQUEST))
        assert moviegen(home, env, "new", str(request), "--id", "lh").returncode == 0

        runs = {
            # Without placeholders: one FAILED line per partition, with its category and message.
            "generate": moviegen(home, env | {"MOVIEGEN_FALLBACK": "off"}, "generate", "lh"),
            # Dagster's log on the console, and the JSON result (placeholders on: their metadata too).
            "generate --verbose --json": moviegen(home, env, "generate", "lh", "--verbose", "--json"),
            "status": moviegen(home, env, "status", "lh"),
        }
        # The server did get the key and echoed it: the test is not vacuous.
        assert {r.path for r in server.requests} == {IMAGES, SPEECH, CHAT, "/v1/audio/transcriptions"}  # captions' timings
        assert all({k.lower(): v for k, v in r.headers.items()}["authorization"] == f"Bearer {key}"
                   for r in server.requests)

    for name, proc in runs.items():
        output = (proc.stdout + proc.stderr).encode()
        assert not leaks(output, needles), f"moviegen {name} printed the key:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    plain, verbose, status = runs["generate"], runs["generate --verbose --json"], runs["status"]
    assert plain.returncode == 1, plain.stdout + plain.stderr[-3000:]
    assert re.search(r"  FAILED segment_image\[00_0\] \[authentication\]: OpenAI refused the key \(Incorrect API key "
                     r"provided: Bearer \[redacted\]\)", plain.stdout), plain.stdout
    # One line per failure (the rest of the provider's page, its headers, is the failure's detail: --verbose).
    assert re.search(r"  FAILED segment_audio\[00\] \[outage\]: OpenAI error after 1 retry: 500 Bad Gateway: the "
                     r"upstream refused the request\n      -> retry later", plain.stdout), plain.stdout
    assert "FAILED music_prompt [outage]: OpenAI error after 1 retry: Error code: 502" in plain.stdout  # the SDK drops a text body
    assert "[redacted]" in plain.stderr  # the progress lines
    result = json.loads(verbose.stdout)
    assert {f["node"]: f["category"] for f in result["failed"]} == {
        "segment_image[00_0]": "authentication", "segment_audio[00]": "outage", "music_prompt": "outage",
        "music": "upstream"}
    errors = {f["node"]: f["error"] for f in result["failed"]}
    assert "[redacted]" in errors["segment_image[00_0]"], errors
    assert "\nauthorization: [redacted]\n" in verbose.stderr  # Dagster's console log of the failures, their details
    assert ("PLACEHOLDER segment_image[00_0] [authentication]: an offline placeholder stands in: OpenAI refused the key "
            "(Incorrect API key provided: Bearer [redacted])") in status.stdout, status.stdout

    # Every byte Dagster and moviegen stored: SQLite databases (runs, event logs, schedules), compute logs,
    # artifacts, run reports, revisions, timelines, the budget ledger.
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files) and any("runs" in p.parts for p in files)
    found = {str(p.relative_to(home)): hits for p in files if (hits := leaks(p.read_bytes(), needles))}
    assert not found, found
    # ... and the errors were stored, redacted: in the event log, the run reports and the timeline.
    stored = b"".join(p.read_bytes() for p in files)
    assert b"Incorrect API key provided: Bearer [redacted]" in stored
    assert b"authorization: [redacted]" in stored
    assert stored.count(b"[redacted]") >= 10
