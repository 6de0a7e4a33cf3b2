"""Image similarity for the prediction reward, and the cache of images rendered for it.

The paper compares images generated from the predicted profile with images generated from the
true profile using DreamSim. DreamSim downloads its checkpoints at run time, so it is optional:
`create_image_similarity("auto")` uses it when it is installed and loads, and otherwise
`fallback_image_similarity`, a colour-statistics comparison written here (no weights at all).

`fallback_image_similarity` compares what the five profile elements change in a picture and what
pixels can show: hue (saturation-weighted histogram), saturation and brightness histograms, a
gradient-magnitude histogram (fine vs. smooth detail) and a coarse 4x4 colour layout. It is a
crude stand-in for a learned perceptual metric: it knows nothing about art style or medium beyond
their colour and texture statistics. Reports name which one ran (`ImageSimilarity.name`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
from PIL import Image

from preferthinker.errors import InputError

logger = logging.getLogger(__name__)

_EMBED_SIZE = 64
_HUE_BINS, _SAT_BINS, _VAL_BINS, _GRAD_BINS = 18, 8, 8, 8
# How much each statistic counts in the fallback similarity (sums to 1).
_PART_WEIGHTS = {"hue": 0.3, "saturation": 0.2, "value": 0.15, "gradient": 0.2, "layout": 0.15}

IMAGE_SIMILARITY_KINDS = ("auto", "dreamsim", "fallback")


def image_statistics(image: Image.Image) -> dict[str, np.ndarray]:
    """The colour statistics `fallback_image_similarity` compares, each histogram summing to 1.

    Args:
        image: any PIL image (converted to RGB and resized to 64x64 first).

    Example:
        >>> stats = image_statistics(Image.new("RGB", (32, 32), "red"))
        >>> round(float(stats["hue"].sum()), 3)
        1.0
    """
    rgb = image.convert("RGB").resize((_EMBED_SIZE, _EMBED_SIZE), Image.BILINEAR)
    hsv = np.asarray(rgb.convert("HSV"), dtype=np.float64) / 255.0
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    # Grey pixels have no meaningful hue: weight each hue vote by how colourful the pixel is.
    hue_weights = sat * val
    hue_hist, _ = np.histogram(hue, bins=_HUE_BINS, range=(0.0, 1.0), weights=hue_weights)
    if hue_hist.sum() <= 1e-9:
        hue_hist = np.ones(_HUE_BINS)  # an all-grey image: no hue preference at all
    sat_hist, _ = np.histogram(sat, bins=_SAT_BINS, range=(0.0, 1.0))
    val_hist, _ = np.histogram(val, bins=_VAL_BINS, range=(0.0, 1.0))
    grey = np.asarray(rgb.convert("L"), dtype=np.float64) / 255.0
    gy, gx = np.gradient(grey)
    magnitude = np.clip(np.hypot(gx, gy) * 4.0, 0.0, 1.0)  # x4: typical edges land mid-range
    grad_hist, _ = np.histogram(magnitude, bins=_GRAD_BINS, range=(0.0, 1.0))
    layout = np.asarray(rgb.resize((4, 4), Image.BOX), dtype=np.float64) / 255.0

    def norm(hist: np.ndarray) -> np.ndarray:
        return hist / max(hist.sum(), 1e-12)

    return {
        "hue": norm(hue_hist),
        "saturation": norm(sat_hist),
        "value": norm(val_hist),
        "gradient": norm(grad_hist),
        "layout": layout,
    }


def _statistics_similarity(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    score = 0.0
    for part, weight in _PART_WEIGHTS.items():
        if part == "layout":
            similarity = 1.0 - float(np.abs(a[part] - b[part]).mean())
        else:  # histogram intersection: 1 for identical distributions, 0 for disjoint ones
            similarity = float(np.minimum(a[part], b[part]).sum())
        score += weight * similarity
    return float(min(max(score, 0.0), 1.0))


def fallback_image_similarity(a: Image.Image, b: Image.Image) -> float:
    """Colour-statistics similarity of two images in [0, 1] (1 = identical statistics).

    The stand-in for DreamSim when DreamSim is not installed; see the module docstring for what
    it measures and what it cannot see.

    Example:
        >>> red, blue = Image.new("RGB", (32, 32), "red"), Image.new("RGB", (32, 32), "blue")
        >>> fallback_image_similarity(red, red) > fallback_image_similarity(red, blue)
        True
    """
    return _statistics_similarity(image_statistics(a), image_statistics(b))


class ImageSimilarity:
    """A named image-similarity function over lists of images (mean over matched pairs)."""

    name = "image-similarity"

    def pair(self, a: Image.Image, b: Image.Image) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, images_a: Sequence[Image.Image], images_b: Sequence[Image.Image]) -> float:
        """Mean similarity of images_a[i] and images_b[i] (same seeds rendered from two profiles)."""
        if not images_a or not images_b:
            raise ValueError("image similarity needs at least one image on each side")
        pairs = list(zip(images_a, images_b))
        return float(sum(self.pair(a, b) for a, b in pairs) / len(pairs))


class FallbackImageSimilarity(ImageSimilarity):
    """`fallback_image_similarity` as an `ImageSimilarity`."""

    name = "fallback_image_similarity"

    def pair(self, a: Image.Image, b: Image.Image) -> float:
        return fallback_image_similarity(a, b)


class DreamSimSimilarity(ImageSimilarity):
    """DreamSim (Fu et al. 2023) perceptual similarity: 1 - DreamSim distance, clipped to [0, 1].

    Needs the `dreamsim` package and its checkpoint (downloaded on first use into `cache_dir`).
    """

    name = "dreamsim"

    def __init__(self, device: Optional[str] = None, cache_dir: Optional[str] = None):
        import torch
        from dreamsim import dreamsim

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        kwargs = {"pretrained": True, "device": self.device}
        if cache_dir:
            kwargs["cache_dir"] = cache_dir
        self.model, self.preprocess = dreamsim(**kwargs)
        self._lock = threading.Lock()

    def pair(self, a: Image.Image, b: Image.Image) -> float:
        import torch

        with self._lock, torch.no_grad():
            x = self.preprocess(a.convert("RGB")).to(self.device)
            y = self.preprocess(b.convert("RGB")).to(self.device)
            distance = float(self.model(x, y).item())
        return float(min(max(1.0 - distance, 0.0), 1.0))


def create_image_similarity(kind: str = "auto", device: Optional[str] = None,
                            cache_dir: Optional[str] = None) -> ImageSimilarity:
    """Build the image similarity the prediction reward uses.

    Args:
        kind: "dreamsim" (error when it cannot load), "fallback" (colour statistics), or "auto"
            (DreamSim when it loads, else the fallback, with a warning that names the reason).
        device: torch device for DreamSim.
        cache_dir: where DreamSim keeps its checkpoint.

    Example:
        >>> create_image_similarity("fallback").name
        'fallback_image_similarity'
    """
    if kind not in IMAGE_SIMILARITY_KINDS:
        raise InputError(f"unknown image similarity {kind!r}; valid: {', '.join(IMAGE_SIMILARITY_KINDS)}")
    if kind == "fallback":
        return FallbackImageSimilarity()
    try:
        return DreamSimSimilarity(device=device, cache_dir=cache_dir)
    except Exception as error:  # ImportError, or a failed checkpoint download
        if kind == "dreamsim":
            raise InputError(
                f"DreamSim could not be loaded ({type(error).__name__}: {error}); "
                "`pip install dreamsim` with network access, or set image_similarity: fallback"
            ) from None
        logger.warning("DreamSim unavailable (%s: %s); using fallback_image_similarity",
                       type(error).__name__, str(error).splitlines()[0] if str(error) else "")
        return FallbackImageSimilarity()


def render_key(generator: str, prompt: str, negative_prompt: str, seeds: Sequence[int]) -> str:
    """The cache key of one rendering request (sha256 of everything that changes the images)."""
    text = "\x1f".join([generator, prompt, negative_prompt, ",".join(str(s) for s in seeds)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ImageCache:
    """Images already rendered, by `render_key`: an in-memory LRU, optionally backed by a folder.

    The disk copy survives restarts (PNG files named by key), so a resumed or repeated GRPO run
    never renders the same profile twice. Thread-safe.

    Example:
        >>> cache = ImageCache(max_items=2)
        >>> cache.put("k", [Image.new("RGB", (8, 8))]); len(cache.get("k"))
        1
    """

    def __init__(self, max_items: int = 256, directory: Optional[Union[str, Path]] = None):
        if max_items < 0:
            raise ValueError(f"max_items must be >= 0, got {max_items}")
        self.max_items = max_items
        self.directory = Path(directory) if directory else None
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._items: "OrderedDict[str, list[Image.Image]]" = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _disk_paths(self, key: str) -> list[Path]:
        assert self.directory is not None
        return sorted(self.directory.glob(f"{key}-*.png"))

    def get(self, key: str) -> Optional[list[Image.Image]]:
        """The cached images, or None (counted as a miss)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return list(self._items[key])
            if self.directory:
                paths = self._disk_paths(key)
                if paths:
                    images = []
                    for path in paths:
                        with Image.open(path) as image:
                            images.append(image.convert("RGB"))
                    self._remember(key, images)
                    self.hits += 1
                    return list(images)
            self.misses += 1
            return None

    def put(self, key: str, images: Sequence[Image.Image]) -> None:
        """Store images under key (memory, and disk when a directory is set; atomic writes)."""
        images = [image.convert("RGB") for image in images]
        with self._lock:
            self._remember(key, images)
            if self.directory and not self._disk_paths(key):
                for index, image in enumerate(images):
                    path = self.directory / f"{key}-{index:02d}.png"
                    buffer = io.BytesIO()
                    image.save(buffer, format="PNG")
                    tmp = path.with_suffix(".png.tmp")
                    tmp.write_bytes(buffer.getvalue())
                    tmp.replace(path)

    def _remember(self, key: str, images: list[Image.Image]) -> None:
        if self.max_items == 0:
            return
        self._items[key] = images
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def get_or_render(self, key: str, render: Callable[[], Sequence[Image.Image]]) -> list[Image.Image]:
        """Cached images for key, rendering (once) on a miss."""
        images = self.get(key)
        if images is None:
            images = list(render())
            if not images:
                raise ValueError("the generator returned no images")
            self.put(key, images)
        return images

    def __len__(self) -> int:
        return len(self._items)
