"""The ffmpeg render engine on small real media (320x180, 30 fps): frame-exact chunks that join by
stream copy, Ken Burns motion, transitions, captions, ducking, and no partial files on failure."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from movie_assets.builder.render import audio, layout
from movie_assets.builder.render import ffmpeg_engine as eng
from movie_assets.builder.render import media as render_media
from movie_assets.builder.render.presets import PRESETS, Preset, output_size
from tests.conftest import NO_FFPROBE, ffprobe, real_part

FF = imageio_ffmpeg.get_ffmpeg_exe()
W, H, FPS = 320, 180, 30
TEST = Preset("180p", 180, 23, "veryfast", "96k")  # the real encoder settings, at a cheap frame size


def run(*args: str) -> bytes:
    return subprocess.run([FF, "-v", "error", "-nostdin", *args], check=True, capture_output=True, timeout=60).stdout


def decode(path: Path, w: int = W, h: int = H) -> np.ndarray:
    """All frames as (n, h, w, 3) uint8 RGB."""
    return np.frombuffer(run("-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"), np.uint8).reshape(-1, h, w, 3)


def decode_audio(path: Path) -> np.ndarray:
    return np.frombuffer(run("-i", str(path), "-ac", "1", "-ar", "48000", "-f", "f32le", "-"), "<f4")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def resolver(uri: str) -> Path:
    return render_media.file_uri_resolver(uri)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("media")
    # Top half a left-to-right gradient, bottom half black with a 4 px white bar at the centre.
    x = np.arange(W, dtype=np.float64)[None, :].repeat(H, 0)
    pic = np.rint(x * 255 / (W - 1))
    pic[H // 2:] = 0
    pic[H // 2:, W // 2 - 2:W // 2 + 2] = 255
    Image.fromarray(pic.astype(np.uint8)).convert("RGB").save(d / "gradient.png")
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)  # a smooth picture, like most generated ones
    smooth = np.stack([128 + 90 * np.sin(xx / 23), 128 + 90 * np.cos(yy / 17), 128 + 70 * np.sin((xx + yy) / 31)], -1)
    Image.fromarray(np.rint(smooth).astype(np.uint8)).save(d / "smooth.png")
    stripes = (np.arange(W) // 16 % 2)[None, :, None].repeat(H, 0)  # vertical red/yellow stripes
    Image.fromarray(np.where(stripes, [220, 200, 40], [200, 30, 30]).astype(np.uint8)).save(d / "x.png")
    bands = (np.arange(H) // 12 % 2)[:, None, None].repeat(W, 1)  # horizontal blue/cyan bands
    Image.fromarray(np.where(bands, [30, 60, 220], [40, 200, 200]).astype(np.uint8)).save(d / "y.png")
    Image.new("RGB", (W, H), (128, 128, 128)).save(d / "grey.png")
    run("-f", "lavfi", "-i", f"testsrc2=s={W}x{H}:r={FPS}:d=1", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", str(d / "video.mp4"))
    run("-f", "lavfi", "-i", "sine=frequency=1000:duration=3", str(d / "narration.mp3"))
    run("-f", "lavfi", "-i", "sine=frequency=220:duration=8", "-ac", "2", str(d / "music.mp3"))
    (d / "broken.mp4").write_bytes(b"not a video at all")
    return {p.stem: p.as_uri() for p in d.iterdir()}


def image(src: str, start: int, dur: int, effect: dict[str, Any] | None = None, transition: str = "cut",
          trans_ms: int = 0, kind: str = "image") -> dict[str, Any]:
    return {"id": f"{kind}:{start}", "type": kind, "startMs": start, "durationMs": dur, "src": src,
            "effect": effect or {"type": "none"}, "transitionIn": {"type": transition, "durationMs": trans_ms}}


def timeline(visual: list[dict[str, Any]], duration_ms: int, *, captions: list[dict[str, Any]] = (),
             narration: list[dict[str, Any]] = (), music: list[dict[str, Any]] = (), width: int = W,
             height: int = H) -> dict[str, Any]:
    return {"formatVersion": 2, "movie": "t", "fps": FPS, "width": width, "height": height, "durationMs": duration_ms,
            "durationInFrames": duration_ms * FPS // 1000,
            "tracks": [{"name": "visual", "clips": list(visual)}, {"name": "narration", "clips": list(narration)},
                       {"name": "captions", "clips": list(captions)}, {"name": "music", "clips": list(music)}],
            "errors": []}


def test_presets_and_output_size() -> None:
    assert set(PRESETS) == {"480p", "720p", "1080p", "2160p", "draft", "standard", "high", "premium"}
    tl = timeline([], 10_000, width=1280, height=720)
    assert output_size(tl, PRESETS["720p"]) == (1280, 720)
    assert output_size(tl, PRESETS["480p"]) == (854, 480)  # 853.3 rounded to even
    assert output_size(tl, PRESETS["2160p"]) == (3840, 2160)
    assert output_size(timeline([], 10_000, width=720, height=1280), PRESETS["1080p"]) == (1080, 1920)


def test_chunks_and_their_clips(media: dict[str, str]) -> None:
    visual = [image(media["x"], 0, 10_000), image(media["y"], 10_000, 10_000, transition="crossfade", trans_ms=500),
              image(media["x"], 20_000, 10_000)]
    caps = [{"id": "c#0", "type": "caption", "startMs": 9_000, "durationMs": 2_000, "text": "across"}]
    tl = timeline(visual, 30_000, captions=caps)
    assert layout.segment_chunks(tl) == [(0, 300), (300, 600), (600, 900)]
    assert layout.clips_for_chunk(tl, (0, 300)) == [visual[0], caps[0]]
    # The crossfade at 10 s lies in the second chunk but draws the first clip too.
    assert layout.clips_for_chunk(tl, (300, 600)) == [visual[0], visual[1], caps[0]]
    assert layout.clips_for_chunk(tl, (600, 900)) == [visual[2]]  # a cut needs nothing before it
    assert layout.clips_for_chunk(tl, (310, 600)) == [visual[0], visual[1], caps[0]]  # transition: frames 300..314
    assert layout.clips_for_chunk(tl, (330, 600)) == [visual[1]]  # past the transition and the caption


def test_ken_burns_pans_and_zooms_smoothly(media: dict[str, str], tmp_path: Path) -> None:
    pan = {"type": "ken_burns", "from": {"scale": 1.25, "x": 0.4, "y": 0.5}, "to": {"scale": 1.25, "x": 0.6, "y": 0.5}}
    zoom = {"type": "ken_burns", "from": {"scale": 1.0, "x": 0.5, "y": 0.5}, "to": {"scale": 1.5, "x": 0.5, "y": 0.5}}
    tl = timeline([image(media["gradient"], 0, 2000, pan), image(media["gradient"], 2000, 2000, zoom)], 4000)
    out = tmp_path / "kb.mp4"
    eng.render_video_chunk(tl, (0, 120), resolver, out, replace(TEST, crf=12))  # little encoder noise
    frames = decode(out).astype(np.float64)[..., 0]
    top, bottom = frames[:, :80], frames[:, 100:170]  # the gradient half and the bar half
    # Pan right over the gradient: the view [x - 0.4, x + 0.4] brightens from 0.4 to 0.6 of white.
    means = top[:60].mean(axis=(1, 2))
    assert means[0] == pytest.approx(0.4 * 255, abs=3)
    assert means[59] == pytest.approx((0.4 + 0.2 * 59 / 60) * 255, abs=3)
    assert (np.diff(means) > 0).all()
    # The bar moves left by 0.2 * 320 / 60 * 1.25 = 1.33 px a frame, every frame the same to a
    # fraction of a pixel (zoompan's integer crop would step 1, 1, 2).
    profile = np.clip(bottom[:60].mean(axis=1) - 20, 0, None)
    centroid = (profile * np.arange(W)).sum(axis=1) / profile.sum(axis=1)
    assert centroid[0] == pytest.approx(160 + 32 * 1.25, abs=0.5)
    assert np.abs(np.diff(centroid) + 4 / 3).max() < 0.3
    # Zoom in around the centre: the frame spans less of the gradient, the edge columns move inwards.
    first, last = top[60], top[119]
    assert first[:, 2].mean() < 10 and first[:, -3].mean() > 245
    s = 1 + 0.5 * 59 / 60
    assert last[:, 0].mean() == pytest.approx((0.5 - 0.5 / s) * 255, abs=4)
    assert last[:, -1].mean() == pytest.approx((0.5 + 0.5 / s) * 255, abs=4)
    assert first[:, 150:170].mean() == pytest.approx(last[:, 150:170].mean(), abs=3)  # the centre stays


def test_transitions(media: dict[str, str], tmp_path: Path) -> None:
    kinds = ["fade", "crossfade", "dissolve", "wipe", "slide", "zoom", "cut"]
    visual = [image(media["x"], 0, 1000)]
    for k, kind in enumerate(kinds, start=1):  # alternate the two pictures, 1 s each, 400 ms transitions
        visual.append(image(media["y" if k % 2 else "x"], k * 1000, 1000, transition=kind, trans_ms=400))
    tl = timeline(visual, 1000 * len(visual))
    out = tmp_path / "tr.mp4"
    eng.render_video_chunk(tl, (0, 30 * len(visual)), resolver, out, TEST)
    frames = decode(out)
    assert len(frames) == 30 * len(visual)
    for k, kind in enumerate(kinds, start=1):
        start = 30 * k
        prev, cur, mid = frames[start - 1], frames[start + 20], frames[start + 6]  # 12 transition frames
        if kind == "cut":
            assert diff(frames[start], cur) < 3 and diff(frames[start], prev) > 40
            continue
        assert diff(mid, prev) > 15 and diff(mid, cur) > 15, kind
        if kind == "fade":
            assert mid.mean() < 10  # halfway through black
        if kind == "dissolve":  # a noise dissolve: each cell either picture, in noise order (not a blend)
            shown = eng.dissolve_noise(W, H) < 6 / 12
            assert 0.4 < shown.mean() < 0.6
            # (2 px cells at this size, so x264 smears their edges: 9-14 here; a crossfade's blend gives ~70)
            assert diff(mid[shown], cur[shown]) < 25 and diff(mid[~shown], prev[~shown]) < 25
        if kind == "wipe":  # left half already the incoming picture, right half still the previous
            assert diff(mid[:, 10:150], cur[:, 10:150]) < 4 and diff(mid[:, 170:], prev[:, 170:]) < 4
        if kind == "slide":  # incoming's left half now covers the right half; the left is the previous
            assert diff(mid[:, 170:], cur[:, 10:160]) < 4 and diff(mid[:, :150], prev[:, :150]) < 4


def test_captions_on_only_while_shown(media: dict[str, str], tmp_path: Path) -> None:
    words = [{"text": w, "startMs": 500 + 250 * i, "endMs": 750 + 250 * i} for i, w in enumerate(["Hello", "moving", "world"])]
    caps = [{"id": "c#0", "type": "caption", "startMs": 500, "durationMs": 1000, "text": "Hello moving world", "words": words}]
    tl = timeline([image(media["grey"], 0, 2000)], 2000, captions=caps, width=640, height=360)
    out = tmp_path / "cap.mp4"
    eng.render_video_chunk(tl, (0, 60), resolver, out, Preset("360p", 360, 23, "veryfast", "96k"))  # 16 px text
    frames = decode(out, 640, 360).astype(np.int16)
    region = (slice(288, 338), slice(213, 427))  # bottom centre, above the 6 % margin
    plain = frames[0][region]
    assert np.abs(plain - 128).mean() < 3
    assert diff(frames[20][region], plain) > 10  # 667 ms: on
    assert diff(frames[14][region], plain) < 2 and diff(frames[45][region], plain) < 2  # before / after

    def yellow(f: np.ndarray) -> np.ndarray:  # columns of yellowish pixels (white text has R = G = B)
        r = f[region]
        return np.nonzero((r[..., 0] + r[..., 1]) / 2 - r[..., 2] > 60)[1]

    assert len(yellow(frames[20])) > 20  # "Hello" at 667 ms
    assert yellow(frames[30]).mean() > yellow(frames[20]).mean() + 40  # "world" at 1000 ms, to the right
    assert len(yellow(frames[43])) < 3  # 1433 ms: no word any more, the caption still on
    assert diff(frames[43][region], plain) > 10


def test_video_clip_holds_last_frame_and_placeholder(media: dict[str, str], tmp_path: Path) -> None:
    placeholder = {"id": "p", "type": "placeholder", "startMs": 2000, "durationMs": 1000, "text": "Picture missing",
                   "effect": {"type": "none"}, "transitionIn": {"type": "cut", "durationMs": 0}}
    tl = timeline([image(media["video"], 0, 2000, kind="video"), placeholder], 3000)
    out = tmp_path / "vid.mp4"
    eng.render_video_chunk(tl, (10, 90), resolver, out, TEST)  # starts inside the video
    frames = decode(out)
    assert len(frames) == 80
    assert diff(frames[0], frames[10]) > 3  # the source plays (frames 10 and 20)
    assert diff(frames[25], frames[45]) < 2  # the 1 s source is over: its last frame is held
    # A chunk that starts after the source's end but inside the clip shows the held last frame.
    eng.render_video_chunk(tl, (45, 60), resolver, tmp_path / "held.mp4", TEST)
    held = decode(tmp_path / "held.mp4")
    assert len(held) == 15 and psnr(held[0], frames[35]) > 35 and psnr(held[14], frames[35]) > 35
    bg = frames[70][5:20, 5:20].reshape(-1, 3).mean(axis=0)
    assert np.allclose(bg, (0x20, 0x21, 0x24), atol=4)
    assert frames[70][80:100, 100:220].max() > 120  # the light grey text


def test_soundtrack_ducks_music_under_narration(media: dict[str, str], tmp_path: Path) -> None:
    narration = [{"id": "n", "type": "audio", "startMs": 2000, "durationMs": 2500, "src": media["narration"], "volume": 1.0}]
    music = [{"id": "m", "type": "audio", "startMs": 0, "durationMs": 6000, "src": media["music"], "volume": 0.35,
              "ducking": [{"startMs": 2000, "endMs": 4500, "volume": 0.12}]}]
    tl = timeline([], 6000, narration=narration, music=music)
    out = tmp_path / "sound.m4a"
    eng.render_soundtrack(tl, resolver, out, TEST)
    info = render_media.probe(out)
    assert info["audio_codec"] == "aac" and info["video_codec"] is None and info["duration_ms"] == 6000
    x = decode_audio(out)
    assert len(x) == 6 * 48_000

    def level(hz: float, a_ms: int, b_ms: int) -> float:  # amplitude of one tone in a window
        seg = x[a_ms * 48:b_ms * 48]
        t = np.arange(len(seg)) / 48_000
        return 2 * abs(np.sum(seg * np.exp(-2j * np.pi * hz * t))) / len(seg)

    outside, under, after = level(220, 500, 1500), level(220, 2500, 4000), level(220, 5000, 5800)
    assert under / outside == pytest.approx(0.12 / 0.35, rel=0.15)
    assert after / outside == pytest.approx(1.0, rel=0.1)
    assert under * 1.2 < level(220, 1900, 2000) < outside * 0.8  # ramping down before the window
    assert level(1000, 2500, 4000) > 5 * level(1000, 500, 1500)  # narration only where it is placed


def test_soundtrack_pieces_join_without_a_seam_and_an_edit_reencodes_only_its_piece(tmp_path: Path) -> None:
    """The soundtrack is encoded in 10 s pieces on AAC's frame grid and joined by stream copy: the joins
    are as clean as the rest, the length is exact, an edit under one piece re-encodes that piece alone
    (the others come from the cache), and the result equals a render from scratch byte for byte. The
    cache is keyed by the media's bytes: new music under the same path re-encodes every piece."""
    tones = tmp_path / "tones"
    tones.mkdir()
    music, voice = tones / "music.mp3", tones / "voice.mp3"
    run("-f", "lavfi", "-i", "sine=frequency=220:duration=30", "-ac", "2", str(music))
    run("-f", "lavfi", "-i", "sine=frequency=1000:duration=3", str(voice))
    narration = [{"id": "n", "type": "audio", "startMs": 12_000, "durationMs": 3000, "src": voice.as_uri(), "volume": 1.0}]
    tl = timeline([], 30_000, narration=narration,
                  music=[{"id": "m", "type": "audio", "startMs": 0, "durationMs": 30_000, "src": music.as_uri(), "volume": 0.35}])
    cache = tmp_path / "cache"
    assert audio.render_soundtrack(tl, resolver, tmp_path / "a.m4a", TEST, cache_dir=cache) == {"pieces": 3, "encoded": 3, "reused": 0}
    assert render_media.probe(tmp_path / "a.m4a")["duration_ms"] == 30_000
    x = decode_audio(tmp_path / "a.m4a")
    assert len(x) == 30 * 48_000
    want = audio._decode_audio(music, 30 * 48_000, 60).mean(axis=1) * 0.35
    want[12 * 48_000:15 * 48_000] += audio._decode_audio(voice, 3 * 48_000, 60).mean(axis=1)
    # The same mix encoded in one piece (as before pieces): the pieces differ from it by far less than
    # the codec's own error, and no more at their joins than elsewhere.
    stereo = np.repeat(want[:, None], 2, axis=1).astype("<f4")
    subprocess.run([FF, "-v", "error", "-f", "f32le", "-ar", "48000", "-ac", "2", "-i", "pipe:0", "-c:a", "aac", "-b:a",
                    TEST.audio_bitrate, str(tmp_path / "one.m4a")], input=stereo.tobytes(), check=True, timeout=60)
    err = x - decode_audio(tmp_path / "one.m4a")
    rms = lambda a: float(np.sqrt(np.mean(a**2)))
    assert rms(err) < 0.1 * rms(want)
    for join in (468 * 1024, 937 * 1024):  # the pieces' joins
        assert rms(err[join - 1024:join + 1024]) < 3 * rms(err[join - 48_000:join + 48_000]) + 1e-4, join

    narration[0]["volume"] = 0.5  # an edit under the second piece only
    assert audio.render_soundtrack(tl, resolver, tmp_path / "b.m4a", TEST, cache_dir=cache) == {"pieces": 3, "encoded": 1, "reused": 2}
    assert audio.render_soundtrack(tl, resolver, tmp_path / "c.m4a", TEST) == {"pieces": 3, "encoded": 3, "reused": 0}
    assert (tmp_path / "b.m4a").read_bytes() == (tmp_path / "c.m4a").read_bytes()
    y = decode_audio(tmp_path / "b.m4a")
    assert rms(y[13 * 48_000:14 * 48_000]) < 0.75 * rms(x[13 * 48_000:14 * 48_000])  # the edit is heard

    run("-y", "-f", "lavfi", "-i", "sine=frequency=330:duration=30", "-ac", "2", str(music))  # same path, new bytes
    assert audio.render_soundtrack(tl, resolver, tmp_path / "d.m4a", TEST, cache_dir=cache)["encoded"] == 3


