"""Cheap checks before a run loads anything heavy (torch, transformers, diffusers: seconds each).

A typo in `--refs`, a model that is neither a local folder nor in the Hugging Face cache while
the hub is unreachable, or an output folder that cannot be written should fail in well under a
second, not after half a minute of imports and model loading.

Example:
    >>> check_references(Path("./liked"), "--refs")
    >>> check_model("stabilityai/sd-turbo", "generator", "--generator", "model_index.json")
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

from preferthinker.errors import InputError, ModelNotFoundError

HUB_PROBE_TIMEOUT = 2.0  # seconds: the whole missing-model error must come in under 3 s


def check_references(source: Optional[Path], flag: str) -> None:
    """The folder or file exists and holds at least one image file (by extension)."""
    from preferthinker.images import IMAGE_EXTENSIONS, image_paths

    if source is None:
        return
    paths = image_paths(source)  # raises InputError for a missing path
    if not any(path.suffix.lower() in IMAGE_EXTENSIONS for path in paths):
        raise InputError(f"{flag} {source} holds no PNG, JPEG or WebP image")


def check_writable(folder: Path) -> None:
    """A file can be created in `folder` (which exists)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise InputError(
            f"cannot write to the output folder {folder}: {error.strerror or error}"
        ) from None


def _in_hub_cache(repo_id: str, marker: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers and diffusers
        return False
    try:
        return isinstance(try_to_load_from_cache(repo_id, marker), str)
    except Exception:  # an id the hub library rejects: let the loader say why
        return False


def check_model(model: str, what: str, flag: str, marker: str) -> None:
    """`model` is a local folder holding `marker`, or a hub id that is cached or downloadable.

    Args:
        model: a local path or a hub id (`owner/name`).
        what: "assessor" or "generator", for the message.
        flag: the option that names it, for the message.
        marker: the file every such model has (`config.json`, `model_index.json`).

    Raises:
        ModelNotFoundError: a missing folder, a folder without `marker`, or a hub id that is not
            in the local cache while the hub is offline or unreachable (decided within
            `HUB_PROBE_TIMEOUT` seconds).
    """
    from preferthinker.devices import looks_like_local_path
    from preferthinker.engines.transformers_engine import _hub_offline, hub_reachable

    path = Path(model).expanduser()
    if path.exists():
        if not (path / marker).is_file():
            raise ModelNotFoundError(f"{flag} {model} is not a {what} folder (no {marker})")
        return
    if looks_like_local_path(model):
        raise ModelNotFoundError(
            f"{what} folder {model} does not exist; check {flag} "
            f"(`ptgen make-tiny DIR` writes a tiny one to DIR/{what})"
        )
    if _in_hub_cache(model, marker):
        return
    if _hub_offline() or not hub_reachable(timeout=HUB_PROBE_TIMEOUT):
        why = "HF_HUB_OFFLINE is set" if _hub_offline() else "the Hugging Face hub is unreachable"
        raise ModelNotFoundError(
            f"{what} {model!r} is not in the local Hugging Face cache and {why}; download it "
            f"where the hub is reachable, or pass {flag} /path/to/a/local/folder "
            "(`ptgen make-tiny DIR` writes tiny ones)"
        )


def check_assessor(spec: str) -> None:
    """An in-process assessor must be loadable; URLs and `analytic` need nothing here."""
    from preferthinker.engines import backend_for

    if backend_for(spec) == "transformers":
        check_model(spec, "assessor", "--assessor", "config.json")
