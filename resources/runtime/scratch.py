"""Scratch folders (renders, probes, downloads): in one place, each owned by one process, removed by
their owner when it is done or, when the owner was killed, by the next ``sweep``.

The root is ``$MOVIEGEN_SCRATCH_DIR``, by default ``<temp dir>/moviegen-<uid>``: short on purpose,
since Chromium's socket inside a Remotion render's folder must fit in a 108-byte socket address. A folder is
named after the process that made it, ``<prefix><pid>.<4 hex>``, and holds a marker (``.owner``) with
that process's start time (on Linux in clock ticks since boot, which no clock step changes), so a
reused pid is told apart. ``sweep`` removes the folders whose owner
is gone (no such pid, a zombie, or another start time) after killing whatever still runs inside them
(working directory or TMPDIR there, and their descendants); a live process's folder is never touched,
so several generations can run at once. It runs when a generation starts and when a process makes its
first scratch folder. The root itself is removed whenever it is left empty.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from resources.runtime.processes import started

ROOT_ENV = "MOVIEGEN_SCRATCH_DIR"
MARKER = ".owner"

log = logging.getLogger("moviegen.scratch")

_lock = threading.Lock()
_me: tuple[int, float] | None = None  # (pid, start time) of this process
_swept: set[tuple[int, Path]] = set()  # (pid, root): this process swept that root already


@dataclass
class Swept:
    removed: list[Path] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)  # pids of leftover processes that were killed


def scratch_root() -> Path:
    configured = os.environ.get(ROOT_ENV, "").strip()
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"moviegen-{os.getuid()}"


# The longest root whose folders (<root>/<prefix><pid>.<4 hex>) still leave room for Chromium's singleton
# socket inside them (see builder/render/remotion.py).
SHORT_ROOT_CHARS = 20


def short_scratch_root() -> Path:
    """A root for folders whose paths must stay short (Chromium's socket must fit in 108 bytes): the
    scratch root when it is short enough, else ``/tmp/mg-<uid>``, whatever TMPDIR is (systemd's
    PrivateTmp, CI workspaces and macOS give temporary folders of 50-100 characters)."""
    root = scratch_root()
    return root if len(str(root)) <= SHORT_ROOT_CHARS else Path("/tmp") / f"mg-{os.getuid()}"


def _owner() -> tuple[int, float]:
    global _me
    pid = os.getpid()
    if _me is None or _me[0] != pid:
        start = started(pid)
        assert start is not None
        _me = (pid, start)
    return _me


def _ensure_root(root: Path) -> Path:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(root)
    configured = os.environ.get(ROOT_ENV, "").strip()
    if root != (Path(configured) if configured else None) and st.st_uid != os.getuid():  # someone else made a shared default
        raise PermissionError(f"scratch folder {root} belongs to uid {st.st_uid}; set {ROOT_ENV} to a folder of yours")
    return root


def new_scratch_dir(prefix: str, root: Path | None = None) -> Path:
    """A new empty folder for this process (like ``tempfile.mkdtemp``) in ``root`` (default: the scratch
    root); the caller removes it with ``remove_scratch_dir``."""
    pid, start = _owner()
    root = root or scratch_root()
    _sweep_once(root)
    for _ in range(1000):
        try:
            path = _ensure_root(root) / f"{prefix}{pid}.{secrets.token_hex(2)}"
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        except FileNotFoundError:  # another process removed the empty root meanwhile: make it again
            continue
        try:
            (path / MARKER).write_text(f"{pid} {start!r}\n")
        except OSError as e:  # e.g. a full disk: no folder without its marker is left (sweep keeps those)
            remove_scratch_dir(path)
            e.filename = e.filename or str(path / MARKER)  # a write's error names no file (see runtime/disk.py)
            raise
        return path
    raise FileExistsError(f"no free scratch folder name {prefix}{pid}.* in {root}")


def remove_scratch_dir(path: Path) -> None:
    """Remove a scratch folder with its contents, and the root if nothing else is left in it."""
    shutil.rmtree(path, ignore_errors=True)
    try:
        Path(path).parent.rmdir()
    except OSError:  # not empty (or not there): fine
        pass


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A new scratch folder, removed with its contents when the block ends."""
    path = new_scratch_dir(prefix)
    try:
        yield path
    finally:
        remove_scratch_dir(path)


def _sweep_once(root: Path) -> None:
    with _lock:
        if (os.getpid(), root) in _swept:
            return
        _swept.add((os.getpid(), root))
    sweep(root)


def _owner_pid(folder: Path) -> int | None:
    """The pid in a scratch folder's name (``<prefix><pid>.<hex>``), None for anything else."""
    stem, dot, tail = folder.name.rpartition(".")
    digits = len(stem) - len(stem.rstrip("0123456789"))
    if not dot or not tail or any(c not in "0123456789abcdef" for c in tail) or digits == 0:
        return None
    return int(stem[-digits:])


def _owner_alive(folder: Path, pid: int) -> bool:
    """Whether the folder's owner still runs. Only a folder with moviegen's marker naming that pid is
    ever considered gone: anything else in the root (a folder a user put there, one whose owner is
    writing its marker right now) is kept."""
    try:
        words = (folder / MARKER).read_text().split()
        recorded_pid, recorded = int(words[0]), float(words[1])
    except (OSError, ValueError, IndexError):
        return True  # no marker (not ours, or being made), or a marker being written: keep it
    if recorded_pid != pid:
        return True  # not a marker moviegen wrote for this folder
    try:
        start = started(pid)
    except (OSError, psutil.Error):
        return True  # cannot tell: keep it
    if start is None:
        return False
    return recorded == start  # otherwise the pid was reused: the owner is gone


def _kill_leftovers(folders: list[Path]) -> list[int]:
    """Kill the processes running inside the folders (working directory or TMPDIR there: ffmpeg,
    node, Chromium) and their descendants (sandboxed Chromium processes may hide their environment)."""
    prefixes = tuple({os.path.join(str(p), "") for f in folders for p in (f, f.resolve())})
    inside = lambda path: bool(path) and os.path.join(path, "").startswith(prefixes)
    spared = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter():
        if proc.pid in spared:
            continue
        try:
            if proc.uids().real == os.getuid() and (inside(proc.cwd()) or inside(proc.environ().get("TMPDIR", ""))):
                found[proc.pid] = proc
        except psutil.Error:
            continue
    for proc in list(found.values()):
        try:
            found.update({c.pid: c for c in proc.children(recursive=True) if c.pid not in spared})
        except psutil.Error:
            pass
    for proc in found.values():
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(list(found.values()), timeout=5)
    return sorted(found)


def sweep(root: Path | None = None) -> Swept:
    """Remove the scratch folders of processes that are gone, killing what still runs in them (default:
    in the scratch root and the short root). Never raises: what cannot be removed now is tried again."""
    if root is None:
        swept = sweep(scratch_root())
        if short_scratch_root() != scratch_root():
            more = sweep(short_scratch_root())
            swept.removed += more.removed
            swept.killed += more.killed
        return swept
    _swept.add((os.getpid(), root))
    swept = Swept()
    try:
        entries = [e for e in root.iterdir() if e.is_dir() and not e.is_symlink()]
    except OSError:
        return swept
    dead = [e for e in entries if (pid := _owner_pid(e)) is not None and not _owner_alive(e, pid)]
    if not dead:
        return swept
    try:
        swept.killed = _kill_leftovers(dead)
    except psutil.Error as e:
        log.warning("scratch sweep: cannot list processes: %s", e)
    for folder in dead:
        remove_scratch_dir(folder)
        if not folder.exists():
            swept.removed.append(folder)
    if swept.removed or swept.killed:
        log.info("scratch sweep: removed %d folder(s) of dead processes, killed %d leftover process(es)",
                 len(swept.removed), len(swept.killed))
    return swept
