"""The soundtrack: narration plus ducked music, mixed in numpy and encoded as AAC, one piece per 10 s
segment, so an edit re-encodes only the pieces it touches.

AAC codes 1024-sample frames whose transforms overlap their neighbours, so pieces encoded on their own
join without a seam when each is cut on that frame grid and encoded with one frame of the real mix
before and after it: the encoder's priming then covers audio that is thrown away, and the first and
last frames kept are coded from the same samples as their neighbours in the next piece (the overlap
adds up as in a one-piece encode; measured, the error at a join is below the codec's own error
elsewhere). The kept frames (ADTS) are concatenated and put in an .m4a by stream copy, its edit list
trimmed to exactly the movie's length.

A piece is a function of its samples' inputs only: the clips that sound in its window (times, volume,
the ducking windows that reach it, the bytes of their media), the bitrate, the encoder. With a cache
folder, each encoded piece is kept there under a hash of all of that, written under a temp name and
renamed into place (concurrent renders share it safely), and reused by later renders: a narration
edit re-encodes the pieces under that narration and the music's ramps around it, and the join copies
the rest. The same pieces make a full render, so an incremental soundtrack equals a full one byte for
byte.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from resources.runtime.disk import writing

from .layout import DUCK_RAMP_MS, SEGMENT_MS
from .layout import track_clips as _track
from .media import Ffmpeg, MediaResolver, RenderError, atomic_output, ffmpeg_exe, resolve
from .presets import Preset

SAMPLE_RATE = 48_000
FRAME = 1024  # AAC samples per frame
# Bump when the pieces' encoding changes: it is part of every cached piece's key.
PIECES_VERSION = "1"
CACHE_MAX_FILES = 4096
WORKERS = 4  # ffmpeg children at once (decodes, piece encodes)  # beyond this, the least recently used pieces are removed


# --- mixing ---------------------------------------------------------------------------------------


def _decode_audio(path: Path, max_samples: int, timeout_s: float) -> np.ndarray:
    """(n, 2) float32 samples at SAMPLE_RATE, at most max_samples of them."""
    seconds = max_samples / SAMPLE_RATE + 0.1
    with Ffmpeg(f"decode {path.name}", timeout_s) as dec:
        dec.start(["-i", str(path), "-map", "0:a:0", "-vn", "-t", f"{seconds:.3f}", "-ac", "2",
                   "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1"], stdout=True)
        data = dec.read_all()
        dec.finish()
    return np.frombuffer(data, dtype="<f4").reshape(-1, 2)[:max_samples]


def _duck_gain(clip: dict[str, Any], n: int) -> np.ndarray:
    """Per-sample gain of a music clip: `volume`, down to each window's volume inside the window,
    with linear ramps that end at the window start and start at the window end."""
    volume = float(clip.get("volume", 1.0))
    gain = np.full(n, volume, dtype=np.float32)
    t0 = float(clip["startMs"])
    per_ms = SAMPLE_RATE / 1000
    for win in clip.get("ducking", []):
        ws, we, duck = float(win["startMs"]), float(win["endMs"]), float(win["volume"])
        lo = max(0, math.floor((ws - DUCK_RAMP_MS - t0) * per_ms))
        hi = min(n, math.ceil((we + DUCK_RAMP_MS - t0) * per_ms) + 1)
        if hi <= lo:
            continue
        t = t0 + np.arange(lo, hi, dtype=np.float64) / per_ms
        weight = np.clip(np.minimum(t - (ws - DUCK_RAMP_MS), (we + DUCK_RAMP_MS) - t) / DUCK_RAMP_MS, 0.0, 1.0)
        gain[lo:hi] = np.minimum(gain[lo:hi], volume + weight * (duck - volume))
    return gain


class _Clip:
    """One narration or music clip: where it sounds in the movie, in samples."""

    def __init__(self, clip: dict[str, Any], is_music: bool, total: int, media: MediaResolver):
        self.clip, self.is_music = clip, is_music
        self.start = int(clip["startMs"]) * SAMPLE_RATE // 1000
        self.length = min(int(clip["durationMs"]) * SAMPLE_RATE // 1000, total - self.start)
        self.path = resolve(media, clip["src"]) if self.length > 0 else None
        self._digest: str | None = None

    def overlaps(self, lo: int, hi: int) -> bool:
        return self.length > 0 and self.start < hi and self.start + self.length > lo

    def key(self, lo: int, hi: int) -> dict[str, Any]:
        """What this clip puts into samples [lo, hi): its place, gain, and its media's bytes."""
        if self._digest is None:
            assert self.path is not None
            self._digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        ducking = []
        if self.is_music:  # only the windows whose ramps reach [lo, hi)
            lo_ms, hi_ms = lo * 1000 / SAMPLE_RATE, hi * 1000 / SAMPLE_RATE
            ducking = [w for w in self.clip.get("ducking", [])
                       if float(w["startMs"]) - DUCK_RAMP_MS - 1 < hi_ms and float(w["endMs"]) + DUCK_RAMP_MS + 1 > lo_ms]
        return {"music": self.is_music, "startMs": int(self.clip["startMs"]), "durationMs": int(self.clip["durationMs"]),
                "volume": float(self.clip.get("volume", 1.0)), "ducking": ducking, "media": self._digest}

    def decode(self, timeout_s: float) -> np.ndarray:
        assert self.path is not None
        return _decode_audio(self.path, self.length, timeout_s)

    def add_to(self, mix: np.ndarray, data: np.ndarray) -> None:
        gain = _duck_gain(self.clip, len(data)) if self.is_music else np.float32(self.clip.get("volume", 1.0))
        mix[self.start:self.start + len(data)] += data * (gain[:, None] if self.is_music else gain)


