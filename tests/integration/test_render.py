"""The rendered movie through Dagster for real (ffmpeg engine): a playable MP4 of exactly the
timeline, re-rendered incrementally after an edit, frame-exact at the chunk joins."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from movie_assets.builder.render import ffmpeg_engine, media
from movie_assets.builder.render.presets import PRESETS
from movie_assets.builder.render_revision import render_revision
from movie_assets.domain.blueprint import NodeKey
from movie_assets.interfaces import api
from movie_assets.movie_files.movies import load_movie_request
from movie_assets.orchestration.event_log import load_state
from resources.settings import RenderEngine, Settings
from tests.conftest import local_file, small_request


def frames_of(path: Path, indexes: list[int], size: tuple[int, int]) -> np.ndarray:
    """Decoded RGB frames at these indexes."""
    w, h = size
    select = "+".join(f"eq(n\\,{i})" for i in indexes)
    raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf", f"select={select}",
                          "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(len(indexes), h, w, 3).astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture
def rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEGEN_RENDER", "on")


def test_a_generation_renders_the_movie_and_an_edit_rerenders_one_chunk(
        rendering: None, instance: dg.DagsterInstance, store, tmp_path: Path) -> None:
    movie = api.new_movie(instance, store, small_request(transition="crossfade", segments={"1": {"transition": "wipe"}}), "film")
    first = api.generate(instance, store, movie)
    assert first.success, first.failed
    assert first.movie_video and "movie_video[" not in str(first.failed)
    info = media.probe(local_file(first.movie_video))
    assert (info["width"], info["height"], info["frames"]) == (854, 480, 900)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac" and abs(info["duration_ms"] - 30000) <= 34
    assert api.status(instance, store, movie).movie_video == first.movie_video
    checks = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(dg.AssetKey("movie_video"), "movie_matches_timeline"))
    assert checks is not None and checks.evaluation.passed  # type: ignore[union-attr]

    api.edit(instance, store, movie, [("segments.1.narration", "A brand new line about the war.")])
    second = api.generate(instance, store, movie)
    renders = sorted(n for n in second.built if n.split("[")[0] in ("video_chunk", "soundtrack", "movie_video"))
    # Segment 1's chunk, segment 2's (its first picture crossfades from segment 1's last one, which
    # changed), the audio and the join; segment 0's chunk is kept.
    assert renders == ["movie_video", "soundtrack", "video_chunk[01]", "video_chunk[02]"]
    assert sorted(second.skipped) == ["video_chunk[00]"]
    assert local_file(first.movie_video).exists() and second.movie_video != first.movie_video  # both revisions playable

    # The joined movie equals a one-piece render of the same timeline, frame for frame at the joins.
    timeline = api.load_timeline(instance, store, movie)
    scratch = tmp_path / "scratch.mp4"
    ffmpeg_engine.render_movie(timeline, media.file_uri_resolver, scratch, PRESETS["480p"], workdir=tmp_path / "w")
    joined = local_file(second.movie_video)
    assert media.probe(joined)["frames"] == media.probe(scratch)["frames"] == 900
    at_joins = [0, 299, 300, 599, 600, 899]
    for k, (a, b) in enumerate(zip(frames_of(joined, at_joins, (854, 480)), frames_of(scratch, at_joins, (854, 480)), strict=True)):
        assert psnr(a, b) > 35, f"frame {at_joins[k]} differs: {psnr(a, b):.1f} dB"
    shifted = frames_of(scratch, [298, 301], (854, 480))
    assert psnr(frames_of(joined, [299], (854, 480))[0], shifted[0]) < psnr(*frames_of(joined, [299], (854, 480)), *frames_of(scratch, [299], (854, 480)))


def test_a_missing_picture_is_a_placeholder_and_the_movie_still_renders(
        rendering: None, instance: dg.DagsterInstance, store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEGEN_FALLBACK", "off")  # a gap in the timeline, not an offline stand-in
    request = small_request(duration_seconds=20, segments={"1": {"image_prompts": {"1": "a lighthouse FAILME"}}})
    movie = api.new_movie(instance, store, request, "gap")
    result = api.generate(instance, store, movie, resource_config={"images": {"fail_when": "FAILME"}})
    assert list(result.failed) == ["segment_image[01_1]"]
    timeline = json.loads(local_file(result.timeline).read_text())
    placeholders = [c for c in timeline["tracks"][0]["clips"] if c["type"] == "placeholder"]
    assert [(c["partition"], c["startMs"], c["durationMs"]) for c in placeholders] == [("gap|01_1", 15000, 5000)]
    assert result.movie_video is not None
    assert media.probe(local_file(result.movie_video))["frames"] == 600


def oom_killing_ffmpeg(folder: Path) -> Path:
    """An ffmpeg (IMAGEIO_FFMPEG_EXE, where the engine finds its binary) whose first H.264 encode is
    killed by SIGKILL a moment after it starts, as the kernel's out-of-memory killer kills it; every other
    run is the real ffmpeg. Each encode's arguments are kept in encodes.txt."""
    script = folder / "ffmpeg"
    script.write_text(f"""#!/bin/sh
case "$*" in *libx264*)
  echo "$*" >> '{folder}/encodes.txt'
  if mkdir '{folder}/killed' 2>/dev/null; then (sleep 0.3; kill -9 $$) & fi;;
esac
exec '{media.ffmpeg_exe()}' "$@"
""")
    script.chmod(0o755)
    return script


