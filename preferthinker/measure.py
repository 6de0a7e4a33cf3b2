"""Pixel measurements of the three profile elements that pixels can show directly: color,
saturation and detail. Used by the analytic assessor (`preferthinker.analytic`) and by tests of
the SynthPref renderer, which draws with the same anchors (named-color hues, saturation and
lightness levels, detail levels), so a term rendered can be measured back.

Example:
    >>> from PIL import Image
    >>> m = measure_image(Image.new("RGB", (64, 64), (255, 105, 180)))
    >>> m["color"], round(m["hue"])
    ('Hot Pink', 330)
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

# Named colors -> hue in degrees (HSV). Standard web / paint values, so the same names mean the
# same hues to a user, the renderer and the analytic assessor. Hueless names (gray, black,
# white) are left out on purpose: pixels cannot tell them from a saturation term.
COLOR_HUES: dict[str, float] = {
    "Red": 0, "Crimson": 348, "Scarlet": 8, "Vermilion": 10, "Coral": 16, "Burnt Orange": 25,
    "Orange": 30, "Amber": 45, "Gold": 51, "Mustard Yellow": 50, "Yellow": 58, "Lemon Yellow": 56,
    "Chartreuse": 90, "Lime Green": 100, "Olive Green": 80, "Green": 120, "Emerald Green": 140,
    "Forest Green": 120, "Mint Green": 150, "Jungle Green": 163, "Sage Green": 100,
    "Turquoise": 174, "Teal": 180, "Cyan": 185, "Aqua": 180, "Sky Blue": 197, "Azure": 210,
    "Cerulean": 196, "Cobalt Blue": 215, "Royal Blue": 225, "Blue": 235, "Navy Blue": 240,
    "Ultramarine": 235, "Indigo": 255, "Violet": 270, "Purple": 280, "Lavender": 270,
    "Plum": 300, "Magenta": 300, "Fuchsia": 300, "Hot Pink": 330, "Pink": 330, "Rose": 340,
    "Burgundy": 345, "Maroon": 0, "Brown": 25, "Beige": 40, "Ochre": 40, "Terracotta": 15,
}

# Names of dark shades (web maroon, navy, ... have HSV value ~0.5). A hue alone cannot tell
# Maroon from Red: these names are given only to images whose colors are dark, so a bright pure
# red is not called Maroon.
DARK_COLORS = frozenset(
    {"Maroon", "Burgundy", "Navy Blue", "Forest Green", "Olive Green", "Indigo", "Brown"})
DARK_MAX_VALUE = 0.75  # measured lightness (85th percentile of V) above which colors are not dark

# Saturation terms -> (HSV saturation, HSV value) of the main colors of an image.
SATURATION_LEVELS: dict[str, tuple[float, float]] = {
    "Muted": (0.32, 0.60),
    "Pastel": (0.30, 0.96),
    "Mid-tone": (0.55, 0.76),
    "Intense": (0.95, 0.92),
    "Vibrant": (0.82, 1.00),
    "Desaturated": (0.20, 0.68),
    "Soft": (0.42, 0.88),
    "Rich": (0.85, 0.50),
    "Dull": (0.25, 0.42),
    "Bright": (0.65, 1.00),
    "Neon": (1.00, 1.00),
    "Earthy": (0.45, 0.55),
}

# Detail terms -> level in [0, 1]: few large smooth forms (0) to many fine textured ones (1).
DETAIL_LEVELS: dict[str, float] = {
    "Smooth": 0.0,
    "Minimal": 0.1,
    "Simplified": 0.22,
    "Selective": 0.36,
    "Realistic": 0.5,
    "Textured": 0.64,
    "Fine": 0.8,
    "Intricate": 0.92,
    "Highly Detailed": 1.0,
}


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised RGB (floats in [0, 1], shape (..., 3)) -> hue in degrees, saturation, value."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    c = v - rgb.min(axis=-1)
    s = np.where(v > 0, c / np.maximum(v, 1e-8), 0.0)
    safe = np.maximum(c, 1e-8)
    h = np.where(
        v == r, ((g - b) / safe) % 6, np.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    h = np.where(c > 0, h * 60.0, 0.0)
    return h, s, v


def hue_distance(a: float, b: float) -> float:
    """Distance of two hues on the color wheel, in degrees (0..180)."""
    d = abs(a - b) % 360
    return min(d, 360 - d)


def _as_array(img: Any, size: int = 256) -> np.ndarray:
    if not isinstance(img, Image.Image):
        img = Image.fromarray(np.asarray(img))
    img = img.convert("RGB")
    if max(img.size) > size:  # measurements are about overall look; 256 px is plenty and fast
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def dominant_hue(rgb: np.ndarray) -> Optional[float]:
    """The main hue, None for gray images: the peak of a saturation-weighted 5-degree hue
    histogram (smoothed), refined to the weighted circular mean of the hues within 7.5 degrees
    of it (a bin's center alone is up to 2.5 degrees off, enough to swap names 5 degrees apart)."""
    h, s, v = rgb_to_hsv(rgb)
    mask = (s > 0.12) & (v > 0.15)
    if mask.mean() < 0.02:
        return None
    hues, weights = h[mask], s[mask]
    hist, _ = np.histogram(hues, bins=72, range=(0, 360), weights=weights)
    smooth = hist + 0.5 * (np.roll(hist, 1) + np.roll(hist, -1))
    peak = float(np.argmax(smooth) * 5 + 2.5)
    offset = (hues - peak + 180.0) % 360.0 - 180.0  # signed distance to the peak, in degrees
    near = np.abs(offset) <= 7.5
    return float((peak + np.average(offset[near], weights=weights[near])) % 360.0)


def nearest_term(value: float, table: Mapping[str, float], names: Optional[Iterable[str]] = None) -> str:
    names = list(names) if names is not None else list(table)
    return min(names, key=lambda n: abs(table[n] - value))


def nearest_color(
    hue: float, names: Optional[Iterable[str]] = None, lightness: Optional[float] = None
) -> str:
    """The named color whose hue is closest (among `names`, default all of `COLOR_HUES`).

    Args:
        hue: degrees.
        names: the names allowed.
        lightness: the colors' measured HSV value; above `DARK_MAX_VALUE` the names of dark
            shades (`DARK_COLORS`) are left out, when another name is allowed.

    Example:
        >>> nearest_color(0.0, ["Maroon", "Scarlet", "Crimson"], lightness=1.0)
        'Scarlet'
        >>> nearest_color(0.0, ["Maroon", "Scarlet", "Crimson"], lightness=0.5)
        'Maroon'
    """
    candidates = [n for n in (names if names is not None else COLOR_HUES) if n in COLOR_HUES]
    if lightness is not None and lightness > DARK_MAX_VALUE:
        candidates = [n for n in candidates if n not in DARK_COLORS] or candidates
    return min(candidates, key=lambda n: hue_distance(COLOR_HUES[n], hue))


def edge_density(rgb: np.ndarray) -> float:
    """Mean absolute luminance gradient (x and y): grows with the number of forms and texture."""
    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return float(np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean())


# Calibration, fitted on SynthPref renders over all media (blur, paper and grout pull measured
# saturation below the palette's): measured S ~ 0.72 x nominal S, measured V ~ nominal V + 0.08,
# and edge density runs ~0.015 (Smooth) to ~0.21 (Intricate). The analytic assessor mostly
# compares two images on the same scale, where only the order matters.
_SAT_SCALE, _VAL_SHIFT = 0.72, 0.08
_EDGE_LOW, _EDGE_HIGH = 0.015, 0.21


def measure_image(
    img: Any,
    colors: Optional[Sequence[str]] = None,
    saturations: Optional[Sequence[str]] = None,
    details: Optional[Sequence[str]] = None,
) -> dict[str, Any]:
    """Measure color, saturation and detail of one image from its pixels.

    Args:
        img: a PIL image (or an HxWx3 uint8 array).
        colors, saturations, details: restrict the names returned to these terms (e.g. the
            vocabulary's); defaults are all known names.

    Returns:
        {"hue": degrees or None, "color": name or None, "saturation_value": 85th percentile of
        S over colored pixels, "lightness": same for V, "saturation": name, "edge_density": float,
        "detail_level": 0..1, "detail": name}

    Example:
        >>> measure_image(img)["saturation"]
        'Intense'
    """
    rgb = _as_array(img)
    hue = dominant_hue(rgb)
    _, s, v = rgb_to_hsv(rgb)
    # Paper-white and ink-black pixels say nothing about the palette's saturation.
    mask = (v > 0.12) & ~((s < 0.06) & (v > 0.9))
    # The 85th percentile reads the palette's main colors rather than blurred or mixed pixels.
    sat = float(np.percentile(s[mask], 85)) if mask.any() else 0.0
    val = float(np.percentile(v[mask], 85)) if mask.any() else float(v.mean())
    sat_names = [n for n in (saturations or SATURATION_LEVELS) if n in SATURATION_LEVELS]
    sat_name = min(
        sat_names,
        key=lambda n: (_SAT_SCALE * SATURATION_LEVELS[n][0] - sat) ** 2
        + 0.5 * (min(1.0, SATURATION_LEVELS[n][1] + _VAL_SHIFT) - val) ** 2,
    ) if sat_names else None
    edges = edge_density(rgb)
    level = float(np.clip((edges - _EDGE_LOW) / (_EDGE_HIGH - _EDGE_LOW), 0, 1))
    detail_names = [n for n in (details or DETAIL_LEVELS) if n in DETAIL_LEVELS]
    return {
        "hue": hue,
        "color": nearest_color(hue, colors, val) if hue is not None and (colors is None or any(c in COLOR_HUES for c in colors)) else None,
        "saturation_value": sat,
        "lightness": val,
        "saturation": sat_name,
        "edge_density": edges,
        "detail_level": level,
        "detail": nearest_term(level, DETAIL_LEVELS, detail_names) if detail_names else None,
    }


__all__ = [
    "COLOR_HUES",
    "DARK_COLORS",
    "DETAIL_LEVELS",
    "SATURATION_LEVELS",
    "dominant_hue",
    "edge_density",
    "hue_distance",
    "measure_image",
    "nearest_color",
    "rgb_to_hsv",
]
