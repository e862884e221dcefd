"""Speaks one text with eSpeak NG in a process of its own, run by ``espeak.speak`` as a script:
``python espeak_worker.py VOICE WORDS_PER_MINUTE`` with the UTF-8 text on stdin; writes one JSON line
(sample rate, events) and then the 16-bit PCM. A process per synthesis because eSpeak NG keeps state
between syntheses that even a re-initialisation leaves (its pitch flutter goes on): the same text would
sound a little different each time. A fresh process always starts from the same state.

Only the standard library and espeakng-loader: it starts in a few tens of milliseconds."""

from __future__ import annotations

import ctypes
import json
import sys
from typing import Any

import espeakng_loader

# espeak_AUDIO_OUTPUT: AUDIO_OUTPUT_SYNCHRONOUS; espeakINITIALIZE_DONT_EXIT; espeak_EVENT_TYPE values.
_SYNCHRONOUS, _DONT_EXIT = 2, 0x8000
_EV_END_OF_LIST, _EV_WORD, _EV_END = 0, 1, 5
_RATE = 1  # espeak_PARAMETER
_POS_CHARACTER, _CHARS_UTF8 = 1, 1


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Engine:
    """The loaded library, its sample rate and what the callback collects during one synthesis."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), _DONT_EXIT)
        if self.sample_rate <= 0:
            sys.exit(f"eSpeak NG did not start (status {self.sample_rate})")
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





def main() -> None:
    voice, wpm = sys.argv[1], int(sys.argv[2])
    text = sys.stdin.buffer.read()
    engine = _Engine()
    lib = engine.lib
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        sys.exit(f"eSpeak NG has no voice {voice!r}")
    lib.espeak_SetParameter(_RATE, wpm, 0)
    if phonemes_only := len(sys.argv) > 3:
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        buf = ctypes.create_string_buffer(text)
        ptr = ctypes.c_char_p(ctypes.addressof(buf))
        out = []
        while ptr.value:
            chunk = lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, 0x02)  # 0x02: IPA
            if chunk:
                out.append(chunk.decode())
        sys.stdout.buffer.write(json.dumps({"phonemes": " ".join(out)}).encode() + b"\n")
        return
    status = lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    if status != 0:
        sys.exit(f"eSpeak NG could not speak the text (status {status})")
    assert not phonemes_only
    sys.stdout.buffer.write(json.dumps({"sample_rate": engine.sample_rate, "events": engine.events}).encode() + b"\n")
    sys.stdout.buffer.write(b"".join(engine.pcm))


if __name__ == "__main__":
    main()
