"""A timeline (docs/timeline.md) for a non-linear editor, through OpenTimelineIO and its adapters.

``to_otio`` turns the timeline JSON into an ``otio.schema.Timeline`` (pure: no storage, no Dagster):
one video track ``visual`` and two audio tracks ``narration`` and ``music``, at the timeline's fps
(frame = round half up of ms × fps / 1000, as both renderers count); every clip an ExternalReference
to its artifact with its provenance in ``metadata["moviegen"]``; transitions as OTIO Transitions at
the start of the clip that enters (``in_offset`` 0: the clip before is held underneath, as the
renderers draw it); placeholders and silence as Gaps; captions as markers on their narration clip.

``export_timeline`` writes it with an adapter: ``otio`` (OTIO's own JSON, everything), ``fcpxml``
(Final Cut Pro X / DaVinci Resolve), ``fcp7xml`` (Final Cut Pro 7 XML: Premiere Pro, Resolve) and
``edl`` (CMX 3600); and the captions alone as subtitles, ``srt`` and ``vtt`` (builder/subtitles.py).
``FORMATS`` says what each keeps and drops; docs/timeline.md shows it to users.
"""

from __future__ import annotations

import math
import posixpath
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import unquote, urlparse

import opentimelineio as otio

from movie_assets.builder.render.layout import DUCK_RAMP_MS, music_gain_points
from movie_assets.builder.subtitles import SUBTITLE_FORMATS, export_subtitles

NAMESPACE = "moviegen"  # the metadata key of everything moviegen writes into OTIO objects
CAPTION_COLOR = otio.schema.MarkerColor.CYAN  # not RED/GREEN: FCPXML turns those into to-do items
PLACEHOLDER_COLOR = otio.schema.MarkerColor.ORANGE
FCPXML_RATES = (24, 25, 30, 50, 60)  # the integer rates the FCPXML adapter writes a frameDuration for
FCPXML_GAP_START_S = 3600  # the local start the FCPXML adapter gives every gap element
# The frame sizes Final Cut Pro names (FFVideoFormat720p30 ...); any other size is a custom format, named by
# its size (Final Cut and Resolve read the width and height).
FCPXML_FORMAT_NAMES = {(1280, 720): "720p", (1920, 1080): "1080p", (3840, 2160): "2160p"}
MIN_DB = -96.0  # silence, in the formats that take levels in dB (Final Cut's lowest)
FCPXML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n'

# The timeline clip fields carried as metadata (times become the OTIO ranges).
_CLIP_FIELDS = ("id", "type", "asset", "partition", "version", "segment", "volume", "ducking", "effect",
                "transitionIn", "muted", "fallback", "degraded", "text")
# Provenance fields api.export adds from the artifact's materialization (where present).
PROVENANCE_FIELDS = ("prompt", "provider", "model", "run_id")
# An EDL event line as the cmx_3600 adapter writes a dissolve: "D 015    " where CMX 3600 has the edit type in
# 4 columns and the length in the 3 after a space ("D    015 "), as pycmx and other column readers read it.
_EDL_DISSOLVE = re.compile(r"^(\d{3,}  .{8} .{5} )D (\d{3})    ", re.MULTILINE)
# OTIO transition types: SMPTE_Dissolve is what every adapter knows; SMPTE_Wipe is what the EDL reader
# names a wipe; the others have no standard type.
_TRANSITION_TYPES = {"crossfade": otio.schema.TransitionTypes.SMPTE_Dissolve,
                     "dissolve": otio.schema.TransitionTypes.SMPTE_Dissolve, "wipe": "SMPTE_Wipe"}


