"""A real PostgreSQL 15 on loopback, started in a temporary folder (the machine image's binaries).

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` user. Password authentication (scram-sha-256) is on, so the URL with its password
is exercised the way a deployment uses it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("MOVIEGEN_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER, PASSWORD, DB = "moviegen", "moviegen-pg-secret", "dagster"


def available() -> str | None:
    """Why PostgreSQL cannot run here, or None."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL binaries at {PG_BIN} (set MOVIEGEN_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user"
    return None


class Postgres:
    """``with Postgres() as pg:`` starts a server in a fresh folder under the system temp dir (pytest's
    own temp dirs are private to the test user, and the server may run as ``postgres``)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="moviegen-pg-"))
        self.port = 0

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=self.folder)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DB}"

    def __enter__(self) -> Postgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        data = self.folder / "data"
        self._run(PG_BIN / "initdb", "-D", data, "-U", USER, f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                  "--locale=C")
        self._run(PG_BIN / "pg_ctl", "-D", data, "-l", self.folder / "pg.log", "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
                  "start")
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, DB],
                       check=True, capture_output=True, env=env)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(PG_BIN / "pg_ctl", "-D", self.folder / "data", "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)
