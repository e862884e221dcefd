"""A scratch disk that is full during the render, for real: `moviegen generate` and `moviegen render` run
in a private mount namespace whose MOVIEGEN_SCRATCH_DIR is on a 256 KB tmpfs (``unshare``: a user and
mount namespace, which unprivileged users get on most Linux systems). Each failure is one line that says
"disk full" with the free space on that disk, and a traceback is printed only with --verbose."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import BIN, REPO, real_part
from tests.servers.processes import clean_env

MOUNT = 'mount -t tmpfs -o size=256k moviegen-full "$0" && exec "$@"'


def _cannot_mount() -> str | None:
    """Why a private tmpfs cannot be mounted here (None: it can)."""
    if shutil.which("unshare") is None:
        return "no unshare (util-linux)"
    with tempfile.TemporaryDirectory(prefix="moviegen-unshare-") as probe:  # each collecting process its own
        proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", MOUNT, probe, "true"],
                              capture_output=True, text=True, timeout=30)
    return None if proc.returncode == 0 else f"cannot mount a private tmpfs: {proc.stderr.strip()[-300:]}"


pytestmark = real_part(_cannot_mount())


def on_a_full_scratch_disk(mount: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`moviegen ARGS` with its scratch folder on a fresh 256 KB tmpfs mounted at ``mount``."""
    return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", MOUNT, str(mount),
                           str(BIN / "moviegen"), *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=env | {"MOVIEGEN_SCRATCH_DIR": str(mount / "scratch")})


def test_a_full_scratch_disk_during_the_render_says_disk_full(home: Path, tmp_path: Path) -> None:
    env = {**clean_env(), "DAGSTER_HOME": str(home)}
    subprocess.run([str(BIN / "moviegen"), "new", "examples/civil-war.yaml", "--id", "m"], cwd=REPO, env=env, check=True,
                   capture_output=True)
    subprocess.run([str(BIN / "moviegen"), "generate", "m", "--quiet"], cwd=REPO, env=env, check=True, capture_output=True)
    mount = tmp_path / "small"
    mount.mkdir()
    render = env | {"MOVIEGEN_RENDER": "on"}

    proc = on_a_full_scratch_disk(mount, render, "generate", "m")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and "report the traceback" not in text and "exited with 228" not in text, text[-4000:]
    lines = proc.stdout.splitlines()
    failed = {m[1]: (m[2], m[3], lines[i + 1]) for i, line in enumerate(lines)
              if (m := re.fullmatch(r"  FAILED (\S+) \[(\w+)\]: (.+)", line))}
    full = {node: message for node, (category, message, _) in failed.items() if category == "local"}
    # The soundtrack fails for want of room (the video chunks too, when they write while the disk is full).
    assert "soundtrack" in full and set(full) <= {"soundtrack", "video_chunk[00]", "video_chunk[01]", "video_chunk[02]"}, \
        proc.stdout
    for node, message in full.items():
        assert re.fullmatch(rf"disk full: \d+(\.\d)? [KM]?B free on {mount} \(.*in the scratch folder {mount}/scratch "
                            r"\(MOVIEGEN_SCRATCH_DIR\)\)", message), (node, message)
        assert failed[node][2] == (f"      -> free disk space on {mount} (or point MOVIEGEN_SCRATCH_DIR or MOVIEGEN_STORAGE "
                                   "at a disk with room) and generate again: `moviegen generate m` rebuilds only what failed")
    assert {node for node, (category, _, _) in failed.items() if category != "local"} == {"movie_video"}  # upstream

    # --verbose: the same lines, each failure's traceback after it.
    verbose = on_a_full_scratch_disk(mount, render, "generate", "m", "--verbose")
    assert verbose.returncode == 1 and "  FAILED soundtrack [local]: disk full: " in verbose.stdout, verbose.stdout[-3000:]
    assert "Traceback (most recent call last)" in verbose.stdout and "No space left on device" in verbose.stdout  # ffmpeg's words

    # `moviegen render` of the revision: one line, the render's failure with its category and suggestion.
    rendered = on_a_full_scratch_disk(mount, render, "render", "m")
    assert rendered.returncode == 1 and "Traceback" not in rendered.stderr, rendered.stderr[-3000:]
    first, second = rendered.stderr.strip().splitlines()
    assert re.fullmatch(rf"error \[local\]: RenderFailed: rendering m revision \d+ failed: \S+: disk full: .* free on {mount} \(.*\)", first), first
    assert second.startswith(f"  -> free disk space on {mount} "), second
