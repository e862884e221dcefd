"""A local HTTP server that speaks the OpenAI API's protocol (the parts moviegen uses).

Request and response shapes follow the public API: chat completions
with ``response_format: json_schema``, image generations returning ``b64_json``, audio speech
returning bytes, error bodies ``{"error": {message, type, param, code}}`` and the rate-limit
headers. Every request is recorded; failures can be scripted per endpoint, in order, and so can
malformed answers: a 200 whose body is the normal answer damaged (``Malformed``).
"""

from __future__ import annotations

import base64
import dataclasses
import email.parser
import email.policy
import hashlib
import io
import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from PIL import Image

from resources.runtime.media import mp3_duration_ms, wav_bytes, wav_to_mp3

from .loopback import LoopbackServer


@dataclass
class Scripted:
    """A scripted answer: an HTTP status, an error body and headers (or a raw body)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def error(status: int, message: str, type_: str, code: str | None = None, headers: dict[str, str] | None = None) -> Scripted:
    return Scripted(status, {"error": {"message": message, "type": type_, "param": None, "code": code}}, headers or {})


@dataclass(frozen=True)
class Malformed:
    """A 200 answer that is the normal one, damaged as a broken provider, proxy or transfer damages it:
    ``fault`` is one of ``invalid_json`` (the JSON cut short), ``missing_field`` (without ``data`` or
    ``choices``), ``not_media`` (an HTML page where the picture or the sound goes), ``bad_base64``,
    ``truncated`` (the picture or the sound cut short)."""

    fault: str


INVALID_JSON = Malformed("invalid_json")
MISSING_FIELD = Malformed("missing_field")
NOT_MEDIA = Malformed("not_media")
BAD_BASE64 = Malformed("bad_base64")
TRUNCATED = Malformed("truncated")
PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>upstream answered nothing</body></html>\n"


def damage(path: str, fault: str, payload: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """The normal answer to ``path`` (``payload``), damaged by ``fault`` (see ``Malformed``)."""
    if path == "/v1/audio/speech":
        if fault == "not_media":
            return PAGE, headers | {"content-type": "text/html"}
        if fault == "truncated":
            return payload[:-100], headers  # inside the last MP3 frame (400 bytes at 128 kb/s)
        raise ValueError(f"speech answers are audio: no {fault}")
    if fault == "invalid_json":
        return payload[: len(payload) // 2], headers
    body = json.loads(payload)
    images = path in ("/v1/images/generations", "/v1/images/edits")
    if fault == "missing_field":
        body.pop("data" if images else "words" if path == "/v1/audio/transcriptions" else "choices")
    elif images and fault == "not_media":
        body["data"][0]["b64_json"] = base64.b64encode(PAGE).decode()
    elif images and fault == "bad_base64":
        body["data"][0]["b64_json"] = body["data"][0]["b64_json"][:-3] + "!!"
    elif images and fault == "truncated":
        png = base64.b64decode(body["data"][0]["b64_json"])
        body["data"][0]["b64_json"] = base64.b64encode(png[: len(png) // 2]).decode()
    else:
        raise ValueError(f"no {fault} answer for {path}")
    return json.dumps(body).encode(), headers


RATE_LIMITED = error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded", {"retry-after-ms": "50"})
QUOTA = error(429, "You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota")
POLICY = error(400, "Your request was rejected as a result of our safety system.", "image_generation_user_error", "moderation_blocked")
SERVER_ERROR = error(500, "The server had an error while processing your request.", "server_error")


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


class FakeOpenAI(LoopbackServer):
    """Start with ``with FakeOpenAI() as server:``; ``server.base_url`` goes to the SDK."""

    def __init__(self, chat_answer: Callable[[dict[str, Any]], Any] | None = None):
        self.requests: list[Recorded] = []
        self.sent: list[Recorded] = []  # each request whose answer was written back, when it was
        self.script: dict[str, deque[Scripted | Malformed]] = defaultdict(deque)
        self.chat_answer = chat_answer
        self.rules: list[tuple[str, Callable[[dict[str, Any]], bool], Scripted | Malformed]] = []
        self.delay_s = 0.0  # added to every normal answer, to make calls overlap
        self.in_flight = 0
        self.max_in_flight = 0
        self.path_in_flight: dict[str, int] = defaultdict(int)
        self.max_path_in_flight: dict[str, int] = defaultdict(int)  # per endpoint (one model kind each)
        # Gates that make concurrency tests independent of the machine's speed (waits on events, not time):
        # requests to a path beyond its first N answered wait until ``release`` is set ...
        self.hold_after: dict[str, int] = {}
        self.release = threading.Event()
        # ... and normal answers wait until this many requests have been in flight at once (or 60 s pass).
        self.answer_when_in_flight = 0
        self._in_flight_changed = threading.Condition(threading.Lock())
        self.api_key = "sk-test"  # the key the server accepts
        # Speech: text -> (MP3, its words with startMs/endMs), e.g. the offline Piper voice; None: a tone. What
        # it said is kept by the MP3's hash: a transcription of that very audio hears those words at those times.
        self.speak: Callable[[str], tuple[bytes, list[dict[str, Any]]]] | None = None
        self.spoken: dict[str, list[dict[str, Any]]] = {}
        self.mishear: dict[str, str] = {}  # a word (lower case, no punctuation) -> what a transcription hears instead
        # Path -> status of a misbehaving provider or proxy that echoes the request's credentials: 401 puts
        # the Authorization header in OpenAI's error body, 500 lists every request header in an OpenAI error
        # body, any other status answers a plain-text page listing them (as some 502 pages of proxies do).
        # See ``echo_credentials``.
        self.echo_auth: dict[str, int] = {}
        super().__init__()

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def fail_next(self, path: str, *answers: Scripted | Malformed) -> None:
        self.script[path].extend(answers)

    def fail_when(self, path: str, matches: Callable[[dict[str, Any]], bool], answer: Scripted | Malformed) -> None:
        """Answer every request to ``path`` whose body ``matches`` with ``answer``."""
        self.rules.append((path, matches, answer))

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def answered(self, path: str) -> list[Recorded]:
        """The requests to ``path`` whose (normal) answer the server has sent, in the order it sent them."""
        return [r for r in self.sent if r.path == path]

    def wait_until(self, condition: Callable[[], bool], timeout_s: float = 120.0) -> bool:
        """Wait until ``condition()`` holds, checked again each time a request arrives or an answer is
        sent (False when ``timeout_s`` passes first): with ``hold_after`` and ``release``, a test
        proceeds on the requests and answers it expects, not on time."""
        with self._in_flight_changed:
            return self._in_flight_changed.wait_for(condition, timeout_s)

    def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
        headers = {
            "x-request-id": f"req_{uuid.uuid4().hex[:16]}",
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
        }
        if path == "/v1/chat/completions":
            if self.chat_answer is not None:
                content = self.chat_answer(body)
            else:
                content = _default_chat_content(body)
            text = content if isinstance(content, str) else json.dumps(content)
            data = {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200},
            }
            return 200, json.dumps(data).encode(), headers | {"content-type": "application/json"}
        if path in ("/v1/images/generations", "/v1/images/edits"):
            w, h = (int(x) for x in str(body.get("size", "1024x1024")).split("x"))
            img = Image.new("RGB", (w, h), (40, 90, 160))
            buf = io.BytesIO()
            img.save(buf, "PNG")
            data = {"created": int(time.time()), "data": [{"b64_json": base64.b64encode(buf.getvalue()).decode(), "revised_prompt": body.get("prompt")}]}
            return 200, json.dumps(data).encode(), headers | {"content-type": "application/json"}
        if path == "/v1/audio/speech":
            import numpy as np

            if self.speak is not None:  # real speech, and when it says each word (for the transcriptions)
                audio, words = self.speak(str(body.get("input", "")))
                with self._lock:
                    self.spoken[hashlib.sha256(audio).hexdigest()] = words
                return 200, audio, headers | {"content-type": "audio/mpeg"}
            seconds = min(9.0, 0.4 + len(str(body.get("input", ""))) / 16)
            t = np.arange(int(seconds * 22050)) / 22050
            audio = wav_to_mp3(wav_bytes(0.2 * np.sin(2 * np.pi * 220 * t), 22050))
            return 200, audio, headers | {"content-type": "audio/mpeg"}
        if path == "/v1/audio/transcriptions":
            granularities = body.get("timestamp_granularities[]") or body.get("timestamp_granularities")
            if body.get("response_format") != "verbose_json" or "word" not in str(granularities):
                refused = {"error": {"message": "timestamp_granularities requires response_format=verbose_json",
                                     "type": "invalid_request_error", "param": "timestamp_granularities", "code": None}}
                return 400, json.dumps(refused).encode(), {"content-type": "application/json"}
            return 200, json.dumps(self._transcription(body)).encode(), headers | {"content-type": "application/json"}
        return 404, json.dumps({"error": {"message": f"Unknown path {path}", "type": "invalid_request_error", "param": None, "code": None}}).encode(), {"content-type": "application/json"}

    def _transcription(self, body: dict[str, Any]) -> dict[str, Any]:
        """A ``verbose_json`` transcription with word timestamps, as whisper-1 writes one: words without
        punctuation, times in seconds. Audio this server spoke (``speak``) is heard as its speaker timed it
        (each word as ``mishear`` says it is heard, if it does); other audio as the ``prompt``'s words spread
        over its length."""
        audio = body["file"][0]
        duration = mp3_duration_ms(audio) / 1000
        spoken = self.spoken.get(hashlib.sha256(audio).hexdigest())
        if spoken is None:
            said = str(body.get("prompt") or "").split()
            spoken = [{"text": w, "startMs": 1000 * duration * k / len(said), "endMs": 1000 * duration * (k + 1) / len(said)}
                      for k, w in enumerate(said)]
        words = []
        for w in spoken:
            bare = re.sub(r"[^\w'-]+", "", w["text"])
            heard = self.mishear.get(bare.lower(), bare).split()
            step = (w["endMs"] - w["startMs"]) / max(1, len(heard))
            words += [{"word": h, "start": round((w["startMs"] + k * step) / 1000, 2), "end": round((w["startMs"] + (k + 1) * step) / 1000, 2)}
                      for k, h in enumerate(heard)]
        text = " ".join(w["word"] for w in words)
        return {"task": "transcribe", "language": "english", "duration": round(duration, 2), "text": text, "words": words,
                "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": round(duration, 2), "text": text, "tokens": [],
                              "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.2, "no_speech_prob": 0.01}]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                content_type = self.headers.get("content-type", "")
                body = form_fields(content_type, raw) if content_type.startswith("multipart/form-data") else json.loads(raw or b"{}")
                recorded = Recorded(self.path, body, dict(self.headers), time.time())
                with server._lock:
                    server.requests.append(recorded)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.path_in_flight[self.path] += 1
                    server.max_path_in_flight[self.path] = max(server.max_path_in_flight[self.path],
                                                               server.path_in_flight[self.path])
                    held = self.path in server.hold_after and len(server.calls(self.path)) > server.hold_after[self.path]
                    scripted = server.script[self.path].popleft() if server.script[self.path] else None
                    for path, matches, answer in server.rules:
                        if scripted is None and path == self.path and matches(body):
                            scripted = answer
                with server._in_flight_changed:
                    server._in_flight_changed.notify_all()
                try:
                    if held:
                        server.release.wait(300)
                    if server.answer_when_in_flight:
                        with server._in_flight_changed:
                            server._in_flight_changed.wait_for(lambda: server.max_in_flight >= server.answer_when_in_flight, 60)
                    if isinstance(scripted, Malformed):
                        time.sleep(server.delay_s)
                        status, payload, headers = server._answer(self.path, body)
                        payload, headers = damage(self.path, scripted.fault, payload, headers)
                    elif scripted is not None:
                        time.sleep(scripted.delay_s)
                        payload = scripted.body if isinstance(scripted.body, bytes) else json.dumps(scripted.body).encode()
                        status, headers = scripted.status, {"content-type": "application/json", **scripted.headers}
                    else:
                        time.sleep(server.delay_s)
                        status, payload, headers = server._answer(self.path, body)
                    if self.path in server.echo_auth:
                        status, payload, headers = echo_credentials(server.echo_auth[self.path], dict(self.headers))
                    elif self.headers.get("authorization") != f"Bearer {server.api_key}":
                        status, payload = 401, json.dumps({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}).encode()
                        headers = {"content-type": "application/json"}
                finally:
                    # Answered: no longer in flight from here on. (Counting until the bytes are written
                    # would overlap the client's next request, sent once it has read this answer.)
                    with server._lock:
                        server.in_flight -= 1
                        server.path_in_flight[self.path] -= 1
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                if scripted is None and status == 200:
                    with server._lock:
                        server.sent.append(dataclasses.replace(recorded, at=time.time()))
                    with server._in_flight_changed:
                        server._in_flight_changed.notify_all()

        return Handler


def echo_credentials(status: int, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    """An answer that repeats the request's credentials: a 401 whose OpenAI error message quotes the
    Authorization header, a 500 whose OpenAI error message lists every request header, or (any other
    status) a plain-text page listing them."""
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if status == 401:
        body = {"error": {"message": f"Incorrect API key provided: {auth}", "type": "invalid_request_error",
                          "param": None, "code": "invalid_api_key"}}
        return 401, json.dumps(body).encode(), {"content-type": "application/json"}
    lines = "\n".join(f"{k}: {v}" for k, v in headers.items())
    page = f"{status} Bad Gateway: the upstream refused the request\nRequest headers:\n{lines}\n"
    if status == 500:
        body = {"error": {"message": page, "type": "server_error", "param": None, "code": None}}
        return 500, json.dumps(body).encode(), {"content-type": "application/json"}
    return status, page.encode(), {"content-type": "text/plain"}


def form_fields(content_type: str, raw: bytes) -> dict[str, Any]:
    """A multipart/form-data body (the SDK's images.edit) as a dict: text fields as text, the files of a
    field as a list of their bytes (``image[]``: the reference pictures)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"content-type: {content_type}\r\n\r\n".encode() + raw)
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            out.setdefault(name, []).append(data)
        else:
            out[name] = data.decode()
    return out


