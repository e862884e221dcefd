"""Local media helpers: ffmpeg (the binary shipped by imageio-ffmpeg), WAV/MP3, probing sizes, and
checks that bytes are a readable picture, sound or video (``BadMedia`` says what is wrong with them)."""

from __future__ import annotations

import io
import re
import struct
import wave
import zlib
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image, UnidentifiedImageError

from resources.runtime import processes
from resources.runtime.disk import DiskFull, over_quota, ran_out_of_space, writing
from resources.runtime.scratch import scratch_dir


class MediaError(RuntimeError):
    pass


class BadMedia(MediaError):
    """Bytes that are not a readable file of the kind expected; ``str(e)`` says what is wrong with them
    ("truncated PNG", "not an image: text '<html>...'")."""


class MediaDiskFull(DiskFull, MediaError):
    """ffmpeg ran out of disk space (caught as a MediaError, reported as a full disk)."""


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], inputs: dict[str, bytes], output_name: str, timeout_s: float = 300) -> bytes:
    """Run ffmpeg in a scratch folder: ``inputs`` are written there, ``output_name`` is read back."""
    with scratch_dir("moviegen-ffmpeg-") as tmp:
        for name, data in inputs.items():
            with writing(Path(tmp, name)):
                Path(tmp, name).write_bytes(data)
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args, output_name]
        proc = processes.run(cmd, cwd=tmp, capture_output=True, timeout=timeout_s)
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace")[-800:]
            if ran_out_of_space(proc.returncode, stderr):
                raise MediaDiskFull(Path(tmp, output_name), "ffmpeg", detail=stderr, quota=over_quota(stderr))
            raise MediaError(f"ffmpeg failed ({proc.returncode}): {stderr}")
        return Path(tmp, output_name).read_bytes()


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"ID3", "MP3"), (b"OggS", "Ogg"),
          (b"fLaC", "FLAC"))
_IMAGES = frozenset({"PNG", "JPEG", "GIF", "WebP"})


def _format(data: bytes) -> str | None:
    """The file format its first bytes name, if any."""
    if data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"WAVE"):
        return "WebP" if data[8:12] == b"WEBP" else "WAV"
    if data[4:8] == b"ftyp":
        return "MP4"
    if len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and (data[1] >> 1) & 0x3 == 1:  # a layer III frame
        return "MP3"
    return next((name for magic, name in _MAGIC if data.startswith(magic)), None)


def sniff(data: bytes) -> str:
    """What bytes look like, for a message: ``empty``, ``text '<html><body>Bad gateway...'``, ``a PNG``,
    ``61 bytes of binary data``."""
    if not data:
        return "empty"
    head = data[:48].decode("utf-8", errors="ignore")  # a character cut at the 48th byte is dropped
    if len(head.encode()) >= min(len(data), 48) - 3 and all(c.isprintable() or c in "\r\n\t" for c in head):
        text = " ".join(head.split())
        return f"text {text!r}" + ("..." if len(data) > 48 else "")
    found = _format(data)
    return f"{found} data" if found else f"{len(data)} bytes of binary data"


def read_image(data: bytes) -> Image.Image:
    """The picture ``data`` holds, decoded; BadMedia when it is none or cannot be read whole ("truncated PNG")."""
    kind = _format(data) or "image"
    try:
        img = Image.open(io.BytesIO(data))
        kind = img.format or kind
        if kind == "PNG":  # its chunks to the end (IEND) and their checksums: load() accepts a PNG cut short
            img.verify()
            img = Image.open(io.BytesIO(data))
        img.load()
    except UnidentifiedImageError:
        known = _format(data)  # an image format's first bytes, then nothing PIL can read: cut short or damaged
        raise BadMedia(f"truncated or corrupt {known}" if known in _IMAGES else f"not an image: {sniff(data)}") from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as e:
        truncated = isinstance(e, EOFError) or "truncat" in str(e).lower()
        raise BadMedia(f"truncated {kind}" if truncated else f"{kind} that cannot be decoded ({e})") from None
    return img


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
    return _mp3_frames(data)[0]


