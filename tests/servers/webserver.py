"""The Dagster webserver (the UI and its GraphQL API) on a DAGSTER_HOME, as `make dev` runs it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from .processes import clean_env, stop_group

REPO = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 240  # loading the code location on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webserver:
    """``with Webserver(home, env) as ui:`` runs ``dagster-webserver`` on the project's workspace (loopback,
    a free port) until the code location has loaded; ``ui.graphql(query, variables)`` asks its API."""

    def __init__(self, home: Path, env: dict[str, str] | None = None):
        self.home, self.env = home, env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Webserver:
        self.log = open(self.home.parent / f"webserver-{self.port}.log", "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=REPO, env={**clean_env(), "DAGSTER_HOME": str(self.home), **self.env}, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_loaded()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_loaded(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"dagster-webserver exited {self.proc.returncode}: {self.log_text()[-3000:]}")
            try:
                entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    return
            except (httpx.HTTPError, KeyError, RuntimeError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the webserver did not load the code location in {START_TIMEOUT_S} s: {self.log_text()[-3000:]}")

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def log_text(self) -> str:
        return (self.home.parent / f"webserver-{self.port}.log").read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        stop_group(self.proc, 20)
        self.log.close()
