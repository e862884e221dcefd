"""Estimated prices (USD) of provider calls, for artifact metadata, run totals and plans.

Estimates, not invoices: check them against your contract (docs/providers.md lists them).
"""

from __future__ import annotations

# OpenAI: per token (input, output); per image; per 1000 characters of speech.
OPENAI_TOKEN_PRICES = {"gpt-4o-mini": (0.15e-6, 0.60e-6), "gpt-4.1-mini": (0.40e-6, 1.60e-6), "gpt-4o": (2.50e-6, 10.0e-6)}
OPENAI_IMAGE_PRICES = {"gpt-image-1": 0.042, "dall-e-3": 0.040, "dall-e-2": 0.020}
OPENAI_SPEECH_PRICE_PER_1K_CHARS = {"gpt-4o-mini-tts": 0.012, "tts-1": 0.015, "tts-1-hd": 0.030}

# Replicate: per prediction.
REPLICATE_PRICES = {"black-forest-labs/flux-schnell": 0.003, "minimax/video-01": 0.50, "meta/musicgen": 0.02,
                    "jaaari/kokoro-82m": 0.001}

# A typical call, for plans: an LLM call reads ~600 tokens and writes ~300; narration is ~150 characters.
TYPICAL_TOKENS = (600, 300)
TYPICAL_SPEECH_CHARS = 150


def estimate_call_usd(provider: str, kind: str, model: str) -> float:
    """The estimated price of one typical call (0 for offline and unknown models)."""
    if provider == "openai":
        if kind == "llm":
            price_in, price_out = OPENAI_TOKEN_PRICES.get(model, (0.0, 0.0))
            return TYPICAL_TOKENS[0] * price_in + TYPICAL_TOKENS[1] * price_out
        if kind == "images":
            return OPENAI_IMAGE_PRICES.get(model, 0.0)
        if kind == "speech":
            return TYPICAL_SPEECH_CHARS / 1000 * OPENAI_SPEECH_PRICE_PER_1K_CHARS.get(model, 0.0)
    if provider == "replicate":
        return REPLICATE_PRICES.get(model, 0.0)
    return 0.0
