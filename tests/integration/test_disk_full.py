"""A full disk says so: the free space on the disk that ran out and what was being written there, as
one line of category ``local`` whose suggestion names that disk. Writes to /dev/full fail with ENOSPC
as on a full disk (Linux): ffmpeg then exits with 228 (-ENOSPC) and says "No space left on device"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from movie_assets.builder.render.media import Ffmpeg, RenderError
from resources.providers.base import describe_failure
from resources.runtime.disk import writing
from resources.runtime.media import MediaError, run_ffmpeg

FULL = Path("/dev/full")
pytestmark = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full (not Linux)")

# The first line of a full disk's failure, for a write to /dev/full (on /dev).
DEV_FULL = r"disk full: \d+(\.\d)? [KMGT]?B free on /dev \({doing}writing /dev/full\)"


def assert_disk_full(e: BaseException, doing: str) -> None:
    info = describe_failure(e)
    assert info["category"] == "local", info
    assert re.fullmatch(DEV_FULL.format(doing=re.escape(doing)), info["message"]), info["message"]
    assert info["suggestion"].startswith("free disk space on /dev (or point MOVIEGEN_SCRATCH_DIR or MOVIEGEN_STORAGE"), info


def test_ffmpeg_encoding_onto_a_full_disk() -> None:
    """The render's ffmpeg (the soundtrack's encoder) meets ENOSPC: a RenderError still (callers catch
    it), reported as a full disk, not as an unexpected error to report."""
    with pytest.raises(RenderError) as e, Ffmpeg("encode soundtrack", 60) as enc:
        enc.start(["-f", "lavfi", "-i", "sine=d=2", "-c:a", "aac", "-f", "adts", "-y", str(FULL)])
        enc.finish()
    assert_disk_full(e.value, "ffmpeg encode soundtrack, ")
    assert "No space left on device" in e.value.detail  # ffmpeg's own words, for --verbose


def test_a_media_tool_and_a_plain_write_onto_a_full_disk() -> None:
    with pytest.raises(MediaError) as e:
        run_ffmpeg(["-f", "lavfi", "-i", "sine=d=1", "-f", "mp3"], {}, str(FULL))
    assert_disk_full(e.value, "ffmpeg, ")
    with pytest.raises(OSError) as written, writing(FULL):  # a write's own ENOSPC names no file: writing() names it
        FULL.write_bytes(b"\0" * 65536)
    assert_disk_full(written.value, "")
