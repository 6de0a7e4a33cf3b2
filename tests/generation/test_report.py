"""Run folders, result.json and report.html from a scripted run (no model)."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from generation.loop import LoopConfig, PersonalizedGenerator
from generation.report import finish_run_dir, prepare_run_dir, write_run
from preferthinker.errors import OutputExistsError

from .conftest import SolidGenerator


@pytest.fixture()
def result(scripted_assessor, refs_dir, tmp_path):
    loop = PersonalizedGenerator(scripted_assessor, SolidGenerator(),
                                 LoopConfig(n=4, strategy="round-robin", cache=False))
    return loop.run("a castle <b>at night</b>", refs_dir / "liked", refs_dir / "disliked")


def test_result_json_has_everything_the_issue_lists(result, tmp_path):
    data = write_run(result, prepare_run_dir(tmp_path / "run"))
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(data, default=str))
    for key in ("prompt", "rewritten_prompt", "negative_prompt", "profile", "ranking", "timings", "models",
                "versions", "status", "usage", "generator_settings", "config"):
        assert key in data, key
    assert data["status"] == "complete"
    assert data["profile"]["profile"]["liked"]["color"] == ["Crimson"]
    comparison = data["ranking"]["comparisons"][0]
    scores = comparison["comparison"]["parsed"][0]["scores"]
    assert scores[0]["element"] == "color" and scores[0]["rationale_a"].startswith("red ")
    assert {c["rank"] for c in data["candidates"]} == {1, 2, 3, 4}
    assert set(data["timings"]) >= {"profile", "rewrite", "generate", "rerank", "total"}


def test_report_is_self_contained_and_shows_profile_scores_and_rationales(result, tmp_path):
    folder = prepare_run_dir(tmp_path / "run")
    write_run(result, folder)
    html = (folder / "report.html").read_text()
    assert "Crimson" in html and "Cobalt Blue" in html  # both profiles
    assert "red 250" in html or re.search(r"red \d+", html)  # per-element rationales
    assert html.count("<details class='comparison'") == 6  # round-robin over 4
    assert "rank 1" in html
    assert "&lt;b&gt;at night&lt;/b&gt;" in html and "<b>at night</b>" not in html  # escaped
    assert not re.search(r"""(src|href)=['"](https?:|/|file:)""", html)  # nothing external


def test_png_metadata(result, tmp_path):
    folder = prepare_run_dir(tmp_path / "run")
    write_run(result, folder)
    with Image.open(folder / "candidate-03-seed3.png") as image:
        assert image.text["seed"] == "3" and image.text["model"] == "solid"
        assert image.text["prompt"].startswith("a castle <b>at night</b>, Pixel Art style")
        assert "Seed: 3" in image.text["parameters"]


def test_run_dirs_are_numbered_and_out_must_be_empty(tmp_path):
    root = tmp_path / "runs"
    assert prepare_run_dir(None, root).name == "run-001"
    assert prepare_run_dir(None, root).name == "run-002"
    (root / "run-010").mkdir()
    assert prepare_run_dir(None, root).name == "run-011"
    out = tmp_path / "out"
    prepare_run_dir(out)
    (out / "result.json").write_text("{}")
    (out / "candidate-00-seed0.png").write_bytes(b"x")
    (out / "mine.txt").write_text("keep")
    with pytest.raises(OutputExistsError, match="--force"):
        prepare_run_dir(out)
    staging = prepare_run_dir(out, force=True)
    # Nothing is deleted before the new run succeeds: it writes next to the old one.
    assert staging != out and staging.parent == out.parent and list(staging.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["candidate-00-seed0.png", "mine.txt", "result.json"]
    (staging / "result.json").write_text('{"new": 1}')
    assert finish_run_dir(staging) == out and not staging.exists()
    assert (out / "result.json").read_text() == '{"new": 1}'
    (old,) = [p for p in tmp_path.iterdir() if p.name.startswith("out.ptgen-old-")]
    assert sorted(p.name for p in old.iterdir()) == ["candidate-00-seed0.png", "mine.txt", "result.json"]
    assert (old / "mine.txt").read_text() == "keep"
    assert finish_run_dir(out) == out  # not a staging folder: left as it is


def test_cli_ctrl_c_writes_partial_result(tiny_generator_path, tmp_path, monkeypatch):
    from ptgen.cli.main import main
    from generation.generator import DiffusersGenerator

    original = DiffusersGenerator.generate
    calls = []

    def interrupt_second(self, prompt, negative_prompt="", seeds=(0,), progress=None):
        calls.append(seeds)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, prompt, negative_prompt, seeds)

    monkeypatch.setattr(DiffusersGenerator, "generate", interrupt_second)
    out = tmp_path / "run"
    code = main(["generate", "a castle", "--no-personalize", "--generator", str(tiny_generator_path),
                 "-n", "4", "--batch-size", "2", "--device", "cpu", "--out", str(out)])
    assert code == 130
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "partial" and len(data["candidates"]) == 2
    assert len(list(out.glob("*.png"))) == 2 and (out / "report.html").is_file()
