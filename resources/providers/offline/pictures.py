"""The offline pictures: an illustrated explainer frame per shot, drawn with Pillow.

What a shot shows is read from its prompt (the shot without its look clause, and the descriptions of
the recurring characters and places it names): a map with a route, a timeline with the prompt's
dates, a bar chart, a cause-and-effect diagram, a town or city skyline, a crowd, a portrait, an
object in close-up, a landscape at a time of day. Which one, and its layout (sides, counts, sizes,
time of day, background), follow from the shot type, the prompt's words and a hash of the prompt, so
different shots differ visibly and the same shot is the same picture on every machine.

Colours come from the look's palette (every hex colour of its clause; the style's palette without a
look), spread from a near-black to a near-white so a dark or a pale palette keeps its contrast; an
approved reference picture of who or what the shot names tints the palette and decides the side the
subject stands on. No debug marks unless asked (``debug=True``: MOVIEGEN_DEBUG_OVERLAY). Text (a
title on maps, charts, timelines and diagrams, their labels) stays inside the area every Ken Burns
frame keeps and above the captions (``text_area``); each drawn text's box is recorded.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from movie_assets.domain.framing import intersection, ken_burns_safe_area, view_window
from movie_assets.domain.look import LOOK_MARK, shot_of
from resources.runtime.media import jpeg_preview

Colour = tuple[int, int, int]
Box = tuple[int, int, int, int]


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


# --- Reading the prompt -----------------------------------------------------------------------------
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


def shot_named(prompt: str) -> bool:
    """Whether the prompt names its shot type (rather than leaving it to be derived)."""
    shot = shot_of(prompt)
    return any(pattern.search(shot) for pattern, _ in _SHOT_PATTERNS)


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


def look_colours(prompt: str) -> list[Colour]:
    """Every hex colour of the prompt's look clause (its palette), in order."""
    _, _, clause = prompt.partition(LOOK_MARK)
    clause = clause.split("Recurring:", 1)[0]
    return [(int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)) for h in re.findall(r"#([0-9a-fA-F]{6})\b", clause)]


def _scene_text(prompt: str) -> str:
    """What the shot shows, in words: its subject, and the descriptions of the recurring characters and
    places it names (the look clause's ``Recurring:`` part; not its palette, lighting or camera)."""
    _, _, clause = prompt.partition(LOOK_MARK)
    recurring = clause.split("Recurring:", 1)[1] if "Recurring:" in clause else ""
    return f"{_subject(shot_of(prompt))} {recurring}"


_YEAR = re.compile(r"(?<![\d.])(1\d{3}|20\d{2})(?![\d.])")


def _years(prompt: str) -> list[str]:
    """The years a shot names (1000-2099), earliest first, each once."""
    return sorted(set(_YEAR.findall(_subject(shot_of(prompt)))))


def _year_labels(prompt: str) -> dict[str, str]:
    """Year -> the name its clause gives it ("Gettysburg in 1863" -> Gettysburg), where it has one."""
    out: dict[str, str] = {}
    for clause in re.split(r"[,;:()]|\band\b", _subject(shot_of(prompt))):
        names = [n for n in re.findall(r"\b[A-Z][\w'’-]+(?: [A-Z][\w'’-]+)*", clause) if n.lower() not in _STOP_WORDS]
        for year in _YEAR.findall(clause):
            if names and year not in out:
                out[year] = names[-1] if len(names) == 1 else names[0]
    return out


# Words that name the kind of graphic a shot asks for: not part of its title or labels.
_GRAPHIC_WORDS = re.compile(r"\b(?:(?:bar|line|pie) )?(?:charts?|graphs?|diagrams?|flowcharts?|infographics?|timelines?|maps?)"
                            r"(?: (?:of|showing|about))?\b", re.IGNORECASE)


def graphic_title(prompt: str) -> str:
    """The title a map, chart, timeline or diagram carries: the shot's key words, not the graphic's name."""
    return headline(_GRAPHIC_WORDS.sub(" ", shot_of(prompt)))


def _terms(prompt: str, n: int) -> list[str]:
    """Up to ``n`` short key words of a shot (names and nouns, in Title Case), for diagram labels."""
    words = re.findall(r"[^\W\d_][\w'’-]*", _GRAPHIC_WORDS.sub(" ", _subject(shot_of(prompt))))
    out: list[str] = []
    for word in words:
        low = word.lower()
        if low in _STOP_WORDS or len(word) < 4 or (len(word) > 5 and low.endswith(("ing", "ly"))) \
                or any(low == o.lower() for o in out):
            continue
        out.append(word[:1].upper() + word[1:])
        if len(out) == n:
            break
    return out


# --- Colours ----------------------------------------------------------------------------------------

# Each style's palette without a look: the offline look's (resources/providers/offline/text.py).
_STYLE_PALETTES = {
    "photorealistic": ["#2e4053", "#aaa08c", "#5b6b4a", "#ece6da"],
    "cinematic": ["#0c1426", "#d67836", "#1f4e5a", "#f2e8d5"],
    "illustration": ["#2196a0", "#fadc78", "#f07c5c", "#fbf5e6"],
    "watercolor": ["#78a0c8", "#f0e1d2", "#b07a8c", "#fdfaf4"],
    "anime": ["#5028a0", "#ff8cb4", "#3cb4dc", "#fff6fa"],
}


def _hex(value: str) -> Colour:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> Colour:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=False))[:3]  # type: ignore[return-value]


def _lum(c: Sequence[float]) -> float:
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]


def _sat(c: Sequence[float]) -> float:
    return colorsys.rgb_to_hsv(*(x / 255 for x in c[:3]))[1]


def _with_lum(c: Colour, target: float) -> Colour:
    """The colour moved toward black or white until its luminance is ``target`` (its hue kept)."""
    lum = _lum(c)
    if lum > target:
        return _mix(c, (0, 0, 0), 1 - target / max(lum, 1e-6))
    return _mix(c, (255, 255, 255), (target - lum) / max(255 - lum, 1e-6))


@dataclass(frozen=True)
class Palette:
    """The roles a picture's colours play: ink (darkest) < dark < mid < light < paper (lightest), and
    the accent (the palette's most saturated colour)."""

    ink: Colour
    dark: Colour
    mid: Colour
    light: Colour
    paper: Colour
    accent: Colour
    second: Colour  # another colour of the palette, for variety (a second series, a coat)


def _reference_colours(references: Sequence[bytes]) -> tuple[list[Colour], float]:
    """The dominant colours of the approved reference pictures and where their weight lies (0: left,
    1: right; the side of the frame their darker, busier half is on)."""
    colours: list[Colour] = []
    sides = []
    for data in references[:3]:
        img = Image.open(io.BytesIO(data)).convert("RGB")
        img.draft("RGB", (64, 64))
        small = img.resize((32, 18), Image.Resampling.BILINEAR)
        quant = small.quantize(4, method=Image.Quantize.MEDIANCUT)
        pal = quant.getpalette() or []
        counts = sorted(quant.getcolors() or [], reverse=True)
        colours += [(pal[3 * i], pal[3 * i + 1], pal[3 * i + 2]) for _, i in counts]
        grey = np.asarray(small.convert("L"), dtype=np.float32)
        weight = (255 - grey).sum(axis=0) + 1e-3
        sides.append(float((weight * np.linspace(0, 1, weight.size)).sum() / weight.sum()))
    return colours, (sum(sides) / len(sides) if sides else 0.5)