# --- pieces ---------------------------------------------------------------------------------------


def pieces(duration_ms: int) -> list[tuple[int, int]]:
    """AAC frame ranges [a, b), one per 10 s segment (on the frame grid), covering the movie."""
    frames = math.ceil(duration_ms * SAMPLE_RATE // 1000 / FRAME)
    count = max(1, duration_ms // SEGMENT_MS)
    bounds = [k * SEGMENT_MS * SAMPLE_RATE // 1000 // FRAME for k in range(count)] + [frames]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _window(piece: tuple[int, int]) -> tuple[int, int]:
    """The samples a piece is encoded from: its own, and one frame either side."""
    return (piece[0] - 1) * FRAME, (piece[1] + 1) * FRAME


def adts_frames(data: bytes) -> list[bytes]:
    """Split an ADTS stream into its frames (a bad stream raises ValueError)."""
    out, i = [], 0
    while i < len(data):
        if i + 7 > len(data) or data[i] != 0xFF or data[i + 1] & 0xF0 != 0xF0:
            raise ValueError(f"not an ADTS frame at byte {i}")
        size = ((data[i + 3] & 3) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
        if size < 7 or i + size > len(data):
            raise ValueError(f"bad ADTS frame length {size} at byte {i}")
        out.append(data[i:i + size])
        i += size
    return out


def _encode_piece(samples: np.ndarray, count: int, preset: Preset, timeout_s: float) -> bytes:
    """`samples` (one frame of lead-in, `count` frames, one frame of tail) -> the `count` middle frames
    as ADTS. The encoder's first frame is its priming and its second codes the lead-in: both dropped."""
    with Ffmpeg("encode soundtrack piece", timeout_s) as enc:
        enc.start(["-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "2", "-i", "pipe:0", "-c:a", "aac",
                   "-b:a", preset.audio_bitrate, "-f", "adts", "pipe:1"], stdin=True, stdout=True)
        # Feed and read at once: the encoded output could fill the pipe before the input is written.
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(enc.read_all()), daemon=True)
        reader.start()
        enc.write(memoryview(np.ascontiguousarray(samples, dtype="<f4")).cast("B"))
        enc.finish()
        reader.join()
    frames = adts_frames(result[0] if result else b"")
    kept = frames[2:2 + count]
    if len(kept) != count:
        raise RenderError(f"ffmpeg encode soundtrack piece: {len(frames)} AAC frames for {count} + 2")
    return b"".join(kept)


def _ffmpeg_id() -> str:
    """The encoder's identity for the cache key: the ffmpeg binary's name and size."""
    exe = Path(ffmpeg_exe())
    return f"{exe.name}:{exe.stat().st_size}"


class PieceCache:
    """Encoded pieces on local disk, by the hash of everything they are made from."""

    def __init__(self, folder: Path):
        self.folder = folder

    def get(self, key: str, count: int) -> bytes | None:
        path = self.folder / f"{key}.aac"
        try:
            data = path.read_bytes()
            if len(adts_frames(data)) != count:  # damaged: made again
                return None
            os.utime(path)  # recently used
            return data
        except (OSError, ValueError):
            return None

    def put(self, key: str, data: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            part = self.folder / f".{key}.{secrets.token_hex(4)}.part"
            part.write_bytes(data)
            os.replace(part, self.folder / f"{key}.aac")
            self._prune()
        except OSError:
            pass  # a cache that cannot be written only costs time

    def _prune(self) -> None:
        files = list(self.folder.glob("*.aac"))
        if len(files) <= CACHE_MAX_FILES:
            return
        for path in sorted(files, key=lambda p: p.stat().st_mtime)[: len(files) - CACHE_MAX_FILES]:
            path.unlink(missing_ok=True)


def render_soundtrack(timeline: dict[str, Any], media: MediaResolver, out: Path, preset: Preset, *,
                      timeout_s: float = 300, cache_dir: Path | None = None) -> dict[str, int]:
    """Narration plus ducked music as AAC in an .m4a exactly durationMs long; returns how many pieces
    were encoded and how many came from the cache."""
    t_start = time.monotonic()
    left = lambda: max(1.0, timeout_s - (time.monotonic() - t_start))
    total = int(timeline["durationMs"]) * SAMPLE_RATE // 1000
    clips = [_Clip(c, False, total, media) for c in _track(timeline, "narration") if c.get("src")]
    clips += [_Clip(c, True, total, media) for c in _track(timeline, "music") if c.get("src")]
    cache = PieceCache(cache_dir) if cache_dir is not None else None
    parts = pieces(int(timeline["durationMs"]))
    keys: list[str] = []
    encoded: dict[int, bytes] = {}
    for k, piece in enumerate(parts):
        lo, hi = _window(piece)
        spec = {"v": PIECES_VERSION, "ffmpeg": _ffmpeg_id(), "rate": SAMPLE_RATE, "bitrate": preset.audio_bitrate,
                "window": [lo, hi], "total": total, "clips": [c.key(lo, hi) for c in clips if c.overlaps(lo, hi)]}
        keys.append(hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32])
        if cache is not None and (data := cache.get(keys[k], piece[1] - piece[0])) is not None:
            encoded[k] = data
    missing = [k for k in range(len(parts)) if k not in encoded]
    if missing:
        # Mix only what the missing pieces hear: the clips that sound in their windows.
        end = (parts[-1][1] + 1) * FRAME
        mix = np.zeros((end + FRAME, 2), dtype=np.float32)  # index i = sample i - FRAME
        windows = [_window(parts[k]) for k in missing]
        heard = [clip for clip in clips if any(clip.overlaps(lo, hi) for lo, hi in windows)]
        # Decodes, then encodes, side by side: each is one ffmpeg child, mostly start-up and waiting.
        with ThreadPoolExecutor(WORKERS) as pool:
            decoded = list(pool.map(lambda clip: clip.decode(left()), heard))
            for clip, data in zip(heard, decoded, strict=True):
                clip.add_to(mix[FRAME:FRAME + total], data)
            np.clip(mix, -1.0, 1.0, out=mix)
            made = pool.map(lambda k: _encode_piece(mix[windows[missing.index(k)][0] + FRAME:windows[missing.index(k)][1] + FRAME],
                                                    parts[k][1] - parts[k][0], preset, left()), missing)
            for k, data in zip(missing, made, strict=True):
                encoded[k] = data
                if cache is not None:
                    cache.put(keys[k], data)
    stream = b"".join(encoded[k] for k in range(len(parts)))
    with atomic_output(out) as part, Ffmpeg("mux soundtrack", left()) as mux:
        with writing(mux.tmp / "soundtrack.aac"):  # a full disk here names its folder
            (mux.tmp / "soundtrack.aac").write_bytes(stream)
        mux.start(["-f", "aac", "-i", "soundtrack.aac", "-c", "copy", "-f", "mp4", str(part)])
        mux.finish()
        trim_to(part, total, SAMPLE_RATE)
    return {"pieces": len(parts), "encoded": len(missing), "reused": len(parts) - len(missing)}


# --- the .m4a's length ------------------------------------------------------------------------------


def _boxes(data: bytes | bytearray, start: int, end: int) -> list[tuple[str, int, int, int]]:
    """(type, offset, header size, size) of the MP4 boxes in data[start:end]."""
    out = []
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[start + 8:start + 16])[0], 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            raise RenderError(f"soundtrack: bad MP4 box {kind!r} at byte {start}")
        out.append((kind.decode("latin-1"), start, header, size))
        start += size
    return out


def trim_to(path: Path, samples: int, rate: int) -> None:
    """Set the one audio track's presented length to `samples` (its edit list, the movie and track
    headers): the last AAC frame is padded to 1024 samples, the movie is exactly its length. The
    muxer's edit list starts at media time 0 (ADTS frames carry no priming)."""
    data = bytearray(path.read_bytes())
    moov = next(b for b in _boxes(data, 0, len(data)) if b[0] == "moov")
    inside = {b[0]: b for b in _boxes(data, moov[1] + moov[2], moov[1] + moov[3])}
    mvhd = inside["mvhd"]
    body = mvhd[1] + mvhd[2]
    version = data[body]
    if version == 0:
        timescale = struct.unpack(">I", data[body + 12:body + 16])[0]
    else:
        timescale = struct.unpack(">I", data[body + 20:body + 24])[0]
    length = round(samples * timescale / rate)

    def put(offset: int, wide: bool) -> None:
        if wide:
            struct.pack_into(">Q", data, offset, length)
        else:
            struct.pack_into(">I", data, offset, length)

    put(body + (16 if version == 0 else 24), version != 0)  # mvhd duration
    trak = inside["trak"]
    in_trak = {b[0]: b for b in _boxes(data, trak[1] + trak[2], trak[1] + trak[3])}
    tkhd = in_trak["tkhd"]
    body = tkhd[1] + tkhd[2]
    put(body + (20 if data[body] == 0 else 28), data[body] != 0)  # tkhd duration
    edts = in_trak.get("edts")
    if edts is None:
        raise RenderError("soundtrack: the muxer wrote no edit list to trim")
    elst = next(b for b in _boxes(data, edts[1] + edts[2], edts[1] + edts[3]) if b[0] == "elst")
    body = elst[1] + elst[2]
    if struct.unpack(">I", data[body + 4:body + 8])[0] != 1:
        raise RenderError("soundtrack: expected one edit list entry")
    put(body + 8, data[body] != 0)  # segment duration
    path.write_bytes(bytes(data))
