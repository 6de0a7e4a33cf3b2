"""ComfyUI IMAGE tensors <-> PIL images.

A ComfyUI IMAGE is a float tensor of shape (batch, height, width, channels) with values in
0..1 and 3 channels (RGB). The library works on RGB `PIL.Image` lists, so every node converts at
its edges with these two functions. torch is imported inside them: importing this module is free.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from preferthinker.errors import InputError


def tensor_to_pils(images: Any, what: str = "images") -> list:
    """Split an IMAGE batch into RGB PIL images (one per batch item).

    Accepts (B, H, W, C) and a single (H, W, C) image; C may be 1 (gray), 3 (RGB) or 4 (RGBA,
    alpha dropped). Values are clamped to 0..1 and rounded to 8 bits.

    Args:
        images: a torch tensor (or anything `numpy.asarray` accepts) in ComfyUI's layout.
        what: how error messages name the input.

    Example:
        >>> pils = tensor_to_pils(torch.rand(3, 64, 48, 3))  # doctest: +SKIP
        >>> len(pils), pils[0].size
        (3, (48, 64))
    """
    import numpy as np
    from PIL import Image

    if images is None:
        raise InputError(f"{what}: no IMAGE connected")
    if hasattr(images, "detach"):
        array = images.detach().to("cpu").float().numpy()
    else:
        array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        raise InputError(
            f"{what}: expected an IMAGE of shape (batch, height, width, 3), "
            f"got {tuple(array.shape)}"
        )
    if array.shape[0] == 0:
        raise InputError(f"{what}: the IMAGE batch is empty")
    pixels = np.clip(np.rint(np.nan_to_num(array) * 255.0), 0, 255).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    elif pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    return [Image.fromarray(np.ascontiguousarray(item)) for item in pixels]


def pils_to_tensor(pils: Sequence[Any], size: Optional[tuple[int, int]] = None) -> Any:
    """Stack PIL images into one IMAGE batch: float32, (B, H, W, 3), values 0..1, on the CPU.

    All images must have one size (a ComfyUI batch cannot mix sizes) unless `size` (width,
    height) is given: each image is then scaled to cover it and center-cropped.

    Example:
        >>> pils_to_tensor([Image.new("RGB", (48, 64))]).shape  # doctest: +SKIP
        torch.Size([1, 64, 48, 3])
    """
    import numpy as np
    import torch

    if not pils:
        raise InputError("no images to put in an IMAGE batch")
    images = [image.convert("RGB") for image in pils]
    if size is not None:
        images = [fit_cover(image, size) for image in images]
    sizes = {image.size for image in images}
    if len(sizes) > 1:
        raise InputError(
            f"images of different sizes {sorted(sizes)} cannot share one IMAGE batch; "
            "resize them first"
        )
    arrays = [np.asarray(image, dtype=np.float32) / 255.0 for image in images]
    return torch.from_numpy(np.stack(arrays, axis=0))


def fit_cover(image: Any, size: tuple[int, int]) -> Any:
    """Scale `image` to cover `size` (width, height), keeping its aspect ratio, then center-crop."""
    from PIL import Image

    width, height = size
    if image.size == (width, height):
        return image
    scale = max(width / image.width, height / image.height)
    resized = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))),
        Image.Resampling.LANCZOS,
    )
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def select(images: Any, indices: Sequence[int]) -> Any:
    """The batch items at `indices`, in that order (an IMAGE batch again)."""
    import torch

    return images[torch.as_tensor(list(indices), dtype=torch.long)]
