"""`ptgen demo`: the real loop against the procedural renderer with the analytic assessor."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess

import pytest
from PIL import Image

from ptgen.cli.main import main
from ptgen.demo import DemoConfig, evaluate_demo, match_score, run_demo


def test_demo_is_deterministic_and_matches_by_construction():
    first = run_demo(DemoConfig(seed=5, n=4))
    second = run_demo(DemoConfig(seed=5, n=4))
    assert first.hidden == second.hidden
    assert first.personalized_match == second.personalized_match
    assert first.baseline_match == second.baseline_match
    # The score is the share of the hidden profile's elements that the pick was drawn with.
    score, per_element = match_score(first.personalized.best.image, first.hidden)
    assert score == first.personalized_match
    assert set(per_element) == {e for e, terms in first.hidden.liked.items() if terms}


def test_personalized_pick_beats_baseline_on_average():
    rows = evaluate_demo(range(6), DemoConfig(n=6, size=96))
    personalized = statistics.mean(p for _, p, _ in rows)
    baseline = statistics.mean(b for _, _, b in rows)
    assert personalized > baseline


def test_match_score_refuses_foreign_images():
    outcome = run_demo(DemoConfig(seed=1, n=2, size=64))
    with pytest.raises(ValueError, match="procedural"):
        match_score(Image.new("RGB", (8, 8)), outcome.hidden)


def test_demo_config_validation_names_field():
    with pytest.raises(ValueError, match="refs"):
        DemoConfig(refs=9)
    with pytest.raises(ValueError, match="n must"):
        DemoConfig(n=1)


def test_demo_cli_writes_report_with_demo_section(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--seed", "2", "-n", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 3 and printed[2].startswith("profile match of the pick")
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "complete" and len(data["candidates"]) == 4
    page = (out / "report.html").read_text()
    assert 'id="demo-profiles"' in page and "baseline pick" in page
    # A second demo into the same folder must not overwrite the first.
    assert main(["demo", "--seed", "3", "--out", str(out)]) == 2
    assert json.loads((out / "result.json").read_text()) == data


def test_demo_report_renders_in_headless_chromium(tmp_path, capsys):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip(
            "chromium is not installed (apt-get install -y chromium); the render check needs it"
        )
    out = tmp_path / "demo"
    assert main(["demo", "--seed", "4", "-n", "4", "--out", str(out)]) == 0
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
    ]
    dom = subprocess.run(
        flags + ["--dump-dom", (out / "report.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "demo-profiles" in dom and "personalized pick" in dom
    shot = tmp_path / "demo.png"
    subprocess.run(
        flags + ["--window-size=1000,1200", f"--screenshot={shot}", (out / "report.html").as_uri()],
        capture_output=True,
        timeout=120,
    )
    with Image.open(shot) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colors is not None and len(colors) > 500  # images and text drew, not a blank page
