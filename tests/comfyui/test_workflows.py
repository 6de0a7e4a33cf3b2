"""The example workflows reference only existing node types, inputs and outputs, with fitting
types."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from comfyui_nodes.workflow import CORE_NODES, Graph, check_api_workflow, check_ui_workflow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "comfyui"
NAMES = ("best_of_n_personalized", "rerank_folder", "stored_user_rerank")


def load(name: str, kind: str) -> dict:
    return json.loads((EXAMPLES / f"{name}_{kind}.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_api_format_example_is_valid(name):
    workflow = load(name, "api")
    assert check_api_workflow(workflow) == []
    types = {node["class_type"] for node in workflow.values()}
    assert "PTGenRerankImages" in types and "PTGenAssessor" in types
    assert types - set(CORE_NODES) <= {t for t in types if t.startswith("PTGen")}


@pytest.mark.parametrize("name", NAMES)
def test_ui_format_example_is_valid(name):
    workflow = load(name, "ui")
    assert check_ui_workflow(workflow) == []
    assert len(workflow["nodes"]) == len(load(name, "api"))


def test_best_of_n_uses_a_standard_checkpoint_and_sampler():
    types = [node["class_type"] for node in load("best_of_n_personalized", "api").values()]
    for core in (
        "CheckpointLoaderSimple",
        "CLIPTextEncode",
        "KSampler",
        "VAEDecode",
        "EmptyLatentImage",
    ):
        assert core in types
    workflow = load("best_of_n_personalized", "api")
    rerank = next(n for n in workflow.values() if n["class_type"] == "PTGenRerankImages")
    decode_id = next(i for i, n in workflow.items() if n["class_type"] == "VAEDecode")
    assert rerank["inputs"]["images"] == [decode_id, 0]  # the sampled batch is what gets reranked
    texts = [n["inputs"]["text"] for n in workflow.values() if n["class_type"] == "CLIPTextEncode"]
    prompt_id = next(i for i, n in workflow.items() if n["class_type"] == "PTGenPersonalizePrompt")
    assert sorted(texts) == [[prompt_id, 0], [prompt_id, 1]]  # positive and negative from our node


def test_examples_match_the_generator(tmp_path):
    spec = importlib.util.spec_from_file_location("make_workflows", EXAMPLES / "make_workflows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in module.write_all(tmp_path):
        assert json.loads(path.read_text()) == json.loads((EXAMPLES / path.name).read_text()), (
            path.name
        )


def test_checker_catches_broken_workflows():
    good = load("rerank_folder", "api")
    rerank_id = next(i for i, n in good.items() if n["class_type"] == "PTGenRerankImages")

    renamed = copy.deepcopy(good)
    renamed[rerank_id]["inputs"]["candidates"] = renamed[rerank_id]["inputs"].pop("images")
    problems = check_api_workflow(renamed)
    assert any("no input named 'candidates'" in p for p in problems)
    assert any("required input 'images' missing" in p for p in problems)

    wrong_index = copy.deepcopy(good)
    wrong_index[rerank_id]["inputs"]["images"][1] = 7
    assert any("uses output 7" in p for p in check_api_workflow(wrong_index))

    wrong_type = copy.deepcopy(good)
    wrong_type[rerank_id]["inputs"]["images"][1] = 1  # the folder loader's INT count
    assert any("gets INT" in p for p in check_api_workflow(wrong_type))

    unknown = copy.deepcopy(good)
    unknown["99"] = {"class_type": "PTGenMagic", "inputs": {}}
    assert any("PTGenMagic" in p for p in check_api_workflow(unknown))

    ui = load("rerank_folder", "ui")
    ui["links"][0][5] = "LATENT"
    assert check_ui_workflow(ui)


def test_graph_writes_links_in_both_formats():
    g = Graph()
    loader = g.add("LoadImage", image="a.png")
    g.add("PreviewImage", images=loader[0])
    assert g.to_api()["2"]["inputs"]["images"] == ["1", 0]
    ui = g.to_ui()
    assert ui["links"] == [[1, 1, 0, 2, 0, "IMAGE"]]
    assert ui["nodes"][0]["widgets_values"] == ["a.png", "image"]
    with pytest.raises(KeyError):
        g.add("NotANode")


def test_run_workflow_overrides_set_widget_values():
    spec = importlib.util.spec_from_file_location("run_workflow", EXAMPLES / "run_workflow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    workflow = load("rerank_folder", "api")
    module.apply_overrides(
        workflow, ["1.assessor=http://127.0.0.1:8000/v1", "1.max_new_tokens=512", "1.debias=true"]
    )
    assert workflow["1"]["inputs"]["assessor"] == "http://127.0.0.1:8000/v1"
    assert (
        workflow["1"]["inputs"]["max_new_tokens"] == 512
        and workflow["1"]["inputs"]["debias"] is True
    )
    assert check_api_workflow(workflow) == []
    with pytest.raises(SystemExit, match="no node '99'"):
        module.apply_overrides(workflow, ["99.x=1"])
