"""Build and check ComfyUI workflows that use the ptgen nodes, in API and UI format.

ComfyUI stores a graph in two JSON forms:
- API format (what `POST /prompt` takes): `{node_id: {"class_type", "inputs"}}`, where a linked
  input is `[source_node_id, output_index]` and a widget input is its value;
- UI format (what the editor saves and loads): `{"nodes": [...], "links": [...]}`, where each
  link is `[link_id, from_node, from_slot, to_node, to_slot, type]` and widget values are listed
  per node in `widgets_values`.

`Graph` builds both forms from one description (used for `examples/comfyui/`), and
`check_api_workflow` / `check_ui_workflow` verify a workflow against the ptgen node definitions
and `CORE_NODES`, the core ComfyUI nodes the examples use, so a renamed input or output of ours
cannot leave a broken example behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from comfyui_nodes.nodes import NODE_SPECS_BY_KEY
from comfyui_nodes.spec import BUILTIN_TYPES, COMBO

WIDGET_TYPES = {"STRING", "INT", "FLOAT", "BOOLEAN", COMBO}


@dataclass(frozen=True)
class Slot:
    """One input of a node signature: its name, type, whether it is a widget, whether optional."""

    name: str
    type: str
    widget: bool
    optional: bool = False


# Core ComfyUI nodes the examples use: inputs in widget order, then output types.
# (Checked against ComfyUI 0.3.64's nodes.py; see docs/comfyui.md.)
CORE_NODES: dict[str, tuple[tuple[Slot, ...], tuple[str, ...]]] = {
    "CheckpointLoaderSimple": ((Slot("ckpt_name", COMBO, True),), ("MODEL", "CLIP", "VAE")),
    "CLIPTextEncode": (
        (Slot("text", "STRING", True), Slot("clip", "CLIP", False)),
        ("CONDITIONING",),
    ),
    "EmptyLatentImage": (
        (Slot("width", "INT", True), Slot("height", "INT", True), Slot("batch_size", "INT", True)),
        ("LATENT",),
    ),
    "KSampler": (
        (
            Slot("model", "MODEL", False),
            Slot("seed", "INT", True),
            Slot("steps", "INT", True),
            Slot("cfg", "FLOAT", True),
            Slot("sampler_name", COMBO, True),
            Slot("scheduler", COMBO, True),
            Slot("positive", "CONDITIONING", False),
            Slot("negative", "CONDITIONING", False),
            Slot("latent_image", "LATENT", False),
            Slot("denoise", "FLOAT", True),
        ),
        ("LATENT",),
    ),
    "VAEDecode": ((Slot("samples", "LATENT", False), Slot("vae", "VAE", False)), ("IMAGE",)),
    "LoadImage": ((Slot("image", COMBO, True),), ("IMAGE", "MASK")),
    "ImageBatch": ((Slot("image1", "IMAGE", False), Slot("image2", "IMAGE", False)), ("IMAGE",)),
    "SaveImage": ((Slot("images", "IMAGE", False), Slot("filename_prefix", "STRING", True)), ()),
    "PreviewImage": ((Slot("images", "IMAGE", False),), ()),
    "PreviewAny": ((Slot("source", "*", False),), ()),
}
OUTPUT_NODES = {"SaveImage", "PreviewImage", "PreviewAny"}
# UI-only widget values that follow a widget in `widgets_values` (not sent in API format).
UI_EXTRA_WIDGETS = {("KSampler", "seed"): "fixed", ("LoadImage", "image"): "image"}


def signature(class_type: str) -> tuple[tuple[Slot, ...], tuple[str, ...]]:
    """Inputs and output types of a ptgen node or an allow-listed core node.

    Raises:
        KeyError: for any other node type.
    """
    spec = NODE_SPECS_BY_KEY.get(class_type)
    if spec is not None:
        inputs = tuple(
            Slot(p.name, p.type, p.type in WIDGET_TYPES and not p.force_input, p.optional)
            for p in spec.inputs
        )
        return inputs, tuple(p.type for p in spec.outputs)
    if class_type in CORE_NODES:
        return CORE_NODES[class_type]
    raise KeyError(f"unknown node type {class_type!r}: not a ptgen node and not in CORE_NODES")


def _compatible(source: str, target: str) -> bool:
    return target == "*" or source == target or (target == COMBO and source == "STRING")


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def check_api_workflow(workflow: dict[str, Any]) -> list[str]:
    """Problems of an API-format workflow (empty list: valid).

    Checks node types, input names, required inputs, link targets and indices, and that each
    link's output type fits the input's type.
    """
    problems: list[str] = []
    for node_id, node in workflow.items():
        class_type = node.get("class_type")
        try:
            inputs, _ = signature(class_type)
        except KeyError as error:
            problems.append(f"node {node_id}: {error.args[0]}")
            continue
        by_name = {slot.name: slot for slot in inputs}
        given = node.get("inputs", {})
        for name in given:
            if name not in by_name:
                problems.append(f"node {node_id} ({class_type}): no input named {name!r}")
        for slot in inputs:
            if slot.name not in given:
                if not slot.optional:
                    problems.append(
                        f"node {node_id} ({class_type}): required input {slot.name!r} missing"
                    )
                continue
            value = given[slot.name]
            if _is_link(value):
                source_id, index = value
                if source_id not in workflow:
                    problems.append(
                        f"node {node_id}: input {slot.name!r} links to missing node {source_id}"
                    )
                    continue
                source_type = workflow[source_id].get("class_type")
                try:
                    _, outputs = signature(source_type)
                except KeyError:
                    continue  # reported for that node
                if not 0 <= index < len(outputs):
                    problems.append(
                        f"node {node_id}: input {slot.name!r} uses output {index} "
                        f"of {source_type}, which has {len(outputs)}"
                    )
                elif not _compatible(outputs[index], slot.type):
                    problems.append(
                        f"node {node_id}: input {slot.name!r} ({slot.type}) gets {outputs[index]} "
                        f"from {source_type}"
                    )
            elif not slot.widget:
                problems.append(
                    f"node {node_id} ({class_type}): socket input {slot.name!r} must be a link"
                )
    if not any(node.get("class_type") in OUTPUT_NODES for node in workflow.values()):
        problems.append(
            "no output node (SaveImage, PreviewImage, PreviewAny): ComfyUI would run nothing"
        )
    return problems


def check_ui_workflow(workflow: dict[str, Any]) -> list[str]:
    """Problems of a UI-format workflow (empty list: valid): node types, links and slot types,
    and, for ptgen nodes, the number of widget values."""
    problems: list[str] = []
    nodes = {node["id"]: node for node in workflow.get("nodes", [])}
    for node in nodes.values():
        try:
            inputs, outputs = signature(node["type"])
        except KeyError as error:
            problems.append(f"node {node['id']}: {error.args[0]}")
            continue
        names = {slot.name for slot in inputs}
        for entry in node.get("inputs", []):
            if entry["name"] not in names:
                problems.append(
                    f"node {node['id']} ({node['type']}): no input named {entry['name']!r}"
                )
        if len(node.get("outputs", [])) != len(outputs):
            problems.append(
                f"node {node['id']} ({node['type']}): "
                f"{len(node.get('outputs', []))} outputs listed, the node has {len(outputs)}"
            )
        widgets = [slot for slot in inputs if slot.widget]
        extras = sum(1 for slot in widgets if (node["type"], slot.name) in UI_EXTRA_WIDGETS)
        if len(node.get("widgets_values", [])) != len(widgets) + extras:
            problems.append(
                f"node {node['id']} ({node['type']}): {len(node.get('widgets_values', []))} widget "
                f"values, expected {len(widgets) + extras}"
            )
    for link in workflow.get("links", []):
        link_id, source, source_slot, target, target_slot, link_type = link
        if source not in nodes or target not in nodes:
            problems.append(f"link {link_id}: joins missing nodes {source} -> {target}")
            continue
        try:
            _, outputs = signature(nodes[source]["type"])
        except KeyError:
            continue
        if not 0 <= source_slot < len(outputs) or outputs[source_slot] != link_type:
            problems.append(
                f"link {link_id}: output {source_slot} of {nodes[source]['type']} "
                f"is not {link_type}"
            )
            continue
        target_inputs = nodes[target].get("inputs", [])
        if (
            not 0 <= target_slot < len(target_inputs)
            or target_inputs[target_slot].get("link") != link_id
        ):
            problems.append(
                f"link {link_id}: input slot {target_slot} of node {target} does not hold it"
            )
            continue
        entry = target_inputs[target_slot]
        try:
            slot = {s.name: s for s in signature(nodes[target]["type"])[0]}[entry["name"]]
        except KeyError:
            continue
        if not _compatible(link_type, slot.type):
            problems.append(f"link {link_id}: {link_type} into {entry['name']!r} ({slot.type})")
    return problems


# -- building -------------------------------------------------------------------------------


@dataclass
class Node:
    id: int
    class_type: str
    inputs: dict[str, Any]
    title: Optional[str] = None
    pos: tuple[int, int] = (0, 0)

    def __getitem__(self, index: int) -> tuple["Node", int]:
        """An output of this node, to link into another node's input."""
        return (self, index)