def test_a_failed_render_leaves_the_revision_unrendered_and_the_next_generate_finishes_it(
        instance: dg.DagsterInstance, store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    movie = api.new_movie(instance, store, small_request(duration_seconds=20), "broken")
    unrendered = api.generate(instance, store, movie)  # MOVIEGEN_RENDER=off: the timeline only
    assert unrendered.success and unrendered.movie_video is None
    timeline = api.load_timeline(instance, store, movie)
    picture = local_file(timeline["tracks"][0]["clips"][0]["src"])
    kept = picture.read_bytes()
    # Garbage of the same size (a deleted or cut file would be noticed and rebuilt before the render; only
    # `--verify` hashes): the first segment's chunk cannot be drawn.
    picture.write_bytes(bytes(len(kept)))
    monkeypatch.setenv("MOVIEGEN_RENDER", "on")
    failed = api.generate(instance, store, movie)
    assert not failed.success and "video_chunk[00]" in failed.failed
    assert "retried" not in failed.failed["video_chunk[00]"]  # a picture that cannot be drawn: no reduced retry
    assert "video_chunk[01]" in failed.built and failed.movie_video is None  # no older movie passes for this one
    assert api.history(instance, store, movie)[-1].movie_video is None
    picture.write_bytes(kept)
    # The chunk's first encode is killed (SIGKILL, as by the out-of-memory killer): it is rendered once more
    # with x264 on one thread, and the movie is the same movie.
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(oom_killing_ffmpeg(tmp_path)))
    fixed = api.generate(instance, store, movie)
    assert fixed.success and fixed.movie_video is not None, fixed.failed
    assert sorted(n for n in fixed.built if n.startswith("video_chunk")) == ["video_chunk[00]"]
    first, retry = (tmp_path / "encodes.txt").read_text().splitlines()
    assert "-threads" not in first.split() and " -threads 1 " in f" {retry} "
    chunk = load_state(instance, movie, [NodeKey("video_chunk", 0)]).records[NodeKey("video_chunk", 0)].metadata
    assert "killed by SIGKILL" in chunk["render_retry"] and chunk["render_retry"].endswith("; retried with x264 on 1 thread")
    assert fixed.retried == {"video_chunk[00]": chunk["render_retry"]} and "degraded" not in chunk  # `generate` says it
    info = media.probe(local_file(fixed.movie_video))
    assert (info["width"], info["height"], info["frames"], info["video_codec"]) == (854, 480, 600, "h264")
    decoded = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-xerror", "-i", str(local_file(fixed.movie_video)), "-f", "null", "-"],
                             capture_output=True, text=True)
    assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr  # the joined chunks decode cleanly


def test_render_of_a_revision_runs_the_graphs_render_nodes_and_reuses_what_exists(
        rendering: None, instance: dg.DagsterInstance, store, monkeypatch: pytest.MonkeyPatch) -> None:
    """`moviegen render` builds the same render nodes as a generation (one render pipeline): the
    generation's own movie is reused (no render), another preset renders once and is then reused, and a
    cut file is rendered again, never handed out."""
    movie = api.new_movie(instance, store, small_request(duration_seconds=20), "again")
    made = api.generate(instance, store, movie)
    assert made.success and made.movie_video
    request, settings = load_movie_request(store, movie), Settings(render_engine=RenderEngine.ffmpeg)
    same = render_revision(store, movie, None, RenderEngine.ffmpeg, None, request, settings)
    assert same.reused and same.uri == made.movie_video and same.preset == "480p" and same.frames == 600

    bigger = render_revision(store, movie, None, RenderEngine.ffmpeg, "720p", request, settings)
    assert not bigger.reused and (bigger.width, bigger.height, bigger.frames) == (1280, 720, 600)
    info = media.probe(local_file(bigger.uri))
    assert (info["width"], info["height"], info["frames"]) == (1280, 720, 600)
    again = render_revision(store, movie, None, RenderEngine.ffmpeg, "720p", request, settings)
    assert again.reused and again.uri == bigger.uri
    assert api.status(instance, store, movie).movie_video == made.movie_video  # the movie's own render is untouched

    data = local_file(bigger.uri).read_bytes()
    local_file(bigger.uri).write_bytes(data[: len(data) // 2])  # damaged: a half file is never handed out
    healed = render_revision(store, movie, None, RenderEngine.ffmpeg, "720p", request, settings)
    assert not healed.reused and media.probe(local_file(healed.uri))["frames"] == 600
