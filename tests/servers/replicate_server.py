"""A local HTTP server that speaks Replicate's predictions protocol (the parts moviegen uses).

``POST /v1/models/{owner}/{name}/predictions`` answers 201 with a prediction that is still
``starting`` (``Prefer: wait`` is honoured only as far as the scripted finishing time allows);
``GET /v1/predictions/{id}`` moves it to ``processing`` then ``succeeded`` with ``data:`` URI
outputs; ``POST .../cancel`` cancels. Errors are ``application/problem+json``. Requests are recorded,
creates can be scripted to fail, and predictions can be scripted to fail by their input, or to succeed
with an output that cannot be used (``malform_when``): a page where the media goes, the file cut short,
no output, an output URL (served at ``/files/{id}``) that answers 404 or a page, or that no one answers.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
from PIL import Image

from resources.providers.offline.media import animate
from resources.runtime.media import mp3_duration_ms, wav_bytes, wav_to_mp3

from .loopback import LoopbackServer

THROTTLED = {"status": 429, "title": "Too Many Requests", "detail": "Request was throttled. Your rate limit resets in ~1s."}
# A create answered 201 with its JSON cut short (``create_script``).
INVALID_JSON = {"status": 201, "raw": b'{"id": "p0", "model": "black-forest-labs/flux-schnell", "status": "sta'}

# How a succeeded prediction's output can be unusable (``malform_when``).
NOT_MEDIA = "not_media"              # a data: URI of an HTML page
TRUNCATED = "truncated"              # its file without the last 100 bytes (inside an MP3's last frame)
NO_OUTPUT = "no_output"              # null
URL_404 = "url_404"                  # a URL on this server that answers 404 (Replicate deletes outputs after an hour)
URL_PAGE = "url_page"                # a URL on this server that answers 200 with an HTML page
URL_UNREACHABLE = "url_unreachable"  # a URL on a loopback port no one listens on
PAGE = b"<html><head><title>Not Found</title></head><body>This file has expired.</body></html>\n"


@dataclass
class Prediction:
    id: str
    model: str
    input: dict[str, Any]
    polls_left: int
    status: str = "starting"
    output: Any = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def closed_port() -> int:
    """A loopback port no one listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _output_for(model: str, input: dict[str, Any]) -> Any:
    if "whisper" in model:  # incredibly-fast-whisper with timestamp="word": each chunk one word heard
        header, data = str(input["audio"]).split(",", 1)
        seconds = mp3_duration_ms(base64.b64decode(data)) / 1000
        heard = "the narrator speaks these words".split()
        step = seconds / len(heard)
        return {"text": " " + " ".join(heard),
                "chunks": [{"text": f" {w}", "timestamp": [round(k * step, 2), round((k + 1) * step, 2)]} for k, w in enumerate(heard)]}
    if "flux" in model:
        w_ratio, h_ratio = (int(x) for x in str(input.get("aspect_ratio", "1:1")).split(":"))
        img = Image.new("RGB", (64 * w_ratio, 64 * h_ratio) if max(w_ratio, h_ratio) <= 16 else (1024, 1024), (200, 120, 40))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return [_data_uri("image/png", buf.getvalue())]
    if "video" in model:
        buf = io.BytesIO()
        Image.new("RGB", (320, 180), (20, 60, 90)).save(buf, "PNG")
        return _data_uri("video/mp4", animate(buf.getvalue(), 320, 180, 3, "pan"))
    t = np.arange(22050 * 2) / 22050
    audio = wav_to_mp3(wav_bytes(0.2 * np.sin(2 * np.pi * 330 * t), 22050))
    return _data_uri("audio/mpeg", audio)


