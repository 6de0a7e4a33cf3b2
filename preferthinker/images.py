"""Loading user images: any format Pillow opens, any mode, turned into RGB within a pixel budget.

Paths become images here, at the edge of the library; everything inside works on RGB
`PIL.Image.Image`. Users hand us whatever is in their folders, so this module is tolerant where
that is safe (transparency, 16-bit, palette, EXIF rotation, huge images) and loud where it is not
(a missing path is an error; a file that is not an image is skipped with a warning that names it;
a folder with nothing usable is an error).
"""

from __future__ import annotations

import hashlib
import math
import warnings
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from PIL import Image, ImageOps, UnidentifiedImageError

from preferthinker.errors import InputError

# A 1024x1024 image: enough detail for a VLM judging style, colour and medium; bigger images
# only cost visual tokens (Qwen2.5-VL spends one token per 28x28 pixels).
DEFAULT_MAX_PIXELS = 1024 * 1024

# Extensions we expect; other files in a folder are still tried (Pillow sniffs content), and
# skipped with a warning when they are not images.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")

ImageSource = Union[str, Path, Image.Image]


class ImageSkippedWarning(UserWarning):
    """A file that was skipped because it is not a readable image."""


class UnreadableImageError(InputError):
    """A file that exists but is not a readable image; `reason` says why (for the skip warning)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(
            f"{path} is not a readable image ({reason}); give a PNG, JPEG or WebP file"
        )
        self.path = path
        self.reason = reason


def image_paths(source: Union[str, Path, Sequence[Union[str, Path]]]) -> list[Path]:
    """The files a source names: a folder's files (sorted by name, not recursive, hidden files
    ignored), a single file, or each entry of a list (folders expanded the same way).

    The files are not checked for being images; `load_images` does that and warns.

    Args:
        source: a folder, a file, or a list of folders/files.

    Raises:
        InputError: a path that does not exist (the message names it).

    Example:
        >>> image_paths("refs/liked")  # doctest: +SKIP
        [PosixPath('refs/liked/01.png'), PosixPath('refs/liked/02.jpg')]
    """
    if isinstance(source, (str, Path)):
        entries: Iterable[Union[str, Path]] = [source]
    else:
        entries = source
    paths: list[Path] = []
    for entry in entries:
        path = Path(entry).expanduser()
        if not path.exists():
            raise InputError(f"image path not found: {path}; give an existing file or folder")
        if path.is_dir():
            paths.extend(
                sorted(
                    (
                        child
                        for child in path.iterdir()
                        if child.is_file() and not child.name.startswith(".")
                    ),
                    key=lambda child: child.name,
                )
            )
        else:
            paths.append(path)
    return paths


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer and float grayscale to 8 bits (Pillow's convert() clips instead,
    which turns most 16-bit images white)."""
    import numpy as np

    array = np.asarray(image)
    if image.mode.startswith("I;16"):
        scaled = array.astype(np.float64) / 257.0
    elif image.mode == "I":
        array = np.clip(array.astype(np.float64), 0, None)
        # Mode I comes from 16-bit PNG/TIFF (0..65535) or from convert("I") of 8-bit data (0..255).
        scaled = array / 257.0 if array.max(initial=0) > 255 else array
    else:  # "F": floats in 0..1 (normalised) or 0..255
        array = np.nan_to_num(array.astype(np.float64))
        scaled = array * 255.0 if array.max(initial=0) <= 1.0 else array
    gray = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    return gray.convert("RGB")


def _on_white(image: Image.Image) -> Image.Image:
    """Composite an image with alpha over a white background (transparent pixels become white,
    which is how image viewers show them to the user whose taste we model)."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: alpha composited on white, palettes with transparency
    honoured, 16-bit and float grayscale scaled to 8 bits.

    Example:
        >>> to_rgb(Image.new("LA", (4, 4), (0, 0))).getpixel((0, 0))
        (255, 255, 255)
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _on_white(image)
    if mode == "P":
        if "transparency" in image.info:
            return _on_white(image.convert("RGBA"))
        return image.convert("RGB")
    if mode.startswith("I") or mode == "F":
        return _sixteen_bit_to_rgb(image)
    # L, 1, CMYK, YCbCr, LAB, HSV: Pillow's conversions are correct for these.
    return image.convert("RGB")


def fit_pixels(image: Image.Image, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Downscale so width*height <= max_pixels, keeping the aspect ratio. None: no limit.

    Example:
        >>> fit_pixels(Image.new("RGB", (4000, 2000)), 1024 * 1024).size
        (1448, 724)
    """
    if max_pixels is None:
        return image
    width, height = image.size
    if width * height <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (width * height))
    new_size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return image.resize(new_size, Image.Resampling.LANCZOS)


