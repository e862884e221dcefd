"""Export to an editor (builder/export.py): a timeline made by the engine on in-memory providers, with
pictures, a video clip, narration, music, captions, crossfades, a fade and a placeholder, written in
every format by OpenTimelineIO's adapters and read back by the same adapter: clips, order, record
ranges (frame-exact), media links, transitions, captions and provenance metadata."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio
import pytest

from movie_assets.builder.export import (
    FORMATS,
    NAMESPACE,
    export_timeline,
    file_name,
    format_notes,
    frame,
    read_export,
    to_otio,
)
from movie_assets.builder.recipes import RECIPES
from movie_assets.builder.timeline import assemble_timeline, validate_timeline
from movie_assets.domain.blueprint import NodeKey
from movie_assets.interfaces import cli
from tests.unit.fakes import Fakes, blueprint_of, hand_context, new_store, run_engine, small_request

FPS = 30
MISSING = NodeKey("segment_image", 2, 1)  # left out: a placeholder in segment 2


class Movie:
    def __init__(self, timeline: dict[str, Any], provenance: dict[str, dict[str, str]]):
        self.timeline = timeline
        self.provenance = provenance
        self.tracks = {t["name"]: t["clips"] for t in timeline["tracks"]}


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Movie:
    """3 segments: 3 pictures, a text-to-video clip, 3 pictures of which one is missing; crossfades,
    segment 2 entering with a fade; narration, captions, music."""
    request = small_request(duration_seconds=30, images_per_segment=3, assembly_strategy="crossfade",
                            segments={1: {"use_video": True}, 2: {"transition": "fade"}})
    run = run_engine(new_store(tmp_path_factory.mktemp("export")), Fakes(), blueprint_of(request))
    assert not run.failed
    records = {k: r for k, r in run.state.records.items() if k != MISSING}
    key = NodeKey("segment_visuals", 2)
    visuals = asyncio.run(RECIPES["segment_visuals"](hand_context(request, records=records), key))
    ctx = hand_context(request, records=records, values={key: visuals.value}, store=run.engine.store)
    timeline = asyncio.run(assemble_timeline(ctx))
    validate_timeline(timeline)
    provenance = {}
    for track in timeline["tracks"]:
        for c in track["clips"]:
            if c.get("version"):
                built = run.built[NodeKey.from_partition(c["asset"], c["partition"])]
                call = built.produced.call
                assert call is not None and built.produced.prompt
                provenance[c["id"]] = {"prompt": built.produced.prompt, "provider": call.provider, "model": call.model}
    return Movie(timeline, provenance)


def test_the_timeline_has_what_the_export_must_carry(movie: Movie) -> None:
    kinds = [c["type"] for c in movie.tracks["visual"]]
    assert kinds == ["image", "image", "image", "video", "image", "placeholder", "image"]
    assert [c["transitionIn"]["type"] for c in movie.tracks["visual"]] == ["cut"] + ["crossfade"] * 3 + ["fade"] + ["crossfade"] * 2
    assert len(movie.tracks["narration"]) == 3 and len(movie.tracks["music"]) == 1 and len(movie.tracks["captions"]) == 9
    assert [c["durationMs"] for c in movie.tracks["visual"][:3]] == [3334, 3333, 3333]  # ms that are not whole frames


def test_frame_rounds_half_up_like_the_renderers() -> None:
    assert [frame(ms, 30) for ms in (0, 16, 17, 50, 3334, 6667, 10000)] == [0, 0, 1, 2, 100, 200, 300]
    assert frame(150, 10) == 2 and frame(250, 10) == 3  # half up, not half to even


# -- what each track must hold, in record frames


def _record(c: dict[str, Any]) -> tuple[int, int]:
    start, end = frame(c["startMs"], FPS), frame(c["startMs"] + c["durationMs"], FPS)
    return start, end - start


def expected(movie: Movie, track: str, link: Any = None) -> list[tuple[str, int, int, str]]:
    return [(c["id"], *_record(c), link(c["src"]) if link else c["src"]) for c in movie.tracks[track] if c["type"] != "placeholder"]


def expected_transitions(movie: Movie) -> list[tuple[str, int]]:
    visual = movie.tracks["visual"]
    out = []
    for before, c in zip(visual, visual[1:], strict=False):
        if c["transitionIn"]["type"] != "cut" and "placeholder" not in (before["type"], c["type"]):
            out.append((c["id"], min(frame(c["transitionIn"]["durationMs"], FPS), _record(c)[1])))
    return out


def tracks_of(tl: otio.schema.Timeline, fmt: str) -> dict[str, otio.schema.Track]:
    """The read-back tracks by role: FCPXML comes back as lanes ('0' the storyline, '-1', '-2' below it)."""
    video = [t for t in tl.tracks if t.kind == otio.schema.TrackKind.Video]
    audio = [t for t in tl.tracks if t.kind == otio.schema.TrackKind.Audio]
    if fmt == "fcpxml":
        audio.sort(key=lambda t: -int(t.name))
    assert len(video) == 1
    return dict(zip(("visual", "narration", "music"), [*video, *audio], strict=False))


def clips_of(track: otio.schema.Track, fmt: str) -> list[tuple[str, int, int, str]]:
    out = []
    for clip in track.find_clips():
        r = clip.range_in_parent()
        url = clip.media_reference.target_url
        if fmt == "edl":  # the reader takes a dissolve's a-side file for its b-side too; the b-side's is a comment
            url = next((c.removeprefix("TO CLIP: ") for c in clip.metadata.get("cmx_3600", {}).get("comments", [])
                        if c.startswith("TO CLIP: ")), url)
        assert r.start_time.rate == FPS and r.start_time.value == int(r.start_time.value)
        out.append((clip.name, int(r.start_time.value), int(r.duration.value), url))
    return out


def transitions_of(track: otio.schema.Track) -> list[tuple[str, int]]:
    items = list(track)
    out = []
    for k, item in enumerate(items):
        if isinstance(item, otio.schema.Transition):
            assert item.in_offset.value == 0, "the transition starts at the cut: the clip before is held underneath"
            out.append((items[k + 1].name, int(item.out_offset.value)))
    return out


def provenance_of(clip: otio.schema.Clip, fmt: str) -> dict[str, str]:
    """asset, partition, version (and prompt where the format keeps it) as each format's reader gives them."""
    if fmt == "otio":
        md = clip.metadata[NAMESPACE]
        return {k: md[k] for k in ("asset", "partition", "version", "prompt", "provider") if k in md}
    if fmt == "fcpxml":
        fcpx = clip.media_reference.metadata["fcpx"]
        md = {k.removeprefix("com.moviegen."): v for d in fcpx["metadata"] for k, v in d.items()}
        assert md["prompt"] in fcpx["note"] and md["version"] in fcpx["note"]
        return {k: md[k] for k in ("asset", "partition", "version", "prompt", "provider")}
    if fmt == "fcp7xml":
        md = clip.metadata["fcp_xml"]
        comments = md["comments"]
        return {"asset": comments["mastercomment1"], "partition": comments["mastercomment2"],
                "version": comments["mastercomment3"], "prompt": md["logginginfo"]["description"]}
    comments = clip.metadata["cmx_3600"]["comments"]
    mine = [c for c in comments if c.startswith("MOVIEGEN ")][-3:]  # a dissolve repeats its a-side's comments first
    return {c.split(":", 1)[0].removeprefix("MOVIEGEN ").lower(): c.split(": ", 1)[1] for c in mine}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_export_reads_back_with_the_same_adapter(movie: Movie, fmt: str) -> None:
    text = export_timeline(movie.timeline, fmt, provenance=movie.provenance)
    back = read_export(text, fmt, FPS)
    assert isinstance(back, otio.schema.Timeline)
    tracks = tracks_of(back, fmt)

    # Every clip of every track the format holds, in order, at its record frames, with its media link.
    assert clips_of(tracks["visual"], fmt) == expected(movie, "visual")
    if fmt == "edl":
        assert set(tracks) == {"visual"}, "an EDL holds the visual track only"
    else:
        assert clips_of(tracks["narration"], fmt) == expected(movie, "narration")
        assert clips_of(tracks["music"], fmt) == expected(movie, "music")

    # Transitions: at the start of the clip that enters, their length in frames.
    assert transitions_of(tracks["visual"]) == ([] if fmt == "fcpxml" else expected_transitions(movie))
    if fmt in ("otio", "fcp7xml"):
        names = [t.name for t in tracks["visual"] if isinstance(t, otio.schema.Transition)]
        assert names == ["crossfade", "crossfade", "crossfade", "fade"]

    # Provenance on every clip.
    for clip in back.find_clips():
        got = provenance_of(clip, fmt)
        source = next(c for track in movie.tracks.values() for c in track if c.get("id") == clip.name)
        assert {k: got[k] for k in ("asset", "partition", "version")} == {k: source[k] for k in ("asset", "partition", "version")}
        if fmt in ("otio", "fcpxml", "fcp7xml"):
            assert got["prompt"] == movie.provenance[clip.name]["prompt"]


