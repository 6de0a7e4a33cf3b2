"""`evaluate_suite` and `ptgen eval --data DIR` on a folder in the authors' release layout
(`data/<SUBSET>/<SUBSET>.json` + `data/<SUBSET>/images/`): each subset, the paper's average, and
the evaluation config passed through to every subset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.engines.scripted import ScriptedEngine
from preferthinker.errors import InputError
from preferthinker.evaluation import EvalConfig
from preferthinker.suite import evaluate_suite, find_subsets, is_suite, suite_table
from ptgen.cli.main import main

# Chosen so that an assessor that always answers "Image A" scores 100 / 50 / 0 %.
ANSWERS = {"PICKAPIC": ["A", "B"], "SP_ID": ["A", "A", "A"], "MP_OD": ["B"]}


def _png(path: Path, color) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), color).save(path)


def release_layout(root: Path, answers=ANSWERS) -> Path:
    data = root / "data"
    for subset, subset_answers in answers.items():
        images = data / subset / "images"
        for name, color in (
            ("p.png", (250, 0, 0)),
            ("n.png", (0, 0, 250)),
            ("a.png", (240, 10, 10)),
            ("b.png", (10, 10, 240)),
        ):
            _png(images / name, color)
        items = [
            {
                "imageA": "a.png",
                "imageB": "b.png",
                "prefered_images": ["p.png"],
                "non_prefered_images": ["n.png"],
                "conversations": [{"from": "gpt", "value": f"Image {a}"}],
            }
            for a in subset_answers
        ]
        (data / subset / f"{subset}.json").write_text(json.dumps(items))
    return data


def always_a() -> Assessor:
    return Assessor(
        ScriptedEngine(["<answer>Image A</answer>"]), AssessorConfig(assessor="scripted")
    )


def test_each_subset_in_the_papers_order_and_the_unweighted_average(tmp_path):
    data = release_layout(tmp_path)
    result = evaluate_suite(data, always_a(), EvalConfig(position_bias=False, similarity=False))
    assert list(result["subsets"]) == ["SP_ID", "MP_OD", "PICKAPIC"]
    assert {name: r["accuracy"] for name, r in result["subsets"].items()} == {
        "SP_ID": 1.0,
        "MP_OD": 0.0,
        "PICKAPIC": 0.5,
    }
    assert result["average"] == pytest.approx(0.5)  # (100 + 0 + 50) / 3, as the paper averages
    assert result["pooled_accuracy"] == pytest.approx(4 / 6) and result["n"] == 6
    assert result["subsets"]["SP_ID"]["image_root"] == str(data / "SP_ID" / "images")
    table = suite_table([result])
    assert "SP_ID (Seen-SP) %" in table and "MP_OD (Unseen-MP) %" in table
    assert table.splitlines()[2].split(" | ")[1:5] == ["100.0", "0.0", "50.0", "50.0"]


def test_config_reaches_every_subset(tmp_path):
    data = release_layout(tmp_path)
    engine = ScriptedEngine(["<answer>Image A</answer>"])
    result = evaluate_suite(
        data,
        Assessor(engine, AssessorConfig(assessor="scripted")),
        EvalConfig(limit=1, position_bias=True, similarity=False),
    )
    assert [r["n"] for r in result["subsets"].values()] == [1, 1, 1]
    # position_bias: each item judged twice (once swapped) -> 6 calls for 3 items.
    assert len(engine.calls) == 6
    assert (
        result["subsets"]["PICKAPIC"]["position_bias_rate"] == 1.0
    )  # always "A" flips when swapped


def test_flat_files_with_their_own_image_folders(tmp_path):
    """Subset files directly in the folder, each with an image folder named after it."""
    nested = release_layout(tmp_path / "nested")
    flat = tmp_path / "flat"
    for subset in ANSWERS:
        (flat / subset).mkdir(parents=True)
        (flat / f"{subset}.json").write_text((nested / subset / f"{subset}.json").read_text())
        (nested / subset / "images").rename(flat / subset / "images")
    subsets = find_subsets(flat)
    assert [(s.name, s.image_root) for s in subsets] == [
        (name, flat / name / "images") for name in ("SP_ID", "MP_OD", "PICKAPIC")
    ]


def test_a_single_benchmark_folder_is_not_a_suite(tmp_path):
    single = tmp_path / "synthpref"
    single.mkdir()
    (single / "benchmark.json").write_text("[]")
    (single / "train.json").write_text("[]")
    assert not is_suite(single) and is_suite(release_layout(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no benchmark files"):
        evaluate_suite(tmp_path / "empty", baseline="random")


def test_cli_prints_the_table_and_json(tmp_path, capsys):
    data = release_layout(tmp_path)
    assert main(["eval", "--data", str(data), "--assessor", "random", "--no-similarity"]) == 0
    printed = capsys.readouterr().out
    header = printed.splitlines()[0]
    assert header.startswith(
        "| assessor | SP_ID (Seen-SP) % | MP_OD (Unseen-MP) % | PICKAPIC (Pick-a-Pic) % | avg %"
    )
    out = tmp_path / "res" / "suite.json"
    assert (
        main(
            [
                "eval",
                "--data",
                str(data),
                "--assessor",
                "random",
                "--no-similarity",
                "--json",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["assessor"] == "random" and result["n"] == 6
    assert json.loads(out.read_text())["subsets"].keys() == result["subsets"].keys()
    assert out.with_suffix(".md").read_text().startswith("| assessor | SP_ID (Seen-SP) %")
    details = printed.split("\n\n")[1].splitlines()
    assert details[0].startswith("| subset | n | acc %")
    assert [row.split(" | ")[0:2] for row in details[2:]] == [
        ["| SP_ID", "3"],
        ["| MP_OD", "1"],
        ["| PICKAPIC", "2"],
    ]


def test_a_broken_subset_fails_before_any_evaluation(tmp_path, capsys):
    data = release_layout(tmp_path)
    (data / "MP_OD" / "MP_OD.json").write_text('[{"imageA": "a.png"}]')
    engine = ScriptedEngine(["<answer>Image A</answer>"])
    with pytest.raises(InputError, match="MP_OD.json item 0: missing field 'imageB'"):
        evaluate_suite(
            data,
            Assessor(engine, AssessorConfig(assessor="scripted")),
            EvalConfig(similarity=False),
        )
    assert engine.calls == []


def test_a_subset_without_its_images_fails_before_any_evaluation(tmp_path):
    data = release_layout(tmp_path)
    (data / "MP_OD" / "images" / "b.png").unlink()  # one subset's images not unpacked
    engine = ScriptedEngine(["<answer>Image A</answer>"])
    with pytest.raises(InputError, match="subset MP_OD: no pair's images found .*b.png"):
        evaluate_suite(
            data,
            Assessor(engine, AssessorConfig(assessor="scripted")),
            EvalConfig(similarity=False),
        )
    assert engine.calls == []


def test_a_folder_of_synthpref_folders_is_a_suite_named_by_folder(tmp_path):
    data = release_layout(tmp_path, {"SP_ID": ["A"], "MP_ID": ["B"]})
    for subset in ("SP_ID", "MP_ID"):  # the ptgen layout: benchmark.json beside other files
        (data / subset / f"{subset}.json").rename(data / subset / "benchmark.json")
        (data / subset / "users.json").write_text("[]")
        (data / subset / "train.json").write_text("[]")
    subsets = find_subsets(data)
    assert [(s.name, s.path.name) for s in subsets] == [
        ("SP_ID", "benchmark.json"),
        ("MP_ID", "benchmark.json"),
    ]
    result = evaluate_suite(data, always_a(), EvalConfig(similarity=False))
    assert {name: r["accuracy"] for name, r in result["subsets"].items()} == {
        "SP_ID": 1.0,
        "MP_ID": 0.0,
    }


def test_a_subset_file_that_is_not_text_is_a_one_line_error(tmp_path, capsys):
    data = release_layout(tmp_path)
    (data / "SP_ID" / "SP_ID.json").write_bytes(b"\xff\xfe\x00 not text")
    assert main(["eval", "--data", str(data), "--assessor", "random"]) == 2
    err = capsys.readouterr().err
    assert f"error: {data / 'SP_ID' / 'SP_ID.json'} is not UTF-8 text" in err
    assert "Traceback" not in err
