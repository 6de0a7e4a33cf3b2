"""The on-disk profile cache: a profile is predicted once per reference set and assessor.

Key: sha256 over the content of the liked and the disliked images the model sees (a
`preferthinker.references.References`: at most 5 per side, so images cut by that cap never change
the key), the assessor's name and the prompt version. Image content is
`preferthinker.images.image_fingerprint` (mode, size and
pixels), so renaming or re-saving a file losslessly keeps the key, and any pixel change breaks it.
Each side's fingerprints are sorted: a reference set is a set, the folder order does not matter.

Entries are JSON files `<key>.json` in `~/.cache/ptgen/profiles` (or `$PTGEN_CACHE_DIR`, or the
folder given), written atomically (temporary file + rename) so a crash never leaves half a file.
Every prediction is cached, failed ones included: the assessor decodes greedily, so the same
references give the same unusable output again; `--no-cache` (LoopConfig.cache=False) re-predicts.

Example:
    >>> cache = ProfileCache()
    >>> refs = assessor.references("refs/liked", "refs/disliked")
    >>> key = cache.key(refs, None, assessor.name)
    >>> prediction = cache.get(key) or cache.put(key, assessor.predict_profile(refs))
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from preferthinker.profile import UserProfile
from preferthinker.references import References
from preferthinker.results import ProfilePrediction, Usage

logger = logging.getLogger(__name__)

CACHE_ENV = "PTGEN_CACHE_DIR"
CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """`$PTGEN_CACHE_DIR`, else `$XDG_CACHE_HOME/ptgen/profiles`, else `~/.cache/ptgen/profiles`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ptgen" / "profiles"


def prompt_version() -> str:
    """A version of the profile prompt: `preferthinker.prompts.PROMPT_VERSION` when it exists,
    else a short hash of the system prompt (a changed prompt must not reuse old profiles)."""
    from preferthinker import prompts

    version = getattr(prompts, "PROMPT_VERSION", None)
    if version:
        return str(version)
    text = getattr(prompts, "SYSTEM_PROMPT", "")
    return "sha-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _fingerprint(image: Any) -> str:
    try:
        from preferthinker.images import image_fingerprint
    except ImportError:  # pragma: no cover - older preferthinker: hash the pixels ourselves
        digest = hashlib.sha256(f"{image.mode}:{image.size};".encode())
        digest.update(image.tobytes())
        return digest.hexdigest()
    return image_fingerprint([image])


def _side_digest(images: Optional[Sequence[Any]]) -> str:
    prints = sorted(_fingerprint(image) for image in (images or []))
    return hashlib.sha256(("|".join(prints)).encode()).hexdigest()


class ProfileCache:
    """Predicted profiles on disk, keyed by reference content + assessor + prompt version.

    Args:
        directory: where entries live (None: `default_cache_dir()`); created on first write.
    """

    def __init__(self, directory: Optional[Union[str, Path]] = None):
        self.directory = Path(directory).expanduser() if directory else default_cache_dir()

    def key(
        self,
        liked: Union[References, Sequence[Any]],
        disliked: Optional[Sequence[Any]],
        assessor_name: str,
        version: Optional[str] = None,
    ) -> str:
        """The cache key (hex sha256) for the references the model sees and an assessor name.

        Args:
            liked: a `References` (then `disliked` is None), or lists of PIL images, of which
                the first 5 per side count, as in the prompt.
            disliked: the disliked PIL images, or None.
            assessor_name, version: the assessor and the prompt version (default: current).
        """
        refs = liked if isinstance(liked, References) else References.from_images(liked, disliked)
        digest = hashlib.sha256()
        for part in (
            f"format={CACHE_FORMAT}",
            "liked=" + _side_digest(refs.liked),
            "disliked=" + _side_digest(refs.disliked),
            "assessor=" + assessor_name,
            "prompt=" + (version or prompt_version()),
        ):
            digest.update(part.encode("utf-8") + b"\n")
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> Optional[ProfilePrediction]:
        """The cached prediction, or None (missing or unreadable entries are misses)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return ProfilePrediction(
                profile=UserProfile.from_dict(data["profile"]),
                status=data["status"],
                raw_text=data.get("raw_text", ""),
                issues=list(data.get("issues", [])),
                attempts=int(data.get("attempts", 1)),
                usage=Usage(),  # nothing was spent on this run
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("ignoring unreadable profile cache entry %s: %s", path, error)
            return None

    def put(
        self, key: str, prediction: ProfilePrediction, meta: Optional[dict] = None
    ) -> ProfilePrediction:
        """Store `prediction` atomically; returns it unchanged."""
        data = prediction.to_dict()
        data["key"] = key
        data["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        data["meta"] = meta or {}
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{key[:12]}-", suffix=".tmp", dir=self.directory
        )
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=2)
            os.replace(temporary, self.path(key))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return prediction

    def clear(self) -> int:
        """Delete every entry; returns how many were deleted."""
        count = 0
        if self.directory.is_dir():
            for path in self.directory.glob("*.json"):
                path.unlink(missing_ok=True)
                count += 1
        return count
