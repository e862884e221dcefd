"""The user's own media files: read (a local path) or fetched (an http(s) URL) within bounds, recognised by
their content (never their name), checked (dimensions, duration, decodes to its end) and fitted to the slot
they fill (a picture to the frame, a clip to the frame and the segment, audio to its length).

Every refusal is an ``OwnMediaError`` whose message says what the file is and what is allowed."""

from __future__ import annotations

import io
import ipaddress
import os
import re
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from resources.runtime import processes
from resources.runtime.disk import writing
from resources.runtime.media import (
    BadMedia,
    MediaError,
    check_decodes,
    ffmpeg_exe,
    fit_to_frame,
    mp3_duration_ms,
    read_image,
    run_ffmpeg,
    sniff,
)
from resources.runtime.scratch import scratch_dir

MAX_BYTES = 200_000_000  # a file of the user's: at most 200 MB
FETCH_TIMEOUT_S = 60.0  # a URL: the whole download within this time
PROBE_TIMEOUT_S = 60.0  # ffmpeg reading a file's header
DECODE_TIMEOUT_S = 180.0  # ffmpeg decoding a clip or a sound to its end
MIN_SIDE = 64  # pixels, of a picture or a clip
MAX_PICTURE_SIDE = 12_000
MAX_PICTURE_PIXELS = 100_000_000
MAX_CLIP_SIDE = 4096
# Longest file per slot (seconds): a clip is cut to its 10 s segment, narration to 10 s; a much longer file
# is more likely the wrong one than meant to be cut.
MAX_SECONDS = {"clip": 60, "narration": 60, "music": 900}
KINDS = {"picture": ("PNG", "JPEG", "WebP"), "clip": ("MP4", "WebM", "MOV"), "audio": ("WAV", "MP3", "OGG", "FLAC", "M4A")}
EXTS = {"PNG": "png", "JPEG": "jpg", "WebP": "webp", "MP4": "mp4", "WebM": "webm", "MOV": "mov", "WAV": "wav", "MP3": "mp3",
        "OGG": "ogg", "FLAC": "flac", "M4A": "m4a"}
NOUNS = {"picture": ("a picture", "pictures"), "clip": ("a clip", "clips"), "audio": ("a sound file", "sound files")}
CLIP_FPS = 25  # what a clip of the user's is made into (the offline and Replicate clips' rate)


class OwnMediaError(ValueError):
    """A file of the user's that cannot be used; the message names what it is and what is allowed."""


