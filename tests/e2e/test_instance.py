"""Several processes opening one new DAGSTER_HOME at the same moment (two `moviegen` commands, a driver
and the CLI): Dagster creates its SQLite tables on first open without a lock, and without
``open_instance``'s lock about half of such openings failed here ("table ... already exists")."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import BIN, REPO
from tests.servers.processes import clean_env

OPEN = """
import warnings
warnings.filterwarnings("ignore")
from movie_assets.interfaces import api
instance = api.open_instance()
print(len(instance.get_runs()))
"""


def test_processes_opening_a_new_home_at_once_all_succeed(tmp_path: Path) -> None:
    for attempt in range(2):
        home = tmp_path / f"home{attempt}"
        home.mkdir()
        env = clean_env() | {"DAGSTER_HOME": str(home)}
        procs = [subprocess.Popen([str(BIN / "python"), "-c", OPEN], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, [err[-1500:] for _, err in outs]
        assert [out.strip() for out, _ in outs] == ["0"] * 4
