"""The offline pictures: explainer frames that differ by shot, keep the look's colours and contrast, and
carry text only where every Ken Burns frame (of the render and of an offline clip) keeps it."""

from __future__ import annotations

import io
import itertools
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from movie_assets.builder.code_versions import code_versions
from movie_assets.builder.render.ffmpeg_engine import _cover_box
from movie_assets.builder.render.layout import clip_span
from movie_assets.builder.timeline import FPS, _visual_effect
from movie_assets.domain.look import with_look
from movie_assets.domain.request import AssemblyStrategy
from resources.providers.offline import text as offline_text
from resources.providers.offline.pictures import CAPTION_SAFE_TOP, CLIP_ZOOM, make_palette, paint, scene_kind
from resources.settings import Settings

README_PALETTE = "ink black #101010, bone white #f4f1ea, rust #9c4a2f"
TEXT_PROMPTS = [  # every kind that carries text, with long words, many stops and many years
    "map-like overview of the trade routes from Venice through Ragusa, Corfu and Crete to Alexandria",
    "a timeline of the war: Fort Sumter in 1861, Antietam in 1862, Gettysburg in 1863, Atlanta in 1864, Appomattox in 1865",
    "a bar chart of the population of New York, Philadelphia and Boston in 1800, 1850 and 1900",
    "a diagram of how volcanoes work: magma chamber, pressure, eruption, Supercalifragilisticexpialidocious ash",
    "map of the Mississippi",
]
SIZES = [(854, 480), (1280, 720), (480, 854), (720, 720), (320, 180)]


def demo_prompts() -> list[str]:
    """The demo's shots (examples/civil-war.yaml: 3 segments x 2 images, its own last narration)."""
    script = offline_text.write_script("Tell me about the Civil War", 3, "general", "en")
    narration = list(script["narration"])
    narration[2] = ("So that was the Civil War: four years that reshaped a nation, ended slavery and left questions we "
                    "still ask today.")
    look = offline_text.look("the Civil War", "cinematic")
    return [with_look(p, look) for k in range(3)
            for p in offline_text.image_prompts(narration[k], script["summary"], "cinematic", 2, k, look)]


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def render_windows(w: int, h: int, out: tuple[int, int]) -> list[tuple[float, float, float, float]]:
    """The picture region every frame of the movie's Ken Burns shows (the ffmpeg engine's own crop,
    which the Remotion composition matches), for every move the timeline gives a picture, at every
    frame of a 10 s clip, rendered at ``out``."""
    windows = []
    clip = {"startMs": 0, "durationMs": 10_000}
    start, end = clip_span(clip, Fraction(FPS))
    for index in range(4):  # zoom in / out, drift right / left
        effect = _visual_effect(AssemblyStrategy.ken_burns, index, "image")
        a, b = effect["from"], effect["to"]
        for f in range(start, end):
            t = (f - start) / (end - start)
            lerp = lambda k: a[k] + (b[k] - a[k]) * t  # noqa: B023, E731
            windows.append(_cover_box(w, h, *out, lerp("scale"), lerp("x"), lerp("y")))
    return windows


def clip_windows(w: int, h: int) -> list[tuple[float, float, float, float]]:
    """The picture region every frame of an offline clip shows: animate's zoompan (zoom 1 -> 1.15 or
    back, x panned across the whole overhang either way, y centred), at each of its 250 frames."""
    frames, windows = 250, []
    for zoom_in, pan_right in itertools.product((True, False), repeat=2):
        for on in range(frames):
            zoom = 1 + (CLIP_ZOOM - 1) * on / frames if zoom_in else CLIP_ZOOM - (CLIP_ZOOM - 1) * on / frames
            vw, vh = w / zoom, h / zoom
            x = (w - vw) * (on / frames if pan_right else 1 - on / frames)
            windows.append((x, (h - vh) / 2, x + vw, (h + vh) / 2))
    return windows