def make_palette(prompt: str, style: str, references: Sequence[bytes] = ()) -> tuple[Palette, float | None]:
    """The picture's palette, and the side its subject stands on when a reference decides it.

    Every colour of the look's palette is used (the style's without a look). The darkest becomes ink
    (luminance at most 32), the lightest paper (at least 222): an all-dark or all-pale palette keeps
    its contrast. A reference picture's dominant colours are mixed in (a third of the way)."""
    cols = look_colours(prompt) or [_hex(c) for c in _STYLE_PALETTES.get(style, _STYLE_PALETTES["cinematic"])]
    side = None
    if references:
        ref, side = _reference_colours(references)
        if ref:
            mean = tuple(sum(c[k] for c in ref) / len(ref) for k in range(3))
            cols = [_mix(c, mean, 0.33) for c in cols] + [max(ref, key=_sat)]
    by_lum = sorted(cols, key=_lum)
    ink = by_lum[0] if _lum(by_lum[0]) <= 32 else _with_lum(by_lum[0], 32)
    paper = by_lum[-1] if _lum(by_lum[-1]) >= 222 else _with_lum(by_lum[-1], 222)
    inner = by_lum[1:-1] or [_mix(ink, paper, 0.5)]
    accent = max(inner, key=lambda c: (_sat(c), _lum(c)))
    if abs(_lum(accent) - _lum(ink)) < 70:  # an accent that would vanish on the dark: lighter
        accent = _with_lum(accent, min(200.0, _lum(ink) + 90))
    rest = [c for c in inner if c != accent] or [_mix(accent, ink, 0.5)]
    second = max(rest, key=_sat)
    mid = _with_lum(_mix(rest[len(rest) // 2], accent, 0.25), 95)
    return Palette(ink=ink, dark=_with_lum(_mix(ink, mid, 0.5), 45), mid=mid, light=_with_lum(_mix(mid, paper, 0.6), 175),
                   paper=paper, accent=accent, second=second), side


# --- Where text may go --------------------------------------------------------------------------------

CAPTION_SAFE_TOP = 0.72  # of the height: below it, the movie's captions are drawn over the picture
CLIP_ZOOM = 1.15  # an offline clip's zoom (animate): from 1 to this, panning across the whole overhang


def clip_windows() -> list[tuple[float, float, float, float]]:
    """The views an offline clip's zoom and pan move between (they move linearly): at zoom 1 the whole
    picture, at ``CLIP_ZOOM`` panned to either side."""
    half = 0.5 / CLIP_ZOOM
    return [view_window(1.0, 0.5, 0.5), view_window(CLIP_ZOOM, half, 0.5), view_window(CLIP_ZOOM, 1 - half, 0.5)]


def text_area(width: int, height: int) -> Box:
    """Where a picture of ``width`` x ``height`` may carry text, in pixels: inside every Ken Burns frame
    of the movie's render and every frame of an offline clip, above the captions, 2 % in from that."""
    x0, y0, x1, y1 = intersection([ken_burns_safe_area(), *clip_windows()])
    y1 = min(y1, CAPTION_SAFE_TOP)
    m = 0.02 * min(width, height)
    return math.ceil(x0 * width + m), math.ceil(y0 * height + m), math.floor(x1 * width - m), math.floor(y1 * height - m)


# --- The painter --------------------------------------------------------------------------------------


@dataclass
class Picture:
    """A drawn picture: its PNG, preview JPEG, what it shows (``kind``), and every text drawn on it
    with its box in pixels (shadow included)."""

    png: bytes
    preview: bytes
    kind: str
    text_boxes: list[tuple[str, Box]] = field(default_factory=list)


class _Canvas:
    def __init__(self, w: int, h: int, rng: np.random.Generator, pal: Palette):
        self.w, self.h, self.u = w, h, min(w, h)
        self.rng, self.pal = rng, pal
        self.img = Image.new("RGB", (w, h), pal.paper)
        self.draw = ImageDraw.Draw(self.img, "RGBA")
        self.area = text_area(w, h)
        self.boxes: list[tuple[str, Box]] = []
        self.labels: list[tuple[Any, ...]] = []  # drawn after the scene is finished (crisp)

    def gradient(self, top: Colour, bottom: Colour, y0: float = 0, y1: float | None = None) -> None:
        """A vertical gradient from ``top`` to ``bottom`` over rows y0..y1 (one column, stretched)."""
        y1 = self.h if y1 is None else y1
        rows = max(1, int(y1) - int(y0))
        t = np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, None]
        column = np.array(top, np.float32) * (1 - t) + np.array(bottom, np.float32) * t
        band = Image.fromarray(column.clip(0, 255).astype(np.uint8)[:, None, :], "RGB").resize((self.w, rows), Image.Resampling.NEAREST)
        self.img.paste(band, (0, int(y0)))

    def label(self, xy: tuple[float, float], text: str, size: float, fill: Colour, anchor: str = "la", bold: bool = True,
              max_w: float | None = None, backing: Colour | None = None) -> None:
        """Text, kept inside the text area: shrunk (or cut) to fit its width, moved inside it."""
        self.labels.append((xy, text, size, fill, anchor, bold, max_w, backing))

    def _place_labels(self) -> None:
        ax0, ay0, ax1, ay1 = self.area
        for xy, text, size, fill, anchor, bold, max_w, backing in self.labels:
            width = min(max_w or ax1 - ax0, ax1 - ax0)
            font, text = _shrink(text, max(8, round(size)), width, bold)
            shadow = max(1, round(self.u / 400))
            pad = round(font.size * 0.35) if backing else 0
            x0, y0, x1, y1 = self.draw.textbbox(xy, text, font=font, anchor=anchor)
            x1, y1 = x1 + shadow, y1 + shadow
            dx = max(0.0, ax0 - (x0 - pad)) - max(0.0, (x1 + pad) - ax1)
            dy = max(0.0, ay0 - (y0 - pad)) - max(0.0, (y1 + pad) - ay1)
            pos = (xy[0] + dx, xy[1] + dy)
            if backing:
                self.draw.rounded_rectangle((x0 + dx - pad, y0 + dy - pad, x1 + dx + pad, y1 + dy + pad), radius=pad,
                                            fill=backing + (200,))
            dark_text = _lum(fill) < 128
            self.draw.text((pos[0] + shadow, pos[1] + shadow), text, font=font, anchor=anchor,
                           fill=(255, 255, 255, 90) if dark_text else (0, 0, 0, 120))
            self.draw.text(pos, text, font=font, anchor=anchor, fill=fill)
            b = self.draw.textbbox(pos, text, font=font, anchor=anchor)
            self.boxes.append((text, (math.floor(b[0]), math.floor(b[1]), math.ceil(b[2] + shadow), math.ceil(b[3] + shadow))))

    def title(self, text: str) -> None:
        """The frame's title, top left of the text area, on an accent rule."""
        ax0, ay0, ax1, _ = self.area
        size = self.h * 0.058
        bar = max(2, round(self.u * 0.008))
        self.draw.rectangle((ax0, ay0, ax0 + size * 1.6, ay0 + bar), fill=self.pal.accent)
        self.label((ax0, ay0 + bar * 2.5), text, size, self.pal.paper, max_w=(ax1 - ax0) * 0.8, backing=self.pal.ink)


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(0, len(options)))]


def _ridge(rng: np.random.Generator, width: int, base: float, amp: float, points: int = 40) -> list[tuple[float, float]]:
    xs = np.linspace(0, width, points)
    phase = rng.uniform(0, 2 * np.pi, 3)
    freq = rng.uniform(0.8, 1.6, 3) * np.array([1.0, 2.3, 5.1]) * 2 * np.pi / max(1, width)
    ys = base - amp * (0.6 * np.sin(freq[0] * xs + phase[0]) + 0.3 * np.sin(freq[1] * xs + phase[1]) + 0.1 * np.sin(freq[2] * xs + phase[2]))
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


_TIMES = ("day", "dusk", "dawn", "night", "overcast")
_TIME_WORDS = [("night", r"night|moon\w*|stars?|starry|midnight"), ("dawn", r"dawn|sunrise|morning|daybreak"),
               ("dusk", r"dusk|sunset|evening|twilight|golden hour"), ("overcast", r"rain|storm|fog|mist|snow|winter|grey|gray"),
               ("day", r"noon|midday|sunny|bright|summer|daylight")]


def _time_of_day(text: str, rng: np.random.Generator) -> str:
    for name, words in _TIME_WORDS:
        if re.search(rf"\b(?:{words})\b", text, re.IGNORECASE):
            return name
    return _pick(rng, _TIMES)


def _sky(c: _Canvas, time: str, horizon: float) -> Colour:
    """Sky from the top to ``horizon`` with its sun or moon; returns the colour at the horizon."""
    p, rng = c.pal, c.rng
    top, low = {
        "day": (_mix(p.mid, p.paper, 0.45), _mix(p.paper, p.accent, 0.12)),
        "dusk": (_mix(p.ink, p.mid, 0.35), _mix(p.accent, p.paper, 0.3)),
        "dawn": (_mix(p.mid, p.paper, 0.25), _mix(p.accent, p.paper, 0.6)),
        "night": (p.ink, _mix(p.mid, p.light, 0.6)),  # a moonlit glow at the horizon
        "overcast": (_mix(p.mid, p.light, 0.4), _mix(p.light, p.paper, 0.5)),
    }[time]
    c.gradient(top, low, 0, horizon)
    c.gradient(low, low, horizon, c.h)  # below the horizon until the ground covers it
    d, u = c.draw, c.u
    if time == "night":
        for _ in range(int(rng.integers(30, 60))):
            x, y, r = rng.uniform(0, c.w), rng.uniform(0, horizon * 0.8), u * rng.uniform(0.0015, 0.004)
            d.ellipse((x - r, y - r, x + r, y + r), fill=_mix(p.paper, p.light, 0.3) + (200,))
    if time != "overcast":
        sx, sy = c.w * rng.uniform(0.15, 0.85), horizon * rng.uniform(0.25, 0.7)
        r = u * rng.uniform(0.04, 0.08)
        glow = _mix(p.paper, p.accent, 0.35 if time != "night" else 0.05)
        for k in range(4):
            rr = r * (2.6 - 0.4 * k)
            d.ellipse((sx - rr, sy - rr, sx + rr, sy + rr), fill=glow + (16,))
        d.ellipse((sx - r, sy - r, sx + r, sy + r), fill=glow)
        if time == "night":  # a crescent: the sky bites the disc
            d.ellipse((sx - r * 0.55, sy - r * 1.15, sx + r * 1.45, sy + r * 0.85), fill=_mix(top, low, sy / max(1, horizon)))
    else:
        for _ in range(int(rng.integers(3, 6))):
            cx, cy, cw = c.w * rng.uniform(0, 1), horizon * rng.uniform(0.15, 0.6), u * rng.uniform(0.25, 0.5)
            for k in range(4):
                ox = cx + (k - 1.5) * cw * 0.22
                rr = cw * rng.uniform(0.12, 0.2)
                d.ellipse((ox - rr * 1.4, cy - rr, ox + rr * 1.4, cy + rr * 0.6), fill=_mix(p.light, p.paper, 0.5) + (120,))
    return low