@dataclass(frozen=True)
class Facts:
    """What a file of the user's is: its format (by content), size in pixels and length."""

    format: str
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def read_local(path: str | Path, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a local file, reading at most ``limit`` + 1 of them; OwnMediaError when it is missing, a
    folder or not a regular file, unreadable, empty or larger than ``limit``."""
    shown = repr(str(path))[:200]
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(path)
            if not stat.S_ISREG(st.st_mode):
                raise OwnMediaError(f"{shown} is not a regular file (a device, a pipe or a socket); allowed: a picture, clip "
                                    "or sound file")
            if st.st_size > limit:
                raise OwnMediaError(f"{shown} is too large ({_mb(st.st_size)}); allowed: up to {_mb(limit)}")
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise OwnMediaError(f"{shown} does not exist") from None
    except IsADirectoryError:
        raise OwnMediaError(f"{shown} is a folder; allowed: a file") from None
    except OSError as e:
        raise OwnMediaError(f"{shown} cannot be read ({e.strerror or e})") from None
    if len(data) > limit:
        raise OwnMediaError(f"{shown} is too large (more than {_mb(limit)}); allowed: up to {_mb(limit)}")
    if not data:
        raise OwnMediaError(f"{shown} is empty (0 bytes)")
    return data


MAX_REDIRECTS = 5


def _public(url: httpx.URL) -> None:
    """OwnMediaError unless every address the URL's host has is a public one (a hosted service must not be
    made to fetch from its own machine or network: loopback, private, link-local, reserved addresses)."""
    host = url.host
    try:
        infos = socket.getaddrinfo(host, url.port or (443 if url.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except OSError as e:
        raise OwnMediaError(f"{str(url)[:200]!r}: its host cannot be resolved ({e.strerror or e})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise OwnMediaError(f"{str(url)[:200]!r}: its host {host} is at {address}, not a public address; allowed: a URL on "
                                "the internet")


def fetch(url: str, limit: int = MAX_BYTES, timeout_s: float = FETCH_TIMEOUT_S, public_only: bool = False) -> bytes:
    """The body of an http(s) URL (up to 5 redirects followed, to http(s) only), at most ``limit`` bytes, within
    ``timeout_s`` for the whole download; ``public_only``: every URL on the way must be at a public address (a
    hosted service). OwnMediaError naming the URL otherwise."""
    shown = repr(url)[:200]
    deadline = time.monotonic() + timeout_s
    try:
        with httpx.Client(timeout=min(timeout_s, 30.0), follow_redirects=False) as http:
            target = httpx.URL(url)
            for _ in range(MAX_REDIRECTS + 1):
                if target.scheme not in ("http", "https"):
                    raise OwnMediaError(f"{shown} redirects to a {target.scheme} URL; allowed: http(s) only")
                if public_only:
                    _public(target)
                with http.stream("GET", target) as answer:
                    if answer.is_redirect and "location" in answer.headers:
                        target = target.join(answer.headers["location"])
                        continue
                    return _body(answer, shown, limit, deadline, timeout_s)
            raise OwnMediaError(f"{shown} redirects more than {MAX_REDIRECTS} times; allowed: a URL that serves the file")
    except httpx.HTTPError as e:
        raise OwnMediaError(f"{shown} cannot be fetched ({type(e).__name__}: {str(e)[:200]})") from None


def _body(answer: httpx.Response, shown: str, limit: int, deadline: float, timeout_s: float) -> bytes:
    if answer.status_code != 200:
        raise OwnMediaError(f"{shown} answered HTTP {answer.status_code}; allowed: a URL that serves the file (200)")
    declared = answer.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise OwnMediaError(f"{shown} is too large ({_mb(int(declared))}); allowed: up to {_mb(limit)}")
    body = bytearray()
    for chunk in answer.iter_bytes(1 << 16):
        body += chunk
        if len(body) > limit:
            raise OwnMediaError(f"{shown} is too large (more than {_mb(limit)}); allowed: up to {_mb(limit)}")
        if time.monotonic() > deadline:
            raise OwnMediaError(f"{shown} took longer than {timeout_s:.0f} s to download; allowed: a file "
                                "that downloads within that time (or download it and give its path)")
    if not body:
        raise OwnMediaError(f"{shown} is empty (0 bytes)")
    return bytes(body)


def _iso_brand(data: bytes) -> str | None:
    """MP4, MOV or M4A by an ISO media file's ``ftyp`` brands (QuickTime files may lack ``ftyp``)."""
    if data[4:8] == b"ftyp":
        major = data[8:12]
        brands = {major} | {data[i:i + 4] for i in range(16, min(len(data), int.from_bytes(data[:4], "big")), 4)}
        if major == b"qt  ":
            return "MOV"
        if major in (b"M4A ", b"M4B ") or (b"M4A " in brands and major not in (b"isom", b"mp41", b"mp42")):
            return "M4A"
        return "MP4"
    if data[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip") and len(data) >= 8:
        return "MOV"
    return None


def format_of(data: bytes) -> str | None:
    """The format the content names (PNG, JPEG, WebP, MP4, MOV, M4A, WebM, WAV, MP3, OGG, FLAC), None for others."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "WAV"
    if data[:4] == b"OggS":
        return "OGG"
    if data[:4] == b"fLaC":
        return "FLAC"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "WebM" if b"webm" in data[:64] else None  # Matroska other than WebM: not offered
    if (brand := _iso_brand(data)) is not None:
        return brand
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and (data[1] >> 1) & 0x3 == 1):
        return "MP3"
    return None


def _what(data: bytes) -> str:
    found = format_of(data)
    return f"{'an' if found in ('MP4', 'MP3', 'MOV', 'M4A', 'OGG', 'FLAC') else 'a'} {found} file" if found else sniff(data)


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: .*?, (\d{2,5})x(\d{2,5})")


def probe(data: bytes, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[int | None, tuple[int, int] | None, bool]:
    """(duration in ms, the first video stream's size, whether it has an audio stream) as ffmpeg reads the
    file's header (imageio-ffmpeg ships ffmpeg without ffprobe; ``ffmpeg -i`` prints the same facts);
    BadMedia when ffmpeg cannot open it."""
    with scratch_dir("moviegen-probe-") as tmp:
        with writing(Path(tmp, "in.media")):
            Path(tmp, "in.media").write_bytes(data)
        try:
            proc = processes.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", "in.media"], cwd=tmp, capture_output=True,
                                 timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise BadMedia(f"ffmpeg took longer than {timeout_s:.0f} s to read its header") from None
    stderr = proc.stderr.decode(errors="replace")
    if "Invalid data found" in stderr or "moov atom not found" in stderr or "Input #0" not in stderr:
        why = "no moov atom: the file is incomplete" if "moov atom not found" in stderr else "ffmpeg cannot read it"
        raise BadMedia(f"truncated or corrupt ({why})")
    duration = _DURATION.search(stderr)
    ms = round((int(duration[1]) * 3600 + int(duration[2]) * 60 + float(duration[3])) * 1000) if duration else None
    video = _VIDEO.search(stderr)
    size = (int(video[1]), int(video[2])) if video else None
    return ms or None, size, bool(re.search(r"Stream #\S+.*?: Audio: ", stderr))


def inspect(data: bytes, kind: str, max_seconds: float | None = None) -> Facts:
    """Check that ``data`` is a usable ``kind`` ("picture", "clip", "audio") file: its format by content,
    its dimensions and length within bounds, and that it decodes to its end (a truncated file is refused).
    OwnMediaError says what it is and what is allowed."""
    if not data:
        raise OwnMediaError("it is empty (0 bytes)")
    if len(data) > MAX_BYTES:
        raise OwnMediaError(f"it is too large ({_mb(len(data))}); allowed: up to {_mb(MAX_BYTES)}")
    one, many = NOUNS[kind]
    allowed = f"allowed: {many} ({', '.join(KINDS[kind])})"
    found = format_of(data)
    if kind == "audio" and found in ("MP4", "MOV"):
        found = "M4A"  # the sound of an MP4 (checked below to have one)
    if found not in KINDS[kind]:
        raise OwnMediaError(f"it is {_what(data)}, not {one}; {allowed}")
    try:
        if kind == "picture":
            return _picture(data, found)
        return _timed(data, kind, found, max_seconds)
    except BadMedia as e:
        raise OwnMediaError(f"it is {_what(data)} that cannot be used: {e}; {allowed}, whole and readable") from None


def _picture(data: bytes, found: str) -> Facts:
    try:
        with Image.open(io.BytesIO(data)) as img:  # the header only: a huge picture is refused before decoding
            w, h = img.size
    except Exception:  # noqa: BLE001 - any header PIL cannot read
        raise BadMedia("its header cannot be read (truncated or corrupt)") from None
    _check_size(w, h, MAX_PICTURE_SIDE)
    if w * h > MAX_PICTURE_PIXELS:
        raise OwnMediaError(f"it is a {found} picture of {w}x{h} pixels; allowed: at most {MAX_PICTURE_PIXELS // 1_000_000} "
                            "million pixels")
    read_image(data)  # decodes it whole: BadMedia for a picture cut short
    return Facts(found, w, h)


def _check_size(w: int, h: int, most: int) -> None:
    if min(w, h) < MIN_SIDE or max(w, h) > most:
        raise OwnMediaError(f"it is {w}x{h} pixels; allowed: {MIN_SIDE} to {most} pixels on each side")


def _timed(data: bytes, kind: str, found: str, max_seconds: float | None) -> Facts:
    duration, size, audio = probe(data)
    if kind == "clip":
        if size is None:
            raise OwnMediaError(f"it is {_what(data)} without a video stream; allowed: a clip with video")
        _check_size(*size, MAX_CLIP_SIDE)
    elif not audio:
        raise OwnMediaError(f"it is {_what(data)} without an audio stream; allowed: a sound file")
    if duration is None:
        raise BadMedia("its length cannot be read")
    if max_seconds is not None and duration > max_seconds * 1000:
        raise OwnMediaError(f"it lasts {duration / 1000:.1f} s; allowed: at most {max_seconds:.0f} s for this slot")
    try:
        check_decodes(data, "video" if kind == "clip" else "audio", timeout_s=DECODE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise OwnMediaError(f"decoding it took longer than {DECODE_TIMEOUT_S:.0f} s; allowed: a smaller file") from None
    return Facts(found, size[0] if size else None, size[1] if size else None, duration)


# Fitting a checked file to its slot (the recipes call these in a local slot).

def picture_to_frame(data: bytes, width: int, height: int) -> bytes:
    """The picture centre-cropped to the frame's aspect ratio and scaled to its size, as PNG."""
    return fit_to_frame(data, width, height)


def clip_to_segment(data: bytes, width: int, height: int, seconds: int) -> bytes:
    """The clip scaled and centre-cropped to the frame, cut to ``seconds`` (a shorter one holds its last
    frame), at 25 fps, H.264 without sound (the segment's sound is its narration and the music)."""
    vf = (f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},setsar=1,"
          f"tpad=stop_mode=clone:stop_duration={seconds},fps={CLIP_FPS},format=yuv420p")
    return run_ffmpeg(["-i", "in.media", "-vf", vf, "-t", str(seconds), "-an", "-c:v", "libx264", "-preset", "veryfast",
                       "-crf", "23", "-movflags", "+faststart"], {"in.media": data}, "out.mp4")


def audio_to_length(data: bytes, seconds: int, pad: bool) -> tuple[bytes, int]:
    """The sound as MP3 (44.1 kHz), cut at ``seconds``; ``pad``: a shorter one is padded with silence to exactly
    ``seconds``, with a 2 s fade out (music). Returns the MP3 and its length in ms."""
    af = (f"apad,atrim=0:{seconds},afade=t=out:st={max(0, seconds - 2)}:d=2" if pad else f"atrim=0:{seconds}")
    out = run_ffmpeg(["-i", "in.media", "-vn", "-af", af, "-t", str(seconds), "-ar", "44100", "-codec:a", "libmp3lame",
                      "-b:a", "128k"], {"in.media": data}, "out.mp3")
    return out, mp3_duration_ms(out)


__all__ = ["EXTS", "KINDS", "MAX_BYTES", "MAX_SECONDS", "Facts", "MediaError", "OwnMediaError", "audio_to_length",
           "clip_to_segment", "fetch", "format_of", "inspect", "picture_to_frame", "probe", "read_local"]
