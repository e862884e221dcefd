"""The Dagster daemon (sensors, run queue, run monitoring) on a DAGSTER_HOME, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .processes import clean_env, stop_group

REPO = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent


class Daemon:
    """``with Daemon(home, env):`` runs ``dagster-daemon run`` on the project's workspace and stops it
    (and every run process it started) on exit."""

    def __init__(self, home: Path, env: dict[str, str] | None = None):
        self.home, self.env = home, env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Daemon:
        self.log = open(self.home / "daemon.log", "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")], cwd=REPO,
            env={**clean_env(), "DAGSTER_HOME": str(self.home), **self.env}, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: run workers it launches stop with it
        )
        return self

    def log_text(self) -> str:
        return (self.home / "daemon.log").read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        stop_group(self.proc, 20)
        self.log.close()