def _hills(c: _Canvas, horizon: float, sky_low: Colour, layers: int = 3) -> None:
    """Ridges from the horizon down, each nearer one darker (atmospheric perspective)."""
    p = c.pal
    for k in range(layers):
        t = (k + 1) / layers
        colour = _mix(_mix(sky_low, p.mid, 0.55), p.ink, 0.85 * t)
        base = horizon + (c.h - horizon) * 0.28 * k
        c.draw.polygon(_ridge(c.rng, c.w, base, c.u * (0.06 - 0.012 * k)) + [(c.w, c.h), (0, c.h)], fill=colour)


def _mountains(c: _Canvas, horizon: float, sky_low: Colour) -> None:
    p, rng = c.pal, c.rng
    for k in range(int(rng.integers(3, 6))):
        px, ph = c.w * rng.uniform(-0.05, 1.05), c.u * rng.uniform(0.2, 0.45)
        pw = ph * rng.uniform(0.9, 1.5)
        rock = _mix(_mix(sky_low, p.mid, 0.5), p.dark, 0.3 + 0.1 * (k % 3))
        c.draw.polygon([(px - pw, horizon + 2), (px, horizon - ph), (px + pw, horizon + 2)], fill=rock)
        c.draw.polygon([(px - pw * 0.24, horizon - ph * 0.76), (px, horizon - ph), (px + pw * 0.24, horizon - ph * 0.76),
                        (px + pw * 0.08, horizon - ph * 0.7), (px - pw * 0.06, horizon - ph * 0.8)], fill=_mix(p.paper, sky_low, 0.15))


def _tree(c: _Canvas, x: float, ground: float, height: float, colour: Colour, kind: int) -> None:
    d = c.draw
    d.rectangle((x - height * 0.035, ground - height * 0.45, x + height * 0.035, ground), fill=colour)
    if kind == 0:  # broadleaf: overlapping discs
        for ox, oy, rr in ((0, 0.7, 0.3), (-0.2, 0.58, 0.22), (0.2, 0.6, 0.22), (0, 0.85, 0.2)):
            d.ellipse((x + ox * height - rr * height, ground - oy * height - rr * height,
                       x + ox * height + rr * height, ground - oy * height + rr * height), fill=colour)
    else:  # conifer: stacked triangles
        for j in range(3):
            tw, ty = height * (0.3 - 0.07 * j), ground - height * (0.3 + 0.22 * j)
            d.polygon([(x - tw, ty), (x, ty - height * 0.4), (x + tw, ty)], fill=colour)


def _figure(c: _Canvas, x: float, ground: float, height: float, colour: Colour, variant: int, coat: Colour | None = None) -> None:
    """A standing person, ``height`` tall, feet at ``ground``: head, torso, arms, legs; a hat, a long
    coat or a dress by ``variant``."""
    d, hh = c.draw, height
    head = hh * 0.075
    cy = ground - hh + head
    d.ellipse((x - head, cy - head, x + head, cy + head), fill=colour)
    sh = hh * 0.13  # half the shoulders' width
    top, waist = cy + head * 1.2, ground - hh * 0.47
    body = coat or colour
    d.polygon([(x - sh, top), (x + sh, top), (x + sh * 0.78, waist), (x - sh * 0.78, waist)], fill=body)
    d.polygon([(x - sh, top), (x - sh * 1.2, waist + hh * 0.05), (x - sh * 0.95, waist + hh * 0.07), (x - sh * 0.72, top + hh * 0.08)], fill=body)
    d.polygon([(x + sh, top), (x + sh * 1.2, waist + hh * 0.05), (x + sh * 0.95, waist + hh * 0.07), (x + sh * 0.72, top + hh * 0.08)], fill=body)
    if variant % 3 == 1:  # a long coat or a dress down to the ankles
        d.polygon([(x - sh * 0.78, waist), (x + sh * 0.78, waist), (x + sh * 1.1, ground - hh * 0.06), (x - sh * 1.1, ground - hh * 0.06)], fill=body)
    d.rectangle((x - sh * 0.7, waist, x - sh * 0.12, ground), fill=colour)
    d.rectangle((x + sh * 0.12, waist, x + sh * 0.7, ground), fill=colour)
    if variant % 4 == 2:  # a hat
        d.rectangle((x - head * 1.6, cy - head * 0.75, x + head * 1.6, cy - head * 0.5), fill=colour)
        d.rectangle((x - head * 0.9, cy - head * 1.6, x + head * 0.9, cy - head * 0.6), fill=colour)


def _buildings(c: _Canvas, x0: float, x1: float, ground: float, tallest: float, colour: Colour, lit: Colour | None,
               dome: bool = False) -> None:
    """A row of buildings from x0 to x1 standing on ``ground``: roofs, some gables, lit windows."""
    rng, d = c.rng, c.draw
    x = x0
    dome_at = rng.uniform(x0 + (x1 - x0) * 0.3, x0 + (x1 - x0) * 0.7) if dome else None
    while x < x1:
        bw = (x1 - x0) * rng.uniform(0.05, 0.11)
        bh = tallest * rng.uniform(0.35, 1.0)
        if dome_at is not None and x <= dome_at < x + bw * 2.5:
            dw = max(bw * 2.4, tallest * 0.5)
            d.rectangle((x, ground - tallest * 0.55, x + dw, ground), fill=colour)
            for k in range(7):
                cx = x + dw * (k + 0.5) / 7
                d.rectangle((cx - dw * 0.02, ground - tallest * 0.52, cx + dw * 0.02, ground - tallest * 0.08), fill=c.pal.light + (90,))
            d.rectangle((x + dw * 0.3, ground - tallest * 0.75, x + dw * 0.7, ground - tallest * 0.55), fill=colour)
            d.chord((x + dw * 0.28, ground - tallest * 1.0, x + dw * 0.72, ground - tallest * 0.5), 180, 360, fill=colour)
            d.rectangle((x + dw * 0.49, ground - tallest * 1.12, x + dw * 0.51, ground - tallest * 0.95), fill=colour)
            x += dw
            dome_at = None
            continue
        d.rectangle((x, ground - bh, x + bw, ground), fill=colour)
        roll = rng.random()
        if roll < 0.3:
            d.polygon([(x - bw * 0.05, ground - bh), (x + bw / 2, ground - bh - bw * 0.45), (x + bw * 1.05, ground - bh)], fill=colour)
        elif roll < 0.4:
            d.rectangle((x + bw * 0.4, ground - bh - bw * 0.6, x + bw * 0.6, ground - bh), fill=colour)
        if lit is not None:
            rows, cols = max(1, int(bh / (bw * 0.45))), 2 if bw > 10 else 1
            for r in range(min(rows, 8)):
                for k in range(cols):
                    if rng.random() < 0.45:
                        wx = x + bw * (0.2 + 0.4 * k)
                        wy = ground - bh + bw * 0.2 + r * bw * 0.45
                        d.rectangle((wx, wy, wx + bw * 0.2, wy + bw * 0.22), fill=lit)
        x += bw * rng.uniform(0.92, 1.04)


# --- Scenes -------------------------------------------------------------------------------------------


