"""Where moviegen keeps its state on this machine."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def dagster_home() -> Path:
    """$DAGSTER_HOME, else the repo's dagster_home/ (where `make dev` and the CLI put it)."""
    return Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / "dagster_home")