@dataclass
class Graph:
    """A workflow described once, written in API and UI format.

    Example:
        >>> g = Graph()
        >>> loader = g.add("LoadImage", image="liked.png")
        >>> g.add("PreviewImage", images=loader[0])
        >>> g.to_api()["2"]["inputs"]["images"]
        ['1', 0]
    """

    nodes: list[Node] = field(default_factory=list)

    def add(
        self,
        class_type: str,
        *,
        title: Optional[str] = None,
        pos: tuple[int, int] = (0, 0),
        **inputs: Any,
    ) -> Node:
        signature(class_type)  # unknown types fail here, when the example is written
        node = Node(len(self.nodes) + 1, class_type, inputs, title, pos)
        self.nodes.append(node)
        return node

    def to_api(self) -> dict[str, Any]:
        api: dict[str, Any] = {}
        for node in self.nodes:
            inputs = {
                name: [str(value[0].id), value[1]] if isinstance(value, tuple) else value
                for name, value in node.inputs.items()
            }
            api[str(node.id)] = {
                "class_type": node.class_type,
                "inputs": inputs,
                "_meta": {"title": node.title or node.class_type},
            }
        return api

    def to_ui(self) -> dict[str, Any]:
        links: list[list[Any]] = []
        ui_nodes: list[dict[str, Any]] = []
        outputs_links: dict[tuple[int, int], list[int]] = {}
        for node in self.nodes:
            slots, _ = signature(node.class_type)
            entries = []
            for slot in slots:
                value = node.inputs.get(slot.name)
                linked = isinstance(value, tuple)
                if not linked and slot.widget:
                    continue  # a plain widget: only in widgets_values
                if not linked and value is None and not slot.optional:
                    continue
                entry: dict[str, Any] = {"name": slot.name, "type": slot.type, "link": None}
                if slot.widget:
                    entry["widget"] = {"name": slot.name}
                if linked:
                    source, index = value
                    link_id = len(links) + 1
                    source_type = signature(source.class_type)[1][index]
                    entry["link"] = link_id
                    links.append([link_id, source.id, index, node.id, len(entries), source_type])
                    outputs_links.setdefault((source.id, index), []).append(link_id)
                entries.append(entry)
            widgets_values = []
            for slot in slots:
                if not slot.widget:
                    continue
                value = node.inputs.get(slot.name)
                widgets_values.append("" if isinstance(value, tuple) or value is None else value)
                if (node.class_type, slot.name) in UI_EXTRA_WIDGETS:
                    widgets_values.append(UI_EXTRA_WIDGETS[(node.class_type, slot.name)])
            ui_nodes.append(
                {
                    "id": node.id,
                    "type": node.class_type,
                    "pos": list(node.pos),
                    "size": [320, 160],
                    "flags": {},
                    "order": node.id - 1,
                    "mode": 0,
                    "inputs": entries,
                    "outputs": [],
                    "properties": {"Node name for S&R": node.class_type},
                    "widgets_values": widgets_values,
                    **({"title": node.title} if node.title else {}),
                }
            )
        for ui_node, node in zip(ui_nodes, self.nodes):
            spec = NODE_SPECS_BY_KEY.get(node.class_type)
            names = [p.label for p in spec.outputs] if spec else None
            for index, type_name in enumerate(signature(node.class_type)[1]):
                ui_node["outputs"].append(
                    {
                        "name": names[index] if names else type_name,
                        "type": type_name,
                        "links": outputs_links.get((node.id, index), []),
                        "slot_index": index,
                    }
                )
        return {
            "last_node_id": len(self.nodes),
            "last_link_id": len(links),
            "nodes": ui_nodes,
            "links": links,
            "groups": [],
            "config": {},
            "extra": {},
            "version": 0.4,
        }


__all__ = [
    "CORE_NODES",
    "Graph",
    "Slot",
    "check_api_workflow",
    "check_ui_workflow",
    "signature",
    "BUILTIN_TYPES",
]
