"""Render tools both engines use: the ffmpeg child process (its own scratch folder, a deadline, stderr
kept), outputs written under a temp name and renamed, joining chunks by stream copy, probing a file
with the ffmpeg binary alone, and ``RenderError`` (``RenderDiskFull`` when a disk is full)."""

from __future__ import annotations

import errno
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

import imageio_ffmpeg

from resources.runtime import processes
from resources.runtime.disk import DiskFull, over_quota, ran_out_of_space
from resources.runtime.scratch import new_scratch_dir, remove_scratch_dir

MediaResolver = Callable[[str], Path]


class RenderError(RuntimeError):
    """A render step failed. For ffmpeg, the first line ends with its last message (the cause), and the
    lines after it are the last lines it wrote to stderr."""


class RenderDiskFull(DiskFull, RenderError):
    """A render step ran out of disk space (caught as a RenderError, reported as a full disk)."""


# What says a render failed for want of resources (memory, time), by the kind of failure: the first that
# matches names it. A timeout first: the watchdog's kill is a SIGKILL too.
RESOURCE_SIGNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("timeout", re.compile(r"\btimed out after\b", re.I)),
    ("killed", re.compile(r"\bSIGKILL\b|\bexit(?:ed with)? (?:-9|137)\b", re.I)),
    ("memory", re.compile(r"Cannot allocate memory|\bENOMEM\b|out of memory|OutOfMemory|Allocation failed", re.I)),
    ("crashed", re.compile(r"Target closed|Page crashed|Aw, Snap|Browser (?:has )?(?:disconnected|crashed)", re.I)),
)


def resource_failure(exc: BaseException) -> str | None:
    """Why a render step failed for want of resources, or None when it failed for another reason (a missing
    file, a bad timeline, a full disk, a cancelled build): ``timeout`` (its deadline), ``killed`` (SIGKILL:
    the kernel's out-of-memory killer), ``memory`` (an allocation failed: MemoryError, ENOMEM, ffmpeg's
    "Cannot allocate memory", Node's "heap out of memory") or ``crashed`` (Chromium's page or browser died:
    "Target closed", "Page crashed"). Such a chunk is rendered once more with fewer resources (recipes.py)."""
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, DiskFull):
        return None
    if isinstance(exc, OSError) and not isinstance(exc, RenderError):
        return "memory" if exc.errno == errno.ENOMEM else None
    if not isinstance(exc, RenderError):
        return None
    text = str(exc)
    return next((kind for kind, sign in RESOURCE_SIGNS if sign.search(text)), None)


