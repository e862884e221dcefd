"""Estimated prices (USD) of provider calls, for artifact metadata, run totals and plans.

Estimates, not invoices: check them against your contract (docs/providers.md lists them and the
date they were last compared with the providers' price pages).
"""

from __future__ import annotations

from typing import Any

# OpenAI: per token (input, output); per 1000 characters of speech.
OPENAI_TOKEN_PRICES = {"gpt-4o-mini": (0.15e-6, 0.60e-6), "gpt-4.1-mini": (0.40e-6, 1.60e-6), "gpt-4o": (2.50e-6, 10.0e-6)}
OPENAI_SPEECH_PRICE_PER_1K_CHARS = {"gpt-4o-mini-tts": 0.012, "tts-1": 0.015, "tts-1-hd": 0.030}

# OpenAI images: per image, by model, quality and size. gpt-image-1 without a configured quality
# ("auto") is estimated at medium.
OPENAI_IMAGE_PRICES: dict[str, dict[str, dict[str, float]]] = {
    "gpt-image-1": {
        "low": {"1024x1024": 0.011, "1536x1024": 0.016, "1024x1536": 0.016},
        "medium": {"1024x1024": 0.042, "1536x1024": 0.063, "1024x1536": 0.063},
        "high": {"1024x1024": 0.167, "1536x1024": 0.25, "1024x1536": 0.25},
    },
    "dall-e-3": {
        "standard": {"1024x1024": 0.040, "1792x1024": 0.080, "1024x1792": 0.080},
        "hd": {"1024x1024": 0.080, "1792x1024": 0.120, "1024x1792": 0.120},
    },
    "dall-e-2": {"standard": {"1024x1024": 0.020, "512x512": 0.018, "256x256": 0.016}},
}
_DEFAULT_QUALITY = {"gpt-image-1": "medium", "dall-e-3": "standard", "dall-e-2": "standard"}


def openai_image_usd(model: str, size: str, params: dict[str, Any] | None = None) -> float:
    """The price of one image at ``size`` with the configured quality (0 for unknown models)."""
    tiers = OPENAI_IMAGE_PRICES.get(model)
    if not tiers:
        return 0.0
    quality = str((params or {}).get("quality") or "auto")
    tier = tiers.get(quality) or tiers[_DEFAULT_QUALITY[model]]
    return tier.get(size, max(tier.values()))


# Replicate: per prediction.
REPLICATE_PRICES = {"black-forest-labs/flux-schnell": 0.003, "minimax/video-01": 0.50, "meta/musicgen": 0.02,
                    "jaaari/kokoro-82m": 0.001}

# A typical call, for plans: an LLM call reads ~600 tokens and writes ~300; narration is ~150 characters.
TYPICAL_TOKENS = (600, 300)
TYPICAL_SPEECH_CHARS = 150


def estimate_call_usd(provider: str, kind: str, model: str, *, width: int = 1024, height: int = 1024,
                      params: dict[str, Any] | None = None) -> float:
    """The estimated price of one typical call for a frame of ``width`` x ``height`` (0 for offline
    and unknown models)."""
    if provider == "openai":
        if kind == "llm":
            price_in, price_out = OPENAI_TOKEN_PRICES.get(model, (0.0, 0.0))
            return TYPICAL_TOKENS[0] * price_in + TYPICAL_TOKENS[1] * price_out
        if kind == "images":
            from .openai_provider import IMAGE_SIZES, orientation

            size = IMAGE_SIZES.get(model, {}).get(orientation(width, height), "1024x1024")
            return openai_image_usd(model, size, params)
        if kind == "speech":
            return TYPICAL_SPEECH_CHARS / 1000 * OPENAI_SPEECH_PRICE_PER_1K_CHARS.get(model, 0.0)
    if provider == "replicate":
        return REPLICATE_PRICES.get(model, 0.0)
    return 0.0
