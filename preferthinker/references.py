"""A user's reference images, loaded once: what the model sees, where they came from, what was
left out.

`References` is built at the edge (the CLI commands, the ComfyUI node functions, the entry points
of the Python API) and passed down unchanged through the loop, the assessor, the prompt builders
and the profile cache, so no layer loads, checks or converts the images again.

At most `MAX_REFERENCES` images per side reach the model (the authors' prompts and training data
never hold more than 5 per side; every extra image costs hundreds of visual tokens). The first
ones in order are kept (a folder's files are in name order); the rest are *cut*: they are not
read at all, listed in `cut`, and a `ReferencesCutWarning` says so. Files that are not readable
images are *skipped*: listed in `skipped` with the reason, with an `ImageSkippedWarning`.

Example:
    >>> refs = References.load("refs/liked", "refs/disliked")  # doctest: +SKIP
    >>> len(refs.liked), refs.cut  # doctest: +SKIP
    (5, [Left(side='liked', source='refs/liked/06.png', reason='over the cap of 5 per side')])
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from preferthinker.errors import InputError
from preferthinker.images import (
    DEFAULT_MAX_PIXELS,
    ImageSkippedWarning,
    UnreadableImageError,
    image_paths,
    load_image,
)

# The most reference images used per side (liked, disliked): the authors' `[:5]`.
MAX_REFERENCES = 5

SIDES = ("liked", "disliked")


class ReferencesCutWarning(UserWarning):
    """More reference images were given than the model sees; the extra ones were not used."""


@dataclass(frozen=True)
class Left:
    """One reference the model does not see: its side, where it came from, and why."""

    side: str
    source: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"side": self.side, "source": self.source, "reason": self.reason}


@dataclass
class References:
    """The reference images one user gave, as the model sees them.

    Args:
        liked, disliked: RGB PIL images within the pixel budget, at most `max_per_side` each,
            in order (these and only these reach the model and the profile cache key).
        liked_sources, disliked_sources: where each image came from (a path, or "<image N>"
            for an image handed over in memory), parallel to `liked` / `disliked`.
        origin: what the user named per side (a folder, a file, a list of them), for reports.
        skipped: files that are not readable images, with the reason.
        cut: references over the per-side cap (not read, not seen by the model).
        max_per_side, max_pixels: the cap and the pixel budget they were loaded with.

    Build one with `References.load` (paths, folders or PIL images) or `References.coerce`
    (which also accepts a `References` and returns it unchanged).
    """

    liked: list[Any] = field(default_factory=list)
    disliked: list[Any] = field(default_factory=list)
    liked_sources: list[str] = field(default_factory=list)
    disliked_sources: list[str] = field(default_factory=list)
    origin: dict[str, Any] = field(default_factory=dict)
    skipped: list[Left] = field(default_factory=list)
    cut: list[Left] = field(default_factory=list)
    max_per_side: int = MAX_REFERENCES
    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS

    def __bool__(self) -> bool:
        return bool(self.liked)

    @classmethod
    def load(
        cls,
        liked: Any,
        disliked: Any = None,
        *,
        max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
        max_per_side: int = MAX_REFERENCES,
        require_liked: bool = False,
    ) -> "References":
        """Load both sides once: folders, files, lists of them, or PIL images.

        Args:
            liked: the images the user likes (a folder, a file, a list of files/folders/PIL
                images, or None).
            disliked: the images the user dislikes, same forms (optional).
            max_pixels: downscale each image to at most this many pixels (None: full size).
            max_per_side: keep the first this many usable images per side; the rest are cut.
            require_liked: raise when no liked image is usable.

        Raises:
            InputError: a path that does not exist, a side with files but no usable image, or
                no liked image with `require_liked`.

        Example:
            >>> from PIL import Image
            >>> refs = References.load([Image.new("RGB", (8, 8))] * 7)
            >>> len(refs.liked), len(refs.cut)
            (5, 2)
        """
        if not isinstance(max_per_side, int) or max_per_side < 1:
            raise InputError(f"max_per_side must be an int >= 1, got {max_per_side!r}")
        refs = cls(max_per_side=max_per_side, max_pixels=max_pixels)
        for side, given in zip(SIDES, (liked, disliked), strict=True):
            refs._load_side(side, given)
        if require_liked and not refs.liked:
            raise InputError(
                "no liked reference images given; pass --refs DIR with images you like"
            )
        refs._warn()
        return refs

    @classmethod
    def coerce(
        cls,
        liked: Any,
        disliked: Any = None,
        *,
        max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
        max_per_side: int = MAX_REFERENCES,
    ) -> "References":
        """`liked` itself when it is a `References` (then `disliked` must be None), else
        `References.load(liked, disliked, ...)`. The entry point of every function that accepts
        references, so images handed down are never loaded twice.

        Example:
            >>> refs = References.load([])
            >>> References.coerce(refs) is refs
            True
        """
        if isinstance(liked, References):
            if disliked is not None:
                raise InputError("give the disliked images inside the References, not next to it")
            return liked
        return cls.load(liked, disliked, max_pixels=max_pixels, max_per_side=max_per_side)

    @classmethod
    def from_images(
        cls,
        liked: Optional[Sequence[Any]],
        disliked: Optional[Sequence[Any]] = None,
        *,
        max_per_side: int = MAX_REFERENCES,
    ) -> "References":
        """Wrap already-loaded PIL images as they are (checked, not converted or resized); a
        side over the cap keeps its first `max_per_side` images and the cut is reported.

        Example:
            >>> from PIL import Image
            >>> References.from_images([Image.new("RGB", (8, 8))]).liked_sources
            ['<image 1>']
        """
        if not isinstance(max_per_side, int) or max_per_side < 1:
            raise ValueError(f"max_per_side must be an int >= 1, got {max_per_side!r}")
        refs = cls(max_per_side=max_per_side, max_pixels=None)
        for side, given in zip(SIDES, (liked, disliked), strict=True):
            images = check_images(given, f"{side} images")
            names = [f"<image {number}>" for number in range(1, len(images) + 1)]
            setattr(refs, side, images[:max_per_side])
            setattr(refs, f"{side}_sources", names[:max_per_side])
            refs.cut += [
                Left(side, name, f"over the cap of {max_per_side} per side")
                for name in names[max_per_side:]
            ]
        refs._warn()
        return refs

    # -- loading ------------------------------------------------------------------------------

    def _load_side(self, side: str, given: Any) -> None:
        if given is None or (isinstance(given, (list, tuple)) and not given):
            return
        from PIL import Image

        entries = [given] if isinstance(given, (str, Path, Image.Image)) else list(given)
        self.origin[side] = _describe(given)
        images: list[Any] = getattr(self, side)
        sources: list[str] = getattr(self, f"{side}_sources")
        number = 0
        for entry in entries:
            if isinstance(entry, Image.Image):
                number += 1
                items: list[tuple[str, Any]] = [(f"<image {number}>", entry)]
            elif isinstance(entry, (str, Path)):
                items = [(str(path), path) for path in image_paths(entry)]
            else:
                raise InputError(
                    f"{side} images: an image must be a path or a PIL image, "
                    f"got {type(entry).__name__}"
                )
            for source, item in items:
                if len(images) >= self.max_per_side:
                    # Not read: the model would not see it anyway.
                    reason = f"over the cap of {self.max_per_side} per side"
                    self.cut.append(Left(side, source, reason))
                    continue
                try:
                    images.append(load_image(item, self.max_pixels))
                    sources.append(source)
                except UnreadableImageError as error:
                    self.skipped.append(Left(side, source, error.reason))
        if not images:
            skipped = [
                f"{left.source} ({left.reason})" for left in self.skipped if left.side == side
            ]
            why = f" (skipped: {', '.join(skipped[:3])})" if skipped else ""
            raise InputError(
                f"no usable image in the {side} images {self.origin[side]}{why}; "
                "give PNG, JPEG or WebP files"
            )

    def _warn(self) -> None:
        for left in self.skipped:
            warnings.warn(
                f"skipping {left.source}: not a readable image ({left.reason})",
                ImageSkippedWarning,
                stacklevel=3,
            )
        if self.cut:
            warnings.warn(self.cut_message(), ReferencesCutWarning, stacklevel=3)

    # -- reporting ----------------------------------------------------------------------------

    def cut_message(self) -> str:
        """One line saying what the cap left out, e.g. "... 5 liked images used, 2 more left out
        (06.png, 07.png)"."""
        parts = []
        for side in SIDES:
            cut = [left.source for left in self.cut if left.side == side]
            if cut:
                seen = len(getattr(self, side))
                named = ", ".join(cut[:3]) + (f" and {len(cut) - 3} more" if len(cut) > 3 else "")
                parts.append(f"{seen} {side} images used, {len(cut)} more left out ({named})")
        if not parts:
            return ""
        return (
            f"the model sees at most {self.max_per_side} reference images per side: "
            + "; ".join(parts)
        )

    def to_dict(self) -> dict[str, Any]:
        """What `result.json` records: how many images the model saw per side, where they came
        from, and what was skipped and cut.

        Example:
            >>> References.load([]).to_dict()["max_per_side"]
            5
        """
        return {
            "liked": len(self.liked),
            "disliked": len(self.disliked),
            "liked_sources": list(self.liked_sources),
            "disliked_sources": list(self.disliked_sources),
            "origin": dict(self.origin),
            "skipped": [left.to_dict() for left in self.skipped],
            "cut": [left.to_dict() for left in self.cut],
            "max_per_side": self.max_per_side,
            "max_pixels": self.max_pixels,
        }


def _describe(given: Any) -> Union[str, list[str]]:
    from PIL import Image

    if isinstance(given, (str, Path)):
        return str(given)
    if isinstance(given, Image.Image):
        return "<image>"
    return [str(e) if isinstance(e, (str, Path)) else "<image>" for e in given]


def check_images(images: Optional[Sequence[Any]], what: str) -> list[Any]:
    """`images` as a list after checking each is a PIL image (for callers that hand over
    already-loaded images, e.g. the prompt builders).

    Example:
        >>> from PIL import Image
        >>> len(check_images([Image.new("RGB", (2, 2))], "liked images"))
        1
    """
    from PIL import Image

    if images is None:
        return []
    if not isinstance(images, (list, tuple)):
        raise InputError(f"{what} must be a list of PIL images, got {type(images).__name__}")
    for image in images:
        if not isinstance(image, Image.Image):
            raise InputError(
                f"each of the {what} must be a PIL image, got {type(image).__name__}; "
                "load files with preferthinker.images.load_image"
            )
    return list(images)


__all__ = ["MAX_REFERENCES", "Left", "References", "ReferencesCutWarning", "check_images"]
