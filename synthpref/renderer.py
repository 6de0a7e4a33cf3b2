"""The procedural SynthPref renderer: a SIMULATOR for evaluation, not a text-to-image model.

It draws an abstract picture for a subject and one term per profile element, so that each element
is visible and measurable from the pixels:

- color: the dominant hue (named-color hues of `preferthinker.measure.COLOR_HUES`);
- saturation: HSV saturation and lightness of the palette (`SATURATION_LEVELS`);
- detail: number and size of forms plus fine texture (`DETAIL_LEVELS`; edge density grows with it);
- art medium: a rendering treatment (watercolor bleed, colored-pencil hatching, flat silkscreen
  layers with misregistration, mosaic tiles, lead-lined stained glass, ...);
- art style: the composition grammar (geometric facets, organic curves, minimal forms, ...);
  "Pixel Art" (a style in the vocabulary) draws grid-aligned blocks and pixelates the result.

Subject words pick a layout (centred figure, horizon, towers, scatter, diagonal). Elements not
given are drawn at random from the seed, so references and candidates vary. `ProceduralGenerator`
reads terms from a prompt (and avoids those of the negative prompt), so the full personalized
loop can run against it. numpy + PIL only; about 5-15 ms per 256x256 image.

Example:
    >>> r = ProceduralRenderer()
    >>> out = r.render("a cat", {"color": "Teal", "saturation": "Intense"}, seed=0)
    >>> out.attributes["color"], out.image.size
    ('Teal', (256, 256))
"""

from __future__ import annotations

import colorsys
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from preferthinker.measure import COLOR_HUES, DETAIL_LEVELS, SATURATION_LEVELS, hue_distance
from preferthinker.profile import ELEMENTS

# The vocabulary subset the renderer draws (exact vocabulary spellings). Colors are spread round
# the hue wheel; a liked and a disliked term closer than `MIN_HUE_GAP` would look alike.
SUPPORTED_TERMS: dict[str, tuple[str, ...]] = {
    "art_style": (
        "Pixel Art",
        "Minimalism",
        "Cubism",
        "Bauhaus",
        "Art Nouveau",
        "Pop Art",
        "Op Art",
        "Pointillism",
        "Abstract Expressionism",
        "Art Deco",
        "Impressionism",
    ),
    "color": (
        "Scarlet",
        "Orange",
        "Lemon Yellow",
        "Lime Green",
        "Jungle Green",
        "Teal",
        "Royal Blue",
        "Purple",
        "Magenta",
        "Pink",
    ),
    "art_medium": (
        "Watercolor",
        "Colored Pencil",
        "Silkscreen",
        "Mosaic",
        "Oil Painting",
        "Digital Painting",
        "3D Modeling",
        "Stained Glass",
    ),
    "saturation": (
        "Muted",
        "Pastel",
        "Mid-tone",
        "Intense",
        "Vibrant",
        "Desaturated",
        "Soft",
        "Rich",
    ),
    "detail": (
        "Smooth",
        "Minimal",
        "Simplified",
        "Selective",
        "Realistic",
        "Textured",
        "Fine",
        "Intricate",
    ),
}
MIN_HUE_GAP = 40.0
SATURATION_GAP = 0.15  # in (S, V) distance

_ELEMENT_IDS = {element: i + 1 for i, element in enumerate(ELEMENTS)}

# Subject keywords -> layout. Unknown subjects get a layout from a hash of their words.
LAYOUTS = ("center", "horizon", "towers", "scatter", "diagonal")
_LAYOUT_WORDS = {
    "center": "cat dog bird person portrait face woman man girl boy child animal flower vase fruit "
    "owl fox horse lion robot tree apple",
    "horizon": "landscape mountain mountains sea ocean beach field sky sunset sunrise lake desert "
    "valley hills meadow island coast",
    "towers": "city building buildings street skyline castle tower architecture town village "
    "cathedral temple skyscraper",
    "scatter": "pattern still life crowd stars garden market festival fish birds leaves shells "
    "butterflies insects",
    "diagonal": "road river bridge car train path waterfall wave ship boat stairs",
}
_LAYOUT_OF = {w: layout for layout, words in _LAYOUT_WORDS.items() for w in words.split()}


