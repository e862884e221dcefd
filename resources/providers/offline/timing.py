"""The offline word timings: no recognizer runs offline. The offline voice says when it speaks each
word itself (Piper's alignments, in the narration audio's metadata); what stands in for a failed
transcription, or times audio no one timed, is this estimate: the expected words spread over the
audio by length."""

from __future__ import annotations

import asyncio

from movie_assets.domain.words import Heard, estimated
from resources.providers.base import CallInfo, Transcript, TranscriptionProvider
from resources.runtime.media import mp3_duration_ms
from resources.runtime.slots import Slots

OFFLINE = "offline"
MODEL = "speech-alignment"


class OfflineTranscription(TranscriptionProvider):
    name = OFFLINE
    model = MODEL

    def __init__(self, latency_s: float = 0.0, local_slots: Slots | asyncio.Semaphore | None = None, fail_when: str = "",
                 debug_overlay: bool = False, max_size: str = ""):
        self.local_slots = local_slots  # nothing to simulate (it makes no call), nothing to draw

    async def transcribe(self, audio: bytes, *, ext: str, language: str, prompt: str) -> Transcript:
        duration = await asyncio.to_thread(mp3_duration_ms, audio) if ext == "mp3" else 0
        words = tuple(Heard(w["text"], w["startMs"], w["endMs"]) for w in estimated(prompt, duration))
        return Transcript(prompt, words, CallInfo(OFFLINE, MODEL, 0.0), duration)
