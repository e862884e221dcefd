"""Blueprint expansion: exact nodes, provider calls and critical path for every visual mode."""

from __future__ import annotations

from collections import Counter

from movie_assets.domain.blueprint import ARTIFACTS, NodeKey, expand
from movie_assets.domain.request import parse_request


def req(**fields: object):
    return parse_request({"inquiry_prompt": "Tell me about the Civil War", **fields})


def assets(bp) -> Counter[str]:
    return Counter(k.asset for k in bp.nodes)


def test_image_only_expansion() -> None:
    bp = expand(req(duration_seconds=300, images_per_segment=5))
    a = assets(bp)
    assert a["segment_image"] == 150 and a["image_prompt"] == 150 and a["segment_audio"] == 30
    assert a["text_to_video_clip"] == a["image_to_video_clip"] == 0
    calls = bp.calls(bp.nodes)
    assert calls == {
        "ResearchProducer": 1, "ScriptProducer": 1, "LookProducer": 1, "TextToMusicPromptProducer": 1, "MusicProducer": 1,
        "AudioProducer": 30,
        "TextToImagePromptProducer": 30, "TextToImageProducer": 150,
    }
    assert bp.critical_path_s() == 115  # research 20 + script 50 + look 10 + image prompts 5 + image 30


def test_video_by_text_expansion() -> None:
    bp = expand(req(duration_seconds=60, use_video=True))
    a = assets(bp)
    assert a["text_to_video_clip"] == 6 and a["segment_image"] == 0 and a["starting_image"] == 0
    assert bp.calls(bp.nodes)["TextToVideoProducer"] == 6
    assert bp.critical_path_s() == 175


def test_video_by_image_expansion() -> None:
    bp = expand(req(duration_seconds=60, use_video=True, is_image_to_video=True))
    calls = bp.calls(bp.nodes)
    assert calls["ImageToVideoPromptProducer"] == calls["StartingImageProducer"] == calls["ImageToVideoProducer"] == 6
    assert "TextToImageProducer" not in calls
    assert bp.critical_path_s() == 235


def test_mixed_modes_build_only_selected_branches() -> None:
    bp = expand(req(duration_seconds=40, images_per_segment=2,
                    segments={"1": {"use_video": True}, "2": {"use_video": True, "is_image_to_video": True}}))
    by_segment = {i: {k.asset for k in bp.nodes if k.segment == i} for i in range(4)}
    assert {"image_prompt", "segment_image"} <= by_segment[0] and "text_to_video_clip" not in by_segment[0]
    assert "text_to_video_clip" in by_segment[1] and "segment_image" not in by_segment[1]
    assert {"starting_image", "image_to_video_clip"} <= by_segment[2] and "text_to_video_clip" not in by_segment[2]
    assert bp.nodes[NodeKey("segment_visuals", 2)].deps == (NodeKey("image_to_video_clip", 2),)
    assert bp.calls(bp.nodes)["TextToImageProducer"] == 4  # segments 0 and 3, 2 images each
    assert bp.critical_path_s() == 235


def test_overrides_need_no_call() -> None:
    bp = expand(req(duration_seconds=20, images_per_segment=2, music_prompt="soft piano",
                    segments={"0": {"image_prompts": {"0": "a", "1": "b"}}}))
    calls = bp.calls(bp.nodes)
    assert "TextToMusicPromptProducer" not in calls
    assert calls["TextToImagePromptProducer"] == 1  # only segment 1 asks the LLM
    assert calls["TextToImageProducer"] == 4


def test_timeline_reads_at_most_30_partitions_per_dependency() -> None:
    bp = expand(req(duration_seconds=300, images_per_segment=5))
    deps = Counter(d.asset for d in bp.nodes[NodeKey("timeline")].deps)
    assert max(deps.values()) <= 30 and "segment_image" not in deps


def test_every_node_comes_after_its_dependencies() -> None:
    bp = expand(req(duration_seconds=50, use_video=True, segments={"3": {"is_image_to_video": True}}))
    position = {k: i for i, k in enumerate(bp.order)}
    for node in bp.nodes.values():
        assert all(position[d] < position[node.key] for d in node.deps)
        assert set(ARTIFACTS[d.asset].name for d in node.deps) <= set(node.decl.deps)


def test_node_keys_round_trip() -> None:
    for text in ["script", "segment_audio[03]", "segment_image[12_4]"]:
        key = NodeKey.parse(text)
        assert str(key) == text
        assert NodeKey.from_partition(key.asset, key.partition_key("m")) == key