def _default_chat_content(body: dict[str, Any]) -> dict[str, Any]:
    """A schema-valid answer for each of moviegen's structured tasks, from the schema's name."""
    fmt = body.get("response_format", {})
    name = fmt.get("json_schema", {}).get("name", "")
    prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    if name == "Script":
        n = int(prompt.split("exactly ")[1].split(" ")[0]) if "exactly " in prompt else 1
        return {"title": "A Test Movie", "summary": "A summary.", "narration": [f"Line {i} of the test movie." for i in range(n)]}
    if name == "ImagePrompts":
        m = int(prompt.split("Write ")[1].split(" ")[0]) if "Write " in prompt else 1
        return {"prompts": [f"test prompt {j}" for j in range(m)]}
    if name == "MusicPrompt":
        return {"prompt": "calm test music"}
    if name == "DirectionPrompt":
        return {"direction": "slow push-in"}
    if name == "ImageToVideoPrompts":
        return {"direction": "slow pan", "starting_image_prompt": "a still frame"}
    if name == "Research":
        sources = len(re.findall(r"^\[\d+\] ", prompt, re.MULTILINE))  # the user's sources, numbered in the prompt
        return {"summary": "The test war in brief.",
                "facts": [{"text": "The test war began in 1861.", "source": 0},
                          *({"text": f"Source {n} says the test war ended in 1865.", "source": n} for n in range(1, sources + 1))],
                "dates": [{"date": "1861", "event": "the test war begins"}],
                "names": [{"name": "Test Lincoln", "role": "test president"}],
                "references": [{"title": "A Test History", "url": "https://example.org/test-history"}]}
    if name == "Look":
        return {"palette": "slate #2e3a4a, brass #b08d57", "lighting": "low warm light", "camera": "35mm, eye level",
                "characters": [{"name": "The Courier", "description": "a young rider in a grey wool coat"}], "places": []}
    return {}
