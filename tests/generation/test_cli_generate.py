"""`ptgen generate` / `ptgen rerank` end to end on the tiny models (real loading, real pipelines)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from generation.rerank import NO_WINNER
from ptgen.cli.main import main

FAST = ["--max-new-tokens", "16"]  # the tiny random assessor writes noise; keep it short


@pytest.fixture(scope="module")
def first_run(tiny_assessor_path, tiny_generator_path, tmp_path_factory):
    """The issue's "Done when" command, run once for the module."""
    base = tmp_path_factory.mktemp("cli")
    refs = base / "refs"
    refs.mkdir()
    for k, color in enumerate([(250, 20, 20), (230, 40, 30), (240, 60, 10)]):
        Image.new("RGB", (32, 32), color).save(refs / f"{k}.png")
    cache = base / "cache"
    out = base / "run1"
    config = base / "ptgen.yaml"  # one file, a section per config; flags override it
    config.write_text("assessor:\n  max_retries: 0\n  batch_size: 2\n"
                      "loop:\n  strategy: round-robin\ngenerator:\n  batch_size: 2\n")
    argv = ["generate", "a castle", "--refs", str(refs), "--assessor", str(tiny_assessor_path),
            "--generator", str(tiny_generator_path), "-n", "4", "--out", str(out), "--cache-dir", str(cache),
            "--config", str(config), "--strategy", "knockout", *FAST]
    code = main(argv)
    return {"code": code, "out": out, "argv": argv, "base": base, "refs": refs, "cache": cache}


def test_done_when_writes_pngs_result_and_report(first_run, tiny_generator_path):
    assert first_run["code"] == 0
    out = first_run["out"]
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 4
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "complete"
    ranking = data["ranking"]
    assert sorted(c["rank"] for c in ranking["candidates"]) == [1, 2, 3, 4]
    assert len(ranking["comparisons"]) == 3  # knockout over 4
    # The tiny random assessor writes noise: nothing is decided, so there is no winner, the
    # candidates keep their generation order, and the run says so.
    assert ranking["decided"] is False and ranking["winner"] is None and data["best"] is None
    assert ranking["order"] == [0, 1, 2, 3]
    assert NO_WINNER in data["issues"]
    assert data["models"]["generator"] == str(tiny_generator_path)
    assert data["versions"]["diffusers"] and data["timings"]["total"] > 0
    assert data["profile_from_cache"] is False
    assert data["config"]["strategy"] == "knockout"  # the flag beat the YAML file
    assert data["generator_settings"]["batch_size"] == 2  # from the YAML file
    # prompt, seed and model travel inside each PNG
    with Image.open(out / "candidate-02-seed2.png") as image:
        assert image.text["seed"] == "2" and image.text["model"] == str(tiny_generator_path)
        assert image.text["prompt"] == data["rewritten_prompt"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/jpeg;base64,") >= 4 + 3  # candidates + references, embedded
    assert "src='http" not in html and 'src="http' not in html


def test_rerun_reuses_cached_profile_and_same_seeds_same_images(first_run):
    argv = list(first_run["argv"])
    out2 = first_run["base"] / "run2"
    argv[argv.index("--out") + 1] = str(out2)
    assert main(argv) == 0
    data = json.loads((out2 / "result.json").read_text())
    assert data["profile_from_cache"] is True
    assert data["usage"]["calls"] == 3  # only the comparisons
    for first in sorted(first_run["out"].glob("*.png")):
        a = Image.open(first).convert("RGB")
        b = Image.open(out2 / first.name).convert("RGB")
        assert max(abs(x - y) for x, y in zip(a.tobytes(), b.tobytes())) <= 1


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder`: its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_never_overwrites(first_run, capsys):
    before = snapshot(first_run["out"])
    assert "result.json" in before and len(before) >= 6  # 4 PNGs, result.json, report.html
    code = main(first_run["argv"])
    assert code == 2
    assert "not empty" in capsys.readouterr().err
    assert snapshot(first_run["out"]) == before  # not one file written, removed or touched
    # without --out: a new numbered folder each time
    argv = [a for a in first_run["argv"]]
    i = argv.index("--out")
    argv[i:i + 2] = ["--out-root", str(first_run["base"] / "runs"), "--no-personalize"]
    assert main(argv) == 0 and main(argv) == 0
    assert sorted(p.name for p in (first_run["base"] / "runs").iterdir()) == ["run-001", "run-002"]


def test_rerank_command_ranks_given_images(first_run, tiny_assessor_path, capsys):
    out = first_run["base"] / "rerank"
    images = [str(p) for p in sorted(first_run["out"].glob("*.png"))[:3]]
    code = main(["rerank", *images, "--refs", str(first_run["refs"]), "--assessor", str(tiny_assessor_path),
                 "--out", str(out), "--cache-dir", str(first_run["cache"]), "--top-k", "2",
                 "--config", str(first_run["base"] / "ptgen.yaml"), *FAST])
    assert code == 0
    data = json.loads((out / "result.json").read_text())
    assert len(data["ranking"]["comparisons"]) == 3 and data["profile_from_cache"] is True
    assert {c["source"] for c in data["candidates"]} == set(images)
    assert "report:" in capsys.readouterr().out


def test_missing_generator_is_one_line(first_run, tmp_path, capsys):
    argv = list(first_run["argv"])
    argv[argv.index("--generator") + 1] = str(tmp_path / "absent")
    argv[argv.index("--out") + 1] = str(tmp_path / "o")
    assert main(argv) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "make-tiny" in err[0]


def test_report_renders_in_headless_chromium(first_run, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); the report render check needs it")
    shot = tmp_path / "report.png"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--window-size=1200,1600", f"--screenshot={shot}", (first_run["out"] / "report.html").as_uri()]
    subprocess.run(command, capture_output=True, timeout=120)
    assert shot.is_file()
    with Image.open(shot) as image:
        assert image.size == (1200, 1600)
        colors = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colors is not None and len(colors) > 500  # text and embedded images drew, not a blank page
