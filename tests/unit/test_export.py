"""Export to an editor (builder/export.py): a timeline made by the engine on in-memory providers, with
pictures, a video clip, narration, music, captions, crossfades, a fade and a placeholder, written in
every format by OpenTimelineIO's adapters and read back by the same adapter: clips, order, record
ranges (frame-exact), media links, transitions, captions and provenance metadata."""

from __future__ import annotations

import asyncio
import io
import math
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import opentimelineio as otio
import pycmx
import pytest
import srt
import webvtt

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
from movie_assets.builder.render.audio import _duck_gain
from movie_assets.builder.render.layout import music_gain_points
from movie_assets.builder.timeline import assemble_timeline, validate_timeline
from movie_assets.domain.blueprint import NodeKey
from movie_assets.interfaces import cli
from tests.unit.fakes import Fakes, blueprint_of, hand_context, new_store, run_engine, small_request

FPS = 30
READ_BACK = [fmt for fmt, spec in FORMATS.items() if spec.adapter]  # the formats an OTIO adapter reads (not mlt)
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


def fades(movie: Movie) -> dict[str, tuple[str, int, int]]:
    """Each fade through black by the id of the clip it enters: (the clip before, frames to black, frames from black)."""
    visual = movie.tracks["visual"]
    out = {}
    for before, c in zip(visual, visual[1:], strict=False):
        if c["transitionIn"]["type"] == "fade" and "placeholder" not in (before["type"], c["type"]):
            frames = min(frame(c["transitionIn"]["durationMs"], FPS), _record(c)[1])
            out[c["id"]] = (before["id"], frames // 2, frames - frames // 2)
    return out


def expected(movie: Movie, track: str, link: Any = None, fmt: str = "otio") -> list[tuple[str, int, int, str]]:
    """Each clip's (id, record start, frames, link). Through a fade the entering clip starts at the black
    point, that far into its media; where the format fades opacity (FCPXML) the clip before is held until then."""
    entering = fades(movie) if track == "visual" else {}
    held = {before: out for before, out, _ in entering.values()} if fmt == "fcpxml" else {}
    out = []
    for c in movie.tracks[track]:
        if c["type"] == "placeholder":
            continue
        start, frames = _record(c)
        late = entering[c["id"]][1] if c["id"] in entering else 0
        out.append((c["id"], start + late, frames - late + held.get(c["id"], 0), link(c["src"]) if link else c["src"]))
    return out


def expected_transitions(movie: Movie, fmt: str = "otio") -> list[tuple[str, int]]:
    """(the clip a transition enters, its frames): a fade through black is a dissolve into black and one out of it."""
    if fmt == "fcpxml":
        return []  # the adapter writes none (a fade is opacity keyframes)
    visual = movie.tracks["visual"]
    through_black = fades(movie)
    out = []
    for before, c in zip(visual, visual[1:], strict=False):
        if c["id"] in through_black:
            out += [("black", through_black[c["id"]][1]), (c["id"], through_black[c["id"]][2])]
        elif c["transitionIn"]["type"] != "cut" and "placeholder" not in (before["type"], c["type"]):
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
        if isinstance(clip.media_reference, otio.schema.GeneratorReference):
            continue  # black (a fade through it): fades_in checks it
        r = clip.range_in_parent()
        url = getattr(clip.media_reference, "target_url", None)  # the EDL reader: no file for a dissolve from black
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


@pytest.mark.parametrize("fmt", READ_BACK)
def test_export_reads_back_with_the_same_adapter(movie: Movie, fmt: str) -> None:
    text = export_timeline(movie.timeline, fmt, provenance=movie.provenance)
    back = read_export(text, fmt, FPS)
    assert isinstance(back, otio.schema.Timeline)
    tracks = tracks_of(back, fmt)

    # Every clip of every track the format holds, in order, at its record frames, with its media link.
    assert clips_of(tracks["visual"], fmt) == expected(movie, "visual", fmt=fmt)
    if fmt == "edl":
        assert set(tracks) == {"visual"}, "an EDL holds the visual track only"
    else:
        assert clips_of(tracks["narration"], fmt) == expected(movie, "narration")
        assert clips_of(tracks["music"], fmt) == expected(movie, "music")

    # Transitions: at the start of the clip that enters, their length in frames.
    assert transitions_of(tracks["visual"]) == expected_transitions(movie, fmt)
    if fmt in ("otio", "fcp7xml"):
        names = [t.name for t in tracks["visual"] if isinstance(t, otio.schema.Transition)]
        assert names == ["crossfade", "crossfade", "crossfade", "fade out", "fade in"]

    # Provenance on every clip.
    for clip in back.find_clips():
        if isinstance(clip.media_reference, otio.schema.GeneratorReference):
            continue
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


def test_a_fade_goes_through_black_in_every_format(movie: Movie) -> None:
    """A fade is not a dissolve: the clip before goes to black over the first half, the next comes in from
    black over the second, in every format (as each can say it)."""
    ((entering, (before, out, into)),) = fades(movie).items()
    start = _record(next(c for c in movie.tracks["visual"] if c["id"] == entering))[0]

    # OTIO, FCP 7 XML (read back): a dissolve into a black generator (a Slug in FCP 7) and one out of it.
    for fmt in ("otio", "fcp7xml"):
        back = read_export(export_timeline(movie.timeline, fmt), fmt, FPS)
        items = list(tracks_of(back, fmt)["visual"])
        k = next(i for i, item in enumerate(items) if item.name == before)
        a, to_black, black, from_black, b = items[k:k + 5]
        assert (a.range_in_parent().end_time_exclusive().value, black.range_in_parent().start_time.value) == (start, start)
        assert [type(x) for x in (to_black, from_black)] == [otio.schema.Transition] * 2, fmt
        assert (to_black.out_offset.value, black.duration().value, from_black.out_offset.value) == (out, out, into), fmt
        assert isinstance(black.media_reference, otio.schema.GeneratorReference), fmt
        assert (b.name, b.range_in_parent().start_time.value, b.source_range.start_time.value) == (entering, start + out, out)
    text = export_timeline(movie.timeline, "otio")
    tl = read_export(text, "otio", FPS)
    black = next(c for c in tl.find_clips() if c.name == "black")
    assert black.media_reference.generator_kind == "black"
    assert all(t.transition_type == otio.schema.TransitionTypes.SMPTE_Dissolve for t in tl.tracks[0]
               if isinstance(t, otio.schema.Transition) and t.name.startswith("fade"))
    slug = ET.fromstring(export_timeline(movie.timeline, "fcp7xml")).find(".//generatoritem/effect")
    assert slug is not None and (slug.findtext("effectid"), slug.findtext("effecttype")) == ("Slug", "generator")

    # FCPXML: opacity keyframes (adjust-blend) in each clip's local time, black under the storyline.
    spine = ET.fromstring(export_timeline(movie.timeline, "fcpxml")).find("./project/sequence/spine")
    assert spine is not None
    clips = {c.get("name"): c for c in spine.findall("clip")}

    def opacity(name: str) -> list[tuple[Fraction, str]]:
        keys = clips[name].findall("./adjust-blend/param[@name='amount']/keyframeAnimation/keyframe")
        return [(Fraction(k.get("time", "").removesuffix("s")), k.get("value", "")) for k in keys]

    a_frames = _record(next(c for c in movie.tracks["visual"] if c["id"] == before))[1]
    assert opacity(before) == [(Fraction(a_frames, FPS), "1"), (Fraction(a_frames + out, FPS), "0")]
    assert opacity(entering) == [(Fraction(out, FPS), "0"), (Fraction(out + into, FPS), "1")]
    assert clips[entering].get("start") == f"{Fraction(out, FPS).numerator}/{Fraction(out, FPS).denominator}s"
    assert list(clips[entering])[0].tag == "adjust-blend", "intrinsic parameters come before the clip's contents"
    assert sum(1 for c in clips.values() if c.find("adjust-blend") is not None) == 2, "crossfades are not faded"


def test_music_levels_are_the_renderers(movie: Movie) -> None:
    """The level line every export carries is the one the ffmpeg engine mixes by, sample for sample."""
    music = movie.tracks["music"][0]
    points = music_gain_points(music)
    assert points[0] == (0.0, 0.12) and points[-1] == (30000.0, 0.35) and len(points) == 12
    for clip in (music, {**music, "ducking": [{"startMs": 1000, "endMs": 2000, "volume": 0.12},  # ramps that meet
                                              {"startMs": 2300, "endMs": 3000, "volume": 0.2}]}):
        samples = 48 * int(clip["durationMs"])
        t = np.arange(samples) / 48
        line = np.interp(t, [p[0] for p in music_gain_points(clip)], [p[1] for p in music_gain_points(clip)])
        assert np.abs(line - _duck_gain(clip, samples)).max() < 1e-6
    assert music_gain_points(movie.tracks["narration"][0]) == [(0.0, 1.0)]


@pytest.mark.parametrize("fmt", ["otio", "fcpxml"])
def test_music_level_and_ducking_are_carried(movie: Movie, fmt: str) -> None:
    """Music at its volume, ducked under narration: keyframed gain on the music clip (dB in FCPXML);
    narration, at 1, has none."""
    music = movie.tracks["music"][0]
    want = [(round(t), round(20 * math.log10(g), 2)) for t, g in music_gain_points(music)]
    if fmt == "otio":
        tl = read_export(export_timeline(movie.timeline, "otio"), "otio", FPS)
        clip = tl.tracks[2].find_clips()[0]
        (effect,) = clip.effects
        keys = effect.metadata[NAMESPACE]["keyframes"]
        assert (effect.effect_name, effect.metadata[NAMESPACE]["volume"]) == ("moviegen.volume", 0.35)
        assert [(round(k["ms"]), round(k["dB"], 2)) for k in keys] == want
        assert [k["gain"] for k in keys] == [p[1] for p in music_gain_points(music)]
        assert all(not c.effects for c in tl.tracks[1].find_clips())
        return
    root = ET.fromstring(export_timeline(movie.timeline, "fcpxml"))
    clips = {c.get("name"): c for c in root.iter("clip") if c.get("lane")}
    keys = clips[music["id"]].findall("./adjust-volume/param[@name='amount']/keyframeAnimation/keyframe")
    assert [(round(Fraction(k.get("time", "").removesuffix("s")) * 1000), float(k.get("value", "").removesuffix("dB")))
            for k in keys] == want
    assert list(clips[music["id"]])[0].tag == "adjust-volume"
    assert all(clips[c["id"]].find("adjust-volume") is None for c in movie.tracks["narration"])


def test_mlt_has_every_clip_levels_fades_and_dissolves(movie: Movie) -> None:
    """MLT XML (moviegen writes it: no OTIO adapter keeps levels), read as melt reads it: each playlist's
    entries and blanks place the clips; the music's volume filter, the fade's brightness filters, a luma
    dissolve per transition and a mix of each audio track into the background. (Rendered once with melt
    7.12: levels within 1% of the ffmpeg engine's mix, ducked and not, and the fade at black on its frame.)"""
    root = ET.fromstring(export_timeline(movie.timeline, "mlt"))
    producers = {p.get("id"): p for p in root.findall("producer")}
    placed: dict[str, list[tuple[str, int, int, int]]] = {}  # playlist -> (producer, record start, frames, source in)
    for pl in root.findall("playlist"):
        at, rows = 0, []
        for e in pl:
            if e.tag == "blank":
                at += int(e.get("length", ""))
            else:
                first, last = int(e.get("in", "")), int(e.get("out", ""))
                rows.append((e.get("producer", ""), at, last - first + 1, first))
                at += last - first + 1
        placed[pl.get("id", "")] = rows
    tracks = [t.get("producer") for t in root.findall("./tractor/multitrack/track")]
    assert tracks == ["background", "music", "narration", "visual A", "visual B"]
    for track in ("narration", "music"):
        assert [(p, s, n) for p, s, n, _ in placed[track]] == [(c[0], c[1], c[2]) for c in expected(movie, track)]
        assert all(producers[p].findtext("./property[@name='resource']") == c["src"].removeprefix("file://")
                   for (p, *_), c in zip(placed[track], movie.tracks[track], strict=True))
    # Pictures on two tracks: each clip from its record start, the clip before held under a dissolve.
    visual = sorted(placed["visual A"] + placed["visual B"], key=lambda r: r[1])
    held = {c: n for c, n in expected_transitions(movie) if c != "black"}  # frames the clip before is held
    want = expected(movie, "visual", fmt="fcpxml")
    for k, (clip_id, start, frames, _) in enumerate(want):
        nxt = want[k + 1][0] if k + 1 < len(want) else None
        extra = held.get(nxt, 0) if nxt not in fades(movie) else 0
        assert visual[k][:3] == (clip_id, start, frames + extra), clip_id
    lumas = [(int(t.get("in", "")), int(t.get("out", ""))) for t in root.findall("./tractor/transition")
             if t.findtext("./property[@name='mlt_service']") == "luma"]
    crossfades = [(c, n) for c, n in expected_transitions(movie) if c != "black" and c not in fades(movie)]
    starts = {c: s for c, s, _, _ in want}
    assert lumas == [(starts[c], starts[c] + n - 1) for c, n in crossfades]
    mixes = [(t.findtext("./property[@name='a_track']"), t.findtext("./property[@name='b_track']"),
              t.findtext("./property[@name='sum']")) for t in root.findall("./tractor/transition")
             if t.findtext("./property[@name='mlt_service']") == "mix"]
    assert mixes == [("0", "1", "1"), ("0", "2", "1")]
    # The music's level: its volume and ducking, in dB, at the renderers' corners.
    music = movie.tracks["music"][0]
    (volume,) = producers[music["id"]].findall("filter")
    assert volume.findtext("./property[@name='mlt_service']") == "volume"
    assert volume.findtext("./property[@name='level']") == ";".join(
        f"{min(899, frame(t, FPS))}={round(20 * math.log10(g), 2):g}" for t, g in music_gain_points(music))
    # The fade: brightness down to black over the held half of the clip before, up over the entering clip.
    ((entering, (before, out, into)),) = fades(movie).items()
    b_before = producers[before].find("filter")
    b_entering = producers[entering].find("filter")
    assert b_before is not None and b_entering is not None
    before_frames = _record(next(c for c in movie.tracks["visual"] if c["id"] == before))[1]
    assert (b_before.get("in"), b_before.get("out"), b_before.findtext("./property[@name='level']")) == (
        str(before_frames), str(before_frames + out - 1), f"0=1;{out}=0")
    assert (b_entering.get("in"), b_entering.get("out"), b_entering.findtext("./property[@name='level']")) == (
        str(out), str(out + into - 1), f"0=0;{into}=1")


def _timecode(frames: int) -> str:
    return otio.opentime.to_timecode(otio.opentime.RationalTime(frames, FPS), FPS)


def test_edl_dissolves_read_by_pycmx(movie: Movie) -> None:
    """An independent CMX 3600 reader (pycmx reads the columns as the standard places them): each
    dissolve's edit type is D and its length is in the next column."""
    edl = pycmx.parse_cmx3600(io.StringIO(export_timeline(movie.timeline, "edl")))
    edits = [(e.source, e.transition.kind, e.transition.effect_duration if not e.transition.cut else 0,
              e.record_in, e.record_out) for event in edl.events for e in event.edits]
    crossfades = dict(expected_transitions(movie))
    through_black = fades(movie)
    want = []
    for c in movie.tracks["visual"]:
        if c["type"] == "placeholder":
            continue
        start, frames = _record(c)
        reel = c["version"][:8]
        if c["id"] in through_black:  # a dissolve to black (BL), then one from black
            _, out, into = through_black[c["id"]]
            want.append((want[-1][0], "C", 0, _timecode(start), _timecode(start)))
            want.append(("BL", "D", out, _timecode(start), _timecode(start + out)))
            want.append(("BL", "C", 0, _timecode(start + out), _timecode(start + out)))
            want.append((reel, "D", into, _timecode(start + out), _timecode(start + frames)))
        elif c["id"] in crossfades:  # the cut line of the clip before (a dissolve's from-side), then the dissolve
            want.append((want[-1][0], "C", 0, _timecode(start), _timecode(start)))
            want.append((reel, "D", crossfades[c["id"]], _timecode(start), _timecode(start + frames)))
        else:
            want.append((reel, "C", 0, _timecode(start), _timecode(start + frames)))
    assert edits == want
    assert len(through_black) == 1 and [e for e in edits if e[0] == "BL"], "the fixture's fade went through black"
    # The clip that comes in from black plays from where the render has it at the black point.
    (entering,) = through_black
    edit = next(e for event in edl.events for e in event.edits if e.clip_name == entering)
    assert edit.source_in == _timecode(through_black[entering][1])


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


@pytest.mark.parametrize(("size", "name"), [((1280, 720), "FFVideoFormat720p30"), ((1920, 1080), "FFVideoFormat1080p30"),
                                           ((854, 480), "854x480p30"), ((1080, 1920), "1080x1920p30")])
def test_fcpxml_format_is_the_timelines_size_on_every_machine(movie: Movie, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             size: tuple[int, int], name: str) -> None:
    """The sequence's format: the timeline's width, height and frame duration, named as Final Cut names
    its standard formats (else by its size); never what ffprobe, if installed, says of the first clip."""
    timeline = {**movie.timeline, "width": size[0], "height": size[1]}
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "ffprobe").write_text("#!/bin/sh\necho 1920x1080\n", encoding="utf-8")
    (fake / "ffprobe").chmod(0o755)
    empty = tmp_path / "empty"
    empty.mkdir()
    texts = []
    for path in (str(fake), str(empty)):  # an ffprobe that answers something else; none at all
        monkeypatch.setenv("PATH", path)
        texts.append(export_timeline(timeline, "fcpxml"))
    assert texts[0] == texts[1]
    root = ET.fromstring(texts[0])
    (fmt,) = root.findall("./resources/format")
    assert fmt.attrib == {"id": fmt.get("id"), "name": name, "frameDuration": fmt.get("frameDuration"),
                          "width": str(size[0]), "height": str(size[1])}
    assert Fraction(fmt.get("frameDuration", "").removesuffix("s")) == Fraction(1, FPS)
    assert root.find("./project/sequence").get("format") == fmt.get("id")


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
    for fmt in READ_BACK:  # no adapter chokes on it
        read_export(export_timeline(timeline, fmt), fmt, FPS)


