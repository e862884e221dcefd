"""Settings as values: the render engine, code versions and routes are functions of the settings only,
never of what the importing machine has installed; and the error a user gets when Remotion cannot run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from movie_assets.builder.code_versions import code_versions
from movie_assets.builder.render import remotion
from movie_assets.builder.render.media import RenderError
from movie_assets.builder.render.presets import PRESETS, output_size
from movie_assets.domain.blueprint import ARTIFACTS
from resources.settings import RenderEngine, Settings, Strategy, current, remotion_missing

REPO = Path(__file__).resolve().parents[2]


def test_auto_is_remotion_everywhere_and_a_machine_without_chromium_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOVIEGEN_BROWSER", str(tmp_path / "no-such-browser"))
    assert any("apt-get install chromium" in m for m in remotion_missing())
    assert Settings.from_env({"MOVIEGEN_RENDER_ENGINE": "auto"}).render_engine is RenderEngine.remotion
    assert Settings.from_env({}).render_engine is RenderEngine.remotion
    timeline = {"fps": 30, "width": 854, "height": 480, "durationMs": 10000, "durationInFrames": 300, "tracks": []}
    with pytest.raises(RenderError, match=r"missing: .*Chromium.*MOVIEGEN_RENDER_ENGINE=ffmpeg"):
        remotion.render_chunks(timeline, [((0, 300), tmp_path / "c.mp4")], PRESETS["480p"], workdir=tmp_path / "w")
    assert not (tmp_path / "c.mp4").exists()


def test_settings_are_validated_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="MOVIEGEN_RENDER_ENGINE='blender': allowed: auto, remotion, ffmpeg"):
        Settings.from_env({"MOVIEGEN_RENDER_ENGINE": "blender"})
    with pytest.raises(ValueError, match="MOVIEGEN_RENDER='maybe': allowed: on, off"):
        Settings.from_env({"MOVIEGEN_RENDER": "maybe"})
    with pytest.raises(ValueError, match="MOVIEGEN_STRATEGY='fast': allowed: sequential, parallel, adaptive"):
        Settings.from_env({"MOVIEGEN_STRATEGY": "fast"})
    with pytest.raises(ValueError, match="unknown provider 'acme'"):
        Settings.from_env({"MOVIEGEN_PROVIDERS": "*=acme"})
    s = Settings.from_env({"MOVIEGEN_RENDER": "OFF", "MOVIEGEN_RENDER_ENGINE": "ffmpeg", "MOVIEGEN_STRATEGY": "sequential"})
    assert (s.render, s.render_engine, s.strategy) == (False, RenderEngine.ffmpeg, Strategy.sequential)


def test_current_follows_the_environment_and_equal_settings_are_one_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEGEN_PROVIDERS", "ScriptProducer=openai")
    first = current()
    assert first is current()  # resolved once for an environment
    assert str(first.routes["ScriptProducer"]).startswith("openai:")
    assert code_versions(first)["script"] != code_versions(Settings())["script"]
    monkeypatch.setenv("MOVIEGEN_PROVIDERS", "")
    assert current() == Settings.from_env({"MOVIEGEN_RENDER": "off", "MOVIEGEN_RENDER_ENGINE": "ffmpeg"})
    assert code_versions(Settings(render_engine=RenderEngine.ffmpeg))["video_chunk"] != \
        code_versions(Settings(render_engine=RenderEngine.remotion))["video_chunk"]


_PRINT_VERSIONS = """
import json, sys
import movie_assets.definitions as d
defs = d.defs()
graph = defs.resolve_asset_graph()
print(json.dumps({k.to_user_string(): graph.get(k).code_version for k in graph.materializable_asset_keys}))
"""


def _versions_in_a_process(path: str, browser: Path, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIEGEN_")}
    env |= {"PATH": path, "DAGSTER_HOME": str(tmp), "MOVIEGEN_BROWSER": str(browser)}
    out = subprocess.run([sys.executable, "-c", _PRINT_VERSIONS], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_machine_with_node_and_chromium_and_one_without_agree_on_every_code_version(tmp_path: Path) -> None:
    """A webserver without Chromium and a worker with it: the same settings, the same code versions."""
    with_tools = tmp_path / "with"
    with_tools.mkdir()
    for name in ("node", "chromium"):  # present on PATH, whatever this machine has
        tool = with_tools / name
        tool.write_text("#!/bin/sh\nexit 0\n")
        tool.chmod(0o755)
    bare = tmp_path / "bare"
    bare.mkdir()
    a = _versions_in_a_process(f"{with_tools}:/usr/bin:/bin", with_tools / "chromium", tmp_path)
    b = _versions_in_a_process(str(bare), bare / "chromium", tmp_path)
    assert len(a) == len(ARTIFACTS) and a == b
    assert a["video_chunk"].startswith("1|remotion-")


def test_importing_the_definitions_reads_no_file_and_no_setting() -> None:
    """Nothing happens at import: the module only defines; the settings are read when Dagster loads them."""
    code = ("import os, sys\n"
            "opened = []\n"
            "watching = False\n"
            "def audit(event, args):\n"  # every open, whatever API makes it (open, Path.read_bytes, io.open)
            "    if watching and event == 'open':\n"
            "        opened.append(str(args[0]))\n"
            "sys.addaudithook(audit)\n"
            "import movie_assets.orchestration.steps, movie_assets.orchestration.jobs\n"  # the heavy imports first
            "os.environ['MOVIEGEN_RENDER_ENGINE'] = 'blender'\n"  # invalid: an import that read it would fail
            "watching = True\n"
            "import movie_assets.definitions\n"
            "watching = False\n"
            "print([p for p in opened if 'renderer' in p])\n"
            "from movie_assets.builder.render.engines import engine_fingerprint\n"
            "from resources.settings import RenderEngine\n"
            "watching = True\n"
            "engine_fingerprint(RenderEngine.remotion)\n"  # the spy sees it read the renderer's files
            "watching = False\n"
            "print(len([p for p in opened if 'renderer' in p]))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    at_import, when_asked = out.stdout.strip().splitlines()[-2:]
    assert at_import == "[]" and int(when_asked) > 0


@pytest.mark.parametrize(
    ("timeline", "preset", "size"),
    [((854, 480), "2160p", (3840, 2160)),  # was 3844x2160: the ratio of 854x480's rounded pixels
     ((854, 480), "1080p", (1920, 1080)),  # was 1922x1080
     ((480, 854), "premium", (2160, 3840)), ((854, 480), "draft", (854, 480)), ((1280, 720), "high", (1920, 1080)),
     ((640, 480), "premium", (2880, 2160)), ((480, 480), "standard", (720, 720)), ((720, 1280), "480p", (480, 854)),
     ((1000, 300), "480p", (1600, 480))],  # not one of the request's aspect ratios: its own
)
def test_output_size_keeps_the_requests_aspect_ratio_with_even_sides(timeline: tuple[int, int], preset: str,
                                                                      size: tuple[int, int]) -> None:
    assert output_size({"width": timeline[0], "height": timeline[1]}, PRESETS[preset]) == size


def test_named_qualities_are_presets_with_their_bitrate_and_rate() -> None:
    got = {name: (p.short_side, p.fps, p.video_kbps) for name, p in PRESETS.items() if p.video_kbps}
    assert got == {"draft": (480, 24, 1500), "standard": (720, 30, 3000), "high": (1080, 30, 6000), "premium": (2160, 60, 15000)}
    assert remotion._quality(PRESETS["standard"]) == {"videoBitrate": "3000k", "encodingMaxRate": "3000k",
                                                      "encodingBufferSize": "3000k"}
    assert remotion._quality(PRESETS["720p"]) == {"crf": 23}
