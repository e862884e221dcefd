"""Estimated price of one typical provider call, for plans (resources/providers/*/catalog.py hold the
price tables that calls are charged with).

Estimates, not invoices: check them against your contract (docs/providers.md lists them and the
date they were last compared with the providers' price pages).
"""

from __future__ import annotations

from typing import Any

from resources.providers.openai.catalog import (
    OPENAI_SPEECH_PRICE_PER_1K_CHARS,
    OPENAI_TOKEN_PRICES,
    image_size,
    openai_image_usd,
    openai_transcription_usd,
)
from resources.providers.replicate.catalog import REPLICATE_PRICES

# A typical call, for plans: an LLM call reads ~600 tokens and writes ~300; narration is ~150 characters.
TYPICAL_TOKENS = (600, 300)
# Producers whose typical call is larger: the research reads the user's sources (up to 10 of 5 000 characters,
# ~1 200 tokens on average) and writes up to 12 facts with dates, names and references (~900 tokens).
TYPICAL_TOKENS_OF = {"ResearchProducer": (1800, 900)}
TYPICAL_SPEECH_CHARS = 150
TYPICAL_NARRATION_MS = 10_000  # a transcription hears one segment's narration: at most its 10 s


def estimate_call_usd(provider: str, kind: str, model: str, *, width: int = 1024, height: int = 1024,
                      params: dict[str, Any] | None = None, producer: str = "") -> float:
    """The estimated price of one typical call for a frame of ``width`` x ``height`` (0 for offline
    and unknown models)."""
    if provider == "openai":
        if kind == "llm":
            price_in, price_out = OPENAI_TOKEN_PRICES.get(model, (0.0, 0.0))
            tokens_in, tokens_out = TYPICAL_TOKENS_OF.get(producer, TYPICAL_TOKENS)
            return tokens_in * price_in + tokens_out * price_out
        if kind == "images":
            size = image_size(model, width, height) or "1024x1024"
            return openai_image_usd(model, size, params)
        if kind == "speech":
            return TYPICAL_SPEECH_CHARS / 1000 * OPENAI_SPEECH_PRICE_PER_1K_CHARS.get(model, 0.0)
        if kind == "transcription":
            return openai_transcription_usd(model, TYPICAL_NARRATION_MS)
    if provider == "replicate":
        return REPLICATE_PRICES.get(model, 0.0)
    return 0.0