@pytest.mark.parametrize("fmt", ["otio", "fcpxml", "fcp7xml"])
def test_captions_are_markers_on_their_narration_clip(movie: Movie, fmt: str) -> None:
    back = read_export(export_timeline(movie.timeline, fmt), fmt, FPS)
    narration = tracks_of(back, fmt)["narration"]
    for clip, source in zip(narration.find_clips(), movie.tracks["narration"], strict=True):
        start = frame(source["startMs"], FPS)
        captions = [c for c in movie.tracks["captions"] if c["segment"] == source["segment"]]
        assert [(m.name, int(m.marked_range.start_time.value), int(m.marked_range.duration.value)) for m in clip.markers] == [
            (c["text"], _record(c)[0] - start, _record(c)[1]) for c in captions]


def test_edl_captions_are_locators_at_their_record_timecode(movie: Movie) -> None:
    back = read_export(export_timeline(movie.timeline, "edl"), "edl", FPS)
    found = {(m.name, int(m.marked_range.start_time.value)) for clip in back.find_clips() for m in clip.markers}
    placeholder = next(c for c in movie.tracks["visual"] if c["type"] == "placeholder")
    p_start, p_frames = _record(placeholder)
    want = {(c["text"].upper(), _record(c)[0]) for c in movie.tracks["captions"]
            if not p_start <= _record(c)[0] < p_start + p_frames}
    assert found == want and len(want) == len(movie.tracks["captions"]) - 1, "one starts over the placeholder: no event there"


