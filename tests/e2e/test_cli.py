"""The moviegen CLI and Dagster's own CLI, run as a user runs them (subprocesses, real DAGSTER_HOME)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from resources.storage import ArtifactStore
from tests.conftest import REPO, HomeSnapshot

BIN = Path(sys.executable).parent


def run(args: list[str], home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def moviegen(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "moviegen"), *args], home, check)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> HomeSnapshot:
    """The sample movie registered, planned and generated once through the CLI (what each step printed in
    ``.built``), restored before each test that starts from it: one generation for the module."""

    def build(_instance: dg.DagsterInstance, _store: ArtifactStore) -> dict[str, object]:
        home = Path(os.environ["DAGSTER_HOME"])
        new = moviegen(home, "new", "examples/civil-war.yaml", "--id", "cw").stdout.strip()
        listed = moviegen(home, "list").stdout.split()
        plan = json.loads(moviegen(home, "plan", "cw", "--json").stdout)
        generate = moviegen(home, "generate", "cw", "--json")
        return {"new": new, "list": listed, "plan": plan, "generate": generate}

    return HomeSnapshot(tmp_path_factory.mktemp("cli") / "dagster_home", build)


@pytest.fixture
def cw(generated: HomeSnapshot, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME holding movie "cw" generated once (revision 1), fresh for each test."""
    return generated.restore(monkeypatch)


def test_cli_end_to_end(generated: HomeSnapshot, cw: Path) -> None:
    home, built = cw, generated.built
    assert built["new"] == "cw"
    assert built["list"] == ["cw"]
    plan = built["plan"]
    assert plan["provider_calls"] == {"AudioProducer": 3, "LookProducer": 1, "MusicProducer": 1, "ResearchProducer": 1, "ScriptProducer": 1,
                                      "TextToImageProducer": 6, "TextToImagePromptProducer": 3, "TextToMusicPromptProducer": 1}
    assert plan["critical_path_s"] == 115  # research 20, script 50, look 10, image prompts 5, images 30
    proc = built["generate"]
    out = json.loads(proc.stdout)
    assert set(out) >= {"movie", "revision", "provider_calls", "failed", "timeline"}
    assert out["movie"] == "cw" and out["failed"] == [] and out["provider_calls"] == plan["provider_calls"]
    assert "built  segment_image[00_0]" in proc.stderr  # the progress display
    timeline_uri = moviegen(home, "timeline", "cw").stdout.strip()
    assert timeline_uri == out["timeline"] and Path(timeline_uri.removeprefix("file://")).exists()
    assert json.loads(moviegen(home, "timeline", "cw", "--print").stdout)["movie"] == "cw"
    status = moviegen(home, "status", "cw").stdout
    assert "to build: 0" in status and "segment_image              6      6      0" in status
    again = json.loads(moviegen(home, "generate", "cw", "--json").stdout)
    assert again["provider_calls"] == {} and again["timeline"] == out["timeline"]
    human = moviegen(home, "plan", "cw").stdout
    assert "up to date" in human


