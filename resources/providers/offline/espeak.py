"""eSpeak NG voices for offline narration in every language, with word timings from the synthesizer.

The library and its data come from the ``espeakng-loader`` package (libespeak-ng and espeak-ng-data in
the wheel: nothing is downloaded, nothing needs installing beside the Python packages). It is driven
through ctypes in synchronous mode: each call to ``espeak_Synth`` hands the samples and the events to a
callback, and every WORD event says which character of the text starts being spoken at which sample.
A word lasts from its event to the next word's (or the clause's end), less the silence at its end.

eSpeak keeps one global state, so every synthesis holds one process-wide lock.
"""

from __future__ import annotations

import ctypes
import io
import threading
import wave
from typing import Any

import numpy as np

from resources.providers.base import ErrorCategory, ProviderError

# espeak_AUDIO_OUTPUT: AUDIO_OUTPUT_SYNCHRONOUS; espeakINITIALIZE_DONT_EXIT; espeak_EVENT_TYPE values.
_SYNCHRONOUS, _DONT_EXIT = 2, 0x8000
_EV_END_OF_LIST, _EV_WORD, _EV_END = 0, 1, 5
_RATE, _PITCH = 1, 3  # espeak_PARAMETER
_POS_CHARACTER, _CHARS_UTF8 = 1, 1


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Engine:
    """The loaded library, its sample rate and what the callback collects during one synthesis."""

    def __init__(self) -> None:
        try:
            # Loaded when speech is first made in a language that needs it (not at import).
            import espeakng_loader  # noqa: PLC0415
        except ImportError as e:
            raise ProviderError("the offline voices for this language need eSpeak NG, from the espeakng-loader package, "
                                "which is not installed: reinstall moviegen's dependencies (`pip install -e .` or "
                                "`make install`)", provider="offline", category=ErrorCategory.configuration) from e
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), _DONT_EXIT)
        if self.sample_rate <= 0:
            raise ProviderError(f"eSpeak NG did not start (status {self.sample_rate})", provider="offline",
                                category=ErrorCategory.configuration)
        self.lib = lib
        self.pcm: list[bytes] = []
        self.events: list[tuple[int, int, int]] = []  # (type, text position (1-based character), sample)
        self.callback = _CALLBACK(self._collect)  # kept referenced for as long as the library may call it
        lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav: Any, n: int, events: Any) -> int:
        if n > 0:
            self.pcm.append(ctypes.string_at(wav, n * 2))
        i = 0
        while events[i].type != _EV_END_OF_LIST:
            e = events[i]
            self.events.append((e.type, e.text_position, e.sample))
            i += 1
        return 0


_engine: _Engine | None = None
_lock = threading.Lock()


def _trim_end(audio: np.ndarray, start: int, end: int, sample_rate: int) -> int:
    """The end of the sound in audio[start:end]: the trailing silence (pause after a word) cut off."""
    hop = max(1, sample_rate // 200)  # 5 ms frames
    seg = audio[start:end].astype(np.float64)
    n = len(seg) // hop
    if n == 0:
        return end
    rms = np.sqrt(np.mean(seg[: n * hop].reshape(n, hop) ** 2, axis=1))
    loud = np.flatnonzero(rms > 300.0)  # int16 amplitude: well above eSpeak's silence (exact zeros)
    return start + (int(loud[-1]) + 1) * hop if len(loud) else start


def word_spans(text: str, events: list[tuple[int, int, int]], audio: np.ndarray, sample_rate: int) -> list[dict[str, Any]]:
    """When each word of ``text.split()`` is spoken (ms), from eSpeak's WORD events: a text word owns the
    events whose character position falls inside it (a number is several spoken words); it ends where
    the next event begins, less the silence before it."""
    words, starts, pos = text.split(), [], 0
    for w in words:
        pos = text.index(w, pos)
        starts.append(pos)
        pos += len(w)
    first: dict[int, int] = {}
    boundaries = sorted({s for t, _, s in events if t in (_EV_WORD, _EV_END)} | {len(audio)})
    for t, position, sample in events:
        if t != _EV_WORD:
            continue
        k = int(np.searchsorted(starts, position - 1, side="right")) - 1  # the word this character is in
        if 0 <= k < len(words):
            first.setdefault(k, sample)
    last: dict[int, int] = {}
    for t, position, sample in events:
        if t == _EV_WORD:
            k = int(np.searchsorted(starts, position - 1, side="right")) - 1
            if 0 <= k < len(words):
                nxt = next((b for b in boundaries if b > sample), len(audio))
                last[k] = _trim_end(audio, sample, nxt, sample_rate)

    def ms(sample: int) -> int:
        return round(sample * 1000 / sample_rate)

    out: list[dict[str, Any]] = []
    prev_end = 0
    for k, w in enumerate(words):
        if k in first:
            start = max(prev_end, ms(first[k]))
            end = max(start, ms(last[k]))
        else:  # nothing spoken for it (a dash on its own): an empty span, moved to the next word below
            start = end = prev_end
        out.append({"text": w, "startMs": start, "endMs": end})
        prev_end = end
    for k in range(len(out) - 2, -1, -1):
        if k not in first and out[k + 1]["startMs"] > out[k]["startMs"]:
            out[k]["startMs"] = out[k]["endMs"] = out[k + 1]["startMs"]
    return out


def speak(text: str, voice: str, words_per_minute: int) -> tuple[bytes, list[dict[str, Any]]]:
    """The WAV (16-bit mono) of ``text`` spoken by the eSpeak NG voice ``voice`` (``de+f3``: language and
    variant) at ``words_per_minute``, and when each of its words is spoken."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = _Engine()
        engine = _engine
        if engine.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ProviderError(f"eSpeak NG has no voice {voice!r}", provider="offline", category=ErrorCategory.configuration)
        engine.lib.espeak_SetParameter(_RATE, int(words_per_minute), 0)
        engine.pcm, engine.events = [], []
        data = text.encode()
        status = engine.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise ProviderError(f"eSpeak NG could not speak the text (status {status})", provider="offline",
                                category=ErrorCategory.local)
        pcm, events, sample_rate = b"".join(engine.pcm), list(engine.events), engine.sample_rate
    audio = np.frombuffer(pcm, dtype=np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setframerate(sample_rate)
        w.setsampwidth(2)
        w.setnchannels(1)
        w.writeframes(pcm)
    return buf.getvalue(), word_spans(text, events, audio, sample_rate)


def phonemes(text: str, voice: str) -> str:
    """The IPA eSpeak NG reads ``text`` with in ``voice`` (what its synthesizer says)."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = _Engine()
        lib = _engine.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ProviderError(f"eSpeak NG has no voice {voice!r}", provider="offline", category=ErrorCategory.configuration)
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        buf = ctypes.create_string_buffer(text.encode())
        ptr = ctypes.c_char_p(ctypes.addressof(buf))
        out = []
        while ptr.value:
            chunk = lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, 0x02)  # 0x02: IPA
            if chunk:
                out.append(chunk.decode())
        return " ".join(out)
