"""Voices: the request's ``voice_id`` mapped onto what the chosen speech model has, per language.

A request names either a portable voice (``narrator``, ``female``, ``male``) that works on every
provider and language a model speaks, or a provider's own voice id (``nova``, ``af_bella``), which
is passed through when that model has it and it speaks the movie's language. Anything else is
refused before any call, with the voices that would work.
"""

from __future__ import annotations

from resources.providers.base import ErrorCategory, ProviderError

PORTABLE = ("narrator", "female", "male")

# OpenAI's voices speak every language the model does; the language follows the text.
OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"})
OPENAI_PORTABLE = {"narrator": "alloy", "female": "nova", "male": "onyx"}

# Kokoro's voices each speak one language (the first letter of the id): a/b English, e Spanish,
# f French, i Italian, p Portuguese. Kokoro has no German voice.
KOKORO_VOICES = {
    "en": ("af_heart", "af_alloy", "af_bella", "af_nova", "af_sky", "am_adam", "am_echo", "am_michael", "bf_emma", "bm_george"),
    "es": ("ef_dora", "em_alex", "em_santa"),
    "fr": ("ff_siwis",),
    "it": ("if_sara", "im_nicola"),
    "pt": ("pf_dora", "pm_alex", "pm_santa"),
}
KOKORO_PORTABLE = {
    "en": {"narrator": "af_heart", "female": "af_bella", "male": "am_michael"},
    "es": {"narrator": "ef_dora", "female": "ef_dora", "male": "em_alex"},
    "fr": {"narrator": "ff_siwis", "female": "ff_siwis"},
    "it": {"narrator": "if_sara", "female": "if_sara", "male": "im_nicola"},
    "pt": {"narrator": "pf_dora", "female": "pf_dora", "male": "pm_alex"},
}


def _refuse(model: str, voice_id: str, language: str, allowed: list[str], provider: str) -> ProviderError:
    return ProviderError(f"{model} has no voice {voice_id!r} for language {language!r}; allowed: {', '.join(allowed)} "
                         "(set voice_id in the request, or route AudioProducer to another provider)",
                         provider=provider, category=ErrorCategory.configuration)


def openai_voice(model: str, voice_id: str, language: str) -> str:
    if voice_id in OPENAI_VOICES:
        return voice_id
    if voice_id in OPENAI_PORTABLE:
        return OPENAI_PORTABLE[voice_id]
    raise _refuse(model, voice_id, language, [*PORTABLE, *sorted(OPENAI_VOICES)], "openai")


def kokoro_voice(model: str, voice_id: str, language: str) -> str:
    if language not in KOKORO_VOICES:
        raise ProviderError(f"{model} does not speak {language!r} (it speaks {', '.join(KOKORO_VOICES)}): route "
                            "AudioProducer to openai or offline for this movie", provider="replicate",
                            category=ErrorCategory.configuration)
    voices, portable = KOKORO_VOICES[language], KOKORO_PORTABLE[language]
    if voice_id in voices:
        return voice_id
    if voice_id in portable:
        return portable[voice_id]
    raise _refuse(model, voice_id, language, [*portable, *voices], "replicate")
