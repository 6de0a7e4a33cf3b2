"""ComfyUI custom nodes for ptgen: thin classes over preferthinker and generation.

One set of node definitions (`comfyui_nodes.nodes.NODE_SPECS`) yields both node schemas:

- V1: `NODE_CLASS_MAPPINGS` / `NODE_DISPLAY_NAME_MAPPINGS`, which every ComfyUI version loads;
- V3: `comfy_entrypoint()` returning a `ComfyExtension` whose nodes are `io.ComfyNode` classes.

Inside a ComfyUI that has `comfy_api` (V3), `NODE_CLASS_MAPPINGS` holds the V3 classes too (ComfyUI
runs V3 classes found there), so the nodes behave the same whichever entry point a ComfyUI reads.
Importing this package imports neither torch nor transformers: models load when a node runs.
"""

from __future__ import annotations

from typing import Any, Optional

from comfyui_nodes.nodes import NODE_SPECS, NODE_SPECS_BY_KEY
from comfyui_nodes.spec import make_v1_class, make_v3_class

_V3_CLASSES: Optional[list[type]] = None


def comfy_io() -> Optional[Any]:
    """`comfy_api.latest.io` when running inside a ComfyUI that has the V3 API, else None."""
    try:
        from comfy_api.latest import io  # noqa: PLC0415 - only exists inside ComfyUI
    except Exception:  # noqa: BLE001 - any failure means: no V3 here
        return None
    return io


def v1_classes() -> dict[str, type]:
    """The V1 node classes, by node key."""
    return {spec.key: make_v1_class(spec) for spec in NODE_SPECS}


def v3_classes() -> list[type]:
    """The V3 node classes (built once); raises ImportError outside ComfyUI."""
    global _V3_CLASSES
    if _V3_CLASSES is None:
        io = comfy_io()
        if io is None:
            raise ImportError("comfy_api is not importable: the V3 node schema needs ComfyUI")
        customs: dict[str, Any] = {}
        _V3_CLASSES = [make_v3_class(spec, io, customs) for spec in NODE_SPECS]
    return list(_V3_CLASSES)


def node_class_mappings() -> dict[str, type]:
    """V3 classes where `comfy_api` imports, V1 classes elsewhere."""
    if comfy_io() is not None:
        return {cls.SPEC.key: cls for cls in v3_classes()}
    return v1_classes()


async def comfy_entrypoint() -> Any:
    """The V3 entry point: a `ComfyExtension` listing the ptgen nodes."""
    from comfy_api.latest import ComfyExtension

    nodes = v3_classes()

    class PTGenExtension(ComfyExtension):
        async def get_node_list(self) -> list[type]:
            return nodes

    return PTGenExtension()


NODE_CLASS_MAPPINGS: dict[str, type] = node_class_mappings()
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {spec.key: spec.display_name for spec in NODE_SPECS}

__all__ = [
    "NODE_CLASS_MAPPINGS",
    "NODE_DISPLAY_NAME_MAPPINGS",
    "NODE_SPECS",
    "NODE_SPECS_BY_KEY",
    "comfy_entrypoint",
    "v1_classes",
    "v3_classes",
]
