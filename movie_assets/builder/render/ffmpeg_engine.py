"""A fast timeline renderer: Pillow (and OpenCV for the Ken Burns resample) composes each frame,
ffmpeg (imageio-ffmpeg) encodes.

Frames are drawn in Python rather than in an ffmpeg filter graph because the timeline's semantics
(sub-pixel Ken Burns with edge clamping, transitions that start before a chunk, paged captions with a
highlighted word) map onto Pillow and OpenCV's affine warp exactly, while ffmpeg's fixed-function filters either jitter
(zoompan), cannot start a transition mid-way (xfade) or evaluate per pixel (geq, blend expressions).
Frames are composed directly as yuv420p planes and piped to ffmpeg, which runs libx264 in its own
threads (composing and encoding overlap) and decodes video and audio sources.

Chunks cover half-open frame ranges and are encoded with identical settings, each starting on a
keyframe, so `join` concatenates them by stream copy. The soundtrack is audio.py's (pieces of AAC).
Every ffmpeg child has its own temp folder, a deadline and its stderr in a file; outputs are written
to a temp name beside the target and renamed, so a failed or killed render leaves nothing at `out`.
"""

from __future__ import annotations

import functools
import math
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from .audio import SAMPLE_RATE, render_soundtrack
from .layout import clip_span as _span
from .layout import clips_for_chunk, segment_chunks
from .layout import timeline_fps as _fps
from .layout import total_frames as _total_frames
from .layout import transition_in as _transition
from .layout import visual_clips as _visuals
from .media import Ffmpeg, MediaResolver, RenderError, atomic_output, join, resolve
from .presets import Preset, output_size

# Bump when what this engine draws changes: it is part of the rendered chunks' code version, so every
# chunk is re-rendered with the new drawing (and none is reused from the build cache).
ENGINE_VERSION = "4"  # 2: output sizes from the aspect ratio (a 480p timeline at 2160p is 3840 wide, not 3844)
# 3: x264 subme=1 (X264_PARAMS); 4: Ken Burns frames resampled by OpenCV from pre-scaled levels

__all__ = ["SAMPLE_RATE", "render_soundtrack"]  # the soundtrack is audio.py's, for both engines
PLACEHOLDER_BG = (0x20, 0x21, 0x24)
PLACEHOLDER_FG = (0xBD, 0xC1, 0xC6)
CAPTION_FG = (255, 255, 255, 255)
CAPTION_HIGHLIGHT = (0xFF, 0xD5, 0x4A, 255)
CAPTION_BOX = (0, 0, 0, 150)  # ~60 % opaque


# --- subprocesses ---------------------------------------------------------------------------------


# --- visual layers --------------------------------------------------------------------------------
# Frames are composed as yuv420p planes (Pillow "L" images: Y at full size, Cb and Cr at half size,
# BT.709 limited range) and piped to ffmpeg as they are: resampling one byte per sample costs about
# 3/8 of resampling RGB (which Pillow stores as 4 bytes a pixel), and ffmpeg converts nothing.

Planes = tuple[Image.Image, Image.Image, Image.Image]
_KR, _KB = 0.2126, 0.0722  # BT.709


def _cover_box(pw: float, ph: float, w: int, h: int, scale: float, x: float, y: float) -> tuple[float, float, float, float]:
    """The picture region (pw x ph pixels) shown in a w x h frame: cover, zoom `scale` around the
    picture point (x, y) put at the frame centre, clamped so no edge shows."""
    cover = max(w / pw, h / ph)
    s = max(scale, 1.0)  # below 1 the frame would show past the picture's edges
    vw, vh = w / (cover * s), h / (cover * s)
    cx = min(max(x * pw, vw / 2), pw - vw / 2)
    cy = min(max(y * ph, vh / 2), ph - vh / 2)
    return cx - vw / 2, cy - vh / 2, cx + vw / 2, cy + vh / 2


