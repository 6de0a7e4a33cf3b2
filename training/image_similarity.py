"""The cache of images rendered for the prediction reward; the image similarity it uses.

The similarity code itself (DreamSim, the colour-statistics fallback, `create_image_similarity`)
lives in `preferthinker/image_similarity.py`, the one module that the similarity assessor, the
hybrid pre-filter, `ptgen score` and this reward share; its names are re-exported here so that
`from training.image_similarity import create_image_similarity` keeps working.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from PIL import Image

from preferthinker.image_similarity import (  # noqa: F401 - the reward's public names
    IMAGE_SIMILARITY_KINDS,
    DreamSimSimilarity,
    FallbackImageSimilarity,
    ImageSimilarity,
    create_image_similarity,
    fallback_image_similarity,
    image_statistics,
)


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

    def get_or_render(
        self, key: str, render: Callable[[], Sequence[Image.Image]]
    ) -> list[Image.Image]:
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
