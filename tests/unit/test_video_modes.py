"""Video modes: T2V, I2V and TI2V, chosen per segment (``video_mode``), refused before any call when the
mode, the size or the routed model cannot make them (the video models' capability tables)."""

from __future__ import annotations

import pytest

from movie_assets.builder.preflight import preflight
from movie_assets.domain.blueprint import NodeKey, expand
from movie_assets.domain.inputs import input_versions
from movie_assets.domain.request import I2V, TI2V, RequestError, VideoMode, VisualMode, parse_request, video_call
from resources.providers.capabilities import video_capability
from resources.providers.catalog import PROVIDER_MODELS
from resources.settings import parse_routes

BASE = {"inquiry_prompt": "Tell me about the Civil War", "duration_seconds": 40, "use_video": True}


def test_video_mode_chooses_each_segments_branch_and_auto_follows_the_starting_image() -> None:
    r = parse_request({**BASE, "video_mode": "auto", "segments": {
        1: {"starting_image_prompt": "a cannon on a hill"}, 2: {"video_mode": "text_and_image"}, 3: {"is_image_to_video": True}}})
    assert [r.video_mode_of(i) for i in range(4)] == [VideoMode.auto, VideoMode.auto, VideoMode.text_and_image, VideoMode.image]
    assert [r.mode(i) for i in range(4)] == [VisualMode.video_by_text, VisualMode.video_by_image, VisualMode.video_by_image,
                                             VisualMode.video_by_image]
    nodes = {str(k) for k in expand(r).nodes}
    assert {"text_to_video_clip[00]", "image_to_video_clip[01]", "image_to_video_clip[02]", "starting_image[01]"} <= nodes
    assert "image_to_video_clip[00]" not in nodes and "text_to_video_clip[01]" not in nodes
    # The legacy field alone keeps its meaning; the movie's is_image_to_video is its video segments' default.
    legacy = parse_request({**BASE, "is_image_to_video": True})
    assert {legacy.video_mode_of(i) for i in range(4)} == {VideoMode.image}


def test_auto_takes_ti2v_only_with_a_prompt_a_small_enough_size_and_a_model_that_makes_it() -> None:
    every, small = frozenset({"t2v", "i2v", "ti2v"}), frozenset({"480p", "720p"})
    assert video_call(VideoMode.auto, "720p", "slow push-in", every, small) == TI2V
    assert video_call(VideoMode.auto, "720p", "  ", every, small) == I2V  # no prompt
    assert video_call(VideoMode.auto, "1080p", "slow push-in", every, small | {"1080p"}) == I2V  # TI2V: 480p/720p only
    assert video_call(VideoMode.auto, "720p", "slow push-in", frozenset({"t2v", "i2v"}), small) == I2V  # the model cannot
    assert video_call(VideoMode.image, "720p", "slow push-in", every, small) == I2V
    assert video_call(VideoMode.text_and_image, "720p", "", every, small) == TI2V  # asked: the call refuses an empty prompt


@pytest.mark.parametrize(("fields", "problem"), [
    ({"use_video": False, "video_mode": "auto"}, "video_mode: auto, but no segment uses video; allowed: together with use_video: true"),
    ({"segments": {1: {"use_video": False, "video_mode": "image"}}},
     "segments.1.video_mode: image, but segment 1 does not use video; allowed: together with segments.1.use_video: true"),
    ({"video_mode": "text", "is_image_to_video": True},
     "video_mode: text with is_image_to_video: true; allowed: one of them (video_mode wins: remove is_image_to_video)"),
    ({"segments": {2: {"video_mode": "text_and_image", "is_image_to_video": False}}},
     "segments.2.video_mode: text_and_image with segments.2.is_image_to_video: false; allowed: one of them"),
    ({"size": "1080p", "segments": {2: {"video_mode": "text_and_image"}}},
     "segments.2.video_mode: text_and_image (TI2V) is made at 480p or 720p only, but size is 1080p; allowed: size 480p or "
     "720p, or video_mode auto, image or text (segments 2)"),
    ({"size": "1080p", "video_mode": "text_and_image"}, "video_mode: text_and_image (TI2V) is made at 480p or 720p only"),
    ({"video_mode": "ti2v"}, 'video_mode: got "ti2v"; allowed: auto, text, image, text_and_image'),
])
def test_a_mode_the_request_cannot_have_is_refused_naming_field_value_and_what_is_allowed(fields: dict, problem: str) -> None:
    with pytest.raises(RequestError) as e:
        parse_request({**BASE, **fields})
    assert any(problem in p for p in e.value.problems), e.value.problems


def test_the_clip_reads_the_mode_only_when_it_takes_the_text_too() -> None:
    """Plain image-to-video reads no mode (versions made before modes existed hold); TI2V or auto does."""
    def read(**segment: object) -> dict[str, str]:
        r = parse_request({**BASE, "segments": {1: {"is_image_to_video": True, **segment}}})
        return input_versions(expand(r), NodeKey("image_to_video_clip", 1), lambda k: "v")

    assert "video_mode" not in read() and read() == read(video_mode="image")
    assert "video_mode" in read(video_mode="text_and_image")
    # auto reads the same as text_and_image: which call it makes follows from the model (in the code version).
    assert read(video_mode="text_and_image") == read(video_mode="auto", starting_image_prompt="x")


def _problems(request: dict, routes: str) -> list[dict[str, str]]:
    producers = ["TextToVideoProducer", "ImageToVideoProducer"]
    return preflight(producers, parse_routes(routes), {}, parse_request({**BASE, **request}), env={"REPLICATE_API_TOKEN": "t"})


def test_preflight_refuses_a_video_segment_the_routed_model_cannot_make() -> None:
    assert _problems({"video_mode": "text_and_image"}, "") == []  # offline makes every mode
    assert _problems({"video_mode": "text_and_image"}, "ImageToVideoProducer=replicate:wan-video/wan-2.2-5b-fast") == []
    [p] = _problems({"video_mode": "image"}, "ImageToVideoProducer=replicate:wan-video/wan-2.2-5b-fast")
    assert p["producer"] == "ImageToVideoProducer" and p["category"] == "configuration"
    assert p["message"] == ("segment 0 (video_mode image, size 720p): wan-video/wan-2.2-5b-fast cannot make image-to-video; "
                            "it makes text-to-video, text+image-to-video (TI2V)")
    assert "route ImageToVideoProducer to a model that makes it" in p["suggestion"]
    # auto falls back to what the model makes: wan makes TI2V; minimax makes everything at 720p, not 1080p.
    assert _problems({"video_mode": "auto", "segments": {1: {"starting_image_prompt": "x"}}},
                     "ImageToVideoProducer=replicate:wan-video/wan-2.2-5b-fast") == []
    [p] = _problems({"size": "1080p"}, "TextToVideoProducer=replicate:minimax/video-01")
    assert p["message"] == "segment 0 (video_mode text, size 1080p): minimax/video-01 cannot make 1080p clips; it makes 480p, 720p"
    # A model the catalog does not know is not checked.
    assert _problems({}, "TextToVideoProducer=replicate:someone/new-video") == []


def test_every_video_model_of_every_provider_has_a_capability_row() -> None:
    for provider, models in PROVIDER_MODELS.items():
        for kind, model in models.items():
            if kind.value == "video":
                assert video_capability(provider, model) is not None, (provider, model)
