"""Artifact storage: atomic, immutable, content-addressed writes; clear errors for missing objects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from resources import ArtifactStore


def test_write_read_and_layout(tmp_path: Path) -> None:
    store = ArtifactStore(root=str(tmp_path))
    rel = store.artifact_relpath("m", "segment_image", "03_2", "ab" * 32, "png")
    assert rel == "movies/m/segment_image/03_2/abababababababab.png"
    uri = store.write(rel, b"png-bytes")
    assert uri == (tmp_path / rel).as_uri()
    assert store.read(uri) == store.read(rel) == b"png-bytes"
    assert [p.name for p in (tmp_path / rel).parent.iterdir()] == ["abababababababab.png"]


def test_versioned_artifacts_are_written_once_and_other_files_replaced(tmp_path: Path) -> None:
    store = ArtifactStore(root=str(tmp_path))
    store.write("a/x.png", b"1234", immutable=True)
    before = (tmp_path / "a/x.png").stat().st_mtime_ns
    store.write("a/x.png", b"1234", immutable=True)
    assert (tmp_path / "a/x.png").stat().st_mtime_ns == before
    store.write("a/request.json", b'{"a": 1}')
    store.write("a/request.json", b'{"a": 2}')  # same size, new content: replaced
    assert store.read("a/request.json") == b'{"a": 2}'


def test_crash_mid_write_leaves_nothing_at_the_final_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ArtifactStore(root=str(tmp_path))

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.write("movies/m/music/_/v.mp3", b"x" * 1000)
    folder = tmp_path / "movies/m/music/_"
    assert not (folder / "v.mp3").exists() and list(folder.iterdir()) == []


def test_missing_artifact_is_a_clear_error(tmp_path: Path) -> None:
    store = ArtifactStore(root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="artifact not found: movies/m/timeline/_/nope.json"):
        store.read("movies/m/timeline/_/nope.json")


def test_default_root_follows_dagster_home(home: Path) -> None:
    store = ArtifactStore()
    uri = store.write("x.txt", b"1")
    assert uri == (home / "artifacts" / "x.txt").as_uri()
