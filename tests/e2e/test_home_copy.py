"""A DAGSTER_HOME is self-contained: the demo movie built (its first 10 s: the length changes nothing of
what is stored where; offline providers, rendered by the ffmpeg engine), the home copied with ``cp -a``
and the original moved away, the copy exports, renders, plans, generates and verifies from its own files, as a backup restored elsewhere must. Stored references are
paths under the artifact root, so nothing the copy holds names the original folder."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

from movie_assets.builder.export import FORMATS, read_export
from tests.conftest import DEMO_10S, moviegen, new_home

MOVIE = "civil-war-demo"
RENDER = {"MOVIEGEN_RENDER": "on", "MOVIEGEN_RENDER_ENGINE": "ffmpeg"}


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = moviegen(home, RENDER, *args)
    assert proc.returncode == 0, f"moviegen {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def media_files(text: str, fmt: str, fps: int) -> list[Path]:
    """The files an editor opens for an export: every clip's media reference, read back by its adapter."""
    urls = [c.media_reference.target_url for c in read_export(text, fmt, fps).find_clips()]
    assert all(url.startswith("file://") for url in urls), urls
    return [Path(unquote(urlparse(url).path)) for url in urls]


def test_a_copied_home_works_on_its_own(tmp_path: Path) -> None:
    original = new_home(tmp_path / "home")
    request = tmp_path / "civil-war.yaml"
    request.write_text(DEMO_10S)
    run(original, "new", str(request), "--id", MOVIE)
    built = json.loads(run(original, "generate", MOVIE, "--json", "--quiet").stdout)
    assert built["failed"] == [] and built["movie_video"]

    copy = tmp_path / "restored" / "home"
    copy.parent.mkdir()
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    # What the copy stores names no folder: its timelines, build cache, revisions and run reports.
    naming = [p for p in (copy / "artifacts").rglob("*") if p.is_file() and str(original).encode() in p.read_bytes()]
    assert naming == [], f"stored files that name the original home: {naming[:5]}"

    # Exports of the copy link into the copy, while the original is still there and after it is gone.
    timeline = json.loads(run(copy, "timeline", MOVIE, "--print").stdout)
    sources = sum(1 for t in timeline["tracks"] for c in t["clips"] if c.get("src"))
    for fmt in FORMATS:
        if fmt in ("srt", "vtt"):
            continue  # the captions alone: no media
        text = run(copy, "export", MOVIE, "--format", fmt).stdout
        if fmt == "mlt":  # moviegen's own MLT XML (no OpenTimelineIO reader): its producers' resources
            files = [Path(m) for m in re.findall(r'<property name="resource">([^<]+)</property>', text) if m.startswith("/")]
            assert files and all(f.is_relative_to(copy) and f.is_file() for f in files), files
            assert str(original) not in text
            continue
        files = media_files(text, fmt, timeline["fps"])
        assert files and all(f.is_relative_to(copy) and f.is_file() for f in files), (fmt, files)
        assert fmt == "edl" or len(files) == sources, (fmt, len(files), sources)  # the EDL holds the pictures only
        assert str(original) not in text, fmt
    original.rename(tmp_path / "moved")
    edl = run(copy, "export", MOVIE, "--format", "edl").stdout
    assert all(f.is_relative_to(copy) and f.is_file() for f in media_files(edl, "edl", timeline["fps"]))

    assert "up to date" in run(copy, "plan", MOVIE).stdout
    again = json.loads(run(copy, "generate", MOVIE, "--json", "--quiet").stdout)
    assert again["provider_calls"] == {} and again["built"] == 0 and not again["new_revision"], again
    assert again["timeline"].startswith(copy.as_uri() + "/") and Path(unquote(urlparse(again["timeline"]).path)).is_file()
    assert "intact" in run(copy, "verify", MOVIE).stdout

    rendered = json.loads(run(copy, "render", MOVIE, "--json").stdout)  # the movie built before, checked against its hash
    assert rendered["reused"] and rendered["uri"].startswith(copy.as_uri() + "/")
    bigger = json.loads(run(copy, "render", MOVIE, "--preset", "720p", "--json").stdout)  # drawn from the copy's media
    assert not bigger["reused"] and (bigger["width"], bigger["height"], bigger["frames"]) == (1280, 720, 300)
    assert Path(unquote(urlparse(bigger["uri"]).path)).is_relative_to(copy)
