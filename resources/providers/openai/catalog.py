"""What OpenAI's models accept and cost: image sizes by orientation, the speech input limit, and
estimated prices (USD; estimates, not invoices: docs/providers.md says when they were last compared
with OpenAI's price pages). No SDK import: plans read these without loading the client."""

from __future__ import annotations

from typing import Any

# Sizes each image model accepts, by orientation, smallest first.
IMAGE_SIZES: dict[str, dict[str, tuple[str, ...]]] = {
    "gpt-image-1": {"square": ("1024x1024",), "landscape": ("1536x1024",), "portrait": ("1024x1536",)},
    "dall-e-3": {"square": ("1024x1024",), "landscape": ("1792x1024",), "portrait": ("1024x1792",)},
    "dall-e-2": {"square": ("256x256", "512x512", "1024x1024")},
}
MAX_SPEECH_CHARS = 4096
# Image models that take reference images: the edits endpoint with the pictures as ``image[]`` (a new
# picture guided by them, not an edit of one); dall-e-3 takes none, dall-e-2 only one picture to edit.
REFERENCE_IMAGE_MODELS = frozenset({"gpt-image-1"})


def orientation(width: int, height: int) -> str:
    return "square" if width == height else "landscape" if width > height else "portrait"


def image_size(model: str, width: int, height: int) -> str | None:
    """The size to ask ``model`` for a ``width`` x ``height`` picture: of its orientation, the smallest that
    covers the frame (so it is only cut and scaled down to it), else the largest there is (scaled up); None
    when the model makes no picture of that orientation."""
    sizes = IMAGE_SIZES.get(model, {}).get(orientation(width, height), ())
    covering = [s for s in sizes if all(int(a) >= b for a, b in zip(s.split("x"), (width, height), strict=True))]
    return covering[0] if covering else (sizes[-1] if sizes else None)


# OpenAI: per token (input, output); per 1000 characters of speech.
OPENAI_TOKEN_PRICES = {"gpt-4o-mini": (0.15e-6, 0.60e-6), "gpt-4.1-mini": (0.40e-6, 1.60e-6), "gpt-4o": (2.50e-6, 10.0e-6)}
OPENAI_SPEECH_PRICE_PER_1K_CHARS = {"gpt-4o-mini-tts": 0.012, "tts-1": 0.015, "tts-1-hd": 0.030}
# Transcription: per minute of audio. Only whisper-1 answers with word timestamps (verbose_json).
OPENAI_TRANSCRIPTION_PRICE_PER_MINUTE = {"whisper-1": 0.006}
WORD_TIMESTAMP_MODELS = frozenset({"whisper-1"})


def openai_transcription_usd(model: str, duration_ms: int) -> float:
    """The price of transcribing ``duration_ms`` of audio (0 for unknown models)."""
    return round(duration_ms / 60_000 * OPENAI_TRANSCRIPTION_PRICE_PER_MINUTE.get(model, 0.0), 6)

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