def terms_distinct(element: str, a: str, b: str) -> bool:
    """Would an image drawn with term `a` look different from one drawn with `b`? Used so that a
    simulated user's disliked term is visibly unlike the liked ones (`sample_users(compatible=)`).

    Example:
        >>> terms_distinct("color", "Scarlet", "Teal")
        True
    """
    if a.lower() == b.lower():
        return False
    if element == "color" and a in COLOR_HUES and b in COLOR_HUES:
        return hue_distance(COLOR_HUES[a], COLOR_HUES[b]) >= MIN_HUE_GAP
    if element == "saturation" and a in SATURATION_LEVELS and b in SATURATION_LEVELS:
        (s1, v1), (s2, v2) = SATURATION_LEVELS[a], SATURATION_LEVELS[b]
        return ((s1 - s2) ** 2 + (v1 - v2) ** 2) ** 0.5 >= SATURATION_GAP
    if element == "detail" and a in DETAIL_LEVELS and b in DETAIL_LEVELS:
        return abs(DETAIL_LEVELS[a] - DETAIL_LEVELS[b]) >= 0.25
    return True


def layout_for(subject: str) -> str:
    """The layout a subject gets: a keyword match, else a stable hash of the words."""
    words = re.findall(r"[a-z]+", subject.lower())
    for word in words:
        if word in _LAYOUT_OF:
            return _LAYOUT_OF[word]
        if word.endswith("s") and word[:-1] in _LAYOUT_OF:
            return _LAYOUT_OF[word[:-1]]
    return LAYOUTS[zlib.crc32(" ".join(words).encode()) % len(LAYOUTS)]


@dataclass
class Rendered:
    """One rendered image and the term it was drawn with for every element."""

    image: Image.Image
    attributes: dict[str, str]
    subject: str = ""
    layout: str = ""
    seed: int = 0


@dataclass
class ProceduralRenderer:
    """Renders abstract images whose profile attributes are known (see the module docstring).

    Args:
        size: image side in pixels (square; a multiple of 32 keeps pixel-art blocks exact).
        terms: the terms per element the renderer may draw (default `SUPPORTED_TERMS`).
    """

    size: int = 256
    terms: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(SUPPORTED_TERMS))

    def __post_init__(self) -> None:
        if self.size < 64 or self.size % 32:
            raise ValueError(f"size must be a multiple of 32 and >= 64, got {self.size}")
        for element in ELEMENTS:
            unknown = [t for t in self.terms.get(element, ()) if t not in SUPPORTED_TERMS[element]]
            if unknown:
                raise ValueError(
                    f"terms[{element!r}] has terms the renderer cannot draw: {unknown}"
                )

    # -- term choice -------------------------------------------------------------------------
    def choose_attributes(
        self,
        terms: Mapping[str, object],
        seed: int,
        avoid: Optional[Mapping[str, Sequence[str]]] = None,
    ) -> dict[str, str]:
        """One term per element: from `terms[element]` (a term or a list; one is picked by seed),
        else random among supported terms not in `avoid` (and visibly unlike them)."""
        chosen: dict[str, str] = {}
        for element in ELEMENTS:
            rng = np.random.default_rng([seed, _ELEMENT_IDS[element], 7])
            given = terms.get(element)
            options = [given] if isinstance(given, str) else list(given or [])
            options = [_canonical(element, t) for t in options]
            options = [t for t in options if t is not None]
            if options:
                chosen[element] = options[int(rng.integers(len(options)))]
                continue
            pool = list(self.terms.get(element) or SUPPORTED_TERMS[element])
            bad = [_canonical(element, t) for t in (avoid or {}).get(element, ())]
            bad = [t for t in bad if t]
            keep = [t for t in pool if all(terms_distinct(element, t, b) for b in bad)]
            chosen[element] = (keep or pool)[int(rng.integers(len(keep or pool)))]
        return chosen

    # -- drawing ---------------------------------------------------------------------------------
    def render(
        self,
        subject: str,
        terms: Optional[Mapping[str, object]] = None,
        seed: int = 0,
        avoid: Optional[Mapping[str, Sequence[str]]] = None,
    ) -> Rendered:
        """Render `subject` with one term per element (given or drawn from `seed`).

        Args:
            subject: free text; its words pick the layout and the scene's random draws.
            terms: element -> term or list of terms (one is picked per seed); unknown spellings
                and unsupported terms are treated as not given.
            seed: the image's seed (same subject, terms and seed -> same pixels).
            avoid: element -> terms not to draw when an element is chosen at random.

        Example:
            >>> renderer = ProceduralRenderer()
            >>> renderer.render("a lighthouse", {"art_medium": "Mosaic"}, seed=3).attributes
        """
        attrs = self.choose_attributes(terms or {}, seed, avoid)
        layout = layout_for(subject)
        scene = np.random.default_rng([zlib.crc32(subject.lower().encode()), seed])
        n = self.size
        level = DETAIL_LEVELS[attrs["detail"]]
        palette = _palette(attrs["color"], attrs["saturation"], scene)
        labels = Image.new("L", (n, n), 0)
        draw = ImageDraw.Draw(labels)
        _background(draw, layout, n)
        _STYLES[attrs["art_style"]](draw, scene, layout, n, level)
        lab = np.asarray(labels)
        rgb = palette[lab]
        rgb = _MEDIA[attrs["art_medium"]](rgb, lab, scene, level, palette)
        if attrs["art_style"] == "Pixel Art":
            rgb = _pixelate(rgb, lab, scene, level, palette)
        image = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
        info = {"subject": subject, "layout": layout, "seed": seed, **attrs}
        image.info["synthpref"] = json.dumps(info)
        return Rendered(image=image, attributes=attrs, subject=subject, layout=layout, seed=seed)


