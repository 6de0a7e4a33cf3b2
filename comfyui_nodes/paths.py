"""Where a folder or file typed into a node lives: ComfyUI's input directory, as for core nodes.

Inside ComfyUI, a relative path means a path inside ComfyUI's input directory
(`folder_paths.get_input_directory()`), and ComfyUI's annotated forms `name [input]`,
`name [output]` and `name [temp]` pick that directory instead (through `folder_paths`' own
helper, so they mean what they mean to core nodes). Absolute paths (and `~/...`) are used as
they are. Outside ComfyUI (plain Python use of `comfyui_nodes`) a relative path is relative to
the current directory, like everywhere else in ptgen.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Optional

from preferthinker.errors import InputError


def comfy_folder_paths() -> Optional[ModuleType]:
    """ComfyUI's `folder_paths` module when running inside ComfyUI, else None.

    Only a module ComfyUI already imported counts (it does so before loading custom nodes):
    importing one from elsewhere would run ComfyUI's command-line parsing outside ComfyUI.
    """
    module = sys.modules.get("folder_paths")
    return module if module is not None and hasattr(module, "get_input_directory") else None


def _split(value: str, folder_paths: ModuleType) -> tuple[str, Path]:
    """(name without its annotation, the directory it is relative to)."""
    name, base = value, None
    annotated = getattr(folder_paths, "annotated_filepath", None)
    if annotated is not None:
        name, base = annotated(value)
    return name.strip(), Path(base if base is not None else folder_paths.get_input_directory())


def _resolve(text: str) -> tuple[Path, Optional[Path]]:
    """(the path, the directory a relative path was taken from: None for absolute paths)."""
    folder_paths = comfy_folder_paths()
    if folder_paths is None:
        name, base = text, Path.cwd()
    else:
        name, base = _split(text, folder_paths)
    path = Path(name).expanduser()
    return (path, None) if path.is_absolute() else (base / path, base)


def resolve_input_path(value: str) -> Path:
    """The path a node's folder/file input names (see the module docstring).

    Args:
        value: what the user typed, e.g. `candidates`, `renders [output]` or `/data/candidates`.

    Returns:
        The path to read; not checked for existence (`find_input_path` does that).

    Example:
        >>> resolve_input_path("/data/candidates")
        PosixPath('/data/candidates')
    """
    return _resolve(value.strip())[0]


def find_input_path(value: str, field: str) -> Path:
    """`resolve_input_path(value)`, which must exist; the error names the directory searched.

    Args:
        value: the input's text.
        field: the node input's name, for the message (e.g. "folder").

    Raises:
        InputError: an empty value, or a path that does not exist.

    Example:
        >>> find_input_path("candidates", "folder")  # doctest: +SKIP
        PosixPath('/opt/ComfyUI/input/candidates')
    """
    text = (value or "").strip()
    if not text:
        raise InputError(f"{field}: give a path (relative to ComfyUI's input folder, or absolute)")
    path, base = _resolve(text)
    if path.exists():
        return path
    if base is None:
        raise InputError(f"{field}: {path} does not exist")
    if comfy_folder_paths() is not None:
        hint = ("give a path relative to ComfyUI's input folder, `name [output]` for its output "
                "folder, or an absolute path")
    else:
        hint = "give a path relative to the current folder, or an absolute path"
    raise InputError(f"{field}: {text!r} not found in {base} ({path} does not exist); {hint}")


__all__ = ["comfy_folder_paths", "find_input_path", "resolve_input_path"]