def test_cli_rejects_bad_input_before_anything_happens(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("inquiry_prompt: Tell me about tides\nduration_seconds: 35\nimages_per_segment: 9\nimage_style: oil\n")
    proc = moviegen(home, "new", str(bad), check=False)
    assert proc.returncode == 2
    for part in ["duration_seconds: got 35", "images_per_segment: got 9", "image_style: got \"oil\""]:
        assert part in proc.stderr
    assert moviegen(home, "list").stdout == ""
    proc = moviegen(home, "new", "examples/civil-war.yaml", "--id", "a/../b", check=False)
    assert proc.returncode == 2 and "movie id" in proc.stderr
    proc = moviegen(home, "plan", "nope", check=False)
    assert proc.returncode == 2 and "no movie 'nope'" in proc.stderr


def test_dagster_asset_materialize_one_partition(home: Path) -> None:
    """The documented `dagster asset materialize` and `dg launch` commands build exactly the selected partitions."""
    moviegen(home, "new", "examples/civil-war.yaml", "--id", "cw")
    run([str(BIN / "dagster"), "asset", "materialize", "-m", "movie_assets.definitions",
         "--select", "script", "--partition", "cw"], home)
    run([str(BIN / "dg"), "launch", "--assets", "segment_narration", "--partition", "cw|01"], home)
    plan = json.loads(moviegen(home, "plan", "cw", "--json").stdout)
    built = {"script", "segment_narration[01]"}
    assert not built & {i["node"] for i in plan["items"]}
    assert "segment_narration[00]" in {i["node"] for i in plan["items"]}


@pytest.mark.parametrize("module", ["movie_assets.definitions"])
def test_definitions_load_without_credentials(module: str, home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "KEY" not in k and "TOKEN" not in k}
    proc = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", module], cwd=REPO,
                          env={**env, "DAGSTER_HOME": str(home)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_cli_edit_plan_history_and_revisions(cw: Path, tmp_path: Path) -> None:
    home = cw  # "cw" generated once: revision 1
    out = moviegen(home, "edit", "cw", "--set", "voice_id=onyx", "--set", "segments.0.image_prompts.1=a map of 1861").stdout
    assert "voice_id: \"nova\" -> \"onyx\"" in out and "edit 1 recorded" in out
    plan = json.loads(moviegen(home, "plan", "cw", "--json").stdout)
    assert plan["provider_calls"] == {"AudioProducer": 3, "TextToImageProducer": 1}
    stale = {i["node"]: i["cause"] for i in plan["items"] if i["reason"] == "stale"}
    assert stale == {"segment_audio[00]": "changed: voice", "segment_audio[01]": "changed: voice",
                     "segment_audio[02]": "changed: voice", "image_prompt[00_1]": "changed: image_prompt_override"}
    second = json.loads(moviegen(home, "generate", "cw", "--json").stdout)
    assert second["revision"] == 2 and second["provider_calls"] == plan["provider_calls"]
    assert "nothing changed" in moviegen(home, "edit", "cw", "--set", "voice_id=onyx").stdout
    edits = tmp_path / "edits.yaml"
    edits.write_text("segments.0.image_prompts.1: null\nassembly_strategy: cut\n")
    moviegen(home, "edit", "cw", "--file", str(edits))
    undo = json.loads(moviegen(home, "plan", "cw", "--json").stdout)
    prompt = next(i for i in undo["items"] if i["node"] == "image_prompt[00_1]")
    assert not prompt["calls_provider"] and "reused" in prompt["cause"]
    third = json.loads(moviegen(home, "generate", "cw", "--json").stdout)
    assert third["provider_calls"] == {}  # undoing the override reuses what was made before
    history = json.loads(moviegen(home, "history", "cw", "--json").stdout)
    assert [[c["path"] for c in r["changes"]] for r in history] == [
        [], ["segments.0.image_prompts.1", "voice_id"], ["assembly_strategy", "segments.0.image_prompts.1"]]
    assert "first generation" in moviegen(home, "history", "cw").stdout
    first_timeline = moviegen(home, "timeline", "cw", "--revision", "1").stdout.strip()
    assert first_timeline != third["timeline"] and Path(first_timeline.removeprefix("file://")).exists()
    assert json.loads(moviegen(home, "timeline", "cw", "--revision", "3", "--print").stdout)["assemblyStrategy"] == "cut"
    bad = moviegen(home, "edit", "cw", "--set", "images_per_segment=9", check=False)
    assert bad.returncode == 2 and "nothing changed: images_per_segment: got 9" in bad.stderr
    missing = moviegen(home, "timeline", "cw", "--revision", "7", check=False)
    assert missing.returncode == 2 and "no revision 7" in missing.stderr


def test_cli_refuses_hostile_files_with_one_line(home: Path, tmp_path: Path) -> None:
    """Unreadable request and edits files end in exit 2 and one line naming the file, before anything is
    opened: nothing registered, nothing changed (and no wait for Dagster to load)."""
    binary, folder, bomb, quoted = tmp_path / "photo.yaml", tmp_path / "folder.yaml", tmp_path / "bomb.yaml", tmp_path / "q.yaml"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    folder.mkdir()
    bomb.write_text('a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
                    + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9))
                    + "inquiry_prompt: *a8\n")
    quoted.write_text('inquiry_prompt: Tell me about tides\nduration_seconds: "20"\n')
    expected = {binary: "is not UTF-8 text (byte 0xff at offset 0); allowed: YAML or JSON saved as UTF-8",
                folder: "is a folder; allowed: a YAML or JSON file",
                bomb: "is refused: more than 10000 values (each use of an alias counts as a copy of what it names)"}
    for path, message in expected.items():
        start = time.monotonic()
        proc = moviegen(home, "new", str(path), check=False)
        assert proc.returncode == 2 and time.monotonic() - start < 20, (path, proc.returncode, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: request file: {str(path)!r} {message}"), proc.stderr
    proc = moviegen(home, "new", str(quoted), check=False)
    assert proc.returncode == 2 and 'duration_seconds: got "20"; expected an integer' in proc.stderr

    assert moviegen(home, "new", "examples/civil-war.yaml", "--id", "cw").stdout.strip() == "cw"
    binary_edits = tmp_path / "cw.edits.yaml"
    binary_edits.write_bytes(b"voice_id: \xc3\x28\n")
    proc = moviegen(home, "edit", "cw", "--file", str(binary_edits), check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: edits file: {str(binary_edits)!r} is not UTF-8 text (byte 0xc3 at offset 10); allowed: YAML or JSON "
        "saved as UTF-8"], proc.stderr
    out = moviegen(home, "edit", "cw", "--set", "duration_seconds=40").stdout  # typed from the command line: an integer
    assert "duration_seconds: 30 -> 40" in out, out
    assert moviegen(home, "list").stdout.split() == ["cw"]