def _canonical(element: str, term: object) -> Optional[str]:
    if not isinstance(term, str):
        return None
    low = term.strip().lower()
    return next((t for t in SUPPORTED_TERMS[element] if t.lower() == low), None)


# -- palette -------------------------------------------------------------------------------------
def _palette(color: str, saturation: str, rng: np.random.Generator) -> np.ndarray:
    """8 colors: 0-1 background tones, 2-7 form colors. Every tone keeps the color's hue or stays
    within 12 degrees of it, so the dominant hue is the term's; S and V follow the saturation
    term."""
    hue = COLOR_HUES[color] / 360.0
    s, v = SATURATION_LEVELS[saturation]
    jitter = np.array([0, 0, 0, 0, 0, 0.033, -0.033, 0.0])
    s_scale = np.array([0.55, 0.7, 1.0, 1.0, 0.9, 1.0, 1.0, 0.8])
    v_scale = np.array([1.08, 0.92, 1.0, 0.8, 0.65, 0.95, 0.9, 0.5])
    v_scale[2:] *= 1 + rng.uniform(-0.05, 0.05, 6)
    colors = [
        colorsys.hsv_to_rgb((hue + j) % 1.0, min(1.0, s * ss), min(1.0, v * vs))
        for j, ss, vs in zip(jitter, s_scale, v_scale)
    ]
    table = np.zeros((256, 3), dtype=np.float32)
    table[: len(colors)] = colors
    return table


# -- layouts --------------------------------------------------------------------------------------
def _background(draw: ImageDraw.ImageDraw, layout: str, n: int) -> None:
    if layout == "horizon":
        draw.rectangle([0, int(n * 0.6), n, n], fill=1)
    elif layout == "diagonal":
        draw.polygon([(0, n), (n, int(n * 0.35)), (n, n)], fill=1)
    elif layout == "towers":
        draw.rectangle([0, int(n * 0.85), n, n], fill=1)


def _place(rng: np.random.Generator, layout: str, count: int) -> np.ndarray:
    """Form centres in [0, 1]^2 for a layout."""
    if layout == "center":
        pts = rng.normal(0.5, 0.16, (count, 2))
    elif layout == "horizon":
        pts = np.stack([rng.uniform(0, 1, count), rng.normal(0.6, 0.1, count)], axis=1)
    elif layout == "towers":
        columns = rng.integers(0, 5, count) / 4.0 * 0.8 + 0.1
        pts = np.stack([columns + rng.normal(0, 0.03, count), rng.uniform(0.2, 0.9, count)], axis=1)
    elif layout == "diagonal":
        t = rng.uniform(0, 1, count)
        pts = np.stack([t, 0.9 - 0.7 * t + rng.normal(0, 0.08, count)], axis=1)
    else:
        pts = rng.uniform(0.05, 0.95, (count, 2))
    return np.clip(pts, 0.02, 0.98)


