"""The V3 classes inside a real ComfyUI checkout (comfy_api importable).

Runs only where a ComfyUI source tree and a Python that can import it are named:
    PTGEN_COMFYUI_DIR=/path/to/ComfyUI PTGEN_COMFYUI_PYTHON=/path/to/python pytest tests/comfyui
(see docs/comfyui.md for how this was set up and run here).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from comfyui_nodes import NODE_SPECS, v1_classes

ROOT = Path(__file__).resolve().parents[2]
COMFYUI_DIR = os.environ.get("PTGEN_COMFYUI_DIR")
COMFYUI_PYTHON = os.environ.get("PTGEN_COMFYUI_PYTHON")

PROBE = textwrap.dedent(
    """
    import asyncio, json, os, sys
    sys.path[:0] = [os.getcwd(), {root!r}]
    from comfy_api.latest import io, ComfyExtension  # as in ComfyUI: comfy_api first, then custom nodes
    import comfyui_nodes
    extension = asyncio.run(comfyui_nodes.comfy_entrypoint())
    nodes = asyncio.run(extension.get_node_list())
    report = {{"extension": isinstance(extension, ComfyExtension), "nodes": {{}},
               "mapping_is_v3": all(issubclass(c, io.ComfyNode) for c in comfyui_nodes.NODE_CLASS_MAPPINGS.values())}}
    for cls in nodes:
        schema = cls.GET_SCHEMA()
        info = cls.GET_NODE_INFO_V1()
        report["nodes"][schema.node_id] = {{
            "required": sorted(info["input"]["required"]), "optional": sorted(info["input"].get("optional", {{}})),
            "output": list(info["output"]), "output_name": list(info["output_name"]),
            "description": info["description"], "display_name": info["display_name"]}}
    from preferthinker.profile import Profile, UserProfile
    out = comfyui_nodes.NODE_CLASS_MAPPINGS["PTGenProfileToText"].execute(
        profile=UserProfile(liked=Profile(color=["Pink"])), format="json")
    report["executed"] = out.result[0]
    # A relative folder is inside ComfyUI's input directory, whatever the start directory.
    import folder_paths
    folder_paths.set_input_directory({input_dir!r})
    os.chdir({elsewhere!r})
    loader = comfyui_nodes.NODE_CLASS_MAPPINGS["PTGenLoadImageFolder"]
    report["loaded"] = loader.execute(folder="candidates", max_images=0, width=0, height=0).result[1]
    try:
        loader.execute(folder="absent", max_images=0, width=0, height=0)
    except Exception as error:
        report["missing"] = str(error)
    print(json.dumps(report))
    """
)


@pytest.mark.skipif(not (COMFYUI_DIR and COMFYUI_PYTHON), reason="set PTGEN_COMFYUI_DIR and PTGEN_COMFYUI_PYTHON")
def test_v3_schema_matches_the_v1_definition_inside_comfyui(tmp_path):
    from PIL import Image

    (tmp_path / "input" / "candidates").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8), "red").save(tmp_path / "input" / "candidates" / name)
    script = tmp_path / "probe.py"
    script.write_text(PROBE.format(root=str(ROOT), input_dir=str(tmp_path / "input"),
                                   elsewhere=str(tmp_path / "elsewhere")))
    done = subprocess.run([COMFYUI_PYTHON, str(script)], cwd=COMFYUI_DIR, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["extension"] and report["mapping_is_v3"]
    assert json.loads(report["executed"])["liked"]["color"] == ["Pink"]
    assert report["loaded"] == 2
    assert f"not found in {tmp_path / 'input'}" in report["missing"]
    v1 = v1_classes()
    for spec in NODE_SPECS:
        got = report["nodes"][spec.key]
        types = v1[spec.key].INPUT_TYPES()
        assert got["required"] == sorted(types["required"])
        assert got["optional"] == sorted(types.get("optional", {}))
        assert tuple(got["output"]) == v1[spec.key].RETURN_TYPES
        assert tuple(got["output_name"]) == v1[spec.key].RETURN_NAMES
        assert got["description"] == spec.description and got["display_name"] == spec.display_name
