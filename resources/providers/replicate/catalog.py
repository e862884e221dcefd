"""Replicate's models: estimated prices (USD) of predictions per model (estimates, not invoices), and
what each video model can make (its capability table)."""

from __future__ import annotations

from resources.providers.base import VideoCapability

# Replicate: per prediction.
REPLICATE_PRICES = {"black-forest-labs/flux-schnell": 0.003, "minimax/video-01": 0.50, "meta/musicgen": 0.02,
                    "jaaari/kokoro-82m": 0.001, "vaibhavs10/incredibly-fast-whisper": 0.005,
                    "wan-video/wan-2.2-5b-fast": 0.10}

# What each video model makes (docs/providers.md). minimax/video-01: a prompt (required) and an optional
# first frame, 720p, 6 s, no seed. wan-2.2-5b-fast (Wan2.2 TI2V-5B): a prompt and an optional image, at 480p or
# 720p, about 5 s, with a seed.
VIDEO_MODELS: dict[str, VideoCapability] = {
    "minimax/video-01": VideoCapability(frozenset({"t2v", "i2v", "ti2v"}), ("480p", "720p"), (6,)),
    "wan-video/wan-2.2-5b-fast": VideoCapability(frozenset({"t2v", "ti2v"}), ("480p", "720p"), (5,), seed=True),
}