def _count(base: int, level: float) -> int:
    return max(1, int(round(base * (0.35 + 2.65 * level))))


def _form_label(rng: np.random.Generator) -> int:
    # Labels 2-4 carry the exact hue (most of the area); 5-7 are accents.
    return int(rng.choice([2, 2, 3, 3, 4, 5, 6, 7]))


# -- styles: composition grammars ----------------------------------------------------------------
def _style_minimalism(draw, rng, layout, n, level):
    for x, y in _place(rng, layout, max(1, _count(2, level) // 2)):
        r = n * rng.uniform(0.12, 0.22) / (1 + level)
        if rng.random() < 0.5:
            draw.ellipse([x * n - r, y * n - r, x * n + r, y * n + r], fill=2)
        else:
            draw.rectangle([x * n - r, y * n - r * 0.6, x * n + r, y * n + r * 0.6], fill=3)


def _style_cubism(draw, rng, layout, n, level):
    for x, y in _place(rng, layout, _count(14, level)):
        r = n * rng.uniform(0.06, 0.2) / (1 + 1.5 * level)
        pts = [
            (x * n + rng.uniform(-r, r), y * n + rng.uniform(-r, r))
            for _ in range(int(rng.integers(3, 5)))
        ]
        draw.polygon(pts, fill=_form_label(rng), outline=7)


def _style_bauhaus(draw, rng, layout, n, level):
    grid = n // 8
    for x, y in _place(rng, layout, _count(8, level)):
        cx, cy = round(x * 8) * grid, round(y * 8) * grid
        r = grid * int(rng.integers(1, 3)) / (1 + level)
        kind = int(rng.integers(3))
        if kind == 0:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_form_label(rng))
        elif kind == 1:
            draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=_form_label(rng))
        else:
            draw.pieslice([cx - r, cy - r, cx + r, cy + r], 180, 360, fill=_form_label(rng))


def _style_nouveau(draw, rng, layout, n, level):
    for x, y in _place(rng, layout, _count(6, level)):
        length, amp, phase = (
            n * rng.uniform(0.2, 0.5),
            n * rng.uniform(0.03, 0.1),
            rng.uniform(0, 6.3),
        )
        t = np.linspace(-0.5, 0.5, 24)
        pts = [(x * n + tt * length, y * n + amp * np.sin(phase + 7 * tt)) for tt in t]
        draw.line(
            pts, fill=_form_label(rng), width=max(2, int(10 / (1 + 2 * level))), joint="curve"
        )
        r = n * 0.04 / (1 + level)
        draw.ellipse([pts[-1][0] - r, pts[-1][1] - r, pts[-1][0] + r, pts[-1][1] + r], fill=2)


