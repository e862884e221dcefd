"""Request validation: every bad input names the field, the value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from movie_assets.domain.request import (
    MAX_DOCUMENT_BYTES,
    MAX_PROBLEMS,
    AspectRatio,
    RequestError,
    Size,
    VisualMode,
    frame_size,
    load_request,
    parse_request,
    validate_movie_id,
)

BASE = {"inquiry_prompt": "Tell me about the Civil War"}


def problems(**fields: object) -> list[str]:
    with pytest.raises(RequestError) as e:
        parse_request({**BASE, **fields})
    return e.value.problems


def test_defaults_and_counts() -> None:
    r = parse_request(BASE)
    assert (r.duration_seconds, r.segment_count, r.images_per_segment) == (60, 6, 3)
    assert r.frame == (1280, 720)
    assert r.mode(0) is VisualMode.image_only


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"duration_seconds": 35}, ["duration_seconds: got 35", "multiple of 10 from 10 to 300"]),
        ({"duration_seconds": 310}, ["duration_seconds: got 310"]),
        ({"duration_seconds": 0}, ["duration_seconds: got 0"]),
        ({"images_per_segment": 9}, ["images_per_segment: got 9", "less than or equal to 5"]),
        ({"images_per_segment": 0}, ["images_per_segment: got 0"]),
        ({"image_style": "oil"}, ["image_style: got \"oil\"", "allowed: photorealistic, cinematic, illustration, watercolor, anime"]),
        ({"audience": "aliens"}, ["audience: got \"aliens\"", "allowed: children, general, students, experts"]),
        ({"language": "xx"}, ["language: got \"xx\"", "allowed: en, es, fr, de, it, pt"]),
        ({"size": "4k"}, ["size: got \"4k\"", "allowed: 480p, 720p, 1080p"]),
        ({"aspect_ratio": "21:9"}, ["aspect_ratio: got \"21:9\"", "allowed: 16:9, 9:16, 1:1, 4:3"]),
        ({"assembly_strategy": "wipe"}, ["assembly_strategy: got \"wipe\"", "ken_burns, crossfade, cut"]),
        ({"inquiry_prompt": "hi"}, ["inquiry_prompt: got \"hi\"", "at least 3 characters"]),
        ({"inquiry_prompt": "x" * 2001}, ["inquiry_prompt", "at most 2000 characters"]),
        ({"colour": "red"}, ["colour: unknown field"]),
        ({"segments": {"6": {"narration": "hello"}}}, ["segments.6: segment index 6 is out of range; allowed: 0 to 5"]),
        ({"segments": {"1": {"image_prompts": {"3": "a cat"}}}}, ["segments.1.image_prompts.3: image index 3 is out of range; allowed: 0 to 2"]),
        ({"segments": {"1": {"fancy": True}}}, ["segments.1.fancy: unknown field"]),
    ],
)
def test_bad_input_names_field_value_and_rule(fields: dict[str, object], expected: list[str]) -> None:
    text = "\n".join(problems(**fields))
    for part in expected:
        assert part in text, text


def test_every_problem_is_reported_at_once() -> None:
    found = problems(duration_seconds=35, images_per_segment=9, image_style="oil")
    assert len(found) == 3


def test_missing_inquiry() -> None:
    with pytest.raises(RequestError) as e:
        parse_request({"duration_seconds": 30})
    assert "inquiry_prompt: required field is missing" in e.value.problems


@pytest.mark.parametrize("bad", ["../etc", "a/b", "Civil War", "", "a|b", "-lead", "x" * 64])
def test_movie_id_rules(bad: str) -> None:
    with pytest.raises(RequestError) as e:
        validate_movie_id(bad)
    assert "movie id" in str(e.value) and repr(bad) in str(e.value)


def test_per_segment_modes_override_global() -> None:
    r = parse_request({**BASE, "duration_seconds": 40, "use_video": True,
                       "segments": {"1": {"use_video": False}, "2": {"is_image_to_video": True}}})
    assert [r.mode(i) for i in range(4)] == [VisualMode.video_by_text, VisualMode.image_only,
                                             VisualMode.video_by_image, VisualMode.video_by_text]


@pytest.mark.parametrize(
    ("size", "aspect", "expected"),
    [("480p", "16:9", (854, 480)), ("720p", "16:9", (1280, 720)), ("1080p", "16:9", (1920, 1080)),
     ("720p", "9:16", (720, 1280)), ("1080p", "1:1", (1080, 1080)), ("480p", "4:3", (640, 480))],
)
def test_frame_sizes(size: str, aspect: str, expected: tuple[int, int]) -> None:
    assert frame_size(Size(size), AspectRatio(aspect)) == expected


def test_load_request_files(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("inquiry_prompt: Why is the sky blue?\nduration_seconds: 20\n")
    assert load_request(tmp_path / "r.yaml").segment_count == 2
    (tmp_path / "r.json").write_text('{"inquiry_prompt": "Why is the sky blue?"}')
    assert load_request(tmp_path / "r.json").segment_count == 6
    (tmp_path / "bad.yaml").write_text("inquiry_prompt: [unclosed\n")
    with pytest.raises(RequestError, match="not valid yaml"):
        load_request(tmp_path / "bad.yaml")
    with pytest.raises(RequestError, match="does not exist"):
        load_request(tmp_path / "missing.yaml")


def test_unquoted_aspect_ratio_in_yaml_is_the_ratio(tmp_path: Path) -> None:
    """YAML 1.1 reads 16:9 as the base-60 number 969; requests read it as people mean it."""
    path = tmp_path / "r.yaml"
    path.write_text("inquiry_prompt: Tell me about rivers\naspect_ratio: 9:16\nduration_seconds: 20\n")
    request = load_request(path)
    assert request.aspect_ratio.value == "9:16" and request.duration_seconds == 20


@pytest.mark.parametrize(("request_fields", "problem"), [
    ({"is_image_to_video": True}, "is_image_to_video: true, but no segment uses video"),
    ({"duration_seconds": 30, "segments": {"1": {"is_image_to_video": True}}},
     "segments.1.is_image_to_video: true, but segment 1 does not use video"),
    ({"duration_seconds": 30, "use_video": True, "segments": {"1": {"use_video": False, "is_image_to_video": True}}},
     "segments.1.is_image_to_video: true, but segment 1 does not use video"),
])
def test_image_to_video_without_video_is_refused(request_fields: dict, problem: str) -> None:
    with pytest.raises(RequestError) as e:
        parse_request({**BASE, **request_fields})
    assert any(problem in p for p in e.value.problems), e.value.problems


def test_image_to_video_as_the_default_of_video_segments_is_allowed() -> None:
    r = parse_request({**BASE, "duration_seconds": 30, "is_image_to_video": True, "segments": {"2": {"use_video": True}}})
    assert [r.mode(i) for i in range(3)] == [VisualMode.image_only, VisualMode.image_only, VisualMode.video_by_image]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"duration_seconds": "20"}, 'duration_seconds: got "20"; expected an integer'),
    ({"duration_seconds": 20.0}, "duration_seconds: got 20.0; expected an integer"),
    ({"images_per_segment": True}, "images_per_segment: got true; expected an integer"),
    ({"use_video": "true"}, 'use_video: got "true"; expected true or false'),
    ({"use_video": 1}, "use_video: got 1; expected true or false"),
    ({"budget_usd": "5"}, 'budget_usd: got "5"; expected a number'),
    ({"segments": {"1": {"use_video": "yes"}}}, 'segments.1.use_video: got "yes"; expected true or false'),
    ({"segments": {"1": {"image_prompts": {"0": "x" * 2001}}}}, "segments.1.image_prompts.0: got"),
    ({"voice_id": 7}, "voice_id: got 7; expected text"),
])
def test_integers_and_booleans_are_strict(fields: dict[str, object], expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(**fields)), problems(**fields)


def test_strict_types_keep_natural_input(tmp_path: Path) -> None:
    """YAML's 20 and true are already an integer and a boolean; a number field takes an integer; segment
    keys may be text (JSON has no other keys)."""
    (tmp_path / "r.yaml").write_text("inquiry_prompt: Rivers\nduration_seconds: 30\nuse_video: true\nbudget_usd: 5\n"
                                     "segments:\n  1: {use_video: false, image_prompts: {0: a delta}}\n")
    r = load_request(tmp_path / "r.yaml")
    assert (r.duration_seconds, r.use_video, r.budget_usd, r.mode(1)) == (30, True, 5.0, VisualMode.image_only)
    (tmp_path / "r.json").write_text('{"inquiry_prompt": "Rivers", "duration_seconds": 30, "segments": {"2": {"use_video": true}}}')
    assert load_request(tmp_path / "r.json").mode(2) is VisualMode.video_by_text


def test_unreadable_files_are_one_problem_naming_the_file(tmp_path: Path) -> None:
    cases = {
        "bin.yaml": (b"\xff\xfe\x00binary", "is not UTF-8 text (byte 0xff at offset 0)"),
        "big.yaml": (b"inquiry_prompt: " + b"x" * MAX_DOCUMENT_BYTES, "is too large (more than 1000000 bytes); allowed: up to 1 MB"),
        "deep.json": (b"[" * 100_000, "is refused: nested deeper than 10 levels"),
        "bomb.yaml": (b'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
                      + b"".join(b"b%d: &b%d [%s]\n" % (i, i, b", ".join([b"*b%d" % (i - 1) if i else b"*a"] * 10))
                                 for i in range(6)), "is refused: more than 10000 values"),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(RequestError) as e:
            load_request(tmp_path / name)
        assert len(e.value.problems) == 1 and str(e.value) == e.value.problems[0]  # one line
        assert str(tmp_path / name) in str(e.value) and expected in str(e.value), str(e.value)
    with pytest.raises(RequestError, match="is a folder; allowed: a YAML or JSON file"):
        load_request(tmp_path)
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"inquiry_prompt": "Why is the sky blue?"}')
    assert load_request(tmp_path / "bom.json").inquiry_prompt == "Why is the sky blue?"  # a byte order mark is fine


def test_many_problems_are_listed_up_to_a_bound() -> None:
    found = problems(**{f"field_{i}": i for i in range(200)})
    assert len(found) == MAX_PROBLEMS + 1 and found[-1] == "... and 150 more problems (fix these first)"


def test_takes_are_validated_and_take_0_changes_no_version() -> None:
    """Takes (re-rolls) of generated artifacts: whole numbers from 0, on images the request has; take 0
    reads exactly as before takes existed (same input versions, same build-cache key)."""
    from movie_assets.domain.blueprint import NodeKey, expand
    from movie_assets.domain.edits import UNSET, edited_request
    from movie_assets.domain.inputs import build_key, changed_inputs, input_versions, take_of, take_path

    assert problems(segments={0: {"image_takes": {3: 1}}}) == [
        "segments.0.image_takes.3: image index 3 is out of range; allowed: 0 to 2 (images_per_segment=3)"]
    assert problems(music_take=-1)[0].startswith("music_take: got -1; ")
    assert problems(segments={1: {"audio_take": "2"}})[0].startswith("segments.1.audio_take: got \"2\"; expected an integer")
    plain = parse_request({**BASE, "segments": {1: {"narration": "A line."}}})
    assert "image_takes" not in plain.to_document()["segments"]["1"]  # the stored document is as before takes

    taken = edited_request(plain, [("segments.1.image_takes.2", 3), ("segments.0.audio_take", 1), ("music_take", 2)])
    image, audio, music = NodeKey("segment_image", 1, 2), NodeKey("segment_audio", 0), NodeKey("music")
    assert [take_of(taken, k) for k in (image, audio, music, NodeKey("segment_image", 1, 0))] == [3, 1, 2, 0]
    assert [take_path(k) for k in (image, audio, music)] == ["segments.1.image_takes.2", "segments.0.audio_take", "music_take"]
    with pytest.raises(RequestError, match="segments.1.image_takes: not an editable path"):
        edited_request(plain, [("segments.1.image_takes", 3)])
    back = edited_request(taken, [("segments.1.image_takes.2", UNSET), ("segments.0.audio_take", 0), ("music_take", UNSET)])
    assert back.to_document()["segments"]["1"] == plain.to_document()["segments"]["1"] and back.music_take is None

    def version(_: NodeKey) -> str:
        return "v"

    before = input_versions(expand(plain), image, version)
    assert input_versions(expand(back), audio, version) == input_versions(expand(plain), audio, version)  # 0 is 0
    assert "image_take" not in before and input_versions(expand(back), image, version) == before
    after = input_versions(expand(taken), image, version)
    assert changed_inputs(before, after) == ["image_take"] and build_key(after, "1") != build_key(before, "1")
    assert changed_inputs(after, before) == ["image_take"]  # back to take 0 is a change too
    assert changed_inputs(before | {"image_take": "none"}, before) == []  # recorded at take 0: unchanged


@pytest.mark.parametrize(
    ("quality", "aspect", "frame", "fps"),
    [("draft", "16:9", (854, 480), 24), ("standard", "16:9", (1280, 720), 30), ("high", "16:9", (1920, 1080), 30),
     ("premium", "16:9", (3840, 2160), 60), ("premium", "9:16", (2160, 3840), 60), ("premium", "4:3", (2880, 2160), 60),
     ("draft", "1:1", (480, 480), 24)],
)
def test_a_quality_sets_the_pictures_size_the_frame_rate_and_the_render(quality: str, aspect: str,
                                                                       frame: tuple[int, int], fps: int) -> None:
    r = parse_request({**BASE, "quality": quality, "aspect_ratio": aspect})
    assert (r.frame, r.fps, r.preset) == (frame, fps, quality)
    assert r.to_document()["quality"] == quality and "size" not in r.to_document()
    assert parse_request(r.to_document()) == r


def test_without_a_quality_a_request_is_what_it_was() -> None:
    r = parse_request(BASE)
    assert (r.frame, r.fps, r.preset, r.size, r.quality) == ((1280, 720), 30, "720p", None, None)
    r = parse_request({**BASE, "size": "480p", "render_preset": "1080p"})
    assert (r.frame, r.fps, r.preset) == ((854, 480), 30, "1080p")
    assert parse_request({**BASE, "size": "2160p"}).frame == (3840, 2160)


def test_a_quality_beside_a_size_or_render_preset_that_says_otherwise_is_refused() -> None:
    assert parse_request({**BASE, "quality": "high", "size": "1080p"}).frame == (1920, 1080)  # the same: fine
    (problem,) = problems(quality="premium", size="720p")
    assert problem.startswith("size: got 720p with quality: premium, which makes 2160p pictures; allowed: 2160p, "
                              "or leave size out")
    (problem,) = problems(quality="draft", render_preset="1080p")
    assert problem.startswith("render_preset: got 1080p with quality: draft, which sets the render (480p at 24 fps, "
                              "1500 kbit/s); allowed: one of them")
    (problem,) = problems(quality="ultra")
    assert problem == 'quality: got "ultra"; allowed: draft, standard, high, premium'


def test_a_quality_changes_exactly_the_inputs_that_depend_on_it() -> None:
    """The values a movie made before qualities existed read are unchanged (its versions hold); a quality of the
    same size leaves the pictures' input alone and changes the timeline's frame rate and the render."""
    from movie_assets.domain.inputs import input_values  # noqa: PLC0415 - as the test above

    old = parse_request({**BASE, "size": "480p"})
    assert input_values(old, "frame") == {"size": "480p", "aspect_ratio": "16:9"}
    assert input_values(old, "assembly") == {"assembly_strategy": "ken_burns", "transition": None, "segment_transitions": {}}
    assert input_values(old, "render") == {"preset": "480p", "frame": [854, 480]}
    assert input_values(parse_request(BASE), "frame") == {"size": "720p", "aspect_ratio": "16:9"}  # size left out: 720p

    draft = parse_request({**BASE, "quality": "draft"})
    assert input_values(draft, "frame") == input_values(old, "frame")  # the same pictures
    assert input_values(draft, "assembly") == {**input_values(old, "assembly"), "fps": 24}
    assert input_values(draft, "render") == {"preset": "draft", "frame": [854, 480]}
    standard = parse_request({**BASE, "quality": "standard"})  # 720p at 30 fps: the default's pictures and timeline
    assert [input_values(standard, n) for n in ("frame", "assembly")] == [input_values(parse_request(BASE), n)
                                                                         for n in ("frame", "assembly")]
    premium = parse_request({**BASE, "quality": "premium"})
    assert input_values(premium, "frame") == {"size": "2160p", "aspect_ratio": "16:9"}