def test_placeholders_are_gaps_with_their_text(movie: Movie) -> None:
    placeholder = next(c for c in movie.tracks["visual"] if c["type"] == "placeholder")
    start, frames = _record(placeholder)

    tl = to_otio(movie.timeline)
    (gap,) = [g for g in tl.tracks[0] if isinstance(g, otio.schema.Gap)]
    assert gap.name == placeholder["id"] and gap.range_in_parent() == otio.opentime.TimeRange(
        otio.opentime.RationalTime(start, FPS), otio.opentime.RationalTime(frames, FPS))
    assert [m.name for m in gap.markers] == [placeholder["text"]]
    assert gap.metadata[NAMESPACE]["partition"] == placeholder["partition"]

    # FCPXML: a gap in the storyline with the text as a marker (the adapter's gaps start at 3600 s).
    spine = ET.fromstring(export_timeline(movie.timeline, "fcpxml")).find("./project/sequence/spine")
    assert spine is not None
    (gap_e,) = spine.findall("gap")
    offset = Fraction(start, FPS)
    assert (gap_e.get("offset"), gap_e.get("start")) == (f"{offset.numerator}/{offset.denominator}s", "3600s")
    assert [(m.get("value"), m.get("start")) for m in gap_e.findall("marker")] == [(placeholder["text"], "3600s")]

    # FCP 7 XML and EDL: nothing there (the reader fills the hole with a gap; no EDL event covers it).
    for fmt in ("fcp7xml", "edl"):
        visual = tracks_of(read_export(export_timeline(movie.timeline, fmt), fmt, FPS), fmt)["visual"]
        covering = [c for c in visual.find_clips()
                    if c.range_in_parent().start_time.value < start + frames and c.range_in_parent().end_time_exclusive().value > start]
        assert covering == [], fmt


def test_otio_keeps_everything_as_metadata(movie: Movie) -> None:
    tl = read_export(export_timeline(movie.timeline, "otio", provenance=movie.provenance, about={"revision": 3}), "otio", FPS)
    assert tl.name == movie.timeline["title"] and tl.metadata[NAMESPACE]["revision"] == 3
    assert tl.metadata[NAMESPACE]["movie"] == movie.timeline["movie"] and tl.metadata[NAMESPACE]["fps"] == FPS
    assert tl.duration() == otio.opentime.RationalTime(movie.timeline["durationInFrames"], FPS)
    assert all(t.duration() == tl.duration() for t in tl.tracks), "every track lasts the movie"
    music = tl.tracks[2].find_clips()[0]
    source = movie.tracks["music"][0]
    assert music.metadata[NAMESPACE]["volume"] == source["volume"]
    assert [dict(d) for d in music.metadata[NAMESPACE]["ducking"]] == source["ducking"]
    assert music.metadata[NAMESPACE]["provider"] == movie.provenance[source["id"]]["provider"]
    first = tl.tracks[0].find_clips()[0]
    assert [e.effect_name for e in first.effects] == (["moviegen.ken_burns"] if movie.timeline["assemblyStrategy"] == "ken_burns" else [])
    assert first.metadata[NAMESPACE]["effect"] == movie.tracks["visual"][0]["effect"]
    assert first.metadata[NAMESPACE]["uri"] == movie.tracks["visual"][0]["src"]