@pytest.mark.parametrize("size", SIZES)
def test_no_drawn_text_leaves_the_ken_burns_view_at_any_frame(size: tuple[int, int]) -> None:
    w, h = size
    windows = render_windows(w, h, size) + render_windows(w, h, (w * 3 // 2, h * 3 // 2)) + clip_windows(w, h)
    x0, y0 = max(b[0] for b in windows), max(b[1] for b in windows)
    x1, y1 = min(b[2] for b in windows), min(b[3] for b in windows)
    assert 0.1 * w < x0 < 0.15 * w and 0.85 * w < x1 < 0.9 * w  # what every frame keeps: the windows really move
    checked = 0
    for prompt, (take, debug) in itertools.product(TEXT_PROMPTS + demo_prompts()[-1:], ((0, False), (1, True))):
        picture = paint(prompt, "cinematic", w, h, "Segment 03 · Image 1", take, debug=debug)
        assert picture.text_boxes or picture.kind not in ("map", "timeline", "chart", "diagram"), prompt
        for text, (bx0, by0, bx1, by1) in picture.text_boxes:
            assert x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1, (size, prompt, text, (bx0, by0, bx1, by1), (x0, y0, x1, y1))
            assert by1 <= h * CAPTION_SAFE_TOP, (size, text)  # and above the captions
            checked += 1
    assert checked > 30


def test_the_scene_is_what_the_shot_asks_for() -> None:
    cases = {
        "map-like overview of the frontier": "map", "a timeline from 1776 to 1789": "timeline",
        "a bar chart of cotton exports": "chart", "a diagram of how a bill becomes law": "diagram",
        "group of people experiencing the news": "crowd", "a portrait of a queen": "portrait",
        "symbolic still life about the treaty": "object", "wide establishing shot of the city skyline": "city",
        "wide shot of snowy mountains and a river valley at dawn": "landscape",
    }
    for prompt, kind in cases.items():
        assert scene_kind(prompt) == kind, prompt
        assert paint(prompt, "cinematic", 320, 180).kind == kind
    timeline = paint("a timeline of Appomattox in 1865, Fort Sumter in 1861 and Gettysburg in 1863", "cinematic", 854, 480)
    drawn = [text for text, _ in timeline.text_boxes]
    assert [t for t in drawn if t.isdigit()] == ["1861", "1863", "1865"]  # the prompt's dates, in order
    assert {"Fort Sumter", "Gettysburg", "Appomattox"} <= set(drawn)


def test_the_demo_pictures_differ_visibly_from_each_other() -> None:
    prompts = demo_prompts()
    kinds = [scene_kind(p) for p in prompts]
    assert len(set(kinds)) >= 4, kinds  # a town, portraits, crowds, a map: not one composition six times
    arrays = [pixels(paint(p, "cinematic", 320, 180, "x").png) for p in prompts]
    diffs = [float(np.abs(a - b).mean()) for a, b in itertools.combinations(arrays, 2)]
    assert np.mean(diffs) > 35 and min(diffs) > 12, diffs  # the storyboard frames: 15.5 and 7.0


def test_a_palette_edit_keeps_colour_and_contrast() -> None:
    """The README's palette edit (near-black, bone, rust) gave a grey movie; a dark palette gave mud."""
    for palette in (README_PALETTE, "slate #202428, charcoal #2a2a2a, night #101418", "fog #d8d8d0, paper #f0efe8, sand #e0d4b8"):
        look = offline_text.look("the Civil War", "cinematic") | {"palette": palette}
        for prompt in demo_prompts()[:4]:
            prompt = with_look(prompt.split(" | Look: ")[0], look)
            rgb = pixels(paint(prompt, "cinematic", 320, 180).png)
            lum = rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
            assert np.percentile(lum, 99.5) - np.percentile(lum, 1) > 100, (palette, prompt[:40])  # contrast kept
        if palette == README_PALETTE:
            sat = (rgb.max(axis=2) - rgb.min(axis=2)) / np.maximum(rgb.max(axis=2), 1)
            assert (sat > 0.3).mean() > 0.03  # the rust shows: not a grey picture
    pal, _ = make_palette(with_look("a field", offline_text.look("x", "cinematic") | {"palette": README_PALETTE}), "cinematic")
    assert pal.accent == (156, 74, 47) and pal.ink == (16, 16, 16)  # every colour of the palette plays a part


def test_a_reference_picture_tints_the_palette_and_places_the_subject() -> None:
    buf = io.BytesIO()
    reference = Image.new("RGB", (64, 36), (200, 30, 30))
    reference.paste((10, 10, 10), (0, 0, 20, 36))  # its weight on the left
    reference.save(buf, "PNG")
    prompt = demo_prompts()[1]
    plain, tinted = make_palette(prompt, "cinematic"), make_palette(prompt, "cinematic", (buf.getvalue(),))
    assert plain[1] is None and tinted[1] is not None and tinted[1] < 0.5
    redness = lambda c: c[0] - (c[1] + c[2]) / 2  # noqa: E731
    assert redness(tinted[0].mid) > redness(plain[0].mid)
    with_ref = pixels(paint(prompt, "cinematic", 320, 180, references=(buf.getvalue(),)).png)
    without = pixels(paint(prompt, "cinematic", 320, 180).png)
    assert float(np.abs(with_ref - without).mean()) > 5
    corner = with_ref[-40:, -70:]  # no inset: the reference's flat red is nowhere as a block
    assert not (np.abs(corner - np.array([200, 30, 30])).max(axis=2) < 8).any()


def test_the_debug_overlay_is_a_setting_and_another_code_version() -> None:
    assert not Settings.from_env({}).debug_overlay and Settings.from_env({"MOVIEGEN_DEBUG_OVERLAY": "on"}).debug_overlay
    with pytest.raises(ValueError, match="MOVIEGEN_DEBUG_OVERLAY='yes please': allowed: on, off"):
        Settings.from_env({"MOVIEGEN_DEBUG_OVERLAY": "yes please"})
    plain, debug = code_versions(Settings()), code_versions(Settings(debug_overlay=True))
    changed = {name for name in plain if plain[name] != debug[name]}
    assert changed == {"segment_image", "starting_image", "text_to_video_clip", "image_to_video_clip"}
    openai_images = Settings(providers="TextToImageProducer=openai", debug_overlay=True)
    assert code_versions(openai_images)["segment_image"] == code_versions(Settings(providers="TextToImageProducer=openai"))["segment_image"]
    marked = [t for t, _ in paint("a lighthouse at dusk", "cinematic", 854, 480, "Segment 01 · Image 1", 2, debug=True).text_boxes]
    assert "SEGMENT 01 · IMAGE 1 · TAKE 2" in marked
    assert not paint("a lighthouse at dusk", "cinematic", 854, 480, "Segment 01 · Image 1", 2).text_boxes


def test_a_new_offline_drawing_is_a_new_code_version() -> None:
    """The storyboard frames were made by offline-pillow-1 (code version "1"); the explainer frames are
    another model, so a movie made before shows its pictures stale. Offline artifacts whose model did
    not change keep their versions."""
    versions = code_versions(Settings())
    assert versions["segment_image"] == "1|offline:offline-pillow-2"
    assert versions["starting_image"] == "1|offline:offline-pillow-2"
    assert versions["text_to_video_clip"] == "1|offline:offline-ffmpeg-kenburns-2"
    assert "offline" not in versions["music"] and "offline" not in versions["segment_audio"]
    # The offline writer told the research's fact in a movie of 1 or 2 segments from offline-templates-2 on.
    assert versions["script"].endswith("|offline:offline-templates-2")


def test_a_placeholder_picture_is_marked_and_never_the_real_pictures_bytes() -> None:
    """The label is not drawn, but a stand-in for a failed provider is marked: otherwise the offline
    placeholder and the offline picture made on the retry would be one data version."""
    real = paint("a lighthouse at night", "cinematic", 854, 480, "Segment 01 · Image 1")
    stand_in = paint("a lighthouse at night", "cinematic", 854, 480, "Segment 01 · Image 1 · placeholder")
    assert [t for t, _ in stand_in.text_boxes] == ["PLACEHOLDER"] and not real.text_boxes
    assert stand_in.png != real.png
