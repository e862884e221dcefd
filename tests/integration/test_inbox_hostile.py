"""Hostile files in the inbox: each gets its report once, and never stops the others or the tick.

The real ``movie_inbox`` sensor, evaluated in-process against a real instance and a real inbox folder."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from movie_assets.orchestration import inbox as inbox_module
from movie_assets.orchestration.inbox import process
from movie_assets.orchestration.sensors import movie_inbox
from resources.storage import ArtifactStore
from tests.conftest import REPO

SMALL = (REPO / "examples/civil-war.yaml").read_text()
SECRET = "AKIA-TOP-SECRET-do-not-echo-0123456789"


def tick(instance: dg.DagsterInstance, cursor: str | None = None) -> tuple[list[dg.RunRequest], str | None]:
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = movie_inbox(context)
    if isinstance(result, dg.SkipReason):
        return [], context.cursor
    return list(result.run_requests or []), result.cursor


def errors(inbox: Path, name: str) -> list[str]:
    return json.loads((inbox / f"{name}.error.json").read_text())["errors"]


def test_hostile_files_are_refused_each_once_and_the_good_one_is_accepted(home: Path, instance: dg.DagsterInstance,
                                                                          tmp_path: Path) -> None:
    inbox = home / "inbox"
    inbox.mkdir()
    outside = tmp_path / "credentials.yaml"
    outside.write_text(f"inquiry_prompt: {SECRET}\n")
    (inbox / "good.yaml").write_text(SMALL)
    (inbox / "binary.yaml").write_bytes(b"\xff\xd8\xff\xe0 a JPEG saved as .yaml " + SECRET.encode() + b"\x00")
    (inbox / "leak.yaml").symlink_to(outside)
    (inbox / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (inbox / "huge.yaml").write_bytes(b"inquiry_prompt: x\n")
    os.truncate(inbox / "huge.yaml", 5 * 10**9)  # 5 GB, sparse: reading it would show in time and memory
    (inbox / "bomb.yaml").write_text('a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
                                     + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i else "*a"] * 9) + "]\n"
                                               for i in range(9)) + "inquiry_prompt: *a8\n")
    (inbox / ".civil-war.yaml").write_text(SMALL)
    (inbox / "folder.yaml").mkdir()
    os.mkfifo(inbox / "pipe.yaml")  # opening it to read would block the tick
    (inbox / "notes.txt").write_text("not a request")  # still ignored: not a request's name

    start = time.monotonic()
    runs, cursor = tick(instance)
    seconds = time.monotonic() - start
    assert [r.run_key for r in runs] == ["good:new"]  # the good file is handled in the same tick
    assert seconds < 20, seconds  # the tick itself: one registration plus refusals (no 5 GB read, no bomb)

    assert "is not UTF-8 text (byte 0xff at offset 0)" in errors(inbox, "binary.yaml")[0]
    for link in ("leak.yaml", "dangling.yaml"):
        assert "a symbolic link; links are not followed" in errors(inbox, link)[0]
    assert "too large (5000000000 bytes), not read; allowed: up to 1 MB" in errors(inbox, "huge.yaml")[0]
    assert "is refused: more than 10000 values" in errors(inbox, "bomb.yaml")[0]
    assert "a hidden file (its name starts with '.'), so it is ignored" in errors(inbox, ".civil-war.yaml")[0]
    assert "'civil-war.yaml'" in errors(inbox, ".civil-war.yaml")[0]  # the name to use instead
    assert "a folder; allowed: a regular YAML or JSON file" in errors(inbox, "folder.yaml")[0]
    assert "not a regular file (a pipe, socket or device)" in errors(inbox, "pipe.yaml")[0]
    assert not (inbox / "notes.txt.error.json").exists()
    reports = {p.name: p.read_text() for p in inbox.iterdir() if p.name.endswith(".json")}
    assert all(SECRET not in text for text in reports.values())  # neither the link's target nor the binary's bytes
    assert max(len(text) for text in reports.values()) < 2000

    # The next tick: nothing new, so nothing handled or reported again; the movie was not registered twice.
    for report in inbox.glob("*.error.json"):
        report.unlink()
    runs, cursor = tick(instance, cursor)
    assert runs == [] and not list(inbox.glob("*.error.json"))
    # A fixed file under the same name is read again.
    (inbox / "binary.yaml").write_text(SMALL)
    runs, _ = tick(instance, cursor)
    assert [r.run_key for r in runs] == ["binary:new"]
    print(f"\nthe tick with 10 hostile files and one good one: {seconds:.2f} s")


def test_an_unexpected_error_is_the_files_report_and_the_others_go_on(home: Path, instance: dg.DagsterInstance,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = home / "inbox"
    inbox.mkdir()
    real_register = inbox_module.register_movie

    def register(instance: dg.DagsterInstance, store: ArtifactStore, request: object, movie: str, **files: object) -> str:
        if movie == "boom":
            raise RuntimeError("the database went away " + "x" * 5_000)
        return real_register(instance, store, request, movie, **files)

    monkeypatch.setattr(inbox_module, "register_movie", register)
    (inbox / "boom.yaml").write_text(SMALL)
    (inbox / "calm.yaml").write_text(SMALL)
    (inbox / ("a" * 250 + ".yaml")).write_text(SMALL)  # its report's name would be too long to write
    runs, cursor = tick(instance)
    assert [r.run_key for r in runs] == ["calm:new"]
    report = json.loads((inbox / "boom.yaml.error.json").read_text())
    assert report["errors"][0].startswith("boom.yaml: could not be handled: RuntimeError: the database went away")
    assert len(report["errors"][0]) < 300 and "drop the file again to retry" in report["help"]
    assert set(json.loads(cursor or "{}")) == {"boom.yaml", "calm.yaml", "a" * 250 + ".yaml"}  # each handled once
    assert tick(instance, cursor)[0] == []


def test_a_long_tick_leaves_the_rest_for_the_next(home: Path, instance: dg.DagsterInstance, store: ArtifactStore) -> None:
    inbox_dir = home / "inbox"
    inbox_dir.mkdir()
    for name in ("one.yaml", "two.yaml"):
        (inbox_dir / name).write_text("inquiry_prompt: x\n")
    inbox = ArtifactStore(root=str(inbox_dir))
    out = process(instance, store, inbox, {}, budget_s=-1)
    assert out.deferred == ["one.yaml", "two.yaml"] and out.cursor == {} and not out.rejected
    out = process(instance, store, inbox, out.cursor)
    assert sorted(out.rejected) == ["one.yaml", "two.yaml"] and not out.deferred


def test_a_request_in_the_inbox_names_a_picture_beside_it(home: Path, instance: dg.DagsterInstance, store: ArtifactStore) -> None:
    """A relative path in an inbox file is read from the inbox folder; the request saved again with the same
    picture is no change, with a changed picture one edit; a file that is no picture is the file's report."""
    from PIL import Image

    inbox_dir = home / "inbox"
    inbox_dir.mkdir()
    Image.new("RGB", (200, 150), (10, 80, 160)).save(inbox_dir / "map.png")
    request = "inquiry_prompt: Rivers of the world\nduration_seconds: 10\nimages_per_segment: 1\nsegments:\n  0:\n    image_files:\n      0: map.png\n"
    (inbox_dir / "rivers.yaml").write_text(request)
    inbox = ArtifactStore(root=str(inbox_dir))
    out = process(instance, store, inbox, {})
    assert [(a.movie, a.kind) for a in out.accepted] == [("rivers", "new")] and not out.rejected
    (inbox_dir / "rivers.yaml").write_text(request + "# saved again\n")
    out = process(instance, store, inbox, out.cursor)
    assert [a.kind for a in out.accepted] == ["request"]  # the same bytes: nothing changed
    Image.new("RGB", (200, 150), (160, 80, 10)).save(inbox_dir / "map.png")
    (inbox_dir / "rivers.yaml").write_text(request + "# and again\n")
    out = process(instance, store, inbox, out.cursor)
    assert [(a.kind, [c["path"] for c in a.changes]) for a in out.accepted] == [("edit", ["segments.0.image_files.0"])]
    (inbox_dir / "map.png").write_text("not a picture")
    (inbox_dir / "rivers.yaml").write_text(request + "# once more\n")
    out = process(instance, store, inbox, out.cursor)
    assert not out.accepted and "segments.0.image_files.0: 'map.png': it is text 'not a picture', not a picture" in out.rejected[
        "rivers.yaml"][0]