@dataclass(frozen=True)
class ExportFormat:
    name: str
    adapter: str  # the OTIO adapter's name ("": moviegen writes it)
    suffix: str
    editors: str
    keeps: str
    drops: str


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("otio", "otio_json", ".otio", "OpenTimelineIO tools; Resolve 18.5+ imports .otio",
                 "everything: all tracks, clips, gaps, transitions (type and length; a fade through black as "
                 "dissolves into and out of a black generator), captions as markers, placeholders as named gaps, "
                 "metadata (provenance, volume, ducking, Ken Burns as an effect), each audio clip's level as a "
                 "moviegen.volume effect (gain keyframes: the music's volume and ducking)",
                 "nothing"),
    ExportFormat("fcpxml", "fcpx_xml", ".fcpxml", "Final Cut Pro X, DaVinci Resolve",
                 "the visual track as the primary storyline, narration and music as connected audio clips (lanes "
                 "-1, -2), gaps, fades through black as opacity keyframes, captions as markers on the narration "
                 "clips, placeholder text as markers on gaps, provenance as each asset-clip's note and metadata, "
                 "the music's level and ducking (adjust-volume keyframes in dB)",
                 "other transitions (the adapter writes none), Ken Burns"),
    ExportFormat("fcp7xml", "fcp_xml", ".xml", "Adobe Premiere Pro, DaVinci Resolve, Final Cut Pro 7",
                 "all tracks and clips, every transition as a Cross Dissolve of its length (a fade through black "
                 "as dissolves into and out of a Slug), captions as markers on the narration clips, provenance in "
                 "each clip's logging info and comments",
                 "the transition kind (wipe, slide, zoom become dissolves), placeholder text (gaps are empty), "
                 "volumes, ducking, Ken Burns"),
    ExportFormat("mlt", "", ".mlt", "Shotcut, melt (MLT); Kdenlive opens it as a clip",
                 "all tracks and clips, gaps (black), transitions as dissolves (luma) with the clip before held under "
                 "them, fades through black (brightness keyframes), the music's level and ducking (volume keyframes "
                 "in dB), narration and music mixed as the renderers mix them",
                 "the transition kind (wipe, slide, zoom become dissolves), captions, placeholder text, provenance "
                 "(each producer keeps its artifact URI), Ken Burns"),
    ExportFormat("edl", "cmx_3600", ".edl", "any editor (Avid, Premiere, Resolve, Final Cut)",
                 "the visual track: one event per clip with its source file, every transition as a dissolve of its "
                 "length (a fade through black as dissolves to and from BL), captions as LOC comments on the "
                 "picture under them, provenance as comments",
                 "the audio tracks (the adapter writes one video track), placeholders (black), wipe/slide/zoom kinds, "
                 "prompts, volumes, ducking, Ken Burns"),
    ExportFormat("srt", "", ".srt", "any video player or editor (SubRip subtitles)",
                 "the captions: one cue per caption line, timed to the movie's frames",
                 "everything else (pictures, sound, transitions), the highlighted word"),
    ExportFormat("vtt", "", ".vtt", "web players (<track>), YouTube, most video players (WebVTT subtitles)",
                 "the captions: one cue per caption line, timed to the movie's frames",
                 "everything else (pictures, sound, transitions), the highlighted word"),
)}


def frame(ms: int | float, fps: int | float) -> int:
    """The frame at ``ms``: round half up, as Remotion's Math.round and the ffmpeg engine count."""
    return math.floor(Fraction(str(ms)) * Fraction(str(fps)) / 1000 + Fraction(1, 2))


def _rt(frames: int, fps: int) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(frames, fps)


def _range(start: int, duration: int, fps: int) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(_rt(start, fps), _rt(duration, fps))


def file_name(uri: str) -> str:
    """The artifact's file name (``90e80cdbcafacefc.png``): the first 16 hex of its data version."""
    return posixpath.basename(unquote(urlparse(uri).path))


