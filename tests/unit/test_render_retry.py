"""Which render failures are resource failures (a chunk is rendered once more with reduced resources,
builder/render/recipes.py) and what that retry reduces."""

from __future__ import annotations

import errno

import pytest

from movie_assets.builder.render.media import RenderDiskFull, RenderError, resource_failure
from movie_assets.builder.render.recipes import reduced_settings


@pytest.mark.parametrize(("error", "kind"), [
    (MemoryError(), "memory"),
    (OSError(errno.ENOMEM, "Cannot allocate memory"), "memory"),
    (RenderError("ffmpeg encode frames 0-300: exited with -9 while reading its input (killed by SIGKILL)"), "killed"),
    (RenderError("Remotion render failed (exit -9): see below"), "killed"),
    (RenderError("Remotion render failed (exit 137): see below"), "killed"),
    (RenderError("ffmpeg encode frames 0-300: timed out after 900 s"), "timeout"),
    (RenderError("Remotion render timed out after 3600 s"), "timeout"),
    (RenderError("ffmpeg encode frames 0-300: exited with 244 (Terminating thread with return code -12 (Cannot allocate memory))"),
     "memory"),
    (RenderError("Remotion render failed (exit 1): FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"),
     "memory"),
    (RenderError("Remotion render failed (exit 1): Protocol error (Runtime.callFunctionOn): Target closed"), "crashed"),
    (RenderError("Remotion render failed (exit 1): Page crashed!"), "crashed"),
])
def test_resource_failures(error: BaseException, kind: str) -> None:
    assert resource_failure(error) == kind


@pytest.mark.parametrize("error", [
    FileNotFoundError("media for file:///x.png not found at /x.png"),  # a missing asset
    ValueError("frames (0, 400) outside the timeline's 0..300"),  # a bad timeline
    OSError(errno.EACCES, "Permission denied"),
    RenderError("ffmpeg decode broken.mp4: exited with 1 (Invalid data found when processing input)"),
    RenderError("Remotion render failed (exit 1): the timeline has no clip 'v#3'"),
    RenderError("Remotion render failed (exit -15): see below"),  # stopped by us (a cancelled build)
    RenderDiskFull("/tmp/x/chunk.mp4", "ffmpeg encode frames 0-300", detail="No space left on device"),  # a full disk is not memory
    KeyboardInterrupt(),
])
def test_other_failures_are_not_retried(error: BaseException) -> None:
    assert resource_failure(error) is None


def test_the_retry_keeps_the_movie_and_reduces_only_resources() -> None:
    assert reduced_settings(False, "killed") == "x264 on 1 thread"
    assert reduced_settings(False, "timeout") == "x264 on 1 thread, a 1800 s deadline instead of 900 s"
    assert reduced_settings(True, "memory") == "Remotion's video frame cache at 128 MB and 1 video decoding thread"
    assert reduced_settings(True, "timeout").endswith("a 7200 s deadline instead of 3600 s")
