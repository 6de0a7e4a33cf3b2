"""One declarative definition per node, from which both ComfyUI node classes are generated.

ComfyUI has two node schemas: V1 (a class with `INPUT_TYPES`, `RETURN_TYPES`, `FUNCTION`, loaded
from `NODE_CLASS_MAPPINGS`) and V3 (`comfy_api.latest.io.ComfyNode` with `define_schema` and
`execute`, loaded from `comfy_entrypoint`). A `NodeSpec` says what a node is once (its inputs,
outputs and the plain function it runs); `make_v1_class` and `make_v3_class` turn it into either
form, so the two can never drift apart. The V3 form is built only where `comfy_api` imports
(inside ComfyUI), so nothing here needs ComfyUI or torch to import.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from preferthinker.errors import PTGenError

# ComfyUI's own socket types that our nodes use; anything else is a custom type of ours.
IMAGE = "IMAGE"
STRING = "STRING"
INT = "INT"
FLOAT = "FLOAT"
BOOLEAN = "BOOLEAN"
COMBO = "COMBO"
# Our custom socket types (objects passed between our nodes only).
ASSESSOR = "PTGEN_ASSESSOR"
PROFILE = "PTGEN_PROFILE"

BUILTIN_TYPES = {IMAGE, STRING, INT, FLOAT, BOOLEAN, COMBO}
CUSTOM_TYPES = {ASSESSOR, PROFILE}
CATEGORY = "ptgen"

# Settings whose node field has another name than the library's (the others keep theirs).
NODE_FIELDS = {"assessor_model": "model_name"}


def node_field(setting: str) -> str:
    """How a node names a setting in an error message: its field (`assessor`), not a CLI flag.

    Example:
        >>> node_field("assessor_model")
        'model_name'
    """
    return NODE_FIELDS.get(setting, setting)


@dataclass(frozen=True)
class Port:
    """One input or output of a node.

    Args:
        name: the socket/widget id (also the keyword argument of the node function).
        type: a ComfyUI type name (IMAGE, STRING, INT, FLOAT, BOOLEAN, COMBO) or one of ours.
        tooltip: shown on hover.
        optional: an input that may be left unconnected (the function gets None / its default).
        default, min, max, step: widget settings for STRING/INT/FLOAT/BOOLEAN/COMBO inputs.
        options: the choices of a COMBO input.
        multiline: a multi-line STRING widget.
        force_input: a STRING/INT input drawn as a socket instead of a widget.
    """

    name: str
    type: str
    tooltip: str = ""
    optional: bool = False
    default: Any = None
    min: Optional[float] = None
    max: Optional[float] = None
    step: Optional[float] = None
    options: Sequence[str] = ()
    multiline: bool = False
    force_input: bool = False

    def __post_init__(self) -> None:
        if self.type not in BUILTIN_TYPES | CUSTOM_TYPES:
            raise ValueError(f"Port {self.name!r}: unknown type {self.type!r}")
        if self.type == COMBO and not self.options:
            raise ValueError(f"Port {self.name!r}: a COMBO needs options")

    @property
    def label(self) -> str:
        """The name shown in ComfyUI: an output called `x_out` (to differ from input `x`) shows
        `x`."""
        return self.name[: -len("_out")] if self.name.endswith("_out") else self.name

    def widget_options(self) -> dict[str, Any]:
        """The V1 options dict of this input (default, min, max, ...), without None values."""
        values = {
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "step": self.step,
            "multiline": self.multiline or None,
            "forceInput": self.force_input or None,
            "tooltip": self.tooltip or None,
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class NodeSpec:
    """A node: its key (PTGen...), display name, inputs, outputs and the function it runs.

    `function(**inputs)` returns a tuple with one value per output, in order. The description
    shown in ComfyUI is the function's docstring up to the first blank line.
    `fingerprint(**inputs)`, when given, returns a value that changes when the node's result would
    (ComfyUI re-runs the node then, instead of reusing its cached output): V1 `IS_CHANGED`, V3
    `fingerprint_inputs`.
    """

    key: str
    display_name: str
    function: Callable[..., tuple]
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    category: str = CATEGORY
    output_node: bool = False
    not_idempotent: bool = False
    description: str = field(default="")
    fingerprint: Optional[Callable[..., Any]] = None

    def __post_init__(self) -> None:
        if not self.key.startswith("PTGen"):
            raise ValueError(f"node key must carry the PTGen prefix, got {self.key!r}")
        names = [p.name for p in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.key}: duplicate input names in {names}")
        out_names = [p.name for p in self.outputs]
        if len(set(out_names)) != len(out_names) or set(names) & set(out_names):
            raise ValueError(f"{self.key}: output names must be unique and differ from inputs")
        parameters = inspect.signature(self.function).parameters
        missing = [n for n in names if n not in parameters]
        if missing:
            raise ValueError(
                f"{self.key}: {self.function.__name__} has no parameter for inputs {missing}"
            )
        if not self.description:
            doc = inspect.getdoc(self.function) or ""
            object.__setattr__(self, "description", doc.split("\n\n")[0].replace("\n", " ").strip())

    def run(self, **kwargs: Any) -> tuple:
        """Call the function with the given inputs; optional inputs left out are not passed."""
        try:
            result = self.function(**kwargs)
        except PTGenError as error:
            error.name_setting = (
                node_field  # the user sets node fields here, not command-line flags
            )
            raise
        if not isinstance(result, tuple) or len(result) != len(self.outputs):
            raise TypeError(
                f"{self.key}: {self.function.__name__} must return a tuple of "
                f"{len(self.outputs)} values"
            )
        return result


# -- V1 -------------------------------------------------------------------------------------


def v1_input(port: Port) -> tuple:
    """`("TYPE", {options})` as V1 INPUT_TYPES expects; a COMBO is `([choices], {options})`."""
    options = port.widget_options()
    if port.type == COMBO:
        return (list(port.options), options)
    return (port.type, options) if options else (port.type,)


def make_v1_class(spec: NodeSpec) -> type:
    """A V1 node class (INPUT_TYPES / RETURN_TYPES / FUNCTION) for `spec`.

    Example:
        >>> cls = make_v1_class(spec); cls.INPUT_TYPES()["required"]  # doctest: +SKIP
    """

    def INPUT_TYPES(cls) -> dict[str, dict[str, tuple]]:  # noqa: N802 - ComfyUI's name
        required = {p.name: v1_input(p) for p in spec.inputs if not p.optional}
        optional = {p.name: v1_input(p) for p in spec.inputs if p.optional}
        types: dict[str, dict[str, tuple]] = {"required": required}
        if optional:
            types["optional"] = optional
        return types

    def run(self, **kwargs: Any) -> tuple:
        return spec.run(**kwargs)

    attributes = {
        "__doc__": spec.description,
        "__module__": __name__,
        "INPUT_TYPES": classmethod(INPUT_TYPES),
        "RETURN_TYPES": tuple(p.type for p in spec.outputs),
        "RETURN_NAMES": tuple(p.label for p in spec.outputs),
        "OUTPUT_TOOLTIPS": tuple(p.tooltip for p in spec.outputs),
        "FUNCTION": "run",
        "CATEGORY": spec.category,
        "DESCRIPTION": spec.description,
        "OUTPUT_NODE": spec.output_node,
        "NOT_IDEMPOTENT": spec.not_idempotent,
        "SPEC": spec,
        "run": run,
    }
    if spec.fingerprint is not None:
        attributes["IS_CHANGED"] = classmethod(lambda cls, **kwargs: spec.fingerprint(**kwargs))
    return type(spec.key, (), attributes)


# -- V3 -------------------------------------------------------------------------------------


def _v3_type(io: Any, type_name: str, customs: dict[str, Any]) -> Any:
    builtin = {
        IMAGE: io.Image,
        STRING: io.String,
        INT: io.Int,
        FLOAT: io.Float,
        BOOLEAN: io.Boolean,
        COMBO: io.Combo,
    }
    if type_name in builtin:
        return builtin[type_name]
    if type_name not in customs:
        customs[type_name] = io.Custom(type_name)
    return customs[type_name]


def v3_input(io: Any, port: Port, customs: dict[str, Any]) -> Any:
    """The `io.<Type>.Input(...)` of `port`."""
    common = {"optional": port.optional, "tooltip": port.tooltip or None}
    kind = _v3_type(io, port.type, customs)
    if port.type == COMBO:
        return kind.Input(port.name, options=list(port.options), default=port.default, **common)
    if port.type in (INT, FLOAT):
        return kind.Input(
            port.name,
            default=port.default,
            min=port.min,
            max=port.max,
            step=port.step,
            force_input=port.force_input or None,
            **common,
        )
    if port.type == STRING:
        return kind.Input(
            port.name,
            default=port.default,
            multiline=port.multiline,
            force_input=port.force_input or None,
            **common,
        )
    if port.type == BOOLEAN:
        return kind.Input(port.name, default=port.default, **common)
    return kind.Input(port.name, **common)


def make_v3_class(spec: NodeSpec, io: Any, customs: Optional[dict[str, Any]] = None) -> type:
    """A V3 `io.ComfyNode` subclass for `spec`; `io` is `comfy_api.latest.io`.

    Example:
        >>> from comfy_api.latest import io  # inside ComfyUI  # doctest: +SKIP
        >>> cls = make_v3_class(spec, io)  # doctest: +SKIP
    """
    customs = customs if customs is not None else {}

    def define_schema(cls) -> Any:
        return io.Schema(
            node_id=spec.key,
            display_name=spec.display_name,
            category=spec.category,
            description=spec.description,
            inputs=[v3_input(io, p, customs) for p in spec.inputs],
            outputs=[
                _v3_type(io, p.type, customs).Output(
                    p.name, display_name=p.label, tooltip=p.tooltip or None
                )
                for p in spec.outputs
            ],
            is_output_node=spec.output_node,
            not_idempotent=spec.not_idempotent,
        )

    def execute(cls, **kwargs: Any) -> Any:
        return io.NodeOutput(*spec.run(**kwargs))

    attributes = {
        "__doc__": spec.description,
        "__module__": __name__,
        "SPEC": spec,
        "define_schema": classmethod(define_schema),
        "execute": classmethod(execute),
    }
    if spec.fingerprint is not None:
        attributes["fingerprint_inputs"] = classmethod(
            lambda cls, **kwargs: spec.fingerprint(**kwargs)
        )
    return type(spec.key, (io.ComfyNode,), attributes)
