"""Folder inputs resolve like ComfyUI's core nodes: against ComfyUI's input directory.

ComfyUI is not installed here, so `fake_folder_paths` stands in for ComfyUI's `folder_paths`
module: the same functions the nodes use (`get_input_directory`, `get_output_directory`,
`get_temp_directory`, `annotated_filepath`), with ComfyUI's behaviour, over temporary folders.
It is put in `sys.modules` the way ComfyUI's own import leaves it there before custom nodes load.
The real module is exercised by tests/comfyui/test_v3_in_comfyui.py where a checkout is present.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from PIL import Image

from comfyui_nodes import NODE_CLASS_MAPPINGS
from comfyui_nodes import functions as f
from comfyui_nodes.paths import resolve_input_path
from preferthinker.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "comfyui"


def _images(folder: Path, colors: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True)
    for i, color in enumerate(colors):
        Image.new("RGB", (8, 8), color).save(folder / f"{i}.png")
    return folder


@pytest.fixture
def comfy(tmp_path, monkeypatch):
    """A fake ComfyUI `folder_paths` (see the module docstring) and a start directory elsewhere."""
    dirs = {kind: tmp_path / "ComfyUI" / kind for kind in ("input", "output", "temp")}
    for folder in dirs.values():
        folder.mkdir(parents=True)
    module = types.ModuleType("folder_paths")
    module.get_input_directory = lambda: str(dirs["input"])
    module.get_output_directory = lambda: str(dirs["output"])
    module.get_temp_directory = lambda: str(dirs["temp"])

    def annotated_filepath(name: str):  # ComfyUI's folder_paths.annotated_filepath
        for kind in ("output", "input", "temp"):
            if name.endswith(f"[{kind}]"):
                return name[: -len(kind) - 3], str(dirs[kind])
        return name, None

    module.annotated_filepath = annotated_filepath
    monkeypatch.setitem(sys.modules, "folder_paths", module)
    elsewhere = tmp_path / "started_here"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # ComfyUI started from some other directory
    return dirs


def test_relative_folder_is_inside_comfyui_input_directory(comfy):
    _images(comfy["input"] / "candidates", ("red", "blue", "green"))
    images, count = f.load_image_folder("candidates")
    assert count == 3 and images.shape == (3, 8, 8, 3)
    assert float(images[1, 0, 0, 2]) == 1.0  # 1.png is blue: the files of the input folder


def test_annotated_forms_pick_comfyui_directory(comfy):
    _images(comfy["output"] / "renders", ("red",))
    _images(comfy["input"] / "renders", ("blue", "blue"))
    assert f.load_image_folder("renders [output]")[1] == 1
    assert f.load_image_folder("renders [input]")[1] == 2
    assert resolve_input_path("renders [temp]") == comfy["temp"] / "renders"


def test_absolute_folder_is_used_as_is(comfy, tmp_path):
    folder = _images(tmp_path / "anywhere" / "shots", ("red", "red"))
    assert f.load_image_folder(str(folder))[1] == 2


def test_missing_folder_error_names_the_directory_searched(comfy):
    with pytest.raises(InputError) as caught:
        f.load_image_folder("candidates")
    message = str(caught.value)
    assert message.startswith("folder: 'candidates' not found in ") and str(comfy["input"]) in message
    assert "ComfyUI's input folder" in message
    with pytest.raises(InputError, match=str(comfy["output"])):
        f.load_image_folder("candidates [output]")


def test_fingerprint_follows_the_same_resolution(comfy):
    cls = NODE_CLASS_MAPPINGS["PTGenLoadImageFolder"]
    assert cls.IS_CHANGED(folder="candidates", max_images=0, width=0, height=0) == "missing"
    _images(comfy["input"] / "candidates", ("red",))
    assert cls.IS_CHANGED(folder="candidates", max_images=0, width=0, height=0).startswith("0.png:")


def test_without_comfyui_relative_paths_follow_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "folder_paths", raising=False)
    _images(tmp_path / "candidates", ("red", "blue"))
    monkeypatch.chdir(tmp_path)
    assert f.load_image_folder("candidates")[1] == 2
    with pytest.raises(InputError, match=f"not found in {tmp_path}"):
        f.load_image_folder("nothing_here")


def test_example_folder_is_relative_to_the_input_directory(comfy):
    """The rerank example's folder value loads from ComfyUI's input folder, whatever the cwd."""
    workflow = json.loads((EXAMPLES / "rerank_folder_api.json").read_text())
    (loader,) = [n for n in workflow.values() if n["class_type"] == "PTGenLoadImageFolder"]
    folder = loader["inputs"]["folder"]
    assert not Path(folder).is_absolute() and not folder.startswith("input")
    _images(comfy["input"] / folder, ("red", "blue"))
    assert f.load_image_folder(**loader["inputs"])[1] == 2
