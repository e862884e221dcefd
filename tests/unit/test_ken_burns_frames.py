"""The ffmpeg engine's Ken Burns frames (OpenCV's bilinear warp from pre-scaled levels) show the same
region of the picture, to a fraction of a pixel, as an antialiased resample of the picture itself."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from movie_assets.builder.render import ffmpeg_engine as eng

W, H = 320, 180
PW, PH = 800, 450  # the picture: 2.5x the frame, so a zoom to 2 draws from several levels


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A smooth gradient with a 6 px white bar at x = 401: where it lands shows the sampled region.
    x = np.arange(PW, dtype=np.float64)[None, :].repeat(PH, 0)
    grey = 40 + 120 * x / PW + 30 * np.sin(np.arange(PH)[:, None] / 40)
    grey[:, 398:404] = 255
    path = tmp_path_factory.mktemp("kb") / "bar.png"
    Image.fromarray(np.rint(grey).astype(np.uint8)).convert("RGB").save(path)
    return path


def bar_x(row: np.ndarray) -> float:
    """The bar's centre in a row of luma: the centroid of what stands above the gradient."""
    excess = np.clip(row - np.convolve(row, np.ones(31) / 31, mode="same") - 20, 0, None)
    excess[:15] = excess[-15:] = 0  # the running mean is short of the row's ends
    return float((excess * np.arange(row.size)).sum() / excess.sum())


@pytest.mark.parametrize("effect", [
    {"from": {"scale": 1.0, "x": 0.5, "y": 0.5}, "to": {"scale": 2.0, "x": 0.52, "y": 0.45}},  # zoom in: all levels
    {"from": {"scale": 1.15, "x": 0.47, "y": 0.5}, "to": {"scale": 1.15, "x": 0.53, "y": 0.5}},  # pan
])
def test_frames_show_the_framed_region_to_a_fraction_of_a_pixel(picture: Path, effect: dict) -> None:
    clip = {"startMs": 0, "durationMs": 2000, "effect": {"type": "ken_burns", **effect}}
    layer = eng._KenBurns(clip, Fraction(30), picture, (W, H))
    if effect["to"]["scale"] == 2.0:
        assert len(layer.levels) > 2  # 2x apart at most 1.25x a level
    luma = eng._planes(Image.open(picture))[0]
    for f in range(0, 60, 3):
        lerp = lambda key, t=f / 60: effect["from"][key] + (effect["to"][key] - effect["from"][key]) * t
        box = eng._cover_box(PW, PH, W, H, lerp("scale"), lerp("x"), lerp("y"))
        # The reference: Pillow's antialiased resample of that box straight from the picture.
        want = np.asarray(luma.resize((W, H), Image.Resampling.BICUBIC, box=box), dtype=np.float64)
        got = np.asarray(layer.frame(f)[0], dtype=np.float64)
        assert got.shape == (H, W)
        # The same place: the bar within 0.1 px (a half-pixel slip of the level's centres would show).
        row = H // 2
        assert bar_x(got[row]) == pytest.approx(bar_x(want[row]), abs=0.1), f
        # The same picture: within a few levels everywhere (bilinear against bicubic on the bar's edges).
        assert np.abs(got - want).mean() < 1.0, f
        assert np.abs(got - want).max() < 40, f