@pytest.mark.parametrize("fmt", READ_BACK)
def test_links_replace_the_media_urls_and_the_uri_stays_in_metadata(movie: Movie, fmt: str) -> None:
    def link(uri: str) -> str:
        return f"https://bucket.example/{file_name(uri)}?X-Amz-Signature=abc"

    back = read_export(export_timeline(movie.timeline, fmt, link=link), fmt, FPS)
    assert clips_of(tracks_of(back, fmt)["visual"], fmt) == expected(movie, "visual", link, fmt)
    if fmt == "otio":
        sources = {c["id"]: c["src"] for t in movie.tracks.values() for c in t if c.get("src")}
        for clip in back.find_clips():
            if isinstance(clip.media_reference, otio.schema.GeneratorReference):
                continue
            assert clip.metadata[NAMESPACE]["uri"] == sources[clip.name]
            assert clip.media_reference.name == file_name(clip.metadata[NAMESPACE]["uri"])


def test_format_notes_say_what_each_format_drops(movie: Movie) -> None:
    notes = {fmt: " | ".join(format_notes(movie.timeline, fmt)) for fmt in FORMATS}
    assert "2 transition(s) into or out of a placeholder" in notes["otio"] and "dropped" not in notes["otio"]
    assert "3 transition(s) dropped" in notes["fcpxml"], "the fade is kept (opacity keyframes)"
    assert "dissolves" not in notes["fcp7xml"], "crossfades are dissolves; the fade goes through black"
    assert "empty gaps" in notes["fcp7xml"]
    assert "4 audio clip(s)" in notes["edl"] and "left black" in notes["edl"] and "LOC" in notes["edl"]
    assert "music volume and ducking are not kept" in notes["fcp7xml"] and "volume" not in notes["fcpxml"]


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
        if fmt in ("edl", "mlt", "srt", "vtt"):
            continue  # the EDL reader needs the rate: read_export passes it; no OTIO reader for MLT or subtitles
        path = tmp_path / f"movie{spec.suffix}"
        path.write_text(export_timeline(movie.timeline, fmt), encoding="utf-8")
        assert len(otio.adapters.read_from_file(str(path)).find_clips()) > 0, fmt