def test_ken_burns_is_an_effect_in_otio(movie: Movie) -> None:
    timeline = {**movie.timeline, "assemblyStrategy": "ken_burns"}
    visual = [dict(c, effect={"type": "ken_burns", "from": {"scale": 1.0, "x": 0.5, "y": 0.5},
                              "to": {"scale": 1.15, "x": 0.55, "y": 0.5}}) if c["type"] == "image" else c
              for c in movie.tracks["visual"]]
    timeline["tracks"] = [{"name": "visual", "clips": visual}, *timeline["tracks"][1:]]
    clip = to_otio(timeline).tracks[0].find_clips()[0]
    (effect,) = clip.effects
    assert effect.effect_name == "moviegen.ken_burns" and effect.metadata[NAMESPACE]["to"]["scale"] == 1.15
    for fmt in FORMATS:  # no adapter chokes on it
        read_export(export_timeline(timeline, fmt), fmt, FPS)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_links_replace_the_media_urls_and_the_uri_stays_in_metadata(movie: Movie, fmt: str) -> None:
    def link(uri: str) -> str:
        return f"https://bucket.example/{file_name(uri)}?X-Amz-Signature=abc"

    back = read_export(export_timeline(movie.timeline, fmt, link=link), fmt, FPS)
    assert clips_of(tracks_of(back, fmt)["visual"], fmt) == expected(movie, "visual", link)
    if fmt == "otio":
        sources = {c["id"]: c["src"] for t in movie.tracks.values() for c in t if c.get("src")}
        for clip in back.find_clips():
            assert clip.metadata[NAMESPACE]["uri"] == sources[clip.name]
            assert clip.media_reference.name == file_name(clip.metadata[NAMESPACE]["uri"])


def test_format_notes_say_what_each_format_drops(movie: Movie) -> None:
    notes = {fmt: " | ".join(format_notes(movie.timeline, fmt)) for fmt in FORMATS}
    assert "2 transition(s) into or out of a placeholder" in notes["otio"] and "dropped" not in notes["otio"]
    assert "4 transition(s) dropped" in notes["fcpxml"]
    assert "dissolves" in notes["fcp7xml"] and "empty gaps" in notes["fcp7xml"]
    assert "4 audio clip(s)" in notes["edl"] and "left black" in notes["edl"] and "LOC" in notes["edl"]


def test_bad_requests_are_value_errors(movie: Movie) -> None:
    with pytest.raises(ValueError, match="unknown export format 'aaf'"):
        export_timeline(movie.timeline, "aaf")
    with pytest.raises(ValueError, match="FCPXML export needs a frame rate"):
        export_timeline({**movie.timeline, "fps": 15}, "fcpxml")
    overlapping = [*movie.tracks["narration"], {**movie.tracks["narration"][0], "id": "segment_audio:00@000000000000"}]
    timeline = {**movie.timeline, "tracks": [t if t["name"] != "narration" else {**t, "clips": overlapping}
                                             for t in movie.timeline["tracks"]]}
    with pytest.raises(ValueError, match="before the end of the clip before it"):
        to_otio(timeline)


def test_the_cli_offers_exactly_the_formats() -> None:
    assert cli.EXPORT_FORMATS == tuple(FORMATS)


def test_export_writes_a_file_an_adapter_reads_by_its_suffix(movie: Movie, tmp_path: Path) -> None:
    for fmt, spec in FORMATS.items():
        if fmt == "edl":
            continue  # the EDL reader needs the rate: read_export passes it
        path = tmp_path / f"movie{spec.suffix}"
        path.write_text(export_timeline(movie.timeline, fmt), encoding="utf-8")
        assert len(otio.adapters.read_from_file(str(path)).find_clips()) > 0, fmt
