"""Remotion renders the timeline the ffmpeg engine renders, the same way: one short generated movie
rendered with both engines and compared structurally (Debian's Chromium; nothing downloaded)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import numpy as np
import psutil
import pytest
from PIL import Image

from movie_assets.builder.render import ffmpeg_engine, media, remotion
from movie_assets.builder.render.presets import PRESETS
from movie_assets.builder.render_revision import render_revision
from movie_assets.interfaces import api
from movie_assets.movie_files.movies import load_movie_request
from resources.settings import RENDERER_DIR, RenderEngine, Settings, remotion_missing
from tests.conftest import NO_FFPROBE, ffprobe, moviegen, real_part, small_request

MISSING = remotion_missing()
# CI installs Chromium and the renderer's packages (.ci/run, make install): there this test must run.
pytestmark = real_part(f"Remotion cannot run here: {MISSING}" if MISSING else None)

W, H, FPS = 854, 480, 30


def frames(path: Path, times_s: list[float]) -> np.ndarray:
    """RGB frames at these times, decoded by ffmpeg."""
    out = []
    for t in times_s:
        raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-ss", f"{t:.3f}", "-i", str(path), "-frames:v", "1",
                              "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        out.append(np.frombuffer(raw, np.uint8).reshape(H, W, 3).astype(np.float64))
    return np.stack(out)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


@contextmanager
def renderer_listening() -> Iterator[set[tuple[str, int]]]:
    """Every (address, port) a Remotion render process listens on while the block runs."""
    seen: set[tuple[str, int]] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for p in psutil.process_iter(["cmdline"]):
                if any("render.mjs" in part for part in p.info["cmdline"] or []):
                    try:
                        seen.update((c.laddr.ip, c.laddr.port) for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN)
                    except psutil.Error:
                        pass
            stop.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join(10)


def test_remotion_and_ffmpeg_draw_the_same_movie(home: Path, instance: dg.DagsterInstance, store, tmp_path: Path) -> None:
    """The generation renders with Remotion in the build graph (two chunks joined by stream copy and
    the soundtrack); `moviegen render --engine ffmpeg` renders the same revision for comparison."""
    assert not MISSING, f"Remotion cannot render here: {MISSING}"
    movie = api.new_movie(instance, store, small_request(duration_seconds=20, transition="fade"), "both")
    # A long temporary folder (systemd's PrivateTmp, CI workspaces and macOS give 50-100 characters): Chromium's
    # socket must still fit in 108 bytes, so the render's own folder is made under a short root.
    long_tmp = tmp_path / ("t" * (150 - len(str(tmp_path)) - 1))
    long_tmp.mkdir()
    assert len(str(long_tmp)) == 150
    with renderer_listening() as listening:
        proc = moviegen(home, {"MOVIEGEN_RENDER": "on", "MOVIEGEN_RENDER_ENGINE": "remotion", "TMPDIR": str(long_tmp)},
                        "generate", movie, "--json")
    generated = json.loads(proc.stdout)
    assert proc.returncode == 0 and generated["failed"] == [] and generated["movie_video"], proc.stderr[-3000:]
    # The bundle it rendered with is kept for every later render, named by what it is made from.
    assert (remotion.bundle_root() / bundle_hash(RENDERER_DIR) / "index.html").is_file()
    # Its servers (the bundle's, the media's) listen on loopback only, never on the Dagster UI's port.
    assert listening and all(ip == "127.0.0.1" and port != 3000 for ip, port in listening), listening
    revision = api.history(instance, store, movie)[-1]
    assert revision.movie_render == {"engine": "remotion", "preset": "480p"}
    ffmpeg = render_revision(store, movie, None, RenderEngine.ffmpeg, "480p", load_movie_request(store, movie), Settings())
    paths = [Path(generated["movie_video"].removeprefix("file://")), Path(ffmpeg.uri.removeprefix("file://"))]
    infos = [media.probe(p) for p in paths]
    for info in infos:  # the same duration and streams
        assert (info["width"], info["height"], info["frames"]) == (W, H, 20 * FPS), info
        assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"

    timeline = json.loads(store.read(api.timeline_uri(instance, store, movie)))
    visual, captions = timeline["tracks"][0]["clips"], timeline["tracks"][2]["clips"]
    picture = [c for c in visual if c["effect"]["type"] == "ken_burns"][0]
    start, end = picture["startMs"] / 1000, (picture["startMs"] + picture["durationMs"]) / 1000
    times = [start + 0.9, end - 0.1]  # past the fade in, before the next clip
    upper = slice(0, int(H * 0.7))  # above the captions
    a, b = frames(paths[0], times), frames(paths[1], times)
    # The same picture at the same time, framed the same (Ken Burns from the same point): the engines
    # agree far better with each other than either does with itself half a clip later.
    for k in range(2):
        assert psnr(a[k][upper], b[k][upper]) > 24, f"engines disagree at {times[k]} s: {psnr(a[k][upper], b[k][upper]):.1f} dB"
    assert psnr(a[0][upper], b[0][upper]) > psnr(a[0][upper], a[1][upper]) + 3
    # The same direction of motion: each engine's end frame matches the other's end frame better than its start.
    assert psnr(a[1][upper], b[1][upper]) > psnr(a[1][upper], b[0][upper])

    # Captions drawn while their words are spoken, not after: white caption text in the caption band
    # (bottom centre; the offline pictures keep it clear) while a caption is on, none once segment 0's
    # narration has ended (its picture is still on screen).
    on = captions[0]["startMs"] / 1000 + 0.3
    after = max(c["startMs"] + c["durationMs"] for c in captions if c["segment"] == 0) / 1000 + 0.3
    assert after < 9.5, "segment 0's narration must end before the segment does for this check"
    band = (slice(int(H * 0.78), int(H * 0.96)), slice(int(W * 0.15), int(W * 0.85)))
    for path in paths:
        with_caption, without = frames(path, [on, after])
        white = [float((f[band].min(axis=2) > 225).mean()) for f in (with_caption, without)]
        assert white[0] > 0.01 and white[1] < white[0] / 5, f"{path.name}: caption pixels {white} at {on} s / {after} s"


def test_remotion_renders_a_quality_and_a_dissolve_as_the_ffmpeg_engine_does(home: Path, tmp_path: Path) -> None:
    """2 s at the draft quality (854x480, 24 fps, 1500 kbit/s), a picture dissolving into another, rendered by both
    engines and read by ffprobe: the quality's size, frame rate and bitrate; mid-dissolve, each cell is one
    picture or the other (not a blend), the same cells in both engines."""
    assert not NO_FFPROBE, NO_FFPROBE
    fps, w, h = 24, 854, 480
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    smooth = np.stack([128 + 90 * np.sin(xx / 23), 128 + 90 * np.cos(yy / 17), 128 + 70 * np.sin((xx + yy) / 31)], -1)
    pictures = {"a": smooth, "b": 255 - smooth[:, ::-1]}
    for name, pic in pictures.items():
        Image.fromarray(np.rint(pic).astype(np.uint8)).save(tmp_path / f"{name}.png")
    still = {"type": "none"}
    visual = [{"id": "a", "type": "image", "startMs": 0, "durationMs": 1000, "src": (tmp_path / "a.png").as_uri(),
               "effect": still, "transitionIn": {"type": "cut", "durationMs": 0}},
              {"id": "b", "type": "image", "startMs": 1000, "durationMs": 1000, "src": (tmp_path / "b.png").as_uri(),
               "effect": still, "transitionIn": {"type": "dissolve", "durationMs": 800}}]
    timeline = {"formatVersion": 2, "movie": "q", "title": "", "summary": "", "language": "en", "assemblyStrategy": "cut",
                "fps": fps, "width": w, "height": h, "durationMs": 2000, "durationInFrames": 2 * fps, "errors": [],
                "tracks": [{"name": "visual", "clips": visual}, {"name": "narration", "clips": []},
                           {"name": "captions", "clips": []}, {"name": "music", "clips": []}]}
    preset = PRESETS["draft"]
    outs = {"remotion": tmp_path / "remotion.mp4", "ffmpeg": tmp_path / "ffmpeg.mp4"}
    remotion.render_chunks(timeline, [((0, 2 * fps), outs["remotion"])], preset, workdir=tmp_path / "work")
    ffmpeg_engine.render_video_chunk(timeline, (0, 2 * fps), media.file_uri_resolver, outs["ffmpeg"], preset)
    decoded = {}
    for engine, out in outs.items():
        info = ffprobe(out)
        assert (info["width"], info["height"], info["r_frame_rate"], int(info["nb_frames"])) == (w, h, "24/1", 48), engine
        assert int(info["bit_rate"]) == pytest.approx(1_500_000, rel=0.25), (engine, info["bit_rate"])
        raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                             capture_output=True, check=True).stdout
        decoded[engine] = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3).astype(np.float64)
    # The dissolve: frames 24..42 (800 ms at 24 fps: 19 frames); frame 33 is at p = 9/19.
    shown = ffmpeg_engine.dissolve_noise(w, h) < 9 / 19
    for engine, f in decoded.items():
        mid = f[33]
        assert np.abs(mid[shown] - pictures["b"][shown]).mean() < 12, engine
        assert np.abs(mid[~shown] - pictures["a"][~shown]).mean() < 12, engine
        assert np.abs(f[23] - pictures["a"]).mean() < 6 and np.abs(f[47] - pictures["b"]).mean() < 6, engine
    assert psnr(decoded["remotion"][33], decoded["ffmpeg"][33]) > 25
def bundle_hash(renderer: Path) -> str:
    out = subprocess.run(["node", str(renderer / "render.mjs"), "--bundle-hash"], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    return next(e["hash"] for e in map(json.loads, out.splitlines()) if e["event"] == "hash")


def test_the_bundle_is_named_by_what_it_is_made_from(tmp_path: Path) -> None:
    """Renders reuse one bundle across runs and homes (bundle_root()/<hash>): the hash is the same for the
    same sources wherever they are, and changes with any edit of the composition, so a render never
    uses a bundle of other sources."""
    assert not MISSING, f"Remotion cannot render here: {MISSING}"
    copy = tmp_path / "renderer"
    copy.mkdir()
    for name in ("src", "package.json", "package-lock.json", "render.mjs", "tsconfig.json"):
        (shutil.copytree if (RENDERER_DIR / name).is_dir() else shutil.copy2)(RENDERER_DIR / name, copy / name)
    (copy / "node_modules").symlink_to((RENDERER_DIR / "node_modules").resolve())
    same = bundle_hash(RENDERER_DIR)
    assert bundle_hash(copy) == same
    movie = copy / "src" / "Movie.tsx"
    movie.write_text(movie.read_text() + "\n// an edit\n")
    assert bundle_hash(copy) != same
    (copy / "src" / "Movie.tsx").write_text((RENDERER_DIR / "src" / "Movie.tsx").read_text())
    assert bundle_hash(copy) == same
    (copy / "package-lock.json").write_text((RENDERER_DIR / "package-lock.json").read_text() + "\n")
    assert bundle_hash(copy) != same
