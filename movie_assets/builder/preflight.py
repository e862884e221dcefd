"""Pre-flight: what would make a generation's calls fail for sure, found before any money is spent.

For every producer a plan calls: its provider's key is set, and the routed model can do what the
request asks (the frame's aspect ratio, the voice in the language, each video segment's mode at the
frame's size and length: the video model's capability table). Run by ``moviegen plan`` and at
the start of every generation; the same checks the provider clients make before each call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from movie_assets.domain.blueprint import ProviderKind
from movie_assets.domain.request import SEGMENT_SECONDS, T2V, MovieRequest, VisualMode, video_call
from resources.providers.base import ErrorCategory, ProviderError, describe_failure
from resources.providers.capabilities import video_capability
from resources.providers.offline import espeak
from resources.providers.voices import ESPEAK, offline_voice
from resources.settings import PRODUCER_KINDS, Route

KEYS = {"openai": "OPENAI_API_KEY", "replicate": "REPLICATE_API_TOKEN"}


def _client(provider: str, kind: ProviderKind, model: str, params: dict[str, Any]) -> Any:
    """The provider client class for a route, without a session (enough for its checks)."""
    if provider == "openai":
        from resources.providers.openai import client as openai_client  # noqa: PLC0415 - SDK loads when routed to

        classes: dict[ProviderKind, Any] = {ProviderKind.llm: openai_client.OpenAILLM, ProviderKind.images: openai_client.OpenAIImages,
                                            ProviderKind.speech: openai_client.OpenAISpeech,
                                            ProviderKind.transcription: openai_client.OpenAITranscription}
    else:
        from resources.providers.replicate import client as replicate_client  # noqa: PLC0415 - SDK loads when routed to

        classes = {ProviderKind.images: replicate_client.ReplicateImages, ProviderKind.video: replicate_client.ReplicateVideo,
                   ProviderKind.music: replicate_client.ReplicateMusic, ProviderKind.speech: replicate_client.ReplicateSpeech,
                   ProviderKind.transcription: replicate_client.ReplicateTranscription}
    return classes[kind](None, model, params)


_VIDEO_PRODUCERS = {"TextToVideoProducer": VisualMode.video_by_text, "ImageToVideoProducer": VisualMode.video_by_image}


def check_video(producer: str, route: Route, request: MovieRequest) -> None:
    """Every segment this video producer makes can be made by the routed model (its capability table):
    the call its mode asks (an ``auto`` segment's as it would be decided), the frame's size, the length.
    A model the catalog does not know is not checked."""
    capability = video_capability(route.provider, route.model)
    if capability is None:
        return
    size = request.picture_size.value
    for segment in range(request.segment_count):
        if request.mode(segment) is not _VIDEO_PRODUCERS[producer]:
            continue
        wanted = request.video_mode_of(segment)
        call = T2V if producer == "TextToVideoProducer" else video_call(wanted, size, "a prompt", capability.modes,
                                                                         frozenset(capability.sizes))
        problem = capability.problem(route.model, call, size, SEGMENT_SECONDS)
        if problem:
            raise ProviderError(f"segment {segment} (video_mode {wanted.value}, size {size}): {problem}", provider=route.provider,
                                category=ErrorCategory.configuration,
                                suggestion=f"route {producer} to a model that makes it (MOVIEGEN_PROVIDERS; docs/providers.md "
                                           "lists what each video model makes), or change the request (video_mode, size)")


def _check(producer: str, route: Route, params: dict[str, Any], request: MovieRequest, env: Mapping[str, str]) -> None:
    kind = PRODUCER_KINDS[producer]
    width, height = request.frame
    if producer in _VIDEO_PRODUCERS:
        check_video(producer, route, request)
    if route.provider == "offline":
        if kind is ProviderKind.speech:
            # The request's voice and language: a language with no offline voice, or eSpeak NG missing.
            engine, _ = offline_voice(request.voice_id, request.language.value)
            if engine == ESPEAK:
                espeak.require()
        return
    key = KEYS.get(route.provider)
    if key and not env.get(key):
        raise ProviderError(f"{producer} is routed to {route} but {key} is not set", provider=route.provider,
                            category=ErrorCategory.configuration,
                            suggestion=f"set {key}, or route {producer} to 'offline' in MOVIEGEN_PROVIDERS")
    client = _client(route.provider, kind, route.model, params)
    if kind is ProviderKind.images and hasattr(client, "preflight"):
        client.preflight(width, height)
    if kind is ProviderKind.speech and hasattr(client, "preflight"):
        client.preflight("", request.voice_id, request.language.value)
    if kind is ProviderKind.transcription and hasattr(client, "preflight"):
        client.preflight()


def preflight(producers: Iterable[str], routes: Mapping[str, Route], params: Mapping[str, dict[str, Any]],
              request: MovieRequest, env: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """One problem per producer that cannot work: producer, route, message, category, suggestion."""
    env = os.environ if env is None else env
    problems = []
    for producer in sorted(set(producers)):
        route = routes[producer]
        try:
            _check(producer, route, dict(params.get(producer) or {}), request, env)
        except Exception as e:  # noqa: BLE001 - every problem is reported, none raised
            problems.append({"producer": producer, "route": str(route), **describe_failure(e)})
    return problems
