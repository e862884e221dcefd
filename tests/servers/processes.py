"""Stopping what a test started: a process and every process it started (its own group)."""

from __future__ import annotations

import os
import signal
import subprocess

SETTINGS_PREFIXES = ("OPENAI_", "MOVIEGEN_", "REPLICATE_", "AWS_")

# Tests leave movies unrendered unless they test rendering (they set MOVIEGEN_RENDER=on): the timeline
# is what most of them check, and a render per generated movie would cost minutes of the suite.
# Rendering tests pick their engine explicitly.
TEST_SETTINGS = {"MOVIEGEN_RENDER": "off", "MOVIEGEN_RENDER_ENGINE": "ffmpeg"}


def clean_env() -> dict[str, str]:
    """This process's environment without provider, moviegen or AWS settings (but the tests' render
    settings): a child process gets exactly the settings its test gives it."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}, **TEST_SETTINGS}


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
