"""Choosing the render engine, and the error a user gets when Remotion cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from movie_assets.build.render import remotion
from movie_assets.build.render.ffmpeg_engine import RenderError
from movie_assets.build.render.presets import PRESETS
from resources.settings import RenderEngine, remotion_missing, render_enabled_from_env, render_engine_from_env


def test_without_chromium_auto_means_ffmpeg_and_remotion_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("MOVIEGEN_BROWSER", str(tmp_path / "no-such-browser"))
    assert any("apt-get install chromium" in m for m in remotion_missing())
    monkeypatch.setenv("MOVIEGEN_RENDER_ENGINE", "auto")
    assert render_engine_from_env() is RenderEngine.ffmpeg
    timeline = {"fps": 30, "width": 854, "height": 480, "durationMs": 10000, "durationInFrames": 300, "tracks": []}
    with pytest.raises(RenderError, match=r"missing: .*Chromium.*MOVIEGEN_RENDER_ENGINE=ffmpeg"):
        remotion.render_chunks(timeline, [((0, 300), tmp_path / "c.mp4")], PRESETS["480p"], workdir=tmp_path / "w")
    assert not (tmp_path / "c.mp4").exists()


def test_render_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEGEN_RENDER_ENGINE", "blender")
    with pytest.raises(ValueError, match="MOVIEGEN_RENDER_ENGINE='blender': allowed: auto, remotion, ffmpeg"):
        render_engine_from_env()
    monkeypatch.setenv("MOVIEGEN_RENDER_ENGINE", "ffmpeg")
    assert render_engine_from_env() is RenderEngine.ffmpeg
    monkeypatch.setenv("MOVIEGEN_RENDER", "maybe")
    with pytest.raises(ValueError, match="MOVIEGEN_RENDER='maybe': allowed: on, off"):
        render_enabled_from_env()
    monkeypatch.setenv("MOVIEGEN_RENDER", "OFF")
    assert render_enabled_from_env() is False