class FakeReplicate(LoopbackServer):
    def __init__(self, polls_to_finish: int = 2):
        self.requests: list[tuple[str, str, dict[str, Any], float]] = []
        self.predictions: dict[str, Prediction] = {}
        self.create_script: deque[dict[str, Any]] = deque()
        self.fail_rules: list[tuple[Callable[[str, dict[str, Any]], bool], str]] = []
        self.malform_rules: list[tuple[Callable[[str, dict[str, Any]], bool], str]] = []
        self.files: dict[str, tuple[int, bytes, str]] = {}  # /files/{name} -> status, body, content type
        self.polls_to_finish = polls_to_finish
        self.create_delay_s = 0.05
        self.in_flight_creates = 0
        self.max_in_flight_creates = 0
        super().__init__()

    @property
    def base_url(self) -> str:
        return self.root_url

    def creates(self) -> list[tuple[str, dict[str, Any]]]:
        return [(path, body) for method, path, body, _ in self.requests if method == "POST" and path.endswith("/predictions")]

    def fail_prediction_when(self, matches: Callable[[str, dict[str, Any]], bool], error: str) -> None:
        self.fail_rules.append((matches, error))

    def malform_when(self, matches: Callable[[str, dict[str, Any]], bool], fault: str) -> None:
        """Predictions whose (model, input) ``matches`` succeed with an output spoiled by ``fault`` (NOT_MEDIA, ...)."""
        self.malform_rules.append((matches, fault))

    def _malformed(self, p: Prediction, output: Any, fault: str) -> Any:
        first = output[0] if isinstance(output, list) else output
        header, data = first.split(",", 1)
        mime = header.removeprefix("data:").removesuffix(";base64")
        original = base64.b64decode(data)
        url = f"{self.base_url}/files/{p.id}"
        if fault == NOT_MEDIA:
            spoiled: Any = _data_uri("text/html", PAGE)
        elif fault == TRUNCATED:
            spoiled = _data_uri(mime, original[:-100])
        elif fault == NO_OUTPUT:
            return None
        elif fault == URL_404:
            self.files[p.id] = (404, PAGE, "text/html")
            spoiled = url
        elif fault == URL_PAGE:
            self.files[p.id] = (200, PAGE, "text/html")
            spoiled = url
        elif fault == URL_UNREACHABLE:
            spoiled = f"http://127.0.0.1:{closed_port()}/files/{p.id}"
        else:
            raise ValueError(f"no output fault {fault!r}")
        return [spoiled] if isinstance(output, list) else spoiled

    def _json(self, p: Prediction) -> dict[str, Any]:
        return {
            "id": p.id, "model": p.model, "version": "v1", "input": p.input, "logs": "", "output": p.output, "error": p.error,
            "status": p.status, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(p.created_at)),
            "urls": {"get": f"{self.base_url}/v1/predictions/{p.id}", "cancel": f"{self.base_url}/v1/predictions/{p.id}/cancel"},
            "metrics": {"predict_time": 0.1} if p.status == "succeeded" else {},
        }

    def _advance(self, p: Prediction) -> None:
        if p.status in ("succeeded", "failed", "canceled"):
            return
        p.polls_left -= 1
        if p.polls_left > 0:
            p.status = "processing"
            return
        for matches, error in self.fail_rules:
            if matches(p.model, p.input):
                p.status, p.error = "failed", error
                return
        p.status, p.output = "succeeded", _output_for(p.model, p.input)
        for matches, fault in self.malform_rules:
            if matches(p.model, p.input):
                p.output = self._malformed(p, p.output, fault)
                return

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any] | bytes, problem: bool = False, content_type: str = "") -> None:
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", content_type or ("application/problem+json" if problem else "application/json"))
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _auth(self) -> bool:
                if self.headers.get("authorization") not in ("Bearer r8_test", "Token r8_test"):
                    self._send(401, {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token", "status": 401}, True)
                    return False
                return True

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                with server._lock:
                    server.requests.append(("POST", self.path, body, time.time()))
                if not self._auth():
                    return
                if self.path.endswith("/cancel"):
                    pid = self.path.split("/")[-2]
                    p = server.predictions[pid]
                    p.status = "canceled"
                    self._send(200, server._json(p))
                    return
                with server._lock:
                    server.in_flight_creates += 1
                    server.max_in_flight_creates = max(server.max_in_flight_creates, server.in_flight_creates)
                    scripted = server.create_script.popleft() if server.create_script else None
                try:
                    time.sleep(server.create_delay_s)
                    if scripted is not None and "raw" in scripted:
                        status, answer, problem = scripted["status"], scripted["raw"], False
                    elif scripted is not None:
                        status, answer, problem = scripted["status"], scripted, True
                    else:
                        model = "/".join(self.path.split("/")[3:5])
                        p = Prediction(f"p{uuid.uuid4().hex[:12]}", model, body.get("input", {}), server.polls_to_finish)
                        server.predictions[p.id] = p
                        status, answer, problem = 201, server._json(p), False
                finally:
                    # Answered: no longer in flight from here on. (Counting until the bytes are written
                    # would overlap the client's next request, sent once it has read this answer.)
                    with server._lock:
                        server.in_flight_creates -= 1
                self._send(status, answer, problem)

            def do_GET(self) -> None:  # noqa: N802
                with server._lock:
                    server.requests.append(("GET", self.path, {}, time.time()))
                if self.path.startswith("/files/"):  # an output file (no token: like replicate.delivery)
                    status, data, content_type = server.files.get(self.path.split("/")[-1], (404, PAGE, "text/html"))
                    self._send(status, data, content_type=content_type)
                    return
                if not self._auth():
                    return
                pid = self.path.rstrip("/").split("/")[-1]
                p = server.predictions.get(pid)
                if p is None:
                    self._send(404, {"title": "Not found", "detail": f"prediction {pid} not found", "status": 404}, True)
                    return
                with server._lock:
                    server._advance(p)
                self._send(200, server._json(p))

        return Handler