def _metadata(clip: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    md = {k: clip[k] for k in _CLIP_FIELDS if k in clip}
    if "src" in clip:
        md["uri"] = clip["src"]  # the stable artifact URI, whatever link the reference carries
    md |= {k: v for k, v in (extra or {}).items() if v not in (None, "")}
    return md


class _Track:
    """Items placed at frame positions, with Gaps between them."""

    def __init__(self, name: str, kind: str, fps: int):
        self.track = otio.schema.Track(name=name, kind=kind)
        self.fps, self.at = fps, 0
        self.placed: list[tuple[int, int, Any]] = []  # (start, end, item)

    def add(self, start: int, end: int, item: Any) -> None:
        if start < self.at:
            raise ValueError(f"track {self.track.name!r}: {item.name!r} starts at frame {start}, before the end of the "
                             f"clip before it (frame {self.at})")
        if start > self.at:
            self.track.append(otio.schema.Gap(source_range=_range(0, start - self.at, self.fps)))
        self.track.append(item)
        self.placed.append((start, end, item))
        self.at = end

    def pad(self, end: int) -> None:
        if end > self.at:
            self.track.append(otio.schema.Gap(source_range=_range(0, end - self.at, self.fps)))
            self.at = end

    def at_frame(self, f: int) -> tuple[int, int, Any] | None:
        return next((p for p in self.placed if p[0] <= f < p[1]), None)


def _media_clip(clip: dict[str, Any], start: int, end: int, fps: int, link: Callable[[str], str] | None,
                extra: Mapping[str, Any] | None) -> otio.schema.Clip:
    ref = otio.schema.ExternalReference(target_url=link(clip["src"]) if link else clip["src"],
                                        available_range=_range(0, end - start, fps))
    ref.name = file_name(clip["src"])
    item = otio.schema.Clip(name=clip["id"], media_reference=ref, source_range=_range(0, end - start, fps),
                            metadata={NAMESPACE: _metadata(clip, extra)})
    volume = _volume(clip)
    if volume is not None:
        item.effects.append(volume)
    effect = clip.get("effect") or {}
    if effect.get("type") == "ken_burns":
        item.effects.append(otio.schema.Effect(name="ken_burns", effect_name=f"{NAMESPACE}.ken_burns",
                                               metadata={NAMESPACE: effect}))
    return item


def db(gain: float) -> float:
    """A gain as decibels (``MIN_DB`` for silence)."""
    return max(MIN_DB, 20 * math.log10(gain)) if gain > 0 else MIN_DB


def _volume(clip: dict[str, Any]) -> otio.schema.Effect | None:
    """An audio clip's level over time as an OTIO effect (OTIO has no volume schema): ``keyframes`` of
    (ms from the clip's start, gain, dB), linear in between; what both renderers play (music ducked
    under narration, with ramps of ``rampMs``). None at a constant gain of 1."""
    if clip.get("type") != "audio" or ("volume" not in clip and not clip.get("ducking")):
        return None
    points = music_gain_points(clip)
    if points == [(0.0, 1.0)]:
        return None
    keys = [{"ms": round(t, 3), "gain": round(g, 6), "dB": round(db(g), 3)} for t, g in points]
    return otio.schema.Effect(name="volume", effect_name=f"{NAMESPACE}.volume", metadata={NAMESPACE: {
        "volume": float(clip.get("volume", 1.0)), "ducking": list(clip.get("ducking", [])), "rampMs": DUCK_RAMP_MS,
        "keyframes": keys}})


def _volume_keys(item: otio.schema.Clip) -> list[dict[str, float]]:
    return next((list(e.metadata[NAMESPACE]["keyframes"]) for e in item.effects
                 if e.effect_name == f"{NAMESPACE}.volume"), [])


def _placeholder(clip: dict[str, Any], start: int, end: int, fps: int) -> otio.schema.Gap:
    gap = otio.schema.Gap(name=clip["id"], source_range=_range(0, end - start, fps),
                          metadata={NAMESPACE: _metadata(clip, None)})
    gap.markers.append(otio.schema.Marker(name=clip["text"], marked_range=_range(0, end - start, fps),
                                          color=PLACEHOLDER_COLOR, metadata={NAMESPACE: {"type": "placeholder"}}))
    return gap


def _transition(clip: dict[str, Any], frames: int, fps: int) -> otio.schema.Transition:
    kind = clip["transitionIn"]["type"]
    return otio.schema.Transition(
        name=kind, transition_type=_TRANSITION_TYPES.get(kind, otio.schema.TransitionTypes.Custom),
        in_offset=_rt(0, fps), out_offset=_rt(frames, fps),
        metadata={NAMESPACE: dict(clip["transitionIn"])})


def _tracks(timeline: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {t["name"]: t["clips"] for t in timeline["tracks"]}


def to_otio(timeline: dict[str, Any], *, link: Callable[[str], str] | None = None,
            provenance: Mapping[str, Mapping[str, Any]] | None = None, captions_on: str = "narration",
            about: Mapping[str, Any] | None = None) -> otio.schema.Timeline:
    """The timeline as an OTIO timeline at its fps.

    ``link`` maps an artifact URI to the URL the media reference carries (default: the URI itself);
    ``provenance`` adds fields (``PROVENANCE_FIELDS``) to the metadata of the clip with that id;
    ``captions_on``: ``narration`` puts each caption on its segment's narration clip (else on the picture
    under it), ``visual`` on the picture under it (a format that keeps only the video track);
    ``about`` is added to the timeline's metadata (the timeline's URI, the revision)."""
    fps = int(timeline["fps"])
    total = int(timeline.get("durationInFrames") or frame(timeline["durationMs"], fps))
    clips = _tracks(timeline)
    provenance = provenance or {}

    def span(c: dict[str, Any]) -> tuple[int, int]:
        return frame(c["startMs"], fps), frame(c["startMs"] + c["durationMs"], fps)

    visual = _Track("visual", otio.schema.TrackKind.Video, fps)
    previous_is_clip = False
    for c in sorted(clips.get("visual", []), key=lambda c: c["startMs"]):
        start, end = span(c)
        if end <= start:
            continue  # shorter than half a frame: nothing to show
        if c["type"] == "placeholder":
            visual.add(start, end, _placeholder(c, start, end, fps))
            previous_is_clip = False
            continue
        entering = c.get("transitionIn") or {"type": "cut", "durationMs": 0}
        frames = min(frame(entering["durationMs"], fps), end - start)
        if entering["type"] != "cut" and frames > 0 and previous_is_clip and start == visual.at:
            visual.track.append(_transition(c, frames, fps))  # between two clips only (not from or into a gap)
        visual.add(start, end, _media_clip(c, start, end, fps, link, provenance.get(c["id"])))
        previous_is_clip = True

    audio: dict[str, _Track] = {}
    for name in ("narration", "music"):
        track = audio[name] = _Track(name, otio.schema.TrackKind.Audio, fps)
        for c in sorted(clips.get(name, []), key=lambda c: c["startMs"]):
            start, end = span(c)
            if end > start:
                track.add(start, end, _media_clip(c, start, end, fps, link, provenance.get(c["id"])))

    for c in clips.get("captions", []):
        start, end = span(c)
        host = None
        if captions_on == "narration":
            host = next((p for p in audio["narration"].placed
                         if p[2].metadata[NAMESPACE].get("segment") == c["segment"] and p[0] <= start < p[1]), None)
        host = host or visual.at_frame(start)
        if host is None:
            continue
        at, host_end, item = host
        md = {k: c[k] for k in ("id", "type", "segment", "startMs", "durationMs", "words") if k in c}
        item.markers.append(otio.schema.Marker(
            name=c["text"], marked_range=_range(item.source_range.start_time.to_frames() + start - at,
                                                max(0, min(end, host_end) - start), fps),
            color=CAPTION_COLOR, metadata={NAMESPACE: md}))

    for track in (visual, *audio.values()):
        track.pad(total)
    info = {k: timeline[k] for k in ("movie", "title", "summary", "language", "assemblyStrategy", "fps", "width", "height",
                                     "durationMs", "durationInFrames", "formatVersion", "errors") if k in timeline}
    result = otio.schema.Timeline(name=timeline.get("title") or timeline["movie"], global_start_time=_rt(0, fps),
                                  metadata={NAMESPACE: info | dict(about or {})})
    result.tracks.extend([visual.track, audio["narration"].track, audio["music"].track])
    return result


# -- a fade through black, as each format can say it


def fade_halves(frames: int) -> tuple[int, int]:
    """A fade of ``frames``: the clip before goes to black over the first part, the next one comes in
    from black over the second (the renderers' halves; black at frame ``frames // 2``)."""
    return frames // 2, frames - frames // 2


def _fades(track: otio.schema.Track) -> list[otio.schema.Transition]:
    """The track's fades through black that have a frame for each half (a 1-frame fade stays a dissolve)."""
    return [t for t in track if isinstance(t, otio.schema.Transition)
            and t.metadata[NAMESPACE].get("type") == "fade" and t.out_offset.to_frames() >= 2]


def _trim_start(item: otio.schema.Clip, frames: int) -> None:
    r = item.source_range
    item.source_range = otio.opentime.TimeRange(r.start_time + _rt(frames, int(r.start_time.rate)),
                                                r.duration - _rt(frames, int(r.duration.rate)))


def _dissolve(name: str, frames: int, fps: int, md: Mapping[str, Any]) -> otio.schema.Transition:
    return otio.schema.Transition(name=name, transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                                  in_offset=_rt(0, fps), out_offset=_rt(frames, fps), metadata={NAMESPACE: dict(md)})


def black_clip(frames: int, fps: int) -> otio.schema.Clip:
    """Black, as OTIO names it (a ``black`` generator: what OTIO's EDL reader makes of a ``BL`` source)."""
    ref = otio.schema.GeneratorReference(name="black", generator_kind="black", available_range=_range(0, frames, fps))
    return otio.schema.Clip(name="black", media_reference=ref, source_range=_range(0, frames, fps),
                            metadata={NAMESPACE: {"type": "black"}})


def fades_through_black_clips(tl: otio.schema.Timeline) -> None:
    """Each fade as a dissolve into a black clip and one out of it (OTIO has no fade-to-black type; this
    is how its EDL reader gives a dissolve to and from ``BL``): the clip before dissolves to black over
    the first half, the clip that enters dissolves in from black over the second, from that far into
    its media (its frames line up with the render's)."""
    visual = tl.tracks[0]
    fps = int(tl.metadata[NAMESPACE]["fps"])
    for fade in _fades(visual):
        out, into = fade_halves(fade.out_offset.to_frames())
        at = visual.index(fade)
        _trim_start(visual[at + 1], out)
        md = fade.metadata[NAMESPACE]
        del visual[at]
        for k, item in enumerate((_dissolve("fade out", out, fps, {**md, "half": "out"}), black_clip(out, fps),
                                  _dissolve("fade in", into, fps, {**md, "half": "in"}))):
            visual.insert(at + k, item)


def fades_as_opacity(tl: otio.schema.Timeline) -> list[tuple[otio.schema.Clip, otio.schema.Clip, int, int]]:
    """Each fade as opacity on the two clips (for formats that key a clip's opacity, with black under
    the track): the clip before held for the first half (its last frame, as the renderers hold it) and
    fading out over it, the clip that enters starting at the black point, that far into its media, and
    fading in. Returns (before, entering, out frames, in frames) for each."""
    visual = tl.tracks[0]
    fps = int(tl.metadata[NAMESPACE]["fps"])
    out_list = []
    for fade in _fades(visual):
        out, into = fade_halves(fade.out_offset.to_frames())
        at = visual.index(fade)
        before, entering = visual[at - 1], visual[at + 1]
        r = before.source_range
        before.source_range = otio.opentime.TimeRange(r.start_time, r.duration + _rt(out, fps))
        ref = before.media_reference
        ref.available_range = otio.opentime.TimeRange(ref.available_range.start_time,
                                                      ref.available_range.duration + _rt(out, fps))
        _trim_start(entering, out)
        del visual[at]
        out_list.append((before, entering, out, into))
    return out_list


# -- per format: what its adapter reads of the metadata


def _provenance_line(md: Mapping[str, Any]) -> str:
    return f"{md.get('asset')} {md.get('partition')} @{md.get('version')}"


def _for_fcpxml(tl: otio.schema.Timeline) -> None:
    """The FCPXML adapter writes an asset-clip per clip with the reference's ``fcpx`` note and metadata."""
    for clip in tl.find_clips():
        md = clip.metadata[NAMESPACE]
        keys = ("id", "asset", "partition", "version", "segment", *PROVENANCE_FIELDS)
        note = _provenance_line(md) + (f" · prompt: {md['prompt']}" if md.get("prompt") else "")
        clip.media_reference.metadata["fcpx"] = {
            "note": note, "metadata": [{f"com.moviegen.{k}": str(md[k])} for k in keys if k in md]}
    fps = tl.metadata[NAMESPACE]["fps"]
    for gap in tl.tracks[0].find_children(descended_from_type=otio.schema.Gap, shallow_search=True):
        for marker in gap.markers:  # the adapter writes a gap with start="3600s": its markers' local time starts there
            marker.marked_range = otio.opentime.TimeRange(marker.marked_range.start_time + _rt(FCPXML_GAP_START_S * fps, fps),
                                                          marker.marked_range.duration)


def fcpxml_format_name(width: int, height: int, fps: int) -> str:
    """Final Cut's name for a standard format (``FFVideoFormat1080p30``), else ``854x480p30``."""
    standard = FCPXML_FORMAT_NAMES.get((width, height))
    return f"FFVideoFormat{standard}{fps}" if standard else f"{width}x{height}p{fps}"


def _fcpxml_time(t: Fraction) -> str:
    return f"{t.numerator}/{t.denominator}s" if t.denominator != 1 else f"{t.numerator}s"


def _keyframes(parent: ET.Element, tag: str, keys: list[tuple[Fraction, str]]) -> None:
    """An ``adjust-*`` element with its ``amount`` keyframed (times in the clip's local time, seconds), put
    where FCPXML's DTD has the clip's intrinsic parameters: after its note, before anything it holds."""
    at = 1 if len(parent) and parent[0].tag == "note" else 0
    adjust = ET.Element(tag)
    parent.insert(at, adjust)
    animation = ET.SubElement(ET.SubElement(adjust, "param", {"name": "amount"}), "keyframeAnimation")
    for t, value in keys:
        ET.SubElement(animation, "keyframe", {"time": _fcpxml_time(t), "value": value})


def _finish_fcpxml(text: str, timeline: dict[str, Any], tl: otio.schema.Timeline,
                   fades: list[tuple[otio.schema.Clip, otio.schema.Clip, int, int]]) -> str:
    """What the FCPXML adapter leaves out, added to its document: the format's size and name from the
    timeline's own settings (the adapter asks ffprobe about the first clip, when it is on the PATH, and
    leaves the name empty otherwise: a different file on every machine); each fade through black as
    opacity keyframes (``adjust-blend``) on the two clips (the storyline has black under it); each audio
    clip's level (``adjust-volume``: its gain in dB, keyframed where the music ducks)."""
    root = ET.fromstring(text)
    fps, width, height = int(timeline["fps"]), int(timeline["width"]), int(timeline["height"])
    for fmt in root.iterfind("./resources/format"):
        fmt.set("name", fcpxml_format_name(width, height, fps))
        fmt.set("width", str(width))
        fmt.set("height", str(height))
    spine = {c.get("name"): c for c in root.iterfind("./project/sequence/spine/clip")}
    opacity: dict[str, list[tuple[Fraction, str]]] = {}
    for before, entering, out, into in fades:
        end = before.source_range.end_time_exclusive().to_frames()  # local time: the clip's source time
        opacity.setdefault(before.name, []).extend([(Fraction(end - out, fps), "1"), (Fraction(end, fps), "0")])
        start = entering.source_range.start_time.to_frames()
        opacity.setdefault(entering.name, [])[:0] = [(Fraction(start, fps), "0"), (Fraction(start + into, fps), "1")]
    for name, keys in opacity.items():
        _keyframes(spine[name], "adjust-blend", keys)
    for track in tl.tracks[1:]:
        for item in track.find_clips():
            levels = _volume_keys(item)
            if not levels:
                continue
            (element,) = [c for c in root.iter("clip") if c.get("name") == item.name and c.get("lane")]
            if len(levels) == 1:  # a constant level
                element.insert(0, ET.Element("adjust-volume", {"amount": f"{levels[0]['dB']:.2f}dB"}))
            else:
                _keyframes(element, "adjust-volume",
                           [(Fraction(round(k["ms"]), 1000), f"{k['dB']:.2f}dB") for k in levels])
    ET.indent(root, space="    ")
    return FCPXML_HEADER + ET.tostring(root, encoding="unicode") + "\n"


def _for_fcp7(tl: otio.schema.Timeline) -> None:
    """The FCP 7 XML adapter writes an item's ``fcp_xml`` metadata as its child elements: logging info
    and comments (Premiere shows them as Description, Log Note and Comment)."""
    for clip in tl.find_clips():
        md = clip.metadata[NAMESPACE]
        if md.get("type") == "black":  # FCP 7's black is the Slug generator
            ref = clip.media_reference
            ref.name = ref.generator_kind = "Slug"
            ref.metadata["fcp_xml"] = {"effectcategory": "Matte", "effecttype": "generator", "mediatype": "video"}
            continue
        clip.metadata["fcp_xml"] = {
            "logginginfo": {"description": md.get("prompt") or md["id"], "lognote": _provenance_line(md)},
            "comments": {"mastercomment1": md.get("asset"), "mastercomment2": md.get("partition"),
                         "mastercomment3": md.get("version"), "mastercomment4": md["id"]}}
    for track in tl.tracks:
        for item in track:
            if isinstance(item, otio.schema.Transition):
                # It starts at the cut (the adapter would write start-black, a fade from black, for in_offset 0).
                item.metadata["fcp_xml"] = {"alignment": "start"}


def _for_edl(tl: otio.schema.Timeline) -> None:
    """Provenance as comments (the adapter writes unrecognised ``cmx_3600`` comments as ``* TEXT`` lines
    and reads them back as such). Markers become ``* LOC`` lines, which editors read in record timecode
    (Avid writes them so); the adapter writes a marker's own time, relative to its clip (OTIO issues
    #169, #345), so each is moved to its record time first."""
    for clip in tl.tracks[0].find_clips():
        md = clip.metadata[NAMESPACE]
        if md.get("type") == "black":
            clip.metadata["cmx_3600"] = {"reel": "BL"}  # CMX 3600's black source
            continue
        clip.metadata["cmx_3600"] = {"comments": [f"MOVIEGEN {k.upper()}: {md[k]}" for k in ("asset", "partition", "version")
                                                  if k in md]}
        shift = clip.range_in_parent().start_time - clip.source_range.start_time
        for marker in clip.markers:
            marker.marked_range = otio.opentime.TimeRange(marker.marked_range.start_time + shift, marker.marked_range.duration)


def export_timeline(timeline: dict[str, Any], fmt: str, *, link: Callable[[str], str] | None = None,
                    provenance: Mapping[str, Mapping[str, Any]] | None = None,
                    about: Mapping[str, Any] | None = None) -> str:
    """The timeline written in ``fmt`` (a key of ``FORMATS``) by its OTIO adapter."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt in SUBTITLE_FORMATS:
        return export_subtitles(timeline, fmt)
    fps = int(timeline["fps"])
    if fmt == "fcpxml" and fps not in FCPXML_RATES:
        raise ValueError(f"FCPXML export needs a frame rate of {', '.join(map(str, FCPXML_RATES))} fps; "
                         f"this timeline is at {fps} fps (export otio, fcp7xml or edl)")
    tl = to_otio(timeline, link=link, provenance=provenance, captions_on="visual" if fmt == "edl" else "narration",
                 about=about)
    fades = fades_as_opacity(tl) if fmt in ("fcpxml", "mlt") else []
    if fmt == "mlt":
        return to_mlt(timeline, tl, fades)
    if fmt in ("otio", "fcp7xml", "edl"):
        fades_through_black_clips(tl)
    if fmt == "fcpxml":
        _for_fcpxml(tl)
    elif fmt == "fcp7xml":
        _for_fcp7(tl)
    elif fmt == "edl":
        _for_edl(tl)
        return _EDL_DISSOLVE.sub(r"\1D    \2 ", otio.adapters.write_to_string(tl, FORMATS[fmt].adapter, rate=fps))
    text = otio.adapters.write_to_string(tl, FORMATS[fmt].adapter)
    return _finish_fcpxml(text, timeline, tl, fades) if fmt == "fcpxml" else text


def _mlt_resource(url: str) -> str:
    """MLT opens local files by path (and other URLs, https links included, through FFmpeg)."""
    return unquote(urlparse(url).path) if url.startswith("file://") else url


def _mlt_property(parent: ET.Element, name: str, value: Any) -> None:
    ET.SubElement(parent, "property", {"name": name}).text = str(value)


def _mlt_filter(producer: ET.Element, service: str, start: int, end: int, keys: list[tuple[int, float]],
                prop: str) -> None:
    """A filter over frames ``start``..``end`` of its producer, ``prop`` keyframed (frames from ``start``,
    linear in between)."""
    f = ET.SubElement(producer, "filter", {"in": str(start), "out": str(end)})
    _mlt_property(f, "mlt_service", service)
    _mlt_property(f, prop, ";".join(f"{k}={v:g}" for k, v in keys))


def to_mlt(timeline: dict[str, Any], tl: otio.schema.Timeline,
           fades: list[tuple[otio.schema.Clip, otio.schema.Clip, int, int]]) -> str:
    """The timeline as MLT XML (melt, Shotcut; Kdenlive opens it as a clip) — written here, as no OTIO
    adapter keeps levels: black background (track 0), music and narration (mixed into it with ``mix``,
    summed as the renderers sum them), the pictures on two tracks (A/B roll, so a transition has both);
    each transition a ``luma`` dissolve with the clip before held under it; a fade through black as
    ``brightness`` keyframes (``tl`` shaped by ``fades_as_opacity``); each audio clip's level a ``volume``
    filter keyframed in dB (the music's volume and ducking)."""
    fps, total = int(timeline["fps"]), tl.duration().to_frames()
    root = ET.Element("mlt", {"LC_NUMERIC": "C", "title": tl.name, "producer": "main"})
    ET.SubElement(root, "profile", {
        "description": f"{timeline['width']}x{timeline['height']}p{fps}", "width": str(timeline["width"]),
        "height": str(timeline["height"]), "progressive": "1", "sample_aspect_num": "1", "sample_aspect_den": "1",
        "display_aspect_num": str(timeline["width"]), "display_aspect_den": str(timeline["height"]),
        "frame_rate_num": str(fps), "frame_rate_den": "1", "colorspace": "709"})
    black = ET.SubElement(root, "producer", {"id": "black", "in": "0", "out": str(total - 1)})
    for name, value in (("length", total), ("eof", "pause"), ("resource", "#000000"), ("mlt_service", "color")):
        _mlt_property(black, name, value)
    playlists: list[ET.Element] = []
    brightness: dict[str, list[tuple[int, int, int, int]]] = {}  # clip -> (from its first frame, frames, from, to)
    for before, entering, out, into in fades:
        brightness.setdefault(before.name, []).append((before.source_range.duration.to_frames() - out, out, 1, 0))
        brightness.setdefault(entering.name, []).append((0, into, 0, 1))

    def playlist(name: str) -> ET.Element:
        pl = ET.Element("playlist", {"id": name})
        playlists.append(pl)
        return pl

    def producer(item: otio.schema.Clip, end: int) -> ET.Element:
        md = item.metadata[NAMESPACE]
        prod = ET.SubElement(root, "producer", {"id": md["id"], "in": "0", "out": str(end - 1)})
        _mlt_property(prod, "resource", _mlt_resource(item.media_reference.target_url))
        _mlt_property(prod, "length", end)
        if md.get("type") == "image":
            _mlt_property(prod, "ttl", 1)
        if md.get("muted"):
            _mlt_property(prod, "audio_index", -1)
        _mlt_property(prod, "moviegen:uri", md.get("uri", ""))
        return prod

    ET.SubElement(playlist("background"), "entry", {"producer": "black", "in": "0", "out": str(total - 1)})
    for track in tl.tracks[1:][::-1]:  # music under narration; audio under the pictures
        pl, at = playlist(track.name), 0
        for item in track.find_clips():
            r = item.range_in_parent()
            start, length = r.start_time.to_frames(), r.duration.to_frames()
            if start > at:
                ET.SubElement(pl, "blank", {"length": str(start - at)})
            prod = producer(item, length)
            levels = _volume_keys(item)
            if levels:
                keys = [(min(length - 1, frame(k["ms"], fps)), round(k["dB"], 2)) for k in levels]
                _mlt_filter(prod, "volume", 0, length - 1, keys if len(keys) > 1 else [(0, keys[0][1])], "level")
            ET.SubElement(pl, "entry", {"producer": prod.get("id", ""), "in": "0", "out": str(length - 1)})
            at = start + length
    rolls = [playlist("visual A"), playlist("visual B")]
    ends = [0, 0]
    transitions: list[tuple[int, int, int]] = []  # (start, frames, the roll it goes to)
    items, k = list(tl.tracks[0]), 0
    for n, item in enumerate(items):
        if not isinstance(item, otio.schema.Clip):
            continue
        r = item.range_in_parent()
        start, length = r.start_time.to_frames(), r.duration.to_frames()
        entering = items[n - 1] if n and isinstance(items[n - 1], otio.schema.Transition) else None
        roll = k % 2
        k += 1
        if entering is not None:
            transitions.append((start, entering.out_offset.to_frames(), roll))
        held = next((t.out_offset.to_frames() for t in items[n + 1:n + 2] if isinstance(t, otio.schema.Transition)), 0)
        first = item.source_range.start_time.to_frames()
        prod = producer(item, first + length + held)
        for at, frames, level_from, level_to in brightness.get(item.name, []):
            _mlt_filter(prod, "brightness", first + at, first + at + frames - 1, [(0, level_from), (frames, level_to)],
                        "level")
        if start > ends[roll]:
            ET.SubElement(rolls[roll], "blank", {"length": str(start - ends[roll])})
        ET.SubElement(rolls[roll], "entry", {"producer": prod.get("id", ""), "in": str(first),
                                             "out": str(first + length + held - 1)})
        ends[roll] = start + length + held
    tractor = ET.SubElement(root, "tractor", {"id": "main", "in": "0", "out": str(total - 1)})
    multitrack = ET.SubElement(tractor, "multitrack")
    for pl in playlists:
        root.insert(len(root) - 1, pl)
        ET.SubElement(multitrack, "track", {"producer": pl.get("id", "")})
    for b_track in (1, 2):  # every audio track summed into the background's, as the renderers mix
        mix = ET.SubElement(tractor, "transition")
        for name, value in (("mlt_service", "mix"), ("a_track", 0), ("b_track", b_track), ("always_active", 1),
                            ("sum", 1)):
            _mlt_property(mix, name, value)
    for start, frames, roll in transitions:  # from track 3 to 4, or (reversed) from 4 to 3
        luma = ET.SubElement(tractor, "transition", {"in": str(start), "out": str(start + frames - 1)})
        for name, value in (("mlt_service", "luma"), ("a_track", 3), ("b_track", 4), ("reverse", int(roll == 0))):
            _mlt_property(luma, name, value)
    ET.indent(root, space="    ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def read_export(text: str, fmt: str, fps: int) -> otio.schema.Timeline:
    """An export read back by the same adapter (what an editor's importer would start from)."""
    if fmt in FORMATS and not FORMATS[fmt].adapter:
        raise ValueError(f"no OpenTimelineIO reader for {fmt!r}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    kwargs = {"rate": fps} if fmt == "edl" else {}
    return otio.adapters.read_from_string(text, FORMATS[fmt].adapter, **kwargs)


def format_notes(timeline: dict[str, Any], fmt: str) -> list[str]:
    """What of this timeline the format leaves out, counted (for the CLI to say)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt in SUBTITLE_FORMATS:
        return [] if any(_tracks(timeline).get("captions", [])) else ["the timeline has no captions: the file has no cues"]
    clips = _tracks(timeline)
    visual = clips.get("visual", [])
    entering = [(c.get("transitionIn") or {}).get("type", "cut") for c in visual[1:]]
    tl = to_otio(timeline)
    transitions = [t for t in tl.tracks[0] if isinstance(t, otio.schema.Transition)]
    placeholders = sum(1 for c in visual if c["type"] == "placeholder")
    audio = len(clips.get("narration", [])) + len(clips.get("music", []))
    captions = len(clips.get("captions", []))
    notes = []
    if len(transitions) < sum(1 for e in entering if e != "cut"):
        notes.append(f"{sum(1 for e in entering if e != 'cut') - len(transitions)} transition(s) into or out of a placeholder "
                     "are kept only in the clips' metadata")
    dropped = [t for t in transitions if t.name != "fade"]  # FCPXML: a fade is opacity keyframes
    if fmt == "fcpxml" and dropped:
        notes.append(f"{len(dropped)} transition(s) dropped: the FCPXML adapter writes none")
    if fmt in ("fcp7xml", "mlt", "edl") and any(t.name not in ("crossfade", "dissolve", "fade") for t in transitions):
        notes.append("wipe, slide and zoom transitions are written as dissolves of the same length")
    if fmt == "edl":
        if audio:
            notes.append(f"{audio} audio clip(s) (narration, music) not in the EDL: it holds the visual track only")
        if placeholders:
            notes.append(f"{placeholders} placeholder(s) left black")
        if captions:
            notes.append(f"{captions} caption(s) written as LOC comments at their record timecode, without their duration")
    if fmt == "mlt" and captions:
        notes.append(f"{captions} caption(s) not in the MLT file (it has no markers here)")
    if fmt == "mlt" and placeholders:
        notes.append(f"{placeholders} placeholder(s) left black")
    if fmt == "fcp7xml" and placeholders:
        notes.append(f"{placeholders} placeholder(s) left as empty gaps (their text is not kept)")
    if fmt in ("fcp7xml", "edl") and audio:
        notes.append("music volume and ducking are not kept (fcpxml and otio keep them)")
    if fmt != "otio" and any((c.get("effect") or {}).get("type") == "ken_burns" for c in visual):
        notes.append("Ken Burns moves are not kept (use --format otio to keep them, as metadata)")
    return notes