def _landscape(c: _Canvas, time: str, text: str, side: float) -> None:
    rng, p = c.rng, c.pal
    horizon = c.h * rng.uniform(0.5, 0.66)
    low = _sky(c, time, horizon)
    if re.search(r"\b(?:mountains?|hills?|volcano\w*|peaks?|alps|canyon|valley)\b", text, re.IGNORECASE) or rng.random() < 0.35:
        _mountains(c, horizon, low)
    _hills(c, horizon, low, 2)
    if re.search(r"\b(?:rivers?|lakes?|seas?|ocean|coast|harbou?r|water|bay|shore)\b", text, re.IGNORECASE) or rng.random() < 0.3:
        pts_l, pts_r = [], []
        for k in range(12):
            t = k / 11
            y = horizon + (c.h - horizon) * t
            cx = c.w * (0.5 + 0.25 * math.sin(t * 3 + side * 5)) + (side - 0.5) * c.w * 0.2 * (1 - t)
            half = c.w * (0.01 + 0.12 * t * t)
            pts_l.append((cx - half, y))
            pts_r.append((cx + half, y))
        c.draw.polygon(pts_l + pts_r[::-1], fill=_mix(low, p.mid, 0.35))
        c.draw.line(pts_l, fill=_mix(p.paper, low, 0.3) + (120,), width=max(1, c.u // 300))
    tree_kind = int(rng.integers(0, 2))
    for _ in range(int(rng.integers(4, 10))):
        x = c.w * rng.uniform(0, 1)
        y = horizon + (c.h - horizon) * rng.uniform(0.1, 0.5)
        _tree(c, x, y, c.u * rng.uniform(0.08, 0.16) * (1 + (y - horizon) / c.h), _mix(p.ink, p.dark, 0.4), tree_kind)
    x = c.w * (0.25 + 0.5 * side)
    _tree(c, x, c.h * 0.98, c.u * rng.uniform(0.45, 0.6), p.ink, tree_kind)


def _city(c: _Canvas, time: str, text: str, side: float) -> None:
    rng, p = c.rng, c.pal
    horizon = c.h * rng.uniform(0.58, 0.68)
    low = _sky(c, time, horizon)
    lit = _mix(p.accent, p.paper, 0.4) + (220,) if time in ("dusk", "night", "dawn") else None
    dome = bool(re.search(r"\b(?:nation\w*|government|capitol|congress|parliament|union|state|capital|law)\b", text, re.IGNORECASE))
    _buildings(c, -c.w * 0.05, c.w * 1.05, horizon + c.u * 0.02, c.u * 0.32, _mix(low, p.dark, 0.45), None, dome=dome)
    if re.search(r"\b(?:square|crossroads?|well|oak|village|town|cobble\w*)\b", text, re.IGNORECASE):
        ground = horizon + c.u * 0.02
        c.gradient(_mix(p.dark, p.mid, 0.4), _mix(p.mid, p.light, 0.3), ground, c.h)
        for k in range(10):  # cobblestones: rows of flat ellipses growing toward the viewer
            y = ground + (c.h - ground) * (k / 10) ** 1.4
            step = c.w * (0.02 + 0.05 * k / 10)
            for x in np.arange(-(k % 2) * step / 2, c.w, step):
                c.draw.ellipse((x, y, x + step * 0.85, y + step * 0.25), outline=_mix(p.dark, p.mid, 0.3) + (110,), width=1)
        _buildings(c, -c.w * 0.05, c.w * 1.05, ground + c.u * 0.04, c.u * 0.22, _mix(p.dark, p.accent, 0.25), lit)
        wx = c.w * (0.3 + 0.4 * side)
        ww, wy = c.u * 0.12, c.h * 0.83
        c.draw.rectangle((wx - ww, wy - ww * 0.7, wx + ww, wy + ww * 0.2), fill=_mix(p.mid, p.light, 0.3))
        c.draw.ellipse((wx - ww, wy - ww * 0.9, wx + ww, wy - ww * 0.5), fill=_mix(p.mid, p.ink, 0.4))
        for k in range(5):
            bx = wx - ww + k * ww / 2.5
            c.draw.line((bx, wy - ww * 0.65, bx, wy + ww * 0.15), fill=_mix(p.dark, p.mid, 0.3), width=max(1, c.u // 250))
        tx = c.w * (0.8 - 0.6 * side)
        _tree(c, tx, c.h * 0.9, c.u * 0.6, _mix(p.ink, p.second, 0.25), 0)
    else:
        ground = c.h * 0.82
        _buildings(c, -c.w * 0.05, c.w * 1.05, ground, c.u * 0.55, _mix(p.ink, p.dark, 0.3), lit)
        c.draw.rectangle((0, ground, c.w, c.h), fill=p.ink)
        for k in range(8):  # a street: lamps along the front
            x = c.w * (k + 0.5) / 8
            c.draw.line((x, ground, x, ground - c.u * 0.12), fill=p.ink, width=max(1, c.u // 200))
            c.draw.ellipse((x - c.u * 0.01, ground - c.u * 0.135, x + c.u * 0.01, ground - c.u * 0.115),
                           fill=_mix(p.accent, p.paper, 0.5) if lit else p.ink)


def _crowd(c: _Canvas, time: str, text: str, side: float) -> None:
    """People: a crowd facing the viewer, a procession along a road, or an audience before a speaker."""
    layout = int(c.rng.integers(0, 3))
    if re.search(r"\b(?:march\w*|soldiers?|troops|army|armies|journey|migrat\w*|refugees?|walk\w*|road)\b", text, re.IGNORECASE):
        layout = 1
    elif re.search(r"\b(?:speech\w*|speakers?|address|debate\w*|votes?|voters?|election\w*|rally|congress|nation|government)\b",
                   text, re.IGNORECASE):
        layout = 2
    if layout == 1:
        _procession(c, time, text, side)
    elif layout == 2:
        _audience(c, time, text, side)
    else:
        _gathering(c, time, text, side)


def _procession(c: _Canvas, time: str, text: str, side: float) -> None:
    """A line of people walking a road from the distance toward the viewer, a banner ahead."""
    rng, p = c.rng, c.pal
    horizon = c.h * rng.uniform(0.38, 0.5)
    low = _sky(c, time, horizon)
    _hills(c, horizon, low, 3)
    far_x, near_x = c.w * (0.2 + 0.6 * (1 - side)), c.w * (0.2 + 0.6 * side)
    road = _mix(low, p.light, 0.3)
    c.draw.polygon([(far_x - c.w * 0.01, horizon + 2), (far_x + c.w * 0.01, horizon + 2), (near_x + c.w * 0.22, c.h),
                    (near_x - c.w * 0.22, c.h)], fill=road)
    n = int(rng.integers(9, 15))
    for k in range(n):
        t = (k + 1) / (n + 1)
        y = horizon + (c.h - horizon) * t ** 1.6 + c.h * 0.05
        x = far_x + (near_x - far_x) * t ** 1.6 + rng.uniform(-0.06, 0.06) * c.w * t
        height = c.u * (0.05 + 0.55 * t ** 1.6)
        colour = _mix(_mix(low, p.mid, 0.4), p.ink, 0.3 + 0.7 * t)
        _figure(c, x, y, height, colour, int(rng.integers(0, 12)), _mix(colour, p.second, 0.3) if t > 0.7 else None)
        if k == n // 3:
            c.draw.line((x + height * 0.15, y - height * 0.5, x + height * 0.15, y - height * 1.6), fill=colour, width=max(1, round(height * 0.02)))
            c.draw.rectangle((x + height * 0.15, y - height * 1.6, x + height * 0.7, y - height * 1.25), fill=p.accent)
    for _ in range(int(rng.integers(2, 5))):
        x = c.w * rng.uniform(0, 1)
        if abs(x - near_x) > c.w * 0.25:
            _tree(c, x, horizon + (c.h - horizon) * rng.uniform(0.05, 0.3), c.u * rng.uniform(0.1, 0.2), _mix(p.ink, p.dark, 0.5), 1)


def _audience(c: _Canvas, time: str, text: str, side: float) -> None:
    """A speaker on a platform under bunting, the audience seen from behind in the foreground."""
    rng, p = c.rng, c.pal
    horizon = c.h * rng.uniform(0.55, 0.65)
    low = _sky(c, time, horizon)
    _buildings(c, -c.w * 0.05, c.w * 1.05, horizon, c.u * 0.3, _mix(low, p.dark, 0.45), None,
               dome=bool(re.search(r"\b(?:nation\w*|government|union|state|capitol)\b", text, re.IGNORECASE)))
    c.draw.rectangle((0, horizon, c.w, c.h), fill=_mix(p.dark, p.mid, 0.3))
    px = c.w * (0.3 + 0.4 * side)
    pw, top = c.u * 0.5, c.h * 0.55
    c.draw.rectangle((px - pw / 2, top, px + pw / 2, c.h * 0.72), fill=_mix(p.second, p.ink, 0.35))
    for k in range(5):  # bunting in the palette's colours
        x0 = px - pw / 2 + k * pw / 5
        c.draw.polygon([(x0, top), (x0 + pw / 5, top), (x0 + pw / 10, top + c.u * 0.05)], fill=_pick(rng, [p.accent, p.paper, p.second]))
    _figure(c, px, top, c.u * 0.3, p.ink, 2, _mix(p.ink, p.second, 0.3))
    c.draw.rectangle((px - c.u * 0.05, top - c.u * 0.12, px + c.u * 0.05, top), fill=_mix(p.second, p.ink, 0.6))  # the lectern
    for r in range(3):  # heads and shoulders from behind, rows nearer and larger
        t = r / 2
        size = c.u * (0.06 + 0.07 * t)
        y = c.h * (0.78 + 0.1 * t)
        colour = _mix(p.dark, p.ink, 0.4 + 0.6 * t)
        x = -rng.uniform(0, size * 2)
        while x < c.w + size:
            c.draw.rounded_rectangle((x - size * 1.1, y, x + size * 1.1, y + size * 2.5), radius=size * 0.6, fill=colour)
            c.draw.ellipse((x - size * 0.55, y - size * 1.0, x + size * 0.55, y + size * 0.2), fill=colour)
            x += size * rng.uniform(2.0, 2.6)


def _gathering(c: _Canvas, time: str, text: str, side: float) -> None:
    """A crowd facing the viewer, in rows, some holding flags."""
    rng, p = c.rng, c.pal
    horizon = c.h * rng.uniform(0.45, 0.6)
    low = _sky(c, time, horizon)
    if rng.random() < 0.5:
        _buildings(c, -c.w * 0.05, c.w * 1.05, horizon + c.u * 0.03, c.u * 0.25, _mix(low, p.dark, 0.4), None)
    _hills(c, horizon, low, 2)
    flags = rng.random() < 0.6 or bool(re.search(r"\b(?:soldiers?|army|troops|march\w*|flags?|protest\w*|rally)\b", text, re.IGNORECASE))
    rows = int(rng.integers(3, 5))
    centre = c.w * (0.3 + 0.4 * side)
    for r in range(rows):
        t = r / max(1, rows - 1)
        ground = horizon + (c.h - horizon) * (0.2 + 0.75 * t)
        height = c.u * (0.18 + 0.45 * t)
        colour = _mix(_mix(low, p.mid, 0.5), p.ink, 0.35 + 0.65 * t)
        coat = _mix(colour, p.second, 0.25) if r == rows - 1 else None
        n = int(rng.integers(5, 9)) if r < rows - 1 else int(rng.integers(3, 6))
        spread = c.w * (0.9 - 0.2 * t)
        for k in range(n):
            x = centre + (k - (n - 1) / 2) * spread / n + rng.uniform(-0.2, 0.2) * spread / n
            _figure(c, x, ground + rng.uniform(0, 0.03) * height, height * rng.uniform(0.9, 1.05), colour, int(rng.integers(0, 12)), coat)
            if flags and r == rows - 2 and k % 3 == 1:
                c.draw.line((x + height * 0.14, ground - height * 0.5, x + height * 0.14, ground - height * 1.5), fill=colour,
                            width=max(1, round(height * 0.015)))
                c.draw.polygon([(x + height * 0.14, ground - height * 1.5), (x + height * 0.5, ground - height * 1.42),
                                (x + height * 0.14, ground - height * 1.3)], fill=_pick(rng, [p.accent, p.second, p.paper]))


def _portrait(c: _Canvas, time: str, text: str, side: float) -> None:
    rng, p = c.rng, c.pal
    bg = rng.integers(0, 3)
    if bg == 0:  # a window behind: light through its panes
        c.gradient(_mix(p.dark, p.ink, 0.3), _mix(p.dark, p.mid, 0.4))
        wx = c.w * (0.75 - 0.5 * side)
        ww, wh = c.u * 0.42, c.u * 0.62
        c.draw.rectangle((wx - ww / 2, c.h * 0.1, wx + ww / 2, c.h * 0.1 + wh), fill=_mix(p.light, p.accent, 0.25))
        c.draw.line((wx, c.h * 0.1, wx, c.h * 0.1 + wh), fill=p.dark, width=max(2, c.u // 60))
        c.draw.line((wx - ww / 2, c.h * 0.1 + wh * 0.45, wx + ww / 2, c.h * 0.1 + wh * 0.45), fill=p.dark, width=max(2, c.u // 60))
    elif bg == 1:  # a soft outdoor blur: discs of light
        _sky(c, time, c.h)
        for _ in range(14):
            x, y, r = c.w * rng.uniform(0, 1), c.h * rng.uniform(0, 0.8), c.u * rng.uniform(0.03, 0.09)
            c.draw.ellipse((x - r, y - r, x + r, y + r), fill=_mix(p.paper, p.accent, rng.uniform(0, 0.7)) + (40,))
    else:  # a studio backdrop with a halo
        c.gradient(_mix(p.mid, p.ink, 0.4), p.ink)
        hx, hy, hr = c.w * (0.3 + 0.4 * side), c.h * 0.45, c.u * 0.45
        for k in range(5):
            r = hr * (1 - 0.15 * k)
            c.draw.ellipse((hx - r, hy - r, hx + r, hy + r), fill=_mix(p.accent, p.paper, 0.2) + (22,))
    x = c.w * (0.3 + 0.4 * side)
    s = c.u * rng.uniform(0.5, 0.62)
    coat = _colour_word(text) or _mix(p.second, p.ink, 0.35)
    rim = _mix(p.accent, p.paper, 0.35)
    face = rng.choice([-1, 1])
    for colour, off in ((rim, c.u * 0.008 * face), (p.ink, 0.0)):  # a rim of light, then the silhouette
        c.draw.rounded_rectangle((x - s * 0.62 + off, c.h - s * 0.5, x + s * 0.62 + off, c.h + s * 0.4), radius=s * 0.3,
                                 fill=colour if off else coat)
        c.draw.rectangle((x - s * 0.1 + off, c.h - s * 0.72, x + s * 0.1 + off, c.h - s * 0.45), fill=colour)
        c.draw.ellipse((x - s * 0.22 + off, c.h - s * 1.2, x + s * 0.22 + off, c.h - s * 0.62), fill=colour)
        c.draw.polygon([(x + face * s * 0.2 + off, c.h - s * 0.95), (x + face * s * 0.28 + off, c.h - s * 0.86),
                        (x + face * s * 0.2 + off, c.h - s * 0.82)], fill=colour)  # the nose: a profile, facing the light
    c.draw.chord((x - s * 0.25, c.h - s * 1.25, x + s * 0.25, c.h - s * 0.8), 180, 360, fill=_mix(p.ink, p.dark, 0.5))  # hair
    c.draw.polygon([(x - s * 0.2, c.h - s * 0.5), (x, c.h - s * 0.3), (x + s * 0.2, c.h - s * 0.5)], fill=p.ink)  # collar


_COLOUR_WORDS = {"ochre": (204, 119, 34), "red": (170, 40, 40), "blue": (40, 70, 150), "grey": (110, 110, 115),
                 "gray": (110, 110, 115), "green": (50, 110, 60), "brown": (110, 70, 40), "black": (25, 25, 28),
                 "white": (230, 230, 225), "gold": (200, 160, 60), "yellow": (220, 190, 60), "navy": (25, 35, 80)}


def _colour_word(text: str) -> Colour | None:
    """The colour of a coat, cloak or dress the description names (``a weathered ochre coat``)."""
    m = re.search(rf"\b({'|'.join(_COLOUR_WORDS)})\b(?:\s+\w+)?\s+(?:coat|cloak|dress|jacket|uniform|shirt)", text, re.IGNORECASE)
    return _COLOUR_WORDS[m.group(1).lower()] if m else None


def _object(c: _Canvas, time: str, text: str, side: float) -> None:
    """A still life: the object the shot names (a watch, books, a letter, a candle, a globe) on a table."""
    rng, p = c.rng, c.pal
    c.gradient(_mix(p.dark, p.ink, 0.2), _mix(p.mid, p.dark, 0.5), 0, c.h * 0.62)
    table = c.h * 0.62
    c.gradient(_mix(p.second, p.dark, 0.4), _mix(p.second, p.ink, 0.6), table, c.h)
    c.draw.line((0, table, c.w, table), fill=_mix(p.light, p.second, 0.3), width=max(1, c.u // 200))
    lx = c.w * (0.85 - 0.7 * side)  # light from one side: a warm glow on the wall
    for k in range(5):
        r = c.u * (0.7 - 0.12 * k)
        c.draw.ellipse((lx - r, c.h * 0.2 - r, lx + r, c.h * 0.2 + r), fill=_mix(p.accent, p.paper, 0.3) + (14,))
    objects = [name for name, words in _OBJECTS if re.search(rf"\b(?:{words})", text, re.IGNORECASE)]
    if not objects:
        objects = [_pick(rng, [name for name, _ in _OBJECTS])]
    if len(objects) < 2:
        objects.append(_pick(rng, [name for name, _ in _OBJECTS if name != objects[0]]))
    x_main = c.w * (0.3 + 0.4 * side)
    x_other = c.w * (0.75 - 0.45 * side)
    for name, x, s in ((objects[1], x_other, c.u * 0.28), (objects[0], x_main, c.u * 0.5)):
        _OBJECT_DRAW[name](c, x, table + (c.h - table) * 0.45, s)


def _watch(c: _Canvas, x: float, y: float, s: float) -> None:
    p, d = c.pal, c.draw
    r = s * 0.45
    cy = y - r * 0.3
    d.arc((x - r * 1.6, cy - r * 2.6, x + r * 0.2, cy - r * 0.5), 60, 200, fill=_mix(p.accent, p.paper, 0.3), width=max(2, round(s * 0.02)))
    d.ellipse((x - r * 1.05, cy - r * 1.05, x + r * 1.05, cy + r * 1.05), fill=_mix(p.accent, p.ink, 0.25))
    d.ellipse((x - r, cy - r, x + r, cy + r), fill=_mix(p.accent, p.paper, 0.2))
    d.ellipse((x - r * 0.86, cy - r * 0.86, x + r * 0.86, cy + r * 0.86), fill=_mix(p.paper, p.light, 0.2))
    for k in range(12):
        a = k * math.pi / 6
        d.line((x + r * 0.72 * math.cos(a), cy + r * 0.72 * math.sin(a), x + r * 0.82 * math.cos(a), cy + r * 0.82 * math.sin(a)),
               fill=p.ink, width=max(1, round(s * 0.015)))
    a1, a2 = c.rng.uniform(0, 2 * math.pi, 2)
    d.line((x, cy, x + r * 0.45 * math.cos(a1), cy + r * 0.45 * math.sin(a1)), fill=p.ink, width=max(2, round(s * 0.025)))
    d.line((x, cy, x + r * 0.68 * math.cos(a2), cy + r * 0.68 * math.sin(a2)), fill=p.ink, width=max(1, round(s * 0.015)))
    d.rectangle((x - r * 0.12, cy - r * 1.25, x + r * 0.12, cy - r * 1.02), fill=_mix(p.accent, p.ink, 0.25))


def _books(c: _Canvas, x: float, y: float, s: float) -> None:
    p = c.pal
    colours = [p.accent, p.second, _mix(p.mid, p.paper, 0.3), _mix(p.accent, p.ink, 0.4)]
    top = y
    for k in range(int(c.rng.integers(3, 6))):
        bw, bh = s * c.rng.uniform(0.8, 1.1), s * c.rng.uniform(0.1, 0.16)
        ox = x + c.rng.uniform(-0.06, 0.06) * s
        c.draw.rectangle((ox - bw / 2, top - bh, ox + bw / 2, top), fill=colours[k % len(colours)])
        c.draw.rectangle((ox - bw / 2 + bw * 0.04, top - bh * 0.75, ox + bw / 2, top - bh * 0.25), fill=_mix(p.paper, p.light, 0.2))
        top -= bh


def _letter(c: _Canvas, x: float, y: float, s: float) -> None:
    p, d = c.pal, c.draw
    w, h = s * 0.8, s * 0.55
    pts = [(x - w / 2, y - h * 0.1), (x + w / 2, y - h * 0.25), (x + w / 2 + w * 0.06, y + h * 0.45), (x - w / 2 + w * 0.05, y + h * 0.58)]
    d.polygon(pts, fill=_mix(p.paper, p.accent, 0.12))
    for k in range(6):  # lines of handwriting
        t = 0.12 + k * 0.12
        a = (pts[0][0] + (pts[3][0] - pts[0][0]) * t, pts[0][1] + (pts[3][1] - pts[0][1]) * t)
        b = (pts[1][0] + (pts[2][0] - pts[1][0]) * t, pts[1][1] + (pts[2][1] - pts[1][1]) * t)
        end = 0.9 if k < 5 else 0.5
        d.line((a[0] + w * 0.08, a[1], a[0] + (b[0] - a[0]) * end, a[1] + (b[1] - a[1]) * end), fill=_mix(p.ink, p.mid, 0.3) + (170,),
               width=max(1, round(s * 0.01)))
    r = s * 0.06
    d.ellipse((x + w * 0.2 - r, y + h * 0.35 - r, x + w * 0.2 + r, y + h * 0.35 + r), fill=_mix(p.accent, (150, 20, 20), 0.5))
    d.line((x - w * 0.7, y + h * 0.5, x - w * 0.2, y - h * 0.6), fill=p.ink, width=max(2, round(s * 0.02)))  # a quill


def _candle(c: _Canvas, x: float, y: float, s: float) -> None:
    p, d = c.pal, c.draw
    flame = y - s * 0.95
    for k in range(6):
        r = s * (0.6 - 0.09 * k)
        d.ellipse((x - r, flame - r, x + r, flame + r), fill=_mix(p.accent, p.paper, 0.5) + (18,))
    d.rectangle((x - s * 0.09, y - s * 0.8, x + s * 0.09, y), fill=_mix(p.paper, p.light, 0.3))
    d.ellipse((x - s * 0.05, flame - s * 0.12, x + s * 0.05, flame + s * 0.1), fill=_mix(p.paper, p.accent, 0.3))
    d.rectangle((x - s * 0.2, y - s * 0.04, x + s * 0.2, y), fill=_mix(p.accent, p.ink, 0.5))


def _globe(c: _Canvas, x: float, y: float, s: float) -> None:
    p, d = c.pal, c.draw
    r = s * 0.42
    cy = y - r * 1.35
    d.rectangle((x - r * 0.06, cy + r, x + r * 0.06, y), fill=_mix(p.accent, p.ink, 0.4))
    d.ellipse((x - r * 0.5, y - r * 0.12, x + r * 0.5, y + r * 0.05), fill=_mix(p.accent, p.ink, 0.4))
    d.ellipse((x - r, cy - r, x + r, cy + r), fill=_mix(p.mid, p.second, 0.5))
    for _ in range(4):  # continents: blobs
        a = c.rng.uniform(0, 2 * math.pi)
        dist = r * c.rng.uniform(0.1, 0.6)
        rr = r * c.rng.uniform(0.15, 0.35)
        bx, by = x + dist * math.cos(a), cy + dist * math.sin(a)
        d.ellipse((bx - rr, by - rr * 0.7, bx + rr, by + rr * 0.7), fill=_mix(p.light, p.accent, 0.3))
    d.arc((x - r * 1.12, cy - r * 1.12, x + r * 1.12, cy + r * 1.12), 120, 420, fill=_mix(p.accent, p.paper, 0.2), width=max(2, round(s * 0.02)))


_OBJECTS = [("watch", r"watch|clocks?\b|time\b|hours?\b"), ("books", r"books?\b|law|history|story|stories|lessons?\b|schools?\b"),
            ("letter", r"letters?\b|documents?\b|declaration|treaty|proclamation|constitution|papers?\b|writ\w*"),
            ("candle", r"candles?\b|hope|ideas?\b|memor\w*|light\b"), ("globe", r"globe|world|global|nations?\b|countr\w*|empire")]
_OBJECT_DRAW = {"watch": _watch, "books": _books, "letter": _letter, "candle": _candle, "globe": _globe}


def _blob(c: _Canvas, cx: float, cy: float, r: float, points: int = 28) -> list[tuple[float, float]]:
    a = np.linspace(0, 2 * np.pi, points, endpoint=False)
    phase = c.rng.uniform(0, 2 * np.pi, 3)
    radius = r * (1 + 0.22 * np.sin(2 * a + phase[0]) + 0.12 * np.sin(5 * a + phase[1]) + 0.06 * np.sin(9 * a + phase[2]))
    return list(zip((cx + radius * np.cos(a) * 1.4).tolist(), (cy + radius * np.sin(a)).tolist(), strict=True))


def _names(prompt: str) -> list[str]:
    """Names a shot mentions (capitalised words not at a sentence start), for a map's places."""
    subject = _subject(shot_of(prompt))
    found = re.findall(r"(?<=[a-z,;] )((?:[A-Z][a-z]+)(?: [A-Z][a-z]+)*)", subject)
    out: list[str] = []
    for name in found:
        if name.lower() not in _STOP_WORDS and name not in out:
            out.append(name)
    return out


def _board(c: _Canvas, shade: float) -> tuple[Colour, Colour]:
    """A graphic's ground: dark ink or light paper (by the hash), a gradient toward the palette's middle tone;
    returns the ground and the colour drawn on it."""
    p = c.pal
    bg, fg = (p.ink, p.paper) if c.rng.random() < 0.5 else (p.paper, p.ink)
    c.gradient(bg, _mix(bg, p.mid, shade))
    return bg, fg


def _ground_band(c: _Canvas, bg: Colour) -> None:
    """The lower part of a chart or timeline, under the captions: a quiet landscape in the background's
    colours (hills and a few trees), so the frame is not empty where captions come and go."""
    base = c.h * 0.8
    for k in range(2):
        c.draw.polygon(_ridge(c.rng, c.w, base + c.h * 0.07 * k, c.u * 0.04) + [(c.w, c.h), (0, c.h)],
                       fill=_mix(bg, c.pal.mid, 0.25 + 0.2 * k))
    for _ in range(int(c.rng.integers(2, 6))):
        _tree(c, c.w * c.rng.uniform(0, 1), c.h * c.rng.uniform(0.86, 0.95), c.u * c.rng.uniform(0.08, 0.14),
              _mix(bg, c.pal.mid, 0.5), int(c.rng.integers(0, 2)))


def _map(c: _Canvas, time: str, text: str, side: float, prompt: str) -> None:
    """A map: sea, land masses, a grid, a route through numbered or named stops with an arrow."""
    rng, p = c.rng, c.pal
    sea, land = _mix(p.mid, p.light, 0.55), _mix(p.paper, p.accent, 0.12)
    c.gradient(sea, _mix(sea, p.dark, 0.2))
    step = c.u * rng.uniform(0.12, 0.18)
    for x in np.arange(step / 2, c.w, step):
        c.draw.line((x, 0, x, c.h), fill=_mix(sea, p.paper, 0.3) + (120,), width=1)
    for y in np.arange(step / 2, c.h, step):
        c.draw.line((0, y, c.w, y), fill=_mix(sea, p.paper, 0.3) + (120,), width=1)
    for k in range(int(rng.integers(2, 4))):
        cx, cy = c.w * rng.uniform(0.15, 0.85), c.h * rng.uniform(0.25, 0.75)
        pts = _blob(c, cx, cy, c.u * rng.uniform(0.25, 0.45) * (1.3 if k == 0 else 0.7))
        c.draw.polygon([(x + c.u * 0.012, y + c.u * 0.012) for x, y in pts], fill=_mix(sea, p.ink, 0.35))
        c.draw.polygon(pts, fill=land, outline=_mix(p.dark, land, 0.3))
    ax0, ay0, ax1, ay1 = c.area
    n = int(rng.integers(3, 6))
    ys = rng.uniform(0.35, 0.85, n)
    stops = [(ax0 + (ax1 - ax0) * (0.08 + 0.84 * k / (n - 1)), ay0 + (ay1 - ay0) * float(ys[k])) for k in range(n)]
    if side > 0.5:
        stops = stops[::-1]
    path: list[tuple[float, float]] = []
    for (x0, y0), (x1, y1) in zip(stops, stops[1:], strict=False):  # a gentle arc between stops
        bend = (x1 - x0) * rng.uniform(-0.25, 0.25)
        for t in np.linspace(0, 1, 12):
            path.append((x0 + (x1 - x0) * t - bend * 0.3 * math.sin(math.pi * t), y0 + (y1 - y0) * t - abs(bend) * math.sin(math.pi * t)))
    width = max(2, round(c.u * 0.009))
    for k in range(0, len(path) - 1, 2):  # dashes
        c.draw.line((path[k], path[k + 1]), fill=p.accent, width=width)
    (xa, ya), (xb, yb) = path[-2], path[-1]
    ang = math.atan2(yb - ya, xb - xa)
    a = c.u * 0.035
    c.draw.polygon([(xb + a * math.cos(ang), yb + a * math.sin(ang)), (xb + a * math.cos(ang + 2.5), yb + a * math.sin(ang + 2.5)),
                    (xb + a * math.cos(ang - 2.5), yb + a * math.sin(ang - 2.5))], fill=p.accent)
    title = graphic_title(prompt)
    names = [n for n in _names(prompt) if n.lower() not in title.lower()]
    for k, (x, y) in enumerate(stops):
        r = c.u * 0.018
        c.draw.ellipse((x - r, y - r, x + r, y + r), fill=p.paper, outline=p.ink, width=max(1, round(r * 0.3)))
        c.label((x, y - r * 1.6), names[k] if k < len(names) else str(k + 1), c.h * 0.036, p.ink, anchor="md", max_w=c.w * 0.22,
                backing=p.paper)
    rx, ry, rr = c.w * 0.9 if side <= 0.5 else c.w * 0.1, c.h * 0.82, c.u * 0.06  # a compass rose
    c.draw.polygon([(rx, ry - rr), (rx + rr * 0.25, ry), (rx, ry + rr), (rx - rr * 0.25, ry)], fill=p.ink)
    c.draw.polygon([(rx - rr, ry), (rx, ry - rr * 0.25), (rx + rr, ry), (rx, ry + rr * 0.25)], fill=_mix(p.ink, p.paper, 0.4))
    c.title(title)


def _timeline(c: _Canvas, time: str, text: str, side: float, prompt: str) -> None:
    """A timeline: the shot's years (else its key words) as stops on a line, the way so far in the accent."""
    rng, p = c.rng, c.pal
    bg, fg = _board(c, 0.25)
    ax0, ay0, ax1, ay1 = c.area
    stops = _years(prompt)[:5] or _terms(prompt, 4) or ["I", "II", "III"]
    if len(stops) == 1:
        stops = [stops[0], *(_terms(prompt, 2) or ["Then", "Now"])]
    n = len(stops)
    y = ay0 + (ay1 - ay0) * rng.uniform(0.55, 0.7)
    x0, x1 = ax0 + (ax1 - ax0) * 0.06, ax1 - (ax1 - ax0) * 0.06
    reached = int(rng.integers(1, n + 1))
    lw = max(2, round(c.u * 0.01))
    c.draw.line((x0, y, x1, y), fill=_mix(fg, bg, 0.55), width=lw)
    xs = [x0 + (x1 - x0) * k / max(1, n - 1) for k in range(n)] if n > 1 else [(x0 + x1) / 2]
    c.draw.line((x0, y, xs[reached - 1], y), fill=p.accent, width=lw)
    r = c.u * 0.028
    for k, x in enumerate(xs):
        on = k < reached
        c.draw.ellipse((x - r, y - r, x + r, y + r), fill=p.accent if on else bg, outline=p.accent, width=lw)
        h = c.u * rng.uniform(0.08, 0.16)  # a marker pole with a small card of colour
        c.draw.line((x, y - r, x, y - r - h), fill=_mix(fg, bg, 0.4), width=1)
        c.label((x, y - r - h - c.u * 0.01), stops[k], c.h * 0.05, fg, anchor="md", max_w=(x1 - x0) / n)
    names = _year_labels(prompt)
    for k, x in enumerate(xs):
        if stops[k] in names:
            c.label((x, y + r * 2.2), names[stops[k]], c.h * 0.034, _mix(fg, bg, 0.2), anchor="ma", bold=False, max_w=(x1 - x0) / n)
    _ground_band(c, bg)
    c.title(graphic_title(prompt))


def _chart(c: _Canvas, time: str, text: str, side: float, prompt: str) -> None:
    """A bar chart with a trend line: the shot's numbers when it has a few, else a rising or falling
    series from the hash; the largest bar in the accent."""
    rng, p = c.rng, c.pal
    bg, fg = _board(c, 0.3)
    _ground_band(c, bg)
    ax0, ay0, ax1, ay1 = c.area
    numbers = [float(x) for x in re.findall(r"(?<![\w.])(\d{1,3}(?:\.\d+)?)(?![\w.])", _subject(shot_of(prompt)))]
    years = _years(prompt)
    n = len(numbers) if 3 <= len(numbers) <= 8 else int(rng.integers(4, 8))
    if not 3 <= len(numbers) <= 8:
        trend = rng.choice([-1, 1])
        numbers = [max(0.1, 0.5 + trend * 0.4 * (k / (n - 1) - 0.5) + rng.uniform(-0.12, 0.12)) for k in range(n)]
    top = max(numbers)
    base = ay1 - (ay1 - ay0) * 0.12
    left, right = ax0 + (ax1 - ax0) * 0.05, ax1
    height = (base - ay0) * 0.7
    for k in range(5):
        gy = base - height * k / 4
        c.draw.line((left, gy, right, gy), fill=_mix(fg, bg, 0.8), width=1)
    slot = (right - left) / n
    peak = int(np.argmax(numbers))
    tops = []
    for k, v in enumerate(numbers):
        bx = left + slot * (k + 0.2)
        by = base - height * v / top
        tops.append((bx + slot * 0.3, by))
        c.draw.rectangle((bx, by, bx + slot * 0.6, base), fill=p.accent if k == peak else _mix(p.second, bg, 0.25))
        if years and k < len(years):
            c.label((bx + slot * 0.3, base + c.u * 0.015), years[k], c.h * 0.035, fg, anchor="ma", bold=False, max_w=slot)
    c.draw.line((left, base, right, base), fill=fg, width=max(2, round(c.u * 0.006)))
    c.draw.line(tops, fill=_mix(fg, p.accent, 0.3), width=max(2, round(c.u * 0.006)), joint="curve")
    for x, y in tops:
        r = c.u * 0.012
        c.draw.ellipse((x - r, y - r, x + r, y + r), fill=fg)
    c.title(graphic_title(prompt))


def _diagram(c: _Canvas, time: str, text: str, side: float, prompt: str) -> None:
    """Cause and effect: the shot's key words in three or four boxes, arrows between them."""
    rng, p = c.rng, c.pal
    bg, fg = _board(c, 0.3)
    _ground_band(c, bg)
    ax0, ay0, ax1, ay1 = c.area
    terms = _terms(prompt, 4)
    if len(terms) < 3:
        terms += ["Cause", "Change", "Effect"][len(terms):]
    n = len(terms)
    cycle = n == 4 and rng.random() < 0.5
    top = ay0 + (ay1 - ay0) * 0.3
    boxes = []
    if cycle:  # four boxes around a ring
        cx, cy = (ax0 + ax1) / 2, (top + ay1) / 2
        rx, ry = (ax1 - ax0) * 0.3, (ay1 - top) * 0.33
        centres = [(cx, cy - ry), (cx + rx, cy), (cx, cy + ry), (cx - rx, cy)]
        bw, bh = (ax1 - ax0) * 0.26, (ay1 - top) * 0.2
    else:
        gap = (ax1 - ax0) * 0.06
        bw = ((ax1 - ax0) - gap * (n - 1)) / n
        bh = (ay1 - top) * rng.uniform(0.3, 0.42)
        yc = (top + ay1) / 2
        centres = [(ax0 + bw / 2 + k * (bw + gap), yc + (rng.uniform(-0.12, 0.12) * (ay1 - top))) for k in range(n)]
    fills = [p.accent, p.second, _mix(p.mid, fg, 0.3), _mix(p.accent, p.second, 0.5)]
    for k, (x, y) in enumerate(centres):
        box = (x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2)
        boxes.append(box)
        c.draw.rounded_rectangle((box[0] + c.u * 0.01, box[1] + c.u * 0.01, box[2] + c.u * 0.01, box[3] + c.u * 0.01),
                                 radius=bh * 0.2, fill=_mix(bg, (0, 0, 0), 0.4))
        c.draw.rounded_rectangle(box, radius=bh * 0.2, fill=fills[k % len(fills)])
        r = bh * 0.16
        c.draw.ellipse((x - r, box[1] + bh * 0.12, x + r, box[1] + bh * 0.12 + 2 * r), fill=_mix(p.paper, fills[k % len(fills)], 0.2))
        ink = p.ink if _lum(fills[k % len(fills)]) > 110 else p.paper
        c.label((x, box[1] + bh * 0.62), terms[k], c.h * 0.042, ink, anchor="mm", max_w=bw * 0.9)
    aw = max(2, round(c.u * 0.008))
    pairs = list(zip(range(n), list(range(1, n)) + ([0] if cycle else []), strict=False))
    for a, b in pairs:
        (xa, ya), (xb, yb) = centres[a], centres[b]
        ang = math.atan2(yb - ya, xb - xa)
        # from the edge of one box to the edge of the next
        def edge(x: float, y: float, ang: float) -> tuple[float, float]:
            t = min(bw / 2 / max(abs(math.cos(ang)), 1e-6), bh / 2 / max(abs(math.sin(ang)), 1e-6)) * 1.08
            return x + t * math.cos(ang), y + t * math.sin(ang)
        sx, sy = edge(xa, ya, ang)
        ex, ey = edge(xb, yb, ang + math.pi)
        c.draw.line((sx, sy, ex, ey), fill=fg, width=aw)
        a_len = c.u * 0.03
        c.draw.polygon([(ex, ey), (ex - a_len * math.cos(ang - 0.45), ey - a_len * math.sin(ang - 0.45)),
                        (ex - a_len * math.cos(ang + 0.45), ey - a_len * math.sin(ang + 0.45))], fill=fg)
    c.title(graphic_title(prompt))


# What a shot shows: scored by its words (the subject and the recurring descriptions) and its shot type.
_KIND_WORDS = {
    "map": r"maps?\b|routes?\b|journey|voyage|expedition|territor\w*|borders?\b|trade|across|migration|regions?\b|geograph\w*|frontier",
    "timeline": r"timeline|years?\b|decades?\b|centur\w*|era\b|eras\b|chronolog\w*|history|unfolded|dates?\b|began|ended|since",
    "chart": r"charts?\b|graphs?\b|data|statistic\w*|numbers?\b|percent\w*|growth|economy|economic|costs?\b|population|rates?\b|"
             r"million\w*|billion\w*|rise|rising|decline|prices?\b|money|trends?\b",
    "diagram": r"diagram|causes?\b|effects?\b|consequences?\b|process\w*|systems?\b|cycles?\b|steps?\b|how\b|why\b|works?\b|"
               r"choices?\b|pressures?\b|reasons?\b",
    "city": r"city|cities|towns?\b|village|streets?\b|buildings?\b|factor(?:y|ies)\b|houses?\b|markets?\b|capital\b|skyline|"
            r"ports?\b|square\b|crossroads",
    "crowd": r"people\b|crowds?\b|soldiers?\b|army|troops|citizens?\b|workers?\b|famil\w*|voters|protest\w*|march\w*|group\b",
    "portrait": r"portrait|face\b|faces\b|wom[ae]n\b|man\b|leaders?\b|president|kings?\b|queens?\b|general\b|witness|child\b|girl|boy",
    "object": r"still life|objects?\b|watch|clocks?\b|books?\b|letters?\b|documents?\b|candles?\b|globe|flags?\b|coins?\b",
    "landscape": r"landscape|fields?\b|forests?\b|mountains?\b|hills?\b|rivers?\b|lakes?\b|seas?\b|ocean|valley|farm\w*|land\b|nature",
}
_KIND_PATTERNS = {kind: re.compile(rf"\b(?:{words})", re.IGNORECASE) for kind, words in _KIND_WORDS.items()}
_SHOT_KINDS = {"Overview": {"map": 4}, "Aerial shot": {"map": 3, "landscape": 1}, "Group shot": {"crowd": 4},
               "Portrait": {"portrait": 4}, "Close-up": {"portrait": 2, "object": 2}, "Extreme close-up": {"object": 3, "portrait": 1},
               "Still life": {"object": 4}, "Establishing shot": {"city": 2, "landscape": 2}, "Wide shot": {"landscape": 2, "city": 1},
               "Medium shot": {"portrait": 1, "crowd": 1}, "Low-angle shot": {"city": 1, "portrait": 1}}
_KIND_NAMES = {kind: re.compile(rf"\b(?:{words})\b", re.IGNORECASE) for kind, words in {
    "map": r"maps?|map-like", "timeline": r"timelines?|chronology", "chart": r"(?:bar |line |pie )?charts?|graphs?",
    "diagram": r"diagrams?|flowcharts?|infographics?", "portrait": r"portraits?|headshots?", "object": r"still life",
    "landscape": r"landscapes?", "city": r"skylines?|cityscapes?", "crowd": r"crowds?"}.items()}
KINDS = tuple(_KIND_WORDS)
_GRAPHIC_KINDS = frozenset({"map", "timeline", "chart", "diagram"})


def scene_kind(prompt: str, seed: int = 0) -> str:
    """What the picture of a shot shows (one of ``KINDS``): its shot type and words decide, ties go by
    the prompt's hash (and another take may pick the runner-up when it is close)."""
    text = _scene_text(prompt)
    scores = {kind: 0.0 for kind in KINDS}
    for kind, pattern in _KIND_PATTERNS.items():
        scores[kind] += min(3, len(pattern.findall(text)))
    if shot_named(prompt):  # a derived shot type says nothing about the subject
        for kind, bonus in _SHOT_KINDS.get(shot_type(prompt), {}).items():
            scores[kind] += bonus
    for kind, pattern in _KIND_NAMES.items():  # "a bar chart of", "a map of": what the shot asks for
        if pattern.search(text):
            scores[kind] += 4
    if len(_years(prompt)) >= 2:
        scores["timeline"] += 3
    tie = _seed("kind", prompt, seed)
    # A graphic (map, chart, timeline, diagram) only where the shot's words ask for one.
    ranked = sorted((k for k in KINDS if scores[k] > 0 or k not in _GRAPHIC_KINDS),
                    key=lambda k: (-scores[k], (tie >> (KINDS.index(k) * 3)) % 8))
    if seed and scores[ranked[0]] - scores[ranked[1]] <= 1:
        return ranked[seed % 2]
    return ranked[0]


_SCENES = {"landscape": _landscape, "city": _city, "crowd": _crowd, "portrait": _portrait, "object": _object}
_GRAPHICS = {"map": _map, "timeline": _timeline, "chart": _chart, "diagram": _diagram}


def _debug_marks(c: _Canvas, label: str, style: str, take: int, kind: str) -> None:
    """The developer's overlay: thirds grid, the text area's outline, label, take, style and kind."""
    d, w, h = c.draw, c.w, c.h
    line = max(1, round(c.u / 540))
    for k in (1, 2):
        d.line((round(w * k / 3), 0, round(w * k / 3), h), fill=(255, 255, 255, 60), width=line)
        d.line((0, round(h * k / 3), w, round(h * k / 3)), fill=(255, 255, 255, 60), width=line)
    d.rectangle(c.area, outline=(255, 80, 80, 200), width=line)
    ax0, ay0, ax1, ay1 = c.area
    c.label((ax0, ay1), f"{label.upper()} · TAKE {take}" if take else label.upper(), c.h * 0.03, (255, 255, 255), anchor="ld",
            backing=(0, 0, 0))
    c.label((ax1, ay1), f"{style.upper()} · {kind.upper()}", c.h * 0.03, (255, 255, 255), anchor="rd", backing=(0, 0, 0))


def paint(prompt: str, style: str, width: int, height: int, label: str = "", take: int = 0,
          references: Sequence[bytes] = (), debug: bool = False) -> Picture:
    """The picture of a shot (see the module's docstring). Another ``take`` (a re-roll) is another
    layout (and, where the shot's words leave it open, another scene); take 0 the picture there always
    was. ``references``: approved pictures of who or what the shot names: they tint its palette and
    put its subject on their side."""
    seed = _seed(prompt, style) if not take else _seed(prompt, style, "take", take)
    rng = np.random.default_rng(seed)
    pal, ref_side = make_palette(prompt, style, references)
    c = _Canvas(width, height, rng, pal)
    kind = scene_kind(prompt, take)
    text = _scene_text(prompt)
    time = _time_of_day(text, rng)
    side = ref_side if ref_side is not None else float(rng.uniform(0, 1))
    if kind in _GRAPHICS:
        _GRAPHICS[kind](c, time, text, side, prompt)
    else:
        _SCENES[kind](c, time, text, side)
    img = c.img.filter(ImageFilter.SMOOTH)  # softens the polygons' stair-step edges (text is drawn after: crisp)
    c.img, c.draw = img, ImageDraw.Draw(img, "RGBA")
    if debug:
        _debug_marks(c, label, style, take, kind)
    elif label.lower().endswith("placeholder"):
        # A stand-in for a provider that failed (the recipe's label says so): marked, so a viewer knows
        # and it never has the bytes (the data version) of the picture the provider will make.
        ax0, ay0, ax1, ay1 = c.area
        c.label((ax1, ay1), "PLACEHOLDER", c.h * 0.032, (255, 255, 255), anchor="rd", backing=(0, 0, 0))
    c._place_labels()
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return Picture(out.getvalue(), jpeg_preview(img), kind, c.boxes)


def draw_picture(prompt: str, style: str, width: int, height: int, label: str, take: int = 0,
                 references: tuple[bytes, ...] = (), debug: bool = False) -> tuple[bytes, bytes]:
    """The picture of a shot as PNG and its preview JPEG (see ``paint``)."""
    picture = paint(prompt, style, width, height, label, take, references, debug)
    return picture.png, picture.preview
