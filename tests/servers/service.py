"""The hosted service (`moviegen serve`) on a DAGSTER_HOME, on a free loopback port, as a deployment runs it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from .processes import clean_env, stop_group
from .webserver import free_port

REPO = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 120


class Service:
    """``with Service(home, env) as service:`` runs ``moviegen serve`` until it answers ``/healthz``
    (its start-up loads the generate job); ``service.url`` is its root."""

    def __init__(self, home: Path, env: dict[str, str] | None = None, *args: str):
        self.home, self.env, self.args = home, env or {}, args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home.parent / f"service-{self.port}.log"

    def __enter__(self) -> Service:
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            [str(BIN / "moviegen"), "serve", "--listen", f"127.0.0.1:{self.port}", "--log-level", "warning", *self.args],
            cwd=REPO, env={**clean_env(), "DAGSTER_HOME": str(self.home), **self.env}, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError(f"moviegen serve exited {self.proc.returncode}: {self.log_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.3)
        self.__exit__()
        raise TimeoutError(f"moviegen serve did not answer in {START_TIMEOUT_S} s: {self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        stop_group(self.proc, 20)
        self.log.close()