def check_mp3(data: bytes) -> int:
    """The duration of an MP3 that holds frames to its end; BadMedia when it holds none ("not an MP3")
    or its last frame is cut short ("truncated MP3")."""
    duration, frames, end = _mp3_frames(data)
    if frames == 0:
        raise BadMedia(f"not an MP3: {sniff(data)}")
    if end > len(data):
        raise BadMedia(f"truncated MP3: its last frame lacks {end - len(data)} bytes")
    return duration


def _mp3_frames(data: bytes) -> tuple[int, int, int]:
    """(duration in ms, number of frames, where the last frame ends) of an MP3's frames."""
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = data[6:10]
        pos = 10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3])
    samples = frames = end = 0
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
        frames += 1
        end = pos + max(length, 1)
        pos = end
    return round(samples * 1000 / sample_rate), frames, end


# What ffmpeg says about input it cannot read, most specific first.
_UNREADABLE = ((r"moov atom not found", "truncated {kind} (no moov atom: the MP4 is incomplete)"),
               (r"partial file|corrupt input packet|Invalid NAL|Header missing|truncat|Error splitting the input",
                "truncated or corrupt {kind}"),
               (r"matches no streams", "no {kind} stream in it ({sniff})"),
               (r"Invalid data found when processing input|Error opening input", "not {file}: {sniff}"))
_FILE = {"audio": "an audio file", "video": "a video file"}


def check_decodes(data: bytes, kind: str, timeout_s: float = 300) -> None:
    """That ``data`` is a ``kind`` ("audio" or "video") file ffmpeg decodes to its end without an error;
    BadMedia says what is wrong with it ("truncated MP3", "not a video file: text '<html>...'"). An MP3 is
    checked frame by frame too (ffmpeg decodes a cut MP3 without complaint)."""
    if not data:
        raise BadMedia("empty")
    if kind == "audio" and _format(data) == "MP3":
        check_mp3(data)
    if _format(data) in _IMAGES:  # ffmpeg reads a picture as a one-frame video
        raise BadMedia(f"not {_FILE[kind]}: {sniff(data)}")
    stream = "0:a:0" if kind == "audio" else "0:v:0"
    with scratch_dir("moviegen-check-") as tmp:
        with writing(Path(tmp, "in.media")):
            Path(tmp, "in.media").write_bytes(data)
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-xerror", "-i", "in.media",
               "-map", stream, "-f", "null", "-"]
        proc = processes.run(cmd, cwd=tmp, capture_output=True, timeout=timeout_s)
    if proc.returncode == 0:
        return
    stderr = proc.stderr.decode(errors="replace")
    if ran_out_of_space(proc.returncode, stderr):
        raise MediaDiskFull(Path(tmp), "ffmpeg", detail=stderr[-800:], quota=over_quota(stderr))
    if proc.returncode < 0:  # killed (memory, a signal): not the file's fault
        raise MediaError(f"ffmpeg was killed ({proc.returncode}) checking a {kind} file: {stderr[-800:]}")
    for pattern, why in _UNREADABLE:
        if re.search(pattern, stderr):
            raise BadMedia(why.format(kind=kind, file=_FILE[kind], sniff=sniff(data)))
    lines = [line for line in stderr.splitlines() if line.strip()]
    raise BadMedia(f"{_FILE[kind]} ffmpeg cannot decode ({lines[-1] if lines else f'exit {proc.returncode}'})")


def jpeg_preview(img: Image.Image, box: int = 160) -> bytes:
    """A small JPEG of a picture, for the Dagster UI."""
    small = img.convert("RGB")
    small.thumbnail((box, box))
    out = io.BytesIO()
    small.save(out, "JPEG", quality=60)
    return out.getvalue()


def fit_to_frame(png: bytes, width: int, height: int) -> bytes:
    """Centre-crop to the frame's aspect ratio and resize to its exact size (BadMedia: not a readable picture)."""
    img = read_image(png).convert("RGB")
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
