"""Local media helpers: ffmpeg (the binary shipped by imageio-ffmpeg), WAV/MP3, probing sizes."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from resources.runtime import processes
from resources.runtime.scratch import scratch_dir


class MediaError(RuntimeError):
    pass


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], inputs: dict[str, bytes], output_name: str, timeout_s: float = 300) -> bytes:
    """Run ffmpeg in a scratch folder: ``inputs`` are written there, ``output_name`` is read back."""
    with scratch_dir("moviegen-ffmpeg-") as tmp:
        for name, data in inputs.items():
            Path(tmp, name).write_bytes(data)
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args, output_name]
        proc = processes.run(cmd, cwd=tmp, capture_output=True, timeout=timeout_s)
        if proc.returncode != 0:
            raise MediaError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-800:]}")
        return Path(tmp, output_name).read_bytes()


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV of mono or (frames, 2) stereo float samples in [-1, 1]."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def wav_duration_ms(data: bytes) -> int:
    with wave.open(io.BytesIO(data)) as w:
        return round(w.getnframes() * 1000 / w.getframerate())


def wav_to_mp3(data: bytes, bitrate: str = "128k") -> bytes:
    return run_ffmpeg(["-i", "in.wav", "-ar", "44100", "-codec:a", "libmp3lame", "-b:a", bitrate], {"in.wav": data}, "out.mp3")


def png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise MediaError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _find_box(data: bytes, path: list[bytes]) -> bytes | None:
    """The payload of a nested MP4 box (``moov/trak/tkhd``...), first match at each level."""
    if not path:
        return data
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = len(data) - pos
        if size < header:
            return None
        if kind == path[0]:
            return _find_box(data[pos + header : pos + size], path[1:])
        pos += size
    return None


def mp4_info(data: bytes) -> tuple[int, int, int]:
    """Width, height and duration (ms) of an MP4, read from its moov box (no ffprobe needed)."""
    mvhd = _find_box(data, [b"moov", b"mvhd"])
    tkhd = _find_box(data, [b"moov", b"trak", b"tkhd"])
    if mvhd is None or tkhd is None:
        raise MediaError("not an MP4 file with a movie header")
    if mvhd[0] == 1:
        timescale, duration = struct.unpack(">IQ", mvhd[20:32])
    else:
        timescale, duration = struct.unpack(">II", mvhd[12:20])
    width_fx, height_fx = struct.unpack(">II", tkhd[-8:])
    return width_fx >> 16, height_fx >> 16, round(duration * 1000 / timescale)


_MP3_BITRATES = {
    1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],  # MPEG-1 layer III
    2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],  # MPEG-2/2.5 layer III
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_duration_ms(data: bytes) -> int:
    """Duration of an MP3 (MPEG-1, 2 or 2.5 layer III), counted from its frame headers."""
    pos = 0
    if data[:3] == b"ID3":
        size = data[6:10]
        pos = 10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3])
    samples = 0
    sample_rate = 44100
    while pos + 4 <= len(data):
        b1, b2 = data[pos + 1], data[pos + 2]
        version = (b1 >> 3) & 0x3
        layer = (b1 >> 1) & 0x3
        index = (b2 >> 4) & 0xF
        rate_index = (b2 >> 2) & 0x3
        if data[pos] != 0xFF or (b1 & 0xE0) != 0xE0 or version == 1 or layer != 1 or index in (0, 15) or rate_index == 3:
            pos += 1
            continue
        sample_rate = _MP3_RATES[version][rate_index]
        mpeg1 = version == 3
        bitrate = _MP3_BITRATES[1 if mpeg1 else 2][index]
        length = (144000 if mpeg1 else 72000) * bitrate // sample_rate + ((b2 >> 1) & 1)
        samples += 1152 if mpeg1 else 576
        pos += max(length, 1)
    return round(samples * 1000 / sample_rate)


def jpeg_preview(img: Image.Image, box: int = 160) -> bytes:
    """A small JPEG of a picture, for the Dagster UI."""
    small = img.convert("RGB")
    small.thumbnail((box, box))
    out = io.BytesIO()
    small.save(out, "JPEG", quality=60)
    return out.getvalue()


def fit_to_frame(png: bytes, width: int, height: int) -> bytes:
    """Centre-crop to the frame's aspect ratio and resize to its exact size."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    target = width / height
    w, h = img.size
    if w / h > target:
        new_w = round(h * target)
        img = img.crop(((w - new_w) // 2, 0, (w - new_w) // 2 + new_w, h))
    else:
        new_h = round(w / target)
        img = img.crop((0, (h - new_h) // 2, w, (h - new_h) // 2 + new_h))
    img = img.resize((width, height), Image.LANCZOS)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()