def _check_max_pixels(max_pixels: Optional[int]) -> None:
    if max_pixels is not None and (not isinstance(max_pixels, int) or max_pixels < 1):
        raise InputError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")


def _open(path: Path, max_pixels: Optional[int]) -> Image.Image:
    """Open and fully decode a file (a truncated file fails here, not later in the model)."""
    with Image.open(path) as image:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)  # animated GIF/WebP: the first frame stands for the image
        if max_pixels is not None and image.format == "JPEG":
            # Let libjpeg decode at 1/2, 1/4, 1/8 scale when the image is far over budget.
            scale = math.sqrt(max_pixels / max(1, image.width * image.height))
            if scale < 1:
                image.draft("RGB", (int(image.width * scale) + 1, int(image.height * scale) + 1))
        image.load()
        # exif_transpose returns a copy (or the image); copy() detaches it from the closed file.
        return ImageOps.exif_transpose(image).copy()


def load_image(source: ImageSource, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Load one image as RGB: EXIF orientation applied, mode converted, downscaled to the budget.

    Args:
        source: a file path or a PIL image.
        max_pixels: pixel budget (width*height); larger images are downscaled keeping the
            aspect ratio. None keeps the full size.

    Raises:
        InputError: the path does not exist, or the file is not a readable image.

    Example:
        >>> load_image("refs/liked/01.png").mode  # doctest: +SKIP
        'RGB'
    """
    _check_max_pixels(max_pixels)
    if isinstance(source, Image.Image):
        image = source
        if image.getexif().get(0x0112, 1) != 1:
            image = ImageOps.exif_transpose(image)
    elif isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.exists():
            raise InputError(f"image not found: {path}; check the path")
        if path.is_dir():
            raise InputError(f"{path} is a folder, not an image; use load_images for folders")
        try:
            image = _open(path, max_pixels)
        except UnidentifiedImageError:
            raise UnreadableImageError(path, "not an image format Pillow knows") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UnreadableImageError(path, reason) from None
    else:
        raise InputError(f"an image must be a path or a PIL image, got {type(source).__name__}")
    return fit_pixels(to_rgb(image), max_pixels)


def load_images(
    sources: Union[str, Path, Sequence[ImageSource]],
    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
    what: str = "reference images",
) -> list[Image.Image]:
    """Load a folder or a list of files/PIL images as RGB images; skip files that are not images.

    Args:
        sources: a folder (its files sorted by name, non-recursive, hidden files ignored), one
            file, or a list of files, folders and PIL images.
        max_pixels: pixel budget per image (see `load_image`).
        what: what these images are, for the error message ("liked images", ...).

    Returns:
        The usable images, in order.

    Raises:
        InputError: a path that does not exist, or no usable image at all.

    Example:
        >>> liked = load_images("refs/liked", what="liked images")  # doctest: +SKIP
    """
    _check_max_pixels(max_pixels)
    if isinstance(sources, (str, Path, Image.Image)):
        entries: list = [sources]
    else:
        entries = list(sources)
    images: list[Image.Image] = []
    for entry in entries:
        if isinstance(entry, Image.Image):
            images.append(load_image(entry, max_pixels))
            continue
        if not isinstance(entry, (str, Path)):
            raise InputError(
                f"{what}: an image must be a path or a PIL image, got {type(entry).__name__}"
            )
        for path in image_paths(entry):
            try:
                images.append(load_image(path, max_pixels))
            except UnreadableImageError as error:
                warnings.warn(
                    f"skipping {path}: not a readable image ({error.reason})",
                    ImageSkippedWarning,
                    stacklevel=2,
                )
    if not images:
        if isinstance(sources, (str, Path)):
            described: object = sources
        else:
            described = [
                str(e) if not isinstance(e, Image.Image) else "<PIL image>" for e in entries
            ]
        raise InputError(f"no usable image in {what} {described}; give PNG, JPEG or WebP files")
    return images


def image_fingerprint(images: Sequence[Image.Image]) -> str:
    """A sha256 hex digest of the images' sizes, modes and pixels, in order (for cache keys).

    Example:
        >>> black = Image.new("RGB", (2, 2))
        >>> image_fingerprint([black]) == image_fingerprint([Image.new("RGB", (2, 2))])
        True
    """
    digest = hashlib.sha256()
    digest.update(f"n={len(images)};".encode())
    for image in images:
        digest.update(f"{image.mode}:{image.size[0]}x{image.size[1]};".encode())
        digest.update(image.tobytes())
    return digest.hexdigest()


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageSkippedWarning",
    "UnreadableImageError",
    "fit_pixels",
    "image_fingerprint",
    "image_paths",
    "load_image",
    "load_images",
    "to_rgb",
]
