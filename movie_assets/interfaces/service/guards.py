"""What keeps the service up whatever a client sends: a body limit (413), a deadline for a request's
body (408) and for its headers (the connection is closed), a per-token request rate (429 with
Retry-After), and errors as JSON without a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
import traceback
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from resources.runtime.secrets import TEXT_LIMIT, redact

log = logging.getLogger("moviegen.service")

MAX_BODY_BYTES = 1_000_000  # a request is a few KB; the same bound as a request file (domain/request.py)
BODY_TIMEOUT_S = 15.0  # the whole body must arrive within this
HEADERS_TIMEOUT_S = 10.0  # a new connection must have sent a request's headers within this


def error_body(status: int, category: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"status": status, "category": category, "message": message, **extra}}


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": data})


class BodyGuard:
    """ASGI middleware: a body over MAX_BODY_BYTES is answered 413 (by its Content-Length before it is read,
    or once it grows past the limit); a body that does not arrive within BODY_TIMEOUT_S is answered 408."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES, timeout_s: float = BODY_TIMEOUT_S):
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _send_json(send, 413, error_body(413, "invalid", f"the body is larger than {self.max_bytes} bytes; "
                                                   "a request needs a few KB"))
            return
        deadline = time.monotonic() + self.timeout_s
        received = 0
        started = False
        complete = False

        async def guarded_receive() -> dict[str, Any]:
            nonlocal received, complete
            if complete:  # the body is in; what comes now is the disconnect a streaming answer waits for
                return await receive()
            remaining = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.01, remaining))
            except TimeoutError:
                raise BodyProblem(408, f"the body did not arrive within {self.timeout_s:g} s") from None
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyProblem(413, f"the body is larger than {self.max_bytes} bytes; a request needs a few KB")
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except BodyProblem as e:
            if not started:
                await _send_json(send, e.status, error_body(e.status, "invalid", e.message))
        except Exception as e:  # noqa: BLE001 - answered 500 by the app already; logged here without secrets
            log.error("unexpected error: %s", redact("".join(traceback.format_exception(e)), TEXT_LIMIT))
            if not started:
                await _send_json(send, 500, error_body(500, "local", "unexpected error"))


class BodyProblem(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class RateLimiter:
    """A token bucket per API token: ``rate`` requests per minute, as a burst of up to ``rate`` at once,
    refilled continuously. In the service's process (several processes: each keeps its own)."""

    def __init__(self, clock: Any = time.monotonic):
        self._buckets: dict[str, tuple[float, float]] = {}  # token id -> (tokens left, at)
        self._lock = threading.Lock()
        self._clock = clock

    def take(self, key: str, per_minute: int) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = self._clock()
        rate = per_minute / 60.0
        with self._lock:
            tokens, at = self._buckets.get(key, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - at) * rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return max(1.0, math.ceil((1 - tokens) / rate))


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, but a connection that has not sent a whole request's headers within
    HEADERS_TIMEOUT_S of connecting is closed (uvicorn's keep-alive timeout starts only after a first
    response, so a client that connects and sends nothing, or headers a byte at a time, would hold a
    connection for good)."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_deadline = self.loop.call_later(HEADERS_TIMEOUT_S, self._headers_late)

    def _headers_late(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_deadline.cancel()
        super().connection_lost(exc)
