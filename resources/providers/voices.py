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


# --- Offline voices ---------------------------------------------------------------------------------
# Two voices per language, a female and a male one, each made for its language: English male is Piper's
# neural en_US "joe" voice (captions from its phoneme alignments), every other voice is an eSpeak NG
# voice of that language (``de+f3``: German, female variant 3; captions from its word events). The
# request's voice_id picks one by gender alone, so the choice is a function of the request; "narrator"
# and ids of no known gender are the male voice. docs/providers.md lists them.
OFFLINE_LANGUAGES = ("en", "es", "fr", "de", "it", "pt")
PIPER, ESPEAK = "piper", "espeak-ng"
_ESPEAK_LANGUAGE = {"en": "en-us", "es": "es", "fr": "fr", "de": "de", "it": "it", "pt": "pt-br"}
OPENAI_GENDER = {"nova": "female", "shimmer": "female", "coral": "female", "sage": "female",
                 "ash": "male", "ballad": "male", "echo": "male", "fable": "male", "onyx": "male", "verse": "male"}


def voice_gender(voice_id: str) -> str:
    """``female`` or ``male``: the portable ids by name, OpenAI's voices by who speaks them, Kokoro's by
    the second letter of the id (af_bella female, am_adam male); everything else (narrator, alloy,
    unknown ids) male."""
    if voice_id in ("female", "male"):
        return voice_id
    if voice_id in OPENAI_GENDER:
        return OPENAI_GENDER[voice_id]
    if len(voice_id) > 3 and voice_id[2] == "_" and voice_id[1] in "fm":
        return "female" if voice_id[1] == "f" else "male"
    return "male"


def offline_voice(voice_id: str, language: str) -> tuple[str, str]:
    """(engine, voice) of the offline narrator for a request's voice_id and language."""
    if language not in _ESPEAK_LANGUAGE:
        raise ProviderError(f"the offline narrator has no voice for language {language!r}; available: {', '.join(OFFLINE_LANGUAGES)}",
                            provider="offline", category=ErrorCategory.configuration)
    gender = voice_gender(voice_id)
    if language == "en" and gender == "male":
        return PIPER, "en_US-joe-medium"
    return ESPEAK, f"{_ESPEAK_LANGUAGE[language]}+{'f3' if gender == 'female' else 'm3'}"
