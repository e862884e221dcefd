"""Estimated prices of provider calls (plans) and the price tables calls are charged with."""

from __future__ import annotations

import pytest

from resources.providers.openai.catalog import (
    IMAGE_SIZES,
    OPENAI_IMAGE_PRICES,
    OPENAI_SPEECH_PRICE_PER_1K_CHARS,
    OPENAI_TOKEN_PRICES,
    image_size,
    openai_image_usd,
    orientation,
)
from resources.providers.pricing import TYPICAL_SPEECH_CHARS, TYPICAL_TOKENS, estimate_call_usd
from resources.providers.replicate.catalog import REPLICATE_PRICES


def test_openai_llm_is_a_typical_call_in_tokens() -> None:
    assert TYPICAL_TOKENS == (600, 300)
    assert estimate_call_usd("openai", "llm", "gpt-4o-mini") == pytest.approx(600 * 0.15e-6 + 300 * 0.60e-6)
    assert estimate_call_usd("openai", "llm", "gpt-4o") == pytest.approx(600 * 2.50e-6 + 300 * 10.0e-6)
    for model, (price_in, price_out) in OPENAI_TOKEN_PRICES.items():
        assert estimate_call_usd("openai", "llm", model) == pytest.approx(600 * price_in + 300 * price_out)


def test_openai_speech_is_a_typical_narration() -> None:
    assert TYPICAL_SPEECH_CHARS == 150
    assert estimate_call_usd("openai", "speech", "gpt-4o-mini-tts") == pytest.approx(0.15 * 0.012)
    assert estimate_call_usd("openai", "speech", "tts-1-hd") == pytest.approx(0.15 * 0.030)
    assert set(OPENAI_SPEECH_PRICE_PER_1K_CHARS) == {"gpt-4o-mini-tts", "tts-1", "tts-1-hd"}


@pytest.mark.parametrize(("width", "height", "shape"), [(1024, 1024, "square"), (854, 480, "landscape"),
                                                        (640, 480, "landscape"), (480, 854, "portrait")])
def test_orientation(width: int, height: int, shape: str) -> None:
    assert orientation(width, height) == shape


@pytest.mark.parametrize(("model", "width", "height", "params", "usd"), [
    # gpt-image-1: no quality configured ("auto") is estimated at medium
    ("gpt-image-1", 480, 480, None, 0.042),
    ("gpt-image-1", 854, 480, None, 0.063),
    ("gpt-image-1", 480, 854, {}, 0.063),
    ("gpt-image-1", 1920, 1080, {"quality": "auto"}, 0.063),
    ("gpt-image-1", 720, 720, {"quality": "low"}, 0.011),
    ("gpt-image-1", 1280, 720, {"quality": "low"}, 0.016),
    ("gpt-image-1", 1080, 1920, {"quality": "high"}, 0.25),
    ("gpt-image-1", 1080, 1080, {"quality": "high"}, 0.167),
    ("gpt-image-1", 1280, 720, {"quality": "hd"}, 0.063),  # another model's tier: the default one
    # dall-e-3: standard by default, hd when configured; its own landscape/portrait sizes
    ("dall-e-3", 1024, 1024, None, 0.040),
    ("dall-e-3", 1280, 720, None, 0.080),
    ("dall-e-3", 720, 1280, {"quality": "hd"}, 0.120),
    ("dall-e-3", 720, 720, {"quality": "hd"}, 0.080),
    # dall-e-2 makes squares only, at the smallest of its sizes that covers the frame
    ("dall-e-2", 512, 512, None, 0.018),
    ("dall-e-2", 720, 720, None, 0.020),
])
def test_openai_images(model: str, width: int, height: int, params: dict | None, usd: float) -> None:
    assert estimate_call_usd("openai", "images", model, width=width, height=height, params=params) == pytest.approx(usd)


def test_openai_image_usd_picks_the_configured_quality_tier() -> None:
    assert openai_image_usd("gpt-image-1", "1536x1024", {"quality": "low"}) == 0.016
    assert openai_image_usd("gpt-image-1", "1536x1024", {"quality": "medium"}) == 0.063
    assert openai_image_usd("gpt-image-1", "1536x1024", {"quality": "high"}) == 0.25
    assert openai_image_usd("gpt-image-1", "1536x1024", {"quality": None}) == 0.063
    assert openai_image_usd("gpt-image-1", "1536x1024", {"quality": "ultra"}) == 0.063
    assert openai_image_usd("gpt-image-1", "1536x1024", {"output_format": "webp"}) == 0.063
    assert openai_image_usd("dall-e-3", "1792x1024", {"quality": "hd"}) == 0.120
    assert openai_image_usd("dall-e-3", "1792x1024") == 0.080
    assert openai_image_usd("dall-e-2", "256x256") == 0.016
    # a size the tier does not list is charged at the tier's highest price (never under-estimated)
    assert openai_image_usd("dall-e-3", "512x512", {"quality": "hd"}) == 0.120
    assert openai_image_usd("gpt-image-9", "1024x1024", {"quality": "high"}) == 0.0


def test_every_accepted_image_size_has_a_price_in_every_tier() -> None:
    for model, sizes in IMAGE_SIZES.items():
        for tier, prices in OPENAI_IMAGE_PRICES[model].items():
            assert {s for group in sizes.values() for s in group} <= set(prices), (model, tier)


@pytest.mark.parametrize(("model", "frame", "size"), [
    ("dall-e-2", (480, 480), "512x512"), ("dall-e-2", (720, 720), "1024x1024"), ("dall-e-2", (2160, 2160), "1024x1024"),
    ("dall-e-2", (200, 200), "256x256"), ("dall-e-2", (854, 480), None), ("gpt-image-1", (3840, 2160), "1536x1024"),
    ("dall-e-3", (1080, 1920), "1024x1792"), ("gpt-image-1", (480, 480), "1024x1024")])
def test_the_size_asked_for_is_the_smallest_that_covers_the_frame(model: str, frame: tuple[int, int], size: str | None) -> None:
    assert image_size(model, *frame) == size


def test_replicate_models() -> None:
    assert estimate_call_usd("replicate", "images", "black-forest-labs/flux-schnell") == 0.003
    assert estimate_call_usd("replicate", "video", "minimax/video-01", width=854, height=480) == 0.50
    assert estimate_call_usd("replicate", "music", "meta/musicgen") == 0.02
    assert estimate_call_usd("replicate", "speech", "jaaari/kokoro-82m") == 0.001
    for model, price in REPLICATE_PRICES.items():
        assert estimate_call_usd("replicate", "images", model) == price > 0


@pytest.mark.parametrize("kind", ["llm", "speech", "images", "video", "music"])
def test_offline_is_free(kind: str) -> None:
    assert estimate_call_usd("offline", kind, "offline-templates-1") == 0.0
    assert estimate_call_usd("offline", kind, "gpt-4o") == 0.0, "the provider decides, not the model name"


@pytest.mark.parametrize(("provider", "kind", "model"), [
    ("openai", "llm", "gpt-9-turbo"), ("openai", "speech", "tts-9"), ("openai", "images", "gpt-image-9"),
    ("replicate", "video", "someone/unknown-model"), ("openai", "video", "gpt-4o"), ("openai", "music", "gpt-4o"),
    ("somebody-else", "llm", "gpt-4o"),
])
def test_unknown_models_and_kinds_cost_nothing(provider: str, kind: str, model: str) -> None:
    assert estimate_call_usd(provider, kind, model) == 0.0