def last_message(text: str) -> str:
    """A tool's last message, without ffmpeg's ``[out#0/mp4 @ 0x55...]`` prefix: what it failed on."""
    lines = [re.sub(r"^\[[^\]]*\]\s*", "", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("Last message repeated")]
    return lines[-1][:300] if lines else ""


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def file_uri_resolver(uri: str) -> Path:
    """A MediaResolver for file:// URIs and plain paths."""
    path = Path(unquote(urlparse(uri).path)) if uri.startswith("file://") else Path(uri)
    if not path.is_file():
        raise FileNotFoundError(f"media not found: {uri}")
    return path


class Ffmpeg:
    """One ffmpeg child: its own scratch folder (cwd and TMPDIR), stderr in a file there, a watchdog
    that kills it at the deadline. As a context manager it kills the child on any exception
    (KeyboardInterrupt included) and removes the folder. The child dies with this process (its
    parent-death signal; see resources/runtime/processes.py)."""

    def __init__(self, what: str, timeout_s: float):
        self.what, self.timeout_s = what, timeout_s
        self.tmp = new_scratch_dir("moviegen-ffmpeg-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: Path | None = None  # the file it writes, if any
        self.timed_out = False
        self._log: IO[bytes] | None = None
        self._timer: threading.Timer | None = None
        self._deadline = 0.0

    def start(self, args: list[str], *, stdin: bool = False, stdout: bool = False,
              loglevel: str = "warning", stats: bool = False) -> Ffmpeg:
        self._log = open(self.tmp / "stderr.log", "wb")
        cmd = [ffmpeg_exe(), "-hide_banner", "-stats" if stats else "-nostats", "-loglevel", loglevel,
               *([] if stdin else ["-nostdin"]), *args]
        # ffmpeg's output is its last argument, unless that is an input (-i), a pipe or stdout.
        if len(args) >= 2 and args[-2] != "-i" and args[-1] != "-" and not args[-1].startswith("pipe:"):
            self.output = self.tmp / args[-1]
        self.proc = processes.popen(
            cmd, cwd=self.tmp, env={**os.environ, "TMPDIR": str(self.tmp)},
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL, stderr=self._log)
        self._deadline = time.monotonic() + self.timeout_s
        self._timer = threading.Timer(self.timeout_s, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def _expire(self) -> None:
        self.timed_out = True
        self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def stderr_tail(self, lines: int = 20) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            text = (self.tmp / "stderr.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def error(self, why: str) -> RenderError:
        tail = self.stderr_tail()
        if self.timed_out:
            why = f"timed out after {self.timeout_s:g} s"
        elif self.proc is not None and self.proc.returncode == -signal.SIGKILL:  # not ours: the OOM killer, likely
            why = f"{why} (killed by SIGKILL)"
        elif ran_out_of_space(self.proc.returncode if self.proc is not None else None, tail):
            return RenderDiskFull(self.output or self.tmp, f"ffmpeg {self.what}", detail=tail, quota=over_quota(tail))
        cause = last_message(tail)
        return RenderError(f"ffmpeg {self.what}: {why}" + (f" ({cause})" if cause else "") + (f"\n{tail}" if tail else ""))

    def write(self, data: bytes | memoryview) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, ValueError, OSError):
            # ffmpeg exited (error, or the watchdog killed it): report its stderr.
            self.proc.wait()
            raise self.error(f"exited with {self.proc.returncode} while reading its input") from None

    def read(self, n: int) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        buf = bytearray()
        while len(buf) < n:
            part = self.proc.stdout.read(n - len(buf))
            if not part:
                break
            buf += part
        return bytes(buf)

    def read_all(self) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        return self.proc.stdout.read()

    def finish(self, *, check: bool = True) -> int:
        """Close stdin, wait for the exit within the deadline; raise RenderError on failure."""
        assert self.proc is not None
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            rc = self.proc.wait(timeout=max(0.0, self._deadline - time.monotonic()) + 1)
        except subprocess.TimeoutExpired:
            self._expire()
            rc = self.proc.wait()
        if self.timed_out or (check and rc != 0):
            raise self.error(f"exited with {rc}")
        return rc

    def __enter__(self) -> Ffmpeg:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()  # an exception (or an early stop) in the caller: don't leave ffmpeg running
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
        if self._log is not None:
            self._log.close()
        remove_scratch_dir(self.tmp)


@contextmanager
def atomic_output(out: Path) -> Iterator[Path]:
    """A temp name beside `out` (same filesystem, so os.replace is atomic); removed unless it succeeds."""
    out = Path(out).absolute()  # ffmpeg runs in its own folder: relative paths would land there
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.parent / f".{out.name}.{secrets.token_hex(4)}.part"
    try:
        yield part
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)


def resolve(media: MediaResolver, src: str) -> Path:
    path = Path(media(src)).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"media for {src} not found at {path}")
    return path


def join(chunks: list[Path], soundtrack: Path, out: Path, *, timeout_s: float = 300) -> None:
    """Concatenate video chunks (concat demuxer, stream copy) and mux the AAC soundtrack, +faststart."""
    if not chunks:
        raise ValueError("no chunks to join")
    for path in [*chunks, soundtrack]:
        if not Path(path).is_file():
            raise FileNotFoundError(f"missing {path}")
    with atomic_output(out) as part, Ffmpeg("join", timeout_s) as proc:
        listing = proc.tmp / "chunks.txt"
        quote = lambda p: "'" + str(Path(p).resolve()).replace("'", "'\\''") + "'"
        listing.write_text("".join(f"file {quote(c)}\n" for c in chunks))
        proc.start(["-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(Path(soundtrack).resolve()),
                    "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-movflags", "+faststart",
                    "-f", "mp4", str(part)])
        proc.finish()


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses: 'yuv420p(tv, bt709), 1280x720' -> two parts."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*parts, cur.strip()]


def probe(path: Path, *, timeout_s: float = 60) -> dict[str, Any]:
    """{width, height, fps, frames, duration_ms, video_codec, audio_codec, pix_fmt} with the ffmpeg
    binary alone (there is no ffprobe): the header from `ffmpeg -i`, frames by a stream-copy pass."""
    path = Path(path).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}")
    with Ffmpeg(f"probe {Path(path).name}", timeout_s) as proc:
        proc.start(["-i", str(path)], loglevel="info")
        proc.finish(check=False)  # exits 1: no output file given
        header = proc.stderr_tail(10_000)
    info: dict[str, Any] = {"width": None, "height": None, "fps": None, "frames": 0, "duration_ms": None,
                            "video_codec": None, "audio_codec": None, "pix_fmt": None}
    if m := re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", header):
        info["duration_ms"] = round((int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])) * 1000)
    if m := re.search(r"Stream #\S+: Video: (.*)", header):
        parts = _split_top(m[1])
        info["video_codec"] = parts[0].split()[0]
        if len(parts) > 1 and (pm := re.match(r"\w+", parts[1])):
            info["pix_fmt"] = pm[0]
        for part in parts:
            if (sm := re.match(r"(\d+)x(\d+)", part)) and info["width"] is None:
                info["width"], info["height"] = int(sm[1]), int(sm[2])
            if fm := re.fullmatch(r"([\d.]+)(k?) fps", part):
                info["fps"] = float(fm[1]) * (1000 if fm[2] else 1)
    if m := re.search(r"Stream #\S+: Audio: (\w+)", header):
        info["audio_codec"] = m[1]
    if info["video_codec"] is None:
        return info
    with Ffmpeg(f"count frames of {Path(path).name}", timeout_s) as proc:
        proc.start(["-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"], loglevel="info", stats=True)
        proc.finish()
        counts = re.findall(r"frame=\s*(\d+)", proc.stderr_tail(10_000))
    info["frames"] = int(counts[-1]) if counts else 0
    return info