def _shown_frames(start_s: float, end_s: float, fps: int, total: int) -> list[int]:
    """The frames a player shows a cue on: those whose time n / fps lies in [start, end)."""
    return [n for n in range(total) if start_s <= Fraction(n, fps) < end_s]


def _expected_frames(clip: dict[str, Any], fps: int) -> list[int]:
    return list(range(frame(clip["startMs"], fps), frame(clip["startMs"] + clip["durationMs"], fps)))


@pytest.mark.parametrize("fps", [30, 24, 60])
def test_subtitles_are_the_captions_one_cue_each_on_the_movies_frames(movie: Movie, fps: int) -> None:
    """SRT read by the srt package and WebVTT by webvtt-py (readers written apart from moviegen): one cue per
    caption, its text, shown on exactly the frames the renderers draw the caption on (at 24 and 60 fps too,
    where frame starts fall between milliseconds)."""
    timeline = {**movie.timeline, "fps": fps, "durationInFrames": movie.timeline["durationMs"] * fps // 1000}
    captions = sorted(movie.tracks["captions"], key=lambda c: c["startMs"])
    assert len(captions) >= 6
    total = timeline["durationInFrames"] + 1
    expected = [(c["text"], _expected_frames(c, fps)) for c in captions]

    text = export_timeline(timeline, "srt")
    assert text.startswith("1\n00:00:")
    cues = list(srt.parse(text))
    assert [c.index for c in cues] == list(range(1, len(captions) + 1))
    got = [(c.content, _shown_frames(Fraction(c.start.total_seconds()).limit_denominator(1000),
                                     Fraction(c.end.total_seconds()).limit_denominator(1000), fps, total)) for c in cues]
    assert got == expected

    text = export_timeline(timeline, "vtt")
    assert text.startswith("WEBVTT\n")
    vtt = webvtt.from_string(text)
    got = [(c.text, _shown_frames(Fraction(c.start_in_seconds * 1000 + int(c.start[-3:]), 1000),
                                  Fraction(c.end_in_seconds * 1000 + int(c.end[-3:]), 1000), fps, total)) for c in vtt]
    assert got == expected
    assert all(c.start.count(":") == 2 and "." in c.start for c in vtt), "HH:MM:SS.mmm"


def test_subtitles_escape_what_the_formats_read_as_markup() -> None:
    timeline = {"fps": 30, "tracks": [{"name": "captions", "clips": [
        {"id": "a#0", "startMs": 0, "durationMs": 1000, "text": "Ships <b>&</b>\n  lanes --> north"},
        {"id": "a#1", "startMs": 1000, "durationMs": 10, "text": "shorter than a frame"}]}]}
    vtt = webvtt.from_string(export_timeline(timeline, "vtt"))
    assert [c.text for c in vtt] == ["Ships &lt;b&gt;&amp;&lt;/b&gt; lanes --&gt; north"]
    assert [c.content for c in srt.parse(export_timeline(timeline, "srt"))] == ["Ships <b>&</b> lanes -> north"]
    assert format_notes({"fps": 30, "tracks": [{"name": "captions", "clips": []}]}, "srt") == [
        "the timeline has no captions: the file has no cues"]


def test_a_dissolve_is_a_dissolve_in_every_format(movie: Movie) -> None:
    """The same movie with its crossfades as (noise) dissolves: OTIO keeps the kind (an SMPTE_Dissolve named
    dissolve); the EDL, FCP 7 XML and MLT write exactly what they write for a crossfade (a dissolve of the
    same length), and no note says the kind was changed."""
    swapped = {**movie.timeline, "tracks": [{**t, "clips": [
        {**c, "transitionIn": {**c["transitionIn"], "type": "dissolve"}}
        if (c.get("transitionIn") or {}).get("type") == "crossfade" else c for c in t["clips"]]}
        for t in movie.timeline["tracks"]]}
    kinds = lambda tl: [(t.name, t.transition_type, t.out_offset.value) for t in tl.tracks[0]  # noqa: E731
                        if isinstance(t, otio.schema.Transition)]
    before, after = kinds(to_otio(movie.timeline)), kinds(to_otio(swapped))
    assert sum(1 for name, *_ in before if name == "crossfade") >= 3
    assert after == [("dissolve" if n == "crossfade" else n, k, d) for n, k, d in before]
    assert all(k == otio.schema.TransitionTypes.SMPTE_Dissolve for n, k, _ in after if n == "dissolve")
    assert export_timeline(swapped, "mlt") == export_timeline(movie.timeline, "mlt"), "luma dissolves, as for crossfades"
    for fmt in ("edl", "fcp7xml"):  # these keep the kind in comments: compare the transitions read back
        read = [read_export(export_timeline(tl, fmt), fmt, FPS) for tl in (swapped, movie.timeline)]
        a, b = ([(t.transition_type, t.out_offset.value) for t in r.find_children(descended_from_type=otio.schema.Transition)]
                for r in read)
        assert a == b and len(a) >= 3, fmt
    for fmt in FORMATS:
        assert "written as dissolves" not in " ".join(format_notes(swapped, fmt)), fmt
