"""Node contracts (inputs, outputs, types, descriptions) and loading the repo root like ComfyUI."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import comfyui_nodes
from comfyui_nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from comfyui_nodes.spec import ASSESSOR, COMBO, IMAGE, INT, PROFILE, STRING, NodeSpec, Port

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "PTGenAssessor": ((), (ASSESSOR,)),
    "PTGenPredictProfile": (("assessor", "liked"), (PROFILE, STRING, STRING)),
    "PTGenPersonalizePrompt": (("profile", "prompt"), (STRING, STRING)),
    "PTGenRerankImages": (("assessor", "images"), (IMAGE, IMAGE, STRING, STRING, INT)),
    "PTGenComparePair": (("assessor", "image_a", "image_b"), (STRING, IMAGE, STRING, STRING)),
    "PTGenProfileToText": (("profile",), (STRING,)),
    "PTGenLoadImageFolder": (("folder",), (IMAGE, INT)),
    "PTGenLoadUser": (("user",), (IMAGE, IMAGE, PROFILE, STRING, STRING)),
    "PTGenRecordFeedback": (("images", "user", "label", "indices"), (STRING,)),
}


def test_every_node_is_registered_with_prefix_and_display_name():
    assert set(NODE_CLASS_MAPPINGS) == set(EXPECTED)
    assert set(NODE_DISPLAY_NAME_MAPPINGS) == set(EXPECTED)
    assert all(key.startswith("PTGen") for key in NODE_CLASS_MAPPINGS)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_v1_contract(key):
    cls = NODE_CLASS_MAPPINGS[key]
    socket_inputs, outputs = EXPECTED[key]
    types = cls.INPUT_TYPES()
    for name in socket_inputs:
        assert name in types["required"], f"{key} lacks required input {name}"
    assert cls.RETURN_TYPES == outputs
    assert len(cls.RETURN_NAMES) == len(outputs) == len(cls.OUTPUT_TOOLTIPS)
    assert callable(getattr(cls, cls.FUNCTION))
    assert cls.CATEGORY == "ptgen"
    # the description is the function's docstring, first paragraph
    doc = inspect.getdoc(cls.SPEC.function)
    assert cls.DESCRIPTION and doc.startswith(cls.DESCRIPTION[:40])
    # every input is a parameter of the function, and required parameters are required inputs
    parameters = inspect.signature(cls.SPEC.function).parameters
    declared = {**types["required"], **types.get("optional", {})}
    assert set(declared) <= set(parameters)
    for name, parameter in parameters.items():
        if parameter.default is inspect.Parameter.empty:
            assert name in types["required"], f"{key}: {name} has no default but is not required"


def test_v1_input_forms():
    types = NODE_CLASS_MAPPINGS["PTGenRerankImages"].INPUT_TYPES()
    assert types["required"]["images"][0] == "IMAGE"
    choices, options = types["required"]["strategy"]
    assert choices == ["knockout", "round-robin", "swiss"] and options["default"] == "knockout"
    assert types["required"]["top_k"][1]["min"] == 0
    assert set(types["optional"]) == {"profile", "liked", "disliked", "prefilter", "keep"}
    prompt = NODE_CLASS_MAPPINGS["PTGenPersonalizePrompt"].INPUT_TYPES()["required"]["prompt"]
    assert prompt[0] == STRING and prompt[1]["multiline"] is True


def test_spec_rejects_malformed_definitions():
    def fn(a):
        """Doc."""
        return (a,)

    with pytest.raises(ValueError, match="PTGen prefix"):
        NodeSpec("Rerank", "x", fn, (Port("a", STRING),), (Port("b", STRING),))
    with pytest.raises(ValueError, match="no parameter"):
        NodeSpec("PTGenX", "x", fn, (Port("zzz", STRING),), (Port("b", STRING),))
    with pytest.raises(ValueError, match="differ from inputs"):
        NodeSpec("PTGenX", "x", fn, (Port("a", STRING),), (Port("a", STRING),))
    with pytest.raises(ValueError, match="needs options"):
        Port("c", COMBO)
    with pytest.raises(ValueError, match="unknown type"):
        Port("c", "LATENTS")
    spec = NodeSpec("PTGenX", "x", fn, (Port("a", STRING),), (Port("b", STRING), Port("c", STRING)))
    with pytest.raises(TypeError, match="tuple of 2"):
        spec.run(a="v")


def test_outside_comfyui_there_is_no_v3():
    assert comfyui_nodes.comfy_io() is None
    with pytest.raises(ImportError, match="comfy_api"):
        comfyui_nodes.v3_classes()


LOADER = textwrap.dedent(
    """
    import importlib.util, sys, json
    # the way ComfyUI's load_custom_node imports a cloned folder: a package under an odd name
    spec = importlib.util.spec_from_file_location("custom_nodes_x_ptgen", {init!r})
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    heavy_before = sorted(m for m in ("torch", "transformers", "diffusers") if m in sys.modules)
    mappings = module.NODE_CLASS_MAPPINGS
    names = module.NODE_DISPLAY_NAME_MAPPINGS
    heavy = sorted(m for m in ("torch", "transformers", "diffusers", "trl") if m in sys.modules)
    required = mappings["PTGenRerankImages"].INPUT_TYPES()["required"]
    print(json.dumps({{"nodes": sorted(mappings), "names": len(names), "heavy": heavy,
                      "heavy_before": heavy_before, "entry": callable(module.comfy_entrypoint),
                      "input_types": sorted(required)}}))
    """
)


def test_repo_root_loads_as_a_comfyui_package_without_heavy_imports(tmp_path):
    import json

    script = tmp_path / "load.py"
    script.write_text(LOADER.format(init=str(ROOT / "__init__.py")))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["nodes"] == sorted(EXPECTED)
    assert report["names"] == len(EXPECTED) and report["entry"]
    assert report["heavy"] == [] and report["heavy_before"] == []
    assert report["input_types"] == ["assessor", "images", "strategy", "top_k"]


def test_repo_root_import_is_lazy_and_names_its_exports():
    spec = importlib.util.spec_from_file_location("ptgen_root_probe", ROOT / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "NODE_CLASS_MAPPINGS" not in vars(module)  # nothing resolved at import
    assert module.NODE_CLASS_MAPPINGS is NODE_CLASS_MAPPINGS
    assert "NODE_CLASS_MAPPINGS" in vars(module)
    with pytest.raises(AttributeError):
        module.something_else  # noqa: B018


def test_requirements_leave_torch_to_comfyui():
    text = (ROOT / "requirements.txt").read_text()
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    names = {
        line.split(">")[0].split("=")[0].split("[")[0].strip().lower() for line in lines if line
    }
    assert {"transformers", "pillow", "openai"} <= names
    assert not names & {"torch", "torchvision", "torchaudio"}  # ComfyUI's own CUDA build stays
