"""`moviegen export` end to end: one generated movie (offline providers, no render; crossfades), exported
to FCPXML and to a CMX 3600 EDL by the CLI, read back by the same OpenTimelineIO adapters and compared
with `moviegen timeline --print`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import opentimelineio as otio
import srt
import webvtt

from movie_assets.builder.export import frame, read_export
from tests.conftest import moviegen


def _record(clip: dict, fps: int) -> tuple[int, int]:
    start = frame(clip["startMs"], fps)
    return start, frame(clip["startMs"] + clip["durationMs"], fps) - start


def _clips(track: otio.schema.Track) -> list[tuple[str, int, int, str]]:
    out = []
    for c in track.find_clips():
        url = c.media_reference.target_url  # the EDL reader gives a dissolve's b-side its a-side's file; its own is a comment
        url = next((x.removeprefix("TO CLIP: ") for x in c.metadata.get("cmx_3600", {}).get("comments", [])
                    if x.startswith("TO CLIP: ")), url)
        out.append((c.name, int(c.range_in_parent().start_time.value), int(c.range_in_parent().duration.value), url))
    return out


def test_export_fcpxml_and_edl(home: Path, tmp_path: Path) -> None:
    env: dict[str, str] = {}  # offline providers; MOVIEGEN_RENDER=off is the tests' default
    request = tmp_path / "cw.yaml"
    request.write_text("inquiry_prompt: Tell me about the Civil War\nduration_seconds: 20\nimages_per_segment: 2\n"
                       "size: 480p\nassembly_strategy: crossfade\n", encoding="utf-8")
    assert moviegen(home, env, "new", str(request), "--id", "cw").returncode == 0
    generated = moviegen(home, env, "generate", "cw", "--json", "--quiet")
    assert generated.returncode == 0, generated.stderr[-2000:]
    timeline = json.loads(moviegen(home, env, "timeline", "cw", "--print").stdout)
    fps = timeline["fps"]
    tracks = {t["name"]: t["clips"] for t in timeline["tracks"]}

    out = tmp_path / "cw.fcpxml"
    proc = moviegen(home, env, "export", "cw", "--format", "fcpxml", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out) and "transition(s) dropped: the FCPXML adapter writes none" in proc.stderr
    back = read_export(out.read_text(encoding="utf-8"), "fcpxml", fps)
    lanes = {t.name: t for t in back.tracks}
    for lane, name in (("0", "visual"), ("-1", "narration"), ("-2", "music")):
        assert _clips(lanes[lane]) == [(c["id"], *_record(c, fps), c["src"]) for c in tracks[name]], name
    for clip in back.find_clips():  # provenance, with the prompt from the artifact's materialization
        md = {k: v for d in clip.media_reference.metadata["fcpx"]["metadata"] for k, v in d.items()}
        source = next(c for t in tracks.values() for c in t if c.get("id") == clip.name)
        assert (md["com.moviegen.asset"], md["com.moviegen.partition"], md["com.moviegen.version"]) == (
            source["asset"], source["partition"], source["version"])
        assert md["com.moviegen.provider"] and md["com.moviegen.run_id"]
        if source["asset"] == "segment_image":
            assert md["com.moviegen.prompt"]

    out = tmp_path / "cw.edl"
    proc = moviegen(home, env, "export", "cw", "--revision", "1", "--format", "edl", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "audio clip(s) (narration, music) not in the EDL" in proc.stderr
    text = out.read_text(encoding="utf-8")
    edl = read_export(text, "edl", fps)
    assert [t.kind for t in edl.tracks] == [otio.schema.TrackKind.Video]
    assert _clips(edl.tracks[0]) == [(c["id"], *_record(c, fps), c["src"]) for c in tracks["visual"]]
    dissolves = [(t.out_offset.value, t.in_offset.value) for t in edl.tracks[0] if isinstance(t, otio.schema.Transition)]
    assert dissolves == [(frame(500, fps), 0)] * (len(tracks["visual"]) - 1), "every crossfade: a dissolve at the cut"
    assert all(f"* MOVIEGEN VERSION: {c['version']}" in text for c in tracks["visual"])
    locators = {(m.name, int(m.marked_range.start_time.value)) for c in edl.find_clips() for m in c.markers}
    assert locators == {(c["text"].upper(), _record(c, fps)[0]) for c in tracks["captions"]}

    # The captions as subtitles: one cue per caption, starting on its first frame.
    proc = moviegen(home, env, "export", "cw", "--format", "srt", "--out", str(tmp_path / "cw.srt"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    cues = list(srt.parse((tmp_path / "cw.srt").read_text(encoding="utf-8")))
    assert [(c.content, math.ceil(round(c.start.total_seconds() * fps, 6))) for c in cues] == [
        (c["text"], _record(c, fps)[0]) for c in tracks["captions"]]
    vtt = webvtt.from_string(moviegen(home, env, "export", "cw", "--format", "vtt").stdout)
    assert [c.text for c in vtt] == [c["text"] for c in tracks["captions"]]

    proc = moviegen(home, env, "export", "cw", "--revision", "7", "--format", "edl")
    assert proc.returncode == 2 and "no revision 7" in proc.stderr and proc.stdout == ""
    # Export targets that cannot be written: exit 2 with what is wrong, before any work, no traceback.
    folder = home / "exports"
    folder.mkdir()
    for target, says in [(folder, "is a folder; give a file name in it"), (folder / "missing" / "cw.edl", "does not exist"),
                         (out / "cw.edl", "does not exist")]:  # under a file
        proc = moviegen(home, env, "export", "cw", "--format", "edl", "--out", str(target))
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        proc = moviegen(home, env, "timeline", "cw", "--out", str(target))
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
