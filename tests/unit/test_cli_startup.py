"""The CLI's start-up: a reading command answered by a service imports nothing heavy, and the choices the
CLI spells out without importing their modules are the modules' own."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from movie_assets.domain.request import Strategy
from movie_assets.interfaces import cli
from resources.runtime.accounts import DEFAULT_RATE_PER_MINUTE
from tests.conftest import REPO

HEAVY = ("dagster", "pydantic", "httpx", "boto3", "movie_assets.domain.request", "resources.storage",
         "resources.providers.base")


def test_the_cli_spells_the_modules_choices() -> None:
    assert cli.STRATEGIES == tuple(s.value for s in Strategy)
    assert cli.DEFAULT_RATE_PER_MINUTE == DEFAULT_RATE_PER_MINUTE


class _Service(BaseHTTPRequestHandler):
    """Answers /v1/movies/sky/status like the service, and 404 with the service's error body elsewhere."""

    def do_GET(self) -> None:  # noqa: N802 - the handler's protocol
        if self.headers.get("Authorization") != "Bearer t0k":
            self._send(401, {"error": {"message": "a valid token is needed", "exit_code": 2}})
        elif self.path == "/v1/movies":
            self._send(200, {"movies": ["sky"]})
        else:
            self._send(404, {"error": {"message": "no movie 'nope' is registered", "exit_code": 2,
                                       "suggestion": "see `moviegen list`"}})

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


PROBE = """
import sys
from movie_assets.interfaces import cli
code = cli.main(sys.argv[1:])
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY", heavy, "EXIT", code)
"""


def _probe(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "MOVIEGEN_TOKEN": "t0k"})


def test_a_reading_command_through_a_service_imports_nothing_heavy(service: str) -> None:
    listed = _probe("list", "--server", service)
    assert listed.stdout.splitlines() == ["sky", "HEAVY [] EXIT 0"], listed.stderr
    missing = _probe("status", "nope", "--server", service)
    assert missing.stdout.strip() == "HEAVY [] EXIT 2"
    assert "no movie 'nope' is registered" in missing.stderr and "-> see `moviegen list`" in missing.stderr


def test_the_service_unreachable_is_one_line_and_exit_1() -> None:
    unreachable = _probe("list", "--server", "http://127.0.0.1:9")
    assert "HEAVY [] EXIT 1" in unreachable.stdout
    assert unreachable.stderr.startswith("error: http://127.0.0.1:9: cannot reach the service"), unreachable.stderr
