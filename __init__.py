"""ComfyUI entry point of the ptgen repository (clone it into ComfyUI/custom_nodes/).

ComfyUI imports this file as a package and reads NODE_CLASS_MAPPINGS (V1) or calls
comfy_entrypoint (V3). Both come from `comfyui_nodes`, imported on first access so that loading
this file costs nothing and pytest/setuptools, which never import it, are unaffected.
When ptgen is not pip-installed, the repository folder is appended to sys.path so that
`preferthinker`, `generation` and `comfyui_nodes` import from this clone.
"""

import importlib
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_EXPORTS = ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "comfy_entrypoint")
__all__ = list(_EXPORTS)


def _nodes_module():
    if importlib.util.find_spec("preferthinker") is None and _HERE not in sys.path:
        sys.path.append(_HERE)
    return importlib.import_module("comfyui_nodes")


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(_nodes_module(), name)
        globals()[name] = value  # resolve once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
