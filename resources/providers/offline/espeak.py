"""eSpeak NG voices for offline narration in every language, with word timings from the synthesizer.

The library and its data come from the ``espeakng-loader`` package (libespeak-ng and espeak-ng-data in
the wheel: nothing is downloaded, nothing needs installing beside the Python packages). It is driven
through ctypes in synchronous mode (``espeak_worker.py``, one process per synthesis: see there why):
``espeak_Synth`` hands the samples and the events to a callback, and every WORD event says which
character of the text starts being spoken at which sample. A word lasts from its event to the next
word's (or the clause's end), less the silence at its end.
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np

from movie_assets.domain.words import spoken_spans
from resources.providers.base import ErrorCategory, ProviderError

_WORKER = str(Path(__file__).with_name("espeak_worker.py"))
_EV_WORD, _EV_END = 1, 5  # espeak_EVENT_TYPE


def require() -> None:
    """Refuse (a configuration error) when eSpeak NG is not installed: never another voice instead."""
    if importlib.util.find_spec("espeakng_loader") is None:
        raise ProviderError("the offline voice needs eSpeak NG, from the espeakng-loader package, which is not installed: "
                            "reinstall moviegen's dependencies (`pip install -e .` or `make install`)",
                            provider="offline", category=ErrorCategory.configuration)


def _run(voice: str, words_per_minute: int, text: str, *extra: str) -> bytes:
    require()
    done = subprocess.run([sys.executable, _WORKER, voice, str(int(words_per_minute)), *extra], input=text.encode(),
                          capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        raise ProviderError(f"eSpeak NG failed with voice {voice!r}: {done.stderr.decode(errors='replace').strip()[-300:]}",
                            provider="offline", category=ErrorCategory.configuration)
    return done.stdout


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

    return spoken_spans(words, first, last, sample_rate)


def speak(text: str, voice: str, words_per_minute: int) -> tuple[bytes, list[dict[str, Any]]]:
    """The WAV (16-bit mono) of ``text`` spoken by the eSpeak NG voice ``voice`` (``de+f3``: language and
    variant) at ``words_per_minute``, and when each of its words is spoken."""
    out = _run(voice, words_per_minute, text)
    line, pcm = out.split(b"\n", 1)
    head = json.loads(line)
    sample_rate, events = head["sample_rate"], [tuple(e) for e in head["events"]]
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
    return str(json.loads(_run(voice, 175, text, "--phonemes"))["phonemes"])
