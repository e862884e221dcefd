"""Which provider serves which kind of producer, and its default model per kind."""

from __future__ import annotations

from movie_assets.domain.blueprint import ProviderKind

PROVIDER_MODELS: dict[str, dict[ProviderKind, str]] = {
    "offline": {ProviderKind.llm: "offline-templates-1", ProviderKind.speech: "piper:en_US-joe-medium",
                ProviderKind.images: "offline-pillow-1", ProviderKind.video: "offline-ffmpeg-kenburns-1",
                ProviderKind.music: "offline-synth-1"},
    "openai": {ProviderKind.llm: "gpt-4o-mini", ProviderKind.speech: "gpt-4o-mini-tts", ProviderKind.images: "gpt-image-1"},
    "replicate": {ProviderKind.images: "black-forest-labs/flux-schnell", ProviderKind.video: "minimax/video-01",
                  ProviderKind.music: "meta/musicgen", ProviderKind.speech: "jaaari/kokoro-82m"},
}