def _yuv(rgb: np.ndarray, alpha: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(h, w, 3) uint8 RGB -> Y (h, w) and half-size Cb, Cr (2x2 averages, alpha-weighted when an
    alpha is given, which then comes back at half size too)."""
    a = rgb.astype(np.float32) / 255
    if a.shape[0] % 2 or a.shape[1] % 2:  # odd sizes: repeat the last row/column for the chroma blocks
        a = np.pad(a, ((0, a.shape[0] % 2), (0, a.shape[1] % 2), (0, 0)), mode="edge")
        if alpha is not None:
            alpha = np.pad(alpha, ((0, alpha.shape[0] % 2), (0, alpha.shape[1] % 2)), mode="edge")
    y = a @ np.array([_KR, 1 - _KR - _KB, _KB], dtype=np.float32)
    cb = (a[..., 2] - y) / (2 * (1 - _KB))
    cr = (a[..., 0] - y) / (2 * (1 - _KR))
    hh, hw = a.shape[0] // 2, a.shape[1] // 2
    quarter = lambda p: p.reshape(hh, 2, hw, 2).sum(axis=(1, 3))
    half_alpha = None
    if alpha is not None:
        wgt = alpha.astype(np.float32) / 255
        wsum = quarter(wgt)
        cb, cr = quarter(cb * wgt) / np.maximum(wsum, 1e-6), quarter(cr * wgt) / np.maximum(wsum, 1e-6)
        half_alpha = np.rint(wsum / 4 * 255).astype(np.uint8)
    else:
        cb, cr = quarter(cb) / 4, quarter(cr) / 4
    u8 = lambda p: np.clip(np.rint(p), 0, 255).astype(np.uint8)
    y8 = u8(16 + 219 * y)[: rgb.shape[0], : rgb.shape[1]]
    return y8, u8(128 + 224 * cb), u8(128 + 224 * cr), half_alpha


# RGB -> BT.709 limited-range Y'CbCr as Pillow's affine colour matrix (a C loop, ~10x numpy's speed).
_KG = 1 - _KR - _KB
_CB, _CR = 224 / 255 / (2 * (1 - _KB)), 224 / 255 / (2 * (1 - _KR))
_RGB_TO_YCC = (219 / 255 * _KR, 219 / 255 * _KG, 219 / 255 * _KB, 16.0,
               -_CB * _KR, -_CB * _KG, _CB * (1 - _KB), 128.0,
               _CR * (1 - _KR), -_CR * _KG, -_CR * _KB, 128.0)


def _planes(img: Image.Image) -> Planes:
    """A whole RGB picture as planes; chroma is the 2x2 average."""
    y, cb, cr = img.convert("RGB").convert("RGB", _RGB_TO_YCC).split()
    return y, cb.reduce(2), cr.reduce(2)


def _black(size: tuple[int, int]) -> Planes:
    w, h = size
    return Image.new("L", (w, h), 16), Image.new("L", (w // 2, h // 2), 128), Image.new("L", (w // 2, h // 2), 128)


def _resize(planes: Planes, size: tuple[int, int], box: tuple[float, float, float, float]) -> Planes:
    """Resample the luma box (float, sub-pixel) to size; chroma takes the same region at half scale."""
    w, h = size
    sw, sh = planes[0].size
    # Rounding can put the box 1e-13 past an edge, which Pillow refuses.
    box = (max(0.0, box[0]), max(0.0, box[1]), min(float(sw), box[2]), min(float(sh), box[3]))
    half = tuple(v / 2 for v in box)
    return (planes[0].resize(size, Image.Resampling.BILINEAR, box=box),
            planes[1].resize((w // 2, h // 2), Image.Resampling.BILINEAR, box=half),
            planes[2].resize((w // 2, h // 2), Image.Resampling.BILINEAR, box=half))


def _load_picture(path: Path, min_size: tuple[int, int]) -> Image.Image:
    img = Image.open(path)
    img.draft("RGB", min_size)  # JPEG: decode at a reduced size when that is still large enough
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent areas show the black background, as in the browser.
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba).convert("RGB")
    return img.convert("RGB")


class _Layer:
    """One visual clip; frame(f) draws it at timeline frame f (held at its ends outside the clip)."""

    shared = True  # frame() may return the same planes again: copy before drawing on them

    def __init__(self, clip: dict[str, Any], fps: Fraction):
        self.clip = clip
        self.start, self.end = _span(clip, fps)

    def frame(self, f: int) -> Planes:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Still(_Layer):
    def __init__(self, clip: dict[str, Any], fps: Fraction, planes: Planes):
        super().__init__(clip, fps)
        self.planes = planes

    def frame(self, f: int) -> Planes:
        return self.planes


# A Ken Burns frame resamples by at most this factor from the nearest pre-scaled level (mipmaps): a
# bilinear sample then needs no wider filter (no aliasing), and is about a tenth of the cost.
_LEVEL_STEP = 1.25


class _KenBurns(_Layer):
    """A picture moving (pan and zoom) between two framings. The picture is resized once (Lanczos) to the
    cover size, oversampled for the largest zoom as far as the picture has the detail, and to smaller
    levels 1.25x apart down to the smallest zoom; each frame is a bilinear resample (OpenCV's warpAffine,
    1/32 pixel positions) of a float box from the level just larger than the frame needs: sub-pixel
    smooth (no zoompan jitter), no aliasing. Oversampling past the picture's own resolution would only
    make every frame's resample larger for no sharper result."""

    shared = False

    def __init__(self, clip: dict[str, Any], fps: Fraction, path: Path, size: tuple[int, int]):
        super().__init__(clip, fps)
        eff = clip.get("effect") or {}
        self.a, self.b = eff.get("from") or {}, eff.get("to") or {}
        self.size = size
        w, h = size
        scales = [min(max(e.get("scale", 1.0), 1.0), 2.0) for e in (self.a, self.b)]
        zoom, least = max(scales), min(scales)
        pic = _load_picture(path, size)
        self.pw, self.ph = pic.size
        cover = max(w / self.pw, h / self.ph)
        top = cover * min(zoom, max(1.0, 1 / cover))
        # (level px per picture px in x and y, the level's planes), largest first.
        self.levels: list[tuple[float, float, tuple[np.ndarray, ...]]] = []
        k = top
        while True:
            pre_size = (max(2, round(self.pw * k)), max(2, round(self.ph * k)))
            pre = pic if pre_size == pic.size else pic.resize(pre_size, Image.Resampling.LANCZOS)
            self.levels.append((pre.width / self.pw, pre.height / self.ph, tuple(np.asarray(p) for p in _planes(pre))))
            if k / _LEVEL_STEP < cover * least * 0.999:
                break
            k /= _LEVEL_STEP

    def frame(self, f: int) -> Planes:
        t = min(max((f - self.start) / (self.end - self.start), 0.0), 1.0)
        lerp = lambda key, d: self.a.get(key, d) + (self.b.get(key, d) - self.a.get(key, d)) * t
        x0, y0, x1, y1 = _cover_box(self.pw, self.ph, *self.size, lerp("scale", 1.0), lerp("x", 0.5), lerp("y", 0.5))
        # The smallest level that still has a level pixel for every output pixel (the largest when none has).
        need = self.size[0] / (x1 - x0)  # output px per picture px
        kx, ky, planes = next((lv for lv in reversed(self.levels) if lv[0] >= need * 0.999), self.levels[0])
        return _warp(planes, self.size, (x0 * kx, y0 * ky, x1 * kx, y1 * ky))


def _warp(planes: tuple[np.ndarray, ...], size: tuple[int, int], box: tuple[float, float, float, float]) -> Planes:
    """The luma box (float, sub-pixel) resampled bilinearly to size; chroma takes the same region at half
    scale. Pixel centres sit at +0.5 (as in Pillow's box), which OpenCV counts from 0."""
    cv2 = _cv2()
    w, h = size
    out = []
    for n, plane in enumerate(planes):
        d = 2 if n else 1
        ow, oh = w // d, h // d
        bx0, by0, bx1, by1 = (v / d for v in box)
        sx, sy = (bx1 - bx0) / ow, (by1 - by0) / oh
        m = np.array([[sx, 0.0, bx0 + 0.5 * sx - 0.5], [0.0, sy, by0 + 0.5 * sy - 0.5]])
        out.append(Image.fromarray(cv2.warpAffine(plane, m, (ow, oh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                                  borderMode=cv2.BORDER_REPLICATE)))
    return out[0], out[1], out[2]


@functools.cache
def _cv2() -> Any:
    import cv2  # noqa: PLC0415 - OpenCV loads in ~0.1 s: only when a Ken Burns clip is drawn

    return cv2


class _Video(_Layer):
    """Frames decoded by an ffmpeg child at the timeline's fps, cover-cropped to the output size as
    yuv420p, streamed in order; past the source's (or the clip's) end the last frame is held."""

    def __init__(self, clip: dict[str, Any], fps: Fraction, path: Path, size: tuple[int, int],
                 first: int, last: int, timeout_s: float):
        super().__init__(clip, fps)
        self.path, self.size, self.fps, self.timeout_s = path, size, fps, timeout_s
        length = self.end - self.start
        self.first = min(max(first - self.start, 0), length - 1)  # local frame indices
        self.stop = min(max(last - self.start, 0), length - 1) + 1
        self.last: Planes | None = None
        self.dec: Ffmpeg | None = None
        self._open(self.first)

    def _open(self, start: int) -> None:
        w, h = self.size
        vf = (f"fps={self.fps},trim=start_frame={start}:end_frame={self.stop},"
              f"scale={w}:{h}:force_original_aspect_ratio=increase:out_color_matrix=bt709:out_range=tv,"
              f"crop={w}:{h},setsar=1,format=yuv420p")
        self.close()
        self.dec = Ffmpeg(f"decode {self.path.name}", self.timeout_s)
        self.next, self.eof = start, False
        try:
            self.dec.start(["-i", str(self.path), "-map", "0:v:0", "-an", "-sn", "-vf", vf, "-f", "rawvideo", "pipe:1"],
                           stdout=True)
        except BaseException:
            self.close()
            raise

    def frame(self, f: int) -> Planes:
        assert self.dec is not None
        local = min(max(f - self.start, 0), self.end - self.start - 1)
        w, h = self.size
        while not self.eof and self.next <= local:
            data = self.dec.read(w * h * 3 // 2)
            if len(data) < w * h * 3 // 2:
                self.eof = True
                self.dec.finish()  # a failed ffmpeg raises here; a source shorter than the clip just ends
                if self.last is None and self.next > 0:
                    # The chunk starts past the source's end: decode from the top for its last frame.
                    self._open(0)
                    local = self.stop
                continue
            self.last = (Image.frombytes("L", (w, h), data[: w * h]),
                         Image.frombytes("L", (w // 2, h // 2), data[w * h: w * h * 5 // 4]),
                         Image.frombytes("L", (w // 2, h // 2), data[w * h * 5 // 4:]))
            self.next += 1
        if self.last is None:
            raise RenderError(f"ffmpeg decode {self.path.name}: no video frames")
        return self.last

    def close(self) -> None:
        if self.dec is not None:
            self.dec.__exit__(None, None, None)
            self.dec = None


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font: the same glyphs on every machine, so chunks rendered anywhere match.
    return ImageFont.load_default(size=size)


def _wrap(words: list[str], font: Any, max_width: float) -> list[list[int]]:
    """Greedy line breaking; lines are lists of word indices."""
    lines: list[list[int]] = []
    for i in range(len(words)):
        if lines and font.getlength(" ".join(words[j] for j in [*lines[-1], i])) <= max_width:
            lines[-1].append(i)
        else:
            lines.append([i])
    return lines


def _placeholder(text: str, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size, PLACEHOLDER_BG)
    fs = max(8, round(0.05 * min(w, h)))
    font = _font(fs)
    words = text.split()
    lines = [" ".join(words[i] for i in line) for line in _wrap(words, font, 0.85 * w)]
    draw = ImageDraw.Draw(img)
    lh = 1.25 * fs
    top = h / 2 - lh * len(lines) / 2
    for k, line in enumerate(lines):
        draw.text((w / 2, top + lh * (k + 0.5)), line, font=font, fill=PLACEHOLDER_FG, anchor="mm")
    return img


class _Captions:
    """Caption overlays. Each state (caption, page, highlighted word) is drawn once with Pillow as an
    RGBA box, turned into Y/Cb/Cr planes with their alpha, and pasted on the frames where it is on."""

    def __init__(self, captions: list[dict[str, Any]], fps: Fraction, size: tuple[int, int]):
        self.fps, self.size = fps, size
        w, h = size
        self.fs = max(8, round(0.045 * min(w, h)))
        self.font = _font(self.fs)
        self.pad_x, self.pad_y, self.lh = round(0.5 * self.fs), round(0.3 * self.fs), round(1.25 * self.fs)
        max_text_w = 0.85 * w - 2 * self.pad_x
        self.items = []
        for cap in captions:
            start, end = _span(cap, fps)
            timed = cap.get("words") or []
            words = [str(wd["text"]).strip() for wd in timed] if timed else str(cap.get("text", "")).split()
            if not words or end <= start:
                continue
            lines = _wrap(words, self.font, max_text_w)
            pages = [lines[k:k + 2] for k in range(0, len(lines), 2)]  # at most 2 lines on screen
            firsts = [page[0][0] for page in pages]
            # A page starts with its first word (timed), or in proportion to its words (untimed).
            t0, dur = float(cap["startMs"]), float(cap["durationMs"])
            starts = [t0] + ([float(timed[i]["startMs"]) for i in firsts[1:]] if timed
                             else [t0 + dur * i / len(words) for i in firsts[1:]])
            self.items.append((start, end, words, timed, pages, starts))
        self.cache: dict[tuple[int, int, int], tuple[tuple[int, int], Planes, Image.Image, Image.Image]] = {}

    def _draw(self, k: int, page_no: int, hi: int) -> tuple[tuple[int, int], Planes, Image.Image, Image.Image]:
        words, page = self.items[k][2], self.items[k][4][page_no]
        font, space = self.font, self.font.getlength(" ")
        widths = [font.getlength(" ".join(words[i] for i in line)) for line in page]
        bw, bh = math.ceil(max(widths)) + 2 * self.pad_x, self.lh * len(page) + 2 * self.pad_y
        bw, bh = bw + bw % 2, bh + bh % 2  # even, like its position, so the chroma planes line up
        img = Image.new("RGBA", (bw, bh), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        draw.rounded_rectangle((0, 0, bw - 1, bh - 1), radius=round(0.35 * self.fs), fill=CAPTION_BOX)
        for n, (line, lw) in enumerate(zip(page, widths, strict=True)):
            x, y = (bw - lw) / 2, self.pad_y + self.lh * (n + 0.5)
            for i in line:  # word by word, so every highlight state has the same layout
                draw.text((x, y), words[i], font=font, anchor="lm", fill=CAPTION_HIGHLIGHT if i == hi else CAPTION_FG)
                x += font.getlength(words[i]) + space
        rgba = np.asarray(img)
        y8, cb, cr, half_alpha = _yuv(rgba[..., :3], rgba[..., 3])
        assert half_alpha is not None
        w, h = self.size
        pos = ((w - bw) // 2 // 2 * 2, (round(h - 0.06 * h) - bh) // 2 * 2)
        planes = (Image.fromarray(y8), Image.fromarray(cb), Image.fromarray(cr))
        return pos, planes, Image.fromarray(rgba[..., 3].copy()), Image.fromarray(half_alpha)

    def apply(self, planes: Planes, f: int, shared: bool) -> Planes:
        """Paste the captions on at frame f (copying `planes` first when a layer keeps them)."""
        t = float(f * 1000 / self.fps)  # ms at this frame
        for k, (start, end, _, timed, pages, starts) in enumerate(self.items):
            if not start <= f < end:
                continue
            page_no = max(p for p, s in enumerate(starts) if s <= t or p == 0)
            hi = next((i for i, wd in enumerate(timed) if wd["startMs"] <= t < wd["endMs"]), -1)
            if not any(hi in line for line in pages[page_no]):
                hi = -1
            if (k, page_no, hi) not in self.cache:
                self.cache[(k, page_no, hi)] = self._draw(k, page_no, hi)
            (x, y), cap, alpha, half_alpha = self.cache[(k, page_no, hi)]
            if shared:
                planes, shared = (planes[0].copy(), planes[1].copy(), planes[2].copy()), False
            planes[0].paste(cap[0], (x, y), alpha)
            planes[1].paste(cap[1], (x // 2, y // 2), half_alpha)
            planes[2].paste(cap[2], (x // 2, y // 2), half_alpha)
        return planes


def _compose(kind: str, p: float, prev: Planes, cur: Planes, black: Planes) -> Planes:
    """One frame of a transition at progress p in [0, 1): `cur` coming in over `prev`. Blends are
    linear, so doing them per Y/Cb/Cr plane equals doing them in RGB."""
    w, h = cur[0].size
    blend = lambda a, b, x: tuple(Image.blend(pa, pb, x) for pa, pb in zip(a, b, strict=True))
    if kind == "fade":  # through black: out over the first half, in over the second
        return blend(black, prev, 1 - 2 * p) if p < 0.5 else blend(black, cur, 2 * p - 1)
    if kind == "crossfade":
        return blend(prev, cur, p)
    if kind == "dissolve":  # the incoming clip's cells appear in noise order: a cell once its noise < p
        shown = dissolve_noise(w, h) < p
        masks = (Image.fromarray(shown.view(np.uint8) * 255), Image.fromarray(shown[::2, ::2].view(np.uint8) * 255))
        return tuple(Image.composite(c, q, masks[k > 0]) for k, (c, q) in enumerate(zip(cur, prev, strict=True)))  # type: ignore[return-value]
    if kind in ("wipe", "slide"):
        out = tuple(plane.copy() for plane in prev)
        edge = 2 * round(w * (p if kind == "wipe" else 1 - p) / 2)  # even: chroma has half the columns
        for k, (dst, src) in enumerate(zip(out, cur, strict=True)):
            e, cw = edge >> (k > 0), w >> (k > 0)
            if kind == "wipe" and e > 0:  # incoming revealed left to right
                dst.paste(src.crop((0, 0, e, src.height)), (0, 0))
            elif kind == "slide" and e < cw:  # incoming slides in from the right over the previous
                dst.paste(src.crop((0, 0, cw - e, src.height)), (e, 0))
        return out  # type: ignore[return-value]
    if kind == "zoom":  # incoming scales 1.3 -> 1.0 around the centre while fading in
        z = 1.3 - 0.3 * p
        vw, vh = w / z, h / z
        return blend(prev, _resize(cur, (w, h), ((w - vw) / 2, (h - vh) / 2, (w + vw) / 2, (h + vh) / 2)), p)
    return cur


def dissolve_cell(w: int, h: int) -> int:
    """The side of a dissolve's square cells in pixels: even (a cell covers whole chroma samples), about
    1/80 of the frame's short side (6 px at 480p, 12 px at 1080p, 26 px at 2160p)."""
    return max(2, 2 * (min(w, h) // 160))


def _cell_noise(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """A cell's noise in [0, 1): a 32-bit integer hash of its column and row (renderer/src/Movie.tsx
    computes the same with Math.imul, so both engines dissolve the same cells in the same order)."""
    with np.errstate(over="ignore"):
        h = (cx.astype(np.uint32) * np.uint32(0x8DA6B343)) ^ (cy.astype(np.uint32) * np.uint32(0xD8163841))
        h = (h ^ (h >> np.uint32(16))) * np.uint32(0x045D9F3B)
        h = (h ^ (h >> np.uint32(16))) * np.uint32(0x045D9F3B)
        h = h ^ (h >> np.uint32(16))
    return h.astype(np.float64) / 2**32


@functools.cache
def dissolve_noise(w: int, h: int) -> np.ndarray:
    """(h, w) noise of the pixels: each pixel its cell's (a dissolve shows the incoming picture where it is < p)."""
    cell = dissolve_cell(w, h)
    cx, cy = np.arange(w) // cell, np.arange(h) // cell
    noise = _cell_noise(cx[None, :], cy[:, None])
    noise.flags.writeable = False
    return noise


# x264 options on top of the preset's. subme=1 (one quarter-pixel SAD refinement instead of veryfast's
# two SATD ones): on the 30 s benchmark movie it costs 30 % less encoder CPU for the same quality
# (SSIM 0.9952 against the uncompressed frames either way, PSNR 42.6 dB, the file 3 % larger) --
# the pictures move slowly and evenly, so the finer motion search finds nothing better (docs/performance.md).
X264_PARAMS = "subme=1"


def _x264_args(preset: Preset, fps: Fraction) -> list[str]:
    """Identical for every chunk of a movie, so chunks concatenate by stream copy. Closed GOPs (x264's
    default) and a keyframe every 2 s; each chunk starts with an IDR frame anyway."""
    gop = max(1, round(2 * fps))
    if preset.video_kbps:  # a named quality: its bitrate (presets.py), as Remotion is given it
        rate = preset.video_rate_args()
        quality = ["-b:v", rate["bitrate"], "-maxrate", rate["maxrate"], "-bufsize", rate["bufsize"]]
    else:
        quality = ["-crf", str(preset.crf)]
    # setparams tags the frames BT.709 limited range (what the planes hold); the -colorspace family of
    # output options alone leaves primaries and transfer "unknown" in ffmpeg 9.
    return ["-vf", "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv",
            "-c:v", "libx264", "-preset", preset.x264_preset, "-x264-params", X264_PARAMS, *quality, "-profile:v", "high",
            "-pix_fmt", "yuv420p", "-g", str(gop), "-keyint_min", str(gop)]


def render_video_chunk(timeline: dict[str, Any], frames: tuple[int, int], media: MediaResolver, out: Path,
                       preset: Preset, *, timeout_s: float = 900, threads: int | None = None) -> None:
    """Encode frames [a, b) of the timeline (exactly b - a frames, no audio) to an H.264 MP4 at `out`.
    ``threads``: x264's threads (None: its own choice, from the cores; 1 holds one frame in the encoder
    instead of one per thread: the reduced retry of a chunk that ran out of memory). The stream is
    the same H.264 at the same settings either way, so the chunk still joins by stream copy."""
    a, b = frames
    total = _total_frames(timeline)
    if not 0 <= a < b <= total:
        raise ValueError(f"frames {frames} outside the timeline's 0..{total}")
    fps = _fps(timeline)
    size = output_size(timeline, preset)
    w, h = size
    visuals = _visuals(timeline)
    wanted = clips_for_chunk(timeline, frames)
    wanted_ids = {id(c) for c in wanted}
    black = _black(size)
    deadline = time.monotonic() + timeout_s

    layers: dict[int, _Layer] = {}
    try:
        for i, clip in enumerate(visuals):
            if id(clip) not in wanted_ids:
                continue
            kind = clip.get("type")
            if kind == "placeholder":
                layers[i] = _Still(clip, fps, _planes(_placeholder(str(clip.get("text", "")), size)))
            elif kind == "video":
                # Frames needed: the chunk's part of the clip, or its held last frame under the next
                # clip's transition.
                start = _span(clip, fps)[0]
                layers[i] = _Video(clip, fps, resolve(media, clip["src"]), size, max(a, start), b - 1, timeout_s)
            elif (clip.get("effect") or {}).get("type") == "ken_burns":
                layers[i] = _KenBurns(clip, fps, resolve(media, clip["src"]), size)
            else:  # `none`: cover, static
                still = _KenBurns({**clip, "effect": {}}, fps, resolve(media, clip["src"]), size)
                layers[i] = _Still(clip, fps, still.frame(still.start))
        captions = _Captions([c for c in wanted if c.get("type") == "caption"], fps, size)
        spans = [_span(c, fps) for c in visuals]
        transitions = [_transition(c, fps) for c in visuals]

        def draw(f: int) -> Planes:
            i = next((k for k, (s, e) in enumerate(spans) if s <= f < e), -1)
            layer = layers.get(i)
            if layer is None:
                return captions.apply(black, f, True)  # a gap in the timeline
            planes, shared = layer.frame(f), layer.shared
            kind, tf = transitions[i]
            if kind != "cut" and f < spans[i][0] + tf:
                prev = layers[i - 1].frame(f) if (i - 1) in layers else black
                planes, shared = _compose(kind, (f - spans[i][0]) / tf, prev, planes, black), False
            return captions.apply(planes, f, shared)

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RenderError(f"ffmpeg encode frames {a}-{b}: timed out after {timeout_s:g} s preparing the clips")
        with atomic_output(out) as part, Ffmpeg(f"encode frames {a}-{b}", remaining) as enc:
            enc.start(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s:v", f"{w}x{h}", "-framerate", str(fps),
                       "-i", "pipe:0", "-an", *_x264_args(preset, fps),
                       *(["-threads", str(threads)] if threads else []), "-frames:v", str(b - a),
                       "-f", "mp4", str(part)], stdin=True)
            for f in range(a, b):
                for plane in draw(f):  # yuv420p is the three planes one after the other
                    enc.write(plane.tobytes())
            enc.finish()
    finally:
        for layer in layers.values():
            layer.close()


# --- the whole movie in one piece (tests and comparisons; generations render through the graph) ---------


def render_movie(timeline: dict[str, Any], media: MediaResolver, out: Path, preset: Preset, *,
                 workdir: Path, jobs: int = 2) -> None:
    """All chunks (`jobs` at a time) and the soundtrack into `workdir`, then joined into `out`."""
    workdir.mkdir(parents=True, exist_ok=True)
    chunks = segment_chunks(timeline)
    paths = [workdir / f"chunk_{a:06d}_{b:06d}.mp4" for a, b in chunks]
    soundtrack = workdir / "soundtrack.m4a"
    # Two chunks at a time keep both cores busy across each chunk's set-up and encoder flush (Pillow's
    # resampling releases the GIL); the light soundtrack runs beside them.
    with ThreadPoolExecutor(1) as sound_pool, ThreadPoolExecutor(max(1, jobs)) as chunk_pool:
        futures = [sound_pool.submit(render_soundtrack, timeline, media, soundtrack, preset)]
        futures += [chunk_pool.submit(render_video_chunk, timeline, fr, media, p, preset) for fr, p in zip(chunks, paths, strict=True)]
        try:
            for fut in futures:
                fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()  # a failed chunk fails the movie: don't start the rest
            raise
    join(paths, soundtrack, out)
