"""Request validation: every bad input names the field, the value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from movie_assets.domain.request import (
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
