"""Which provider serves which kind of producer, and its default model per kind.

The offline ``transcription`` model is no model: the offline voice's own word timings (Piper's
alignments), or, for audio that has none, an estimate by word count."""

from __future__ import annotations

from movie_assets.domain.blueprint import ProviderKind

PROVIDER_MODELS: dict[str, dict[ProviderKind, str]] = {
    "offline": {ProviderKind.llm: "offline-templates-2", ProviderKind.speech: "piper:en_US-joe-medium",
                ProviderKind.images: "offline-pillow-2", ProviderKind.video: "offline-ffmpeg-kenburns-2",
                ProviderKind.music: "offline-synth-1",
                ProviderKind.transcription: "speech-alignment"},
    "openai": {ProviderKind.llm: "gpt-4o-mini", ProviderKind.speech: "gpt-4o-mini-tts", ProviderKind.images: "gpt-image-1",
               ProviderKind.transcription: "whisper-1"},
    "replicate": {ProviderKind.images: "black-forest-labs/flux-schnell", ProviderKind.video: "minimax/video-01",
                  ProviderKind.music: "meta/musicgen", ProviderKind.speech: "jaaari/kokoro-82m",
                  ProviderKind.transcription: "vaibhavs10/incredibly-fast-whisper"},
}

# Offline models whose ids predate their place in the code versions: leaving them out keeps the
# versions of what they made. Every later offline id (a new drawing, voice or synth: a new id) is part
# of its artifacts' code versions, so what the old one made is stale.
UNVERSIONED_OFFLINE_MODELS = frozenset({"offline-templates-1", "piper:en_US-joe-medium", "offline-pillow-1",
                                        "offline-ffmpeg-kenburns-1", "offline-synth-1"})

# The offline pictures and clips with the developer's marks (MOVIEGEN_DEBUG_OVERLAY=on): another model.
DEBUG_OVERLAY_SUFFIX = "+debug-overlay"
DEBUG_OVERLAY_KINDS = frozenset({ProviderKind.images, ProviderKind.video})


def offline_model(kind: ProviderKind, debug_overlay: bool = False) -> str:
    """The offline model id of a kind, with the debug overlay when it draws one."""
    model = PROVIDER_MODELS["offline"][kind]
    return model + DEBUG_OVERLAY_SUFFIX if debug_overlay and kind in DEBUG_OVERLAY_KINDS else model

# Recovery with reduced settings (movie_assets/domain/recovery.py): the lighter model of the same provider a
# call is tried on once after its model timed out or ran out of memory -- the same inputs, a faster and cheaper
# model. The artifact it makes is marked degraded and the next generate asks the configured model again.
LIGHTER_MODELS: dict[str, dict[str, str]] = {
    "openai": {"gpt-4o": "gpt-4o-mini", "gpt-4.1": "gpt-4.1-mini", "tts-1-hd": "tts-1"},
}