def test_joined_chunks_equal_one_piece(media: dict[str, str], tmp_path: Path) -> None:
    kb = {"type": "ken_burns", "from": {"scale": 1.0, "x": 0.5, "y": 0.5}, "to": {"scale": 1.2, "x": 0.55, "y": 0.5}}
    visual = [image(media["smooth"], 0, 2500, kb), image(media["gradient"], 2500, 3500, kb, "crossfade", 500)]
    caps = [{"id": "c#0", "type": "caption", "startMs": 2000, "durationMs": 1500, "text": "Across the join"}]
    music = [{"id": "m", "type": "audio", "startMs": 0, "durationMs": 6000, "src": media["music"], "volume": 0.35}]
    tl = timeline(visual, 6000, captions=caps, music=music)
    chunks = [(0, 80), (80, 180)]  # the join falls inside the crossfade (frames 75..90) and the caption
    paths = [tmp_path / f"c{a}.mp4" for a, _ in chunks]
    for fr, p in zip(chunks, paths, strict=True):
        eng.render_video_chunk(tl, fr, resolver, p, TEST)
        assert render_media.probe(p)["frames"] == fr[1] - fr[0] and render_media.probe(p)["audio_codec"] is None
    eng.render_video_chunk(tl, (0, 180), resolver, tmp_path / "whole.mp4", TEST)
    eng.render_soundtrack(tl, resolver, tmp_path / "sound.m4a", TEST)
    render_media.join(paths, tmp_path / "sound.m4a", tmp_path / "movie.mp4")
    info = render_media.probe(tmp_path / "movie.mp4")
    assert info["frames"] == 180 and abs(info["duration_ms"] - 6000) <= 34
    assert (info["width"], info["height"], info["fps"]) == (W, H, 30.0)
    assert (info["video_codec"], info["audio_codec"], info["pix_fmt"]) == ("h264", "aac", "yuv420p")
    joined, whole = decode(tmp_path / "movie.mp4"), decode(tmp_path / "whole.mp4")
    assert len(joined) == len(whole) == 180
    for f in (0, 78, 79, 80, 81, 120, 179):
        assert psnr(joined[f], whole[f]) > 35, f
    assert psnr(joined[80], whole[81]) < psnr(joined[80], whole[80]) - 3  # a one-frame slip would show


