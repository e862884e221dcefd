"""A full disk, said as such: how much is free on which filesystem, and what was being written there.

A disk runs out as ENOSPC (``OSError`` errno 28; EDQUOT when a quota is exhausted) in Python, and as a
tool's exit and messages in a child process: ffmpeg exits with its error code, ``AVERROR(ENOSPC)`` =
-28, as 228 (-28 & 0xff; no other ffmpeg error gives 228), and writes "No space left on device"; Node
(Remotion) writes ``ENOSPC``.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from resources.runtime.scratch import ROOT_ENV, scratch_root

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
FFMPEG_NO_SPACE_EXIT = 256 - errno.ENOSPC  # 228
NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded", "ENOSPC", "EDQUOT")


def ran_out_of_space(returncode: int | None, output: str) -> bool:
    """Whether a tool's exit (ffmpeg's 228) or what it wrote says that a disk or a quota is full."""
    return returncode == FFMPEG_NO_SPACE_EXIT or any(text in output for text in NO_SPACE_TEXTS)


def over_quota(output: str) -> bool:
    """Whether a tool that ran out of space says a quota ran out (not the disk)."""
    return "Disk quota exceeded" in output or "EDQUOT" in output


def is_no_space(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in NO_SPACE_ERRNOS


def size_text(n: int) -> str:
    """``32 KB``, ``1.5 GB``: a size as people read it (1 KB = 1024 bytes)."""
    value, unit = float(n), "B"
    for larger in ("KB", "MB", "GB", "TB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (a folder being written may be gone already)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def mount_point(path: Path) -> Path:
    """The root of the filesystem ``path`` is on: what must get more free space."""
    path = _existing(path)
    device = path.stat().st_dev
    while path.parent != path and path.parent.stat().st_dev == device:
        path = path.parent
    return path


def _folder(path: Path) -> str:
    """What was written, in words: the scratch folder (MOVIEGEN_SCRATCH_DIR) when it was one of its
    per-process folders, else the file."""
    root = Path(os.path.abspath(scratch_root()))
    if Path(os.path.abspath(path)).is_relative_to(root):
        return f"in the scratch folder {root} ({ROOT_ENV})"
    return f"writing {os.path.abspath(path)}"


class DiskFull(OSError):
    """Writing ``path`` failed because its disk (or quota) is full. ``str(e)`` is one line:
    ``disk full: 32 KB free on /mnt/small (ffmpeg encode soundtrack, in the scratch folder ...)``;
    ``mount`` is the filesystem to free space on, ``free`` its free bytes when the write failed (None,
    None: the write named no file). ``quota``: a disk quota ran out, not the disk (EDQUOT)."""

    category = "local"  # resources.providers.base.ErrorCategory.local (categorize honours it and the suggestion)

    def __init__(self, path: str | os.PathLike[str] | None, doing: str = "", detail: str = "", quota: bool = False):
        where = Path(path) if path is not None else None
        self.mount: Path | None = None
        self.free: int | None = None
        text = "disk quota exceeded" if quota else "disk full"
        if where is not None:
            try:
                self.mount = mount_point(where)
                self.free = shutil.disk_usage(self.mount).free
                text += f": {size_text(self.free)} free on {self.mount}"
            except OSError:
                pass
        context = ", ".join(part for part in (doing, _folder(where) if where is not None else "") if part)
        super().__init__(errno.ENOSPC, f"{text} ({context})" if context else text, str(where) if where is not None else None)
        self.detail = detail  # e.g. the tool's last messages, for --verbose
        place = str(self.mount) if self.mount is not None else "this machine (the artifact and scratch folders)"
        self.suggestion = (f"free disk space on {place}{' (or raise your quota there)' if quota else ''} (or point "
                           f"{ROOT_ENV} or MOVIEGEN_STORAGE at a disk with room) and generate again: "
                           "`moviegen generate ID` rebuilds only what failed")

    def __str__(self) -> str:
        return str(self.strerror)


def disk_full(e: OSError) -> DiskFull:
    """An OSError for want of space (ENOSPC, EDQUOT) as a DiskFull, on the disk of the file it names."""
    if isinstance(e, DiskFull):
        return e
    return DiskFull(os.fsdecode(e.filename) if isinstance(e.filename, str | bytes) and e.filename else None,
                    quota=e.errno == errno.EDQUOT)


@contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Writes to ``path`` inside: a full disk raised there names it (the error of a ``write`` names no file,
    only that of an ``open`` does), so it is reported with the free space on its disk."""
    try:
        yield
    except OSError as e:
        if is_no_space(e) and not e.filename:
            e.filename = os.fspath(path)
        raise