def _style_pop(draw, rng, layout, n, level):
    step = 10
    for yy in range(step // 2, n, step):  # halftone dots on the background
        for xx in range((yy // step % 2) * step // 2, n, step):
            draw.ellipse([xx - 2, yy - 2, xx + 2, yy + 2], fill=5)
    for x, y in _place(rng, layout, _count(4, level)):
        r = n * rng.uniform(0.08, 0.16) / (1 + level)
        draw.ellipse(
            [x * n - r, y * n - r, x * n + r, y * n + r], fill=_form_label(rng), outline=7, width=4
        )


def _style_op(draw, rng, layout, n, level):
    x, y = _place(rng, layout, 1)[0]
    rings = int(6 + 18 * level)
    for i in range(rings, 0, -1):
        r = n * 0.7 * i / rings
        draw.ellipse([x * n - r, y * n - r, x * n + r, y * n + r], fill=2 if i % 2 else 4)


def _style_pointillism(draw, rng, layout, n, level):
    count = _count(120, level)
    pts = np.concatenate([_place(rng, layout, count), rng.uniform(0, 1, (count // 2, 2))])
    for x, y in pts:
        r = 2 + 4 / (1 + 2 * level)
        draw.ellipse([x * n - r, y * n - r, x * n + r, y * n + r], fill=_form_label(rng))


def _style_expressionism(draw, rng, layout, n, level):
    for x, y in _place(rng, layout, _count(10, level)):
        angle = rng.uniform(0, np.pi)
        length = n * rng.uniform(0.15, 0.45)
        dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
        draw.line(
            [(x * n - dx, y * n - dy), (x * n + dx, y * n + dy)],
            fill=_form_label(rng),
            width=max(2, int(rng.uniform(6, 18) / (1 + level))),
        )


def _style_deco(draw, rng, layout, n, level):
    x, y = _place(rng, layout, 1)[0]
    cx, cy = n / 2, y * n
    fans = int(4 + 10 * level)
    for i in range(fans, 0, -1):
        r = n * 0.45 * i / fans
        draw.pieslice([cx - r, cy - r, cx + r, cy + r], 180, 360, fill=2 if i % 2 else 3)
    for k in range(1, 2 + int(4 * level)):  # symmetric stepped towers
        w = n * 0.05
        for side in (-1, 1):
            left = cx + side * (n * 0.45 - k * w * 1.2) - w / 2
            draw.rectangle([left, cy, left + w, n], fill=4)


def _style_impressionism(draw, rng, layout, n, level):
    count = _count(60, level)
    for x, y in np.concatenate([_place(rng, layout, count), rng.uniform(0, 1, (count // 3, 2))]):
        w, h = 3 + 8 / (1 + level), 2 + 3 / (1 + level)
        draw.ellipse([x * n - w, y * n - h, x * n + w, y * n + h], fill=_form_label(rng))


def _style_pixel(draw, rng, layout, n, level):
    grid = n // 32  # forms on the pixel grid; `_pixelate` then turns everything into blocks
    for x, y in _place(rng, layout, _count(10, level)):
        w, h = int(rng.integers(2, 8)), int(rng.integers(2, 8))
        cx, cy = int(x * 32), int(y * 32)
        draw.rectangle(
            [cx * grid, cy * grid, (cx + w) * grid - 1, (cy + h) * grid - 1], fill=_form_label(rng)
        )


_STYLES = {
    "Pixel Art": _style_pixel,
    "Minimalism": _style_minimalism,
    "Cubism": _style_cubism,
    "Bauhaus": _style_bauhaus,
    "Art Nouveau": _style_nouveau,
    "Pop Art": _style_pop,
    "Op Art": _style_op,
    "Pointillism": _style_pointillism,
    "Abstract Expressionism": _style_expressionism,
    "Art Deco": _style_deco,
    "Impressionism": _style_impressionism,
}


# -- media: rendering treatments ----------------------------------------------------------------
def _texture(
    rgb: np.ndarray, rng: np.random.Generator, level: float, amount: float = 1.0
) -> np.ndarray:
    """Fine luminance texture whose strength grows with the detail level. Multiplying all three
    channels by one factor keeps hue and HSV saturation, so only detail changes."""
    noise = rng.standard_normal(rgb.shape[:2]).astype(np.float32)
    return rgb * (1 + amount * (0.015 + 0.22 * level) * noise)[..., None]


def _blur(arr: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of an RGB (H, W, 3) or single-channel (H, W) float image in [0, 1]."""
    img = Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255.0


def _edges(lab: np.ndarray) -> np.ndarray:
    e = np.zeros(lab.shape, bool)
    e[1:] |= lab[1:] != lab[:-1]
    e[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    return e


def _smooth_if_low(rgb, level):
    return _blur(rgb, 1.2) if level < 0.1 else rgb


def _pixelate(rgb, lab, rng, level, palette):
    n = rgb.shape[0]
    block = n // 32
    small = rgb.reshape(32, block, 32, block, 3).mean(axis=(1, 3))
    # A small palette, as pixel art has: brightness in 6 steps. Scaling all channels by one
    # factor keeps hue and saturation, which per-channel rounding would shift.
    peak = small.max(axis=-1, keepdims=True)
    small = small * np.round(peak * 6) / 6 / np.maximum(peak, 1e-6)
    small = _texture(small, rng, level, 4.0)  # per-block texture: only block borders carry edges
    return np.repeat(np.repeat(small, block, axis=0), block, axis=1)


def _watercolor(rgb, lab, rng, level, palette):
    wet = _blur(rgb, 3.0)
    pooling = _blur(_edges(lab).astype(np.float32), 1.5)  # pigment gathers at shape edges
    paper = _blur(rng.standard_normal(rgb.shape[:2]).astype(np.float32) * 0.25 + 0.5, 4)
    wet = wet * ((1 - 0.18 * pooling) * (0.93 + 0.14 * paper))[..., None]
    return _texture(wet, rng, level, 0.8)


def _pencil(rgb, lab, rng, level, palette):
    n = rgb.shape[0]
    yy, xx = np.mgrid[0:n, 0:n]
    hatch = ((xx + yy) % 4 == 0) | (((xx - yy) % 6 == 0) & (lab >= 2))
    paper = np.full_like(rgb, 0.97)
    out = np.where(hatch[..., None], rgb, paper * 0.6 + rgb * 0.4)
    out = np.where(_edges(lab)[..., None], rgb * 0.55, out)
    return _texture(out, rng, level, 0.7)


def _silkscreen(rgb, lab, rng, level, palette):
    dark = (lab == 7) | (lab == 4)
    shifted = np.roll(np.roll(dark, 3, axis=0), 2, axis=1)  # misregistered key layer
    flat = np.where(
        shifted[..., None], palette[4][None, None, :], palette[np.where(lab == 4, 2, lab)]
    )
    return _texture(flat, rng, level, 0.6)


def _mosaic(rgb, lab, rng, level, palette):
    n = rgb.shape[0]
    tile = 16 if level < 0.3 else (8 if level < 0.7 else 4)
    grid = rgb.reshape(n // tile, tile, n // tile, tile, 3).mean(axis=(1, 3))
    grid = grid * (1 + rng.uniform(-0.08, 0.08, grid.shape[:2] + (1,)))
    out = np.repeat(np.repeat(grid, tile, axis=0), tile, axis=1).astype(np.float32)
    idx = np.arange(n)
    grout = (idx % tile == 0)[:, None] | (idx % tile == 0)[None, :]
    out[grout] = 0.35
    return _texture(out, rng, level, 0.5)


def _oil(rgb, lab, rng, level, palette):
    n = rgb.shape[0]
    noise = rng.standard_normal((n, n + 8)).astype(np.float32)
    kernel = np.ones(9, np.float32) / 9
    streak = np.stack([np.convolve(row, kernel, "valid") for row in noise])[:, :n]
    out = _blur(rgb, 1.0) * (1 + 0.25 * streak[..., None])
    return _texture(out, rng, level, 0.8)


def _digital(rgb, lab, rng, level, palette):
    n = rgb.shape[0]
    yy, xx = np.mgrid[0:n, 0:n] / n
    glow = 1.08 - 0.25 * ((xx - 0.45) ** 2 + (yy - 0.4) ** 2)
    return _texture(_blur(rgb, 1.5) * glow[..., None].astype(np.float32), rng, level, 0.7)


def _modeling(rgb, lab, rng, level, palette):
    n = rgb.shape[0]
    forms = lab >= 2
    shadow = np.roll(np.roll(forms, 6, axis=0), 6, axis=1) & ~forms
    yy, xx = np.mgrid[0:n, 0:n] / n
    light = (1.15 - 0.35 * (xx + yy) / 2)[..., None].astype(np.float32)
    out = _blur(rgb, 0.8) * light
    out[shadow] *= 0.6
    rim = _blur(_edges(lab).astype(np.float32), 2.0)[..., None]  # darker rims read as volume
    return _texture(out * (1 - 0.25 * rim), rng, level, 0.7)


def _stained_glass(rgb, lab, rng, level, palette):
    n = rgb.shape[0]
    cells = int(30 + 220 * level)
    seeds = rng.uniform(0, 64, (cells, 2)).astype(np.float32)
    gy, gx = np.mgrid[0:64, 0:64].astype(np.float32) + 0.5
    # |g - s|^2 = |g|^2 - 2 g.s + |s|^2: one matrix product instead of a (4096, cells, 2) array
    g = np.stack([gy.ravel(), gx.ravel()], 1)
    nearest = ((seeds**2).sum(1)[None] - 2 * g @ seeds.T).argmin(1).reshape(64, 64)
    ids = np.repeat(np.repeat(nearest, n // 64, axis=0), n // 64, axis=1)
    sy, sx = (seeds[:, 0] * n / 64).astype(int), (seeds[:, 1] * n / 64).astype(int)
    out = rgb[sy, sx][ids] * 1.05
    out[_edges(ids)] = 0.08  # lead lines
    return _texture(out, rng, level, 0.4)


_MEDIA = {
    "Watercolor": _watercolor,
    "Colored Pencil": _pencil,
    "Silkscreen": _silkscreen,
    "Mosaic": _mosaic,
    "Oil Painting": _oil,
    "Digital Painting": _digital,
    "3D Modeling": _modeling,
    "Stained Glass": _stained_glass,
}


# -- prompt reading and the Generator ------------------------------------------------------------
def parse_prompt_terms(text: str) -> dict[str, list[str]]:
    """The supported terms a prompt mentions, per element, in order of appearance
    (case-insensitive, whole words; longer terms first, so "Pop Art" is not read as "Art").

    Example:
        >>> parse_prompt_terms("a cat, Pop Art, teal and pink, intense colors")["color"]
        ['Teal', 'Pink']
    """
    found: dict[str, list[tuple[int, str]]] = {e: [] for e in ELEMENTS}
    taken = [False] * len(text)
    low = text.lower()
    all_terms = sorted(
        ((t, e) for e in ELEMENTS for t in SUPPORTED_TERMS[e]), key=lambda p: -len(p[0])
    )
    for term, element in all_terms:
        for match in re.finditer(r"(?<![a-z0-9])" + re.escape(term.lower()) + r"(?![a-z0-9])", low):
            if not any(taken[match.start() : match.end()]):
                taken[match.start() : match.end()] = [True] * (match.end() - match.start())
                found[element].append((match.start(), term))
    return {e: list(dict.fromkeys(t for _, t in sorted(v))) for e, v in found.items()}


def subject_of(prompt: str) -> str:
    """The subject of a prompt: its first comma-separated part without style words."""
    head = prompt.split(",")[0]
    for terms in parse_prompt_terms(head).values():
        for term in terms:
            head = re.sub(re.escape(term), "", head, flags=re.IGNORECASE)
    return " ".join(head.split()) or prompt.strip()


class ProceduralGenerator:
    """A `Generator` (see `generation.generator`) backed by the procedural renderer: reads the
    supported terms in the prompt, avoids those of the negative prompt, one image per seed.
    A simulator for evaluation, not a text-to-image model.

    Example:
        >>> gen = ProceduralGenerator()
        >>> images = gen.generate("a harbour, Watercolor, Teal", "Intense", seeds=[0, 1])
    """

    name = "procedural"

    def __init__(self, size: int = 256, renderer: Optional[ProceduralRenderer] = None):
        self.renderer = renderer or ProceduralRenderer(size=size)

    def generate(
        self, prompt: str, negative_prompt: str = "", seeds: Sequence[int] = (0,)
    ) -> list[Image.Image]:
        wanted = parse_prompt_terms(prompt)
        avoid = parse_prompt_terms(negative_prompt or "")
        subject = subject_of(prompt)
        terms = {e: [t for t in wanted[e]] for e in ELEMENTS if wanted[e]}
        return [self.renderer.render(subject, terms, seed=int(s), avoid=avoid).image for s in seeds]


def image_attributes(image: Image.Image) -> Optional[dict[str, str]]:
    """The terms a procedural image was drawn with (from `image.info`), None for other images."""
    raw = getattr(image, "info", {}).get("synthpref")
    if not raw:
        return None
    data = json.loads(raw)
    return {e: data[e] for e in ELEMENTS if e in data}


__all__ = [
    "LAYOUTS",
    "ProceduralGenerator",
    "ProceduralRenderer",
    "Rendered",
    "SUPPORTED_TERMS",
    "image_attributes",
    "layout_for",
    "parse_prompt_terms",
    "subject_of",
    "terms_distinct",
]
