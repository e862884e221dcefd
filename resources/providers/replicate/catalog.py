"""Estimated prices (USD) of Replicate predictions per model (estimates, not invoices)."""

from __future__ import annotations

# Replicate: per prediction.
REPLICATE_PRICES = {"black-forest-labs/flux-schnell": 0.003, "minimax/video-01": 0.50, "meta/musicgen": 0.02,
                    "jaaari/kokoro-82m": 0.001, "vaibhavs10/incredibly-fast-whisper": 0.005}