def test_failures_leave_nothing_at_out(media: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the engine's ffmpeg folders go
    dest = tmp_path / "out"
    missing = timeline([image((tmp_path / "nope.png").as_uri(), 0, 1000)], 1000)
    with pytest.raises(FileNotFoundError):
        eng.render_video_chunk(missing, (0, 30), resolver, dest / "a.mp4", TEST)
    broken = timeline([image(media["broken"], 0, 1000, kind="video")], 1000)
    with pytest.raises(render_media.RenderError, match="decode broken.mp4"):
        eng.render_video_chunk(broken, (0, 30), resolver, dest / "b.mp4", TEST)
    still = eng._Still.frame
    monkeypatch.setattr(eng._Still, "frame", lambda self, f: (time.sleep(0.05), still(self, f))[1])
    with pytest.raises(render_media.RenderError, match="timed out"):  # the watchdog kills the encoder mid-way
        eng.render_video_chunk(timeline([image(media["grey"], 0, 2000)], 2000), (0, 60), resolver, dest / "c.mp4",
                               TEST, timeout_s=1)
    monkeypatch.setattr(eng._Still, "frame", still)

    def interrupted(self: Any, f: int) -> Any:
        raise KeyboardInterrupt

    kb = {"type": "ken_burns", "from": {"scale": 1.0}, "to": {"scale": 1.1}}
    monkeypatch.setattr(eng._KenBurns, "frame", interrupted)
    with pytest.raises(KeyboardInterrupt):
        eng.render_video_chunk(timeline([image(media["grey"], 0, 1000, kb)], 1000), (0, 30), resolver, dest / "d.mp4", TEST)
    with pytest.raises(FileNotFoundError):
        render_media.join([tmp_path / "none.mp4"], tmp_path / "none.m4a", dest / "e.mp4")
    assert not dest.exists() or list(dest.iterdir()) == []  # no output, no .part file
    assert list(scratch.iterdir()) == []  # every ffmpeg temp folder removed, its child gone with it


def test_probe_reads_an_encoded_file(media: dict[str, str]) -> None:
    info = render_media.probe(render_media.file_uri_resolver(media["video"]))
    assert info == {"width": W, "height": H, "fps": 30.0, "frames": 30, "duration_ms": 1000, "video_codec": "h264",
                    "audio_codec": None, "pix_fmt": "yuv420p"}


def test_render_movie_with_relative_paths(media: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # ffmpeg runs in its own folder: relative paths must still land here
    kb = {"type": "ken_burns", "from": {"scale": 1.1, "x": 0.45, "y": 0.5}, "to": {"scale": 1.0, "x": 0.5, "y": 0.5}}
    visual = [image(media["smooth"], 0, 10_000, kb), image(media["x"], 10_000, 10_000, transition="fade", trans_ms=1000)]
    narration = [{"id": "n", "type": "audio", "startMs": 10_000, "durationMs": 3000, "src": media["narration"], "volume": 1.0}]
    tl = timeline(visual, 20_000, narration=narration)
    eng.render_movie(tl, resolver, Path("movie.mp4"), TEST, workdir=Path("work"))
    info = render_media.probe(tmp_path / "movie.mp4")
    assert info["frames"] == 600 and abs(info["duration_ms"] - 20_000) <= 34
    assert (info["width"], info["height"], info["audio_codec"]) == (W, H, "aac")
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [
        "chunk_000000_000300.mp4", "chunk_000300_000600.mp4", "soundtrack.m4a"]


def test_dissolve_shows_each_cell_of_one_picture_in_noise_order() -> None:
    """Composed exactly (no encoder): at progress p, the cells whose noise is below p are the incoming
    picture's and the others the previous one's; cells are even squares, so chroma follows luma; the set
    only grows; about p of the frame has turned."""
    w, h = 854, 480
    prev = (Image.new("L", (w, h), 30), Image.new("L", (w // 2, h // 2), 100), Image.new("L", (w // 2, h // 2), 110))
    cur = (Image.new("L", (w, h), 200), Image.new("L", (w // 2, h // 2), 160), Image.new("L", (w // 2, h // 2), 90))
    black = eng._black((w, h))
    assert eng.dissolve_cell(w, h) == 6 and eng.dissolve_cell(3840, 2160) == 26 and eng.dissolve_cell(1080, 1920) == 12
    turned = np.zeros((h, w), bool)
    for p in (0.0, 0.25, 0.5, 0.75, 0.99):
        y, cb, cr = (np.asarray(x) for x in eng._compose("dissolve", p, prev, cur, black))
        assert set(np.unique(y)) <= {30, 200} and set(np.unique(cb)) <= {100, 160}
        now = y == 200
        assert (cb == 160).tolist() == now[::2, ::2].tolist() and (cr == 90).tolist() == now[::2, ::2].tolist()
        assert now.mean() == pytest.approx(p, abs=0.03) and not (turned & ~now).any()
        turned = now
    cells = eng.dissolve_noise(w, h)[::6, ::6]
    assert len(np.unique(cells)) > 0.99 * cells.size, "each cell its own noise"


@real_part(NO_FFPROBE)
@pytest.mark.parametrize(("quality", "fps", "size", "second"),
                         [("draft", 24, (854, 480), "gradient"), ("standard", 30, (1280, 720), "x")])
def test_a_quality_renders_at_its_size_frame_rate_and_bitrate(media: dict[str, str], tmp_path: Path, quality: str,
                                                               fps: int, size: tuple[int, int], second: str) -> None:
    """2 s of a movie made at a quality (its timeline at the quality's frame rate, pictures of another size),
    read by ffprobe: the quality's size and frame rate, and its bitrate within 20 % (x264's rate control
    over a one-second buffer; the crf made 1000k of these pictures at draft, 1100k at standard)."""
    kb = {"type": "ken_burns", "from": {"scale": 1.0, "x": 0.5, "y": 0.5}, "to": {"scale": 1.15, "x": 0.55, "y": 0.5}}
    visual = [image(media["smooth"], 0, 1000, kb), image(media[second], 1000, 1000, kb, "dissolve", 800)]
    tl = {**timeline(visual, 2000, width=854, height=480), "fps": fps, "durationInFrames": 2 * fps}
    out = tmp_path / f"{quality}.mp4"
    eng.render_video_chunk(tl, (0, 2 * fps), resolver, out, PRESETS[quality])
    info = ffprobe(out)
    assert (info["width"], info["height"], info["r_frame_rate"], int(info["nb_frames"])) == (*size, f"{fps}/1", 2 * fps)
    assert int(info["bit_rate"]) == pytest.approx(PRESETS[quality].video_kbps * 1000, rel=0.2), info["bit_rate"]


def test_a_killed_or_timed_out_ffmpeg_is_a_resource_failure() -> None:
    """The real child's failures, as the chunk retry (recipes.py) classifies them: SIGKILL from outside (the
    kernel's out-of-memory killer) and its own deadline are resource failures; an ordinary error is not."""
    args = ["-f", "rawvideo", "-pix_fmt", "gray", "-s:v", "16x16", "-i", "pipe:0", "-f", "null", "-"]
    with render_media.Ffmpeg("encode frames 0-30", 60) as proc:
        proc.start(args, stdin=True)
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGKILL)
        proc.proc.wait()
        with pytest.raises(render_media.RenderError, match="killed by SIGKILL") as killed:
            proc.write(bytes(256))
            proc.finish()
    assert render_media.resource_failure(killed.value) == "killed"
    with render_media.Ffmpeg("encode frames 0-30", 0.5) as proc:  # an endless input in real time: the watchdog kills it
        proc.start(["-re", "-f", "lavfi", "-i", "nullsrc=s=16x16", "-f", "null", "-"])
        with pytest.raises(render_media.RenderError, match="timed out after 0.5 s") as late:
            proc.finish()
    assert render_media.resource_failure(late.value) == "timeout"
    with render_media.Ffmpeg("decode nothing.mp4", 60) as proc:
        proc.start(["-i", "nothing.mp4", "-f", "null", "-"])
        with pytest.raises(render_media.RenderError, match="No such file") as missing:
            proc.finish()
    assert render_media.resource_failure(missing.value) is None
