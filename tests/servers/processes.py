"""Stopping what a test started: a process and every process it started (its own group)."""

from __future__ import annotations

import os
import signal
import subprocess

SETTINGS_PREFIXES = ("OPENAI_", "MOVIEGEN_", "REPLICATE_", "AWS_")


def clean_env() -> dict[str, str]:
    """This process's environment without provider, moviegen or AWS settings: a child process gets
    exactly the settings its test gives it."""
    return {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}


def stop_group(proc: subprocess.Popen | None, grace_s: float) -> None:  # type: ignore[type-arg]
    """SIGTERM the process group of ``proc`` (started with ``start_new_session=True``), SIGKILL after
    ``grace_s`` seconds if it is still there."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
