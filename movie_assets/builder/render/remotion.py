"""Remotion, the product's renderer: the composition in renderer/ draws the timeline in headless
Chromium (Debian's, never a downloaded one); ``renderer/render.mjs`` renders frame ranges of it as a
subprocess whose progress comes back as JSON lines, with its own scratch folder, a deadline, and the
browser and media server closed when it ends or is killed — also when the process that started it
dies, even by SIGKILL: node gets SIGTERM from the kernel then (its parent-death signal) and closes
its browser; whatever survives is killed by the next scratch sweep (resources/runtime/scratch.py)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from movie_assets.builder.render.media import RenderDiskFull, RenderError
from movie_assets.builder.render.presets import Preset, output_size
from resources.runtime import processes
from resources.runtime.disk import over_quota, ran_out_of_space
from resources.runtime.paths import dagster_home
from resources.runtime.scratch import ROOT_ENV, new_scratch_dir, remove_scratch_dir, short_scratch_root
from resources.settings import RENDERER_DIR, chromium_path, remotion_missing

log = logging.getLogger("moviegen.render")

# Chromium's singleton socket, <TMPDIR>/.org.chromium.Chromium.XXXXXX/SingletonSocket, must fit in a
# socket address's 108 bytes, and render.mjs makes its own TMPDIR inside ours (moviegen-remotion-XXXXXX):
# measured, a 37-character scratch folder renders, a 38-character one makes Chromium abort.
MAX_TMP_CHARS = 108 - len("/moviegen-remotion-XXXXXX/.org.chromium.Chromium.XXXXXX/SingletonSocket")

# A reduced render's cache of decoded video frames (Remotion's default: half the free memory).
REDUCED_VIDEO_CACHE_BYTES = 128 * 1024 * 1024


def bundle_root() -> Path:
    """Where bundles of the composition are kept, each in a folder named by the hash of what it is made
    from (render.mjs: the sources, the locked and installed packages, Node's version): beside the
    renderer's packages, so every render of this install reuses one bundle whatever its DAGSTER_HOME
    (`make renderer` makes it), and it goes with them when they are reinstalled; under DAGSTER_HOME
    when the packages' folder is read-only."""
    modules = RENDERER_DIR / "node_modules"
    cache = modules / ".cache"
    if os.access(cache if cache.is_dir() else modules, os.W_OK):
        return cache / "moviegen-bundles"
    return dagster_home() / "cache" / "remotion-bundles"


def render_chunks(timeline: dict[str, Any], chunks: list[tuple[tuple[int, int], Path]], preset: Preset, *,
                  workdir: Path, timeout_s: float = 3600,
                  on_event: Callable[[dict[str, Any]], None] | None = None,
                  cancelled: threading.Event | None = None, reduced: bool = False) -> None:
    """Render frames [a, b) of the timeline into each chunk's path (H.264, no audio, one browser for
    all of them). Raises RenderError naming what is missing or what failed. ``reduced``: with less
    memory (the retry of a chunk that ran out of it): Remotion's cache of decoded video frames at
    REDUCED_VIDEO_CACHE_BYTES instead of its default (half the free memory) and one thread decoding
    them; the frames and their encoding are the same."""
    missing = remotion_missing()
    if missing:
        raise RenderError("Remotion cannot render on this machine; missing: " + "; ".join(missing)
                          + ". Install them (README), or set MOVIEGEN_RENDER_ENGINE=ffmpeg.")
    width, height = output_size(timeline, preset)
    props = {**timeline, "width": width, "height": height}  # drawn at the preset's size, scale 1
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "timeline.json").write_text(json.dumps(props), encoding="utf-8")
    jobs = {
        "timeline": str(workdir / "timeline.json"), "browserExecutable": chromium_path(),
        # One frame at a time per render: measured faster than two on 2 cores (Chromium and x264 share them).
        "bundleRoot": str(bundle_root()), "concurrency": 1,
        **({"offthreadVideoCacheSizeInBytes": REDUCED_VIDEO_CACHE_BYTES, "offthreadVideoThreads": 1} if reduced else {}),
        "jobs": [{"out": str(out), "frames": [a, b - 1], "codec": "h264", "muted": True, **_quality(preset),
                  "x264Preset": preset.x264_preset, "scale": 1} for (a, b), out in chunks],
    }
    (workdir / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    # Its own TMPDIR, short whatever TMPDIR is: Chromium's singleton socket path must fit in 108 bytes.
    tmp = new_scratch_dir("mgr-", short_scratch_root())
    if len(str(tmp)) > MAX_TMP_CHARS:
        remove_scratch_dir(tmp)
        raise RenderError(f"the scratch folder {tmp} is too long for Chromium ({len(str(tmp))} characters, at most "
                          f"{MAX_TMP_CHARS}): set {ROOT_ENV} to a shorter path")
    # SIGTERM when this process dies (render.mjs then closes Chromium and its server, as for `_stop`).
    try:
        proc = processes.popen(["node", str(RENDERER_DIR / "render.mjs"), "--jobs", str(workdir / "jobs.json")],
                               death_signal=signal.SIGTERM, cwd=RENDERER_DIR, env=_child_env(tmp), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    except BaseException:
        remove_scratch_dir(tmp)
        raise
    stderr: list[str] = []
    drain = threading.Thread(target=lambda: stderr.extend(proc.stderr or []), daemon=True)
    drain.start()
    timed_out = threading.Event()
    timer = threading.Timer(timeout_s, lambda: (timed_out.set(), _stop(proc)))
    timer.start()
    if cancelled is not None:  # the build was stopped: stop the render (it runs in a worker thread)
        def watch() -> None:
            while proc.poll() is None:
                if cancelled.wait(0.5):
                    _stop(proc)
                    return

        threading.Thread(target=watch, daemon=True).start()
    error = None
    try:
        for line in proc.stdout or []:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "error":
                error = event.get("message")
            elif on_event is not None:
                on_event(event)
            if event.get("event") in ("done", "bundle"):
                log.info("remotion: %s", event)
        code = proc.wait()
    except BaseException:
        _stop(proc)  # the build was cancelled: no orphaned browser or Node process
        raise
    finally:
        timer.cancel()
        drain.join(5)
        remove_scratch_dir(tmp)
    if code != 0:
        tail = "".join(stderr[-20:]).strip()
        said = f"{error or ''}\n{tail}"
        if ran_out_of_space(None, said):  # Node: "ENOSPC: no space left on device, write '/path'"
            written = re.search(r"(?:ENOSPC|EDQUOT)[^']*'([^']+)'", said)
            raise RenderDiskFull(written[1] if written else workdir, "Remotion render", detail=said.strip(),
                                 quota=over_quota(said))
        if timed_out.is_set():
            raise RenderError(f"Remotion render timed out after {timeout_s:g} s" + (f"\n{tail}" if tail else ""))
        raise RenderError(f"Remotion render failed (exit {code}): {error or 'see below'}" + (f"\n{tail}" if tail else ""))


def _quality(preset: Preset) -> dict[str, Any]:
    """The preset's x264 rate control as render.mjs takes it: a crf, or a named quality's bitrate (the same
    average, peak and buffer as the ffmpeg engine's)."""
    if preset.video_kbps:
        rate = preset.video_rate_args()
        return {"videoBitrate": rate["bitrate"], "encodingMaxRate": rate["maxrate"], "encodingBufferSize": rate["bufsize"]}
    return {"crf": preset.crf}


def _child_env(tmp: Path) -> dict[str, str]:
    """Node and Chromium get what they need to run, not the provider keys or storage credentials."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ") or k.startswith(("XDG_", "FONTCONFIG"))}
    return {**keep, "TMPDIR": str(tmp)}


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the render's process group (render.mjs closes the browser and its server), then kill."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
