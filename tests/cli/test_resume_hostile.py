"""`--resume` of damaged or foreign run folders: one-line errors, never a traceback."""

from __future__ import annotations

import json

import pytest

from .conftest import run_ptgen


def rerank_run(images) -> str:
    out = images["root"] / "run"
    done, _ = run_ptgen(
        "rerank", *images["candidates"][:3], "--refs", images["liked"],
        "--assessor", "analytic", "--out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def test_generate_resume_of_a_rerank_run_names_the_command(images):
    out = rerank_run(images)
    done, _ = run_ptgen("generate", "--resume", out)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"it is a `ptgen rerank` run; continue it with `ptgen rerank --resume {out}`" in (
        done.stderr
    )


def test_resume_with_force_is_refused_and_keeps_the_run(images):
    out = rerank_run(images)
    before = (out / "result.json").read_bytes()
    done, _ = run_ptgen("rerank", "--resume", out, "--force")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--resume keeps the run's results; leave out --force" in done.stderr
    assert (out / "result.json").read_bytes() == before


def test_resume_of_a_binary_journal_is_one_line(images):
    out = rerank_run(images)
    (out / "journal.jsonl").write_bytes(b"\x00\xff\xfe\x80garbage\n")
    done, _ = run_ptgen("rerank", "--resume", out)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "its journal has no start record" in done.stderr


def test_resume_with_a_damaged_comparison_record_recomputes_it(images):
    out = rerank_run(images)
    journal = out / "journal.jsonl"
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    kept = [r for r in lines if r["kind"] not in ("comparison", "stop")]
    kept.append({"kind": "comparison"})  # valid JSON, none of a comparison's fields
    journal.write_text("".join(json.dumps(r) + "\n" for r in kept))
    done, _ = run_ptgen("rerank", "--resume", out)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "complete"
    assert len(result["ranking"]["comparisons"]) == 2


@pytest.mark.parametrize("change", ["refs", "images"])
def test_a_refused_resume_leaves_a_complete_run_as_it_was(images, change):
    out = rerank_run(images)
    before = {name: (out / name).read_bytes() for name in ("result.json", "report.html")}
    if change == "refs":
        extra = ["--refs", images["candidates"][5]]
    else:
        extra = [*images["candidates"][:2]]
    done, _ = run_ptgen("rerank", "--resume", out, *extra)
    assert done.returncode == 2
    assert "cannot resume" in done.stderr and "Traceback" not in done.stderr
    assert "partial run written" not in done.stdout + done.stderr
    assert {name: (out / name).read_bytes() for name in before} == before


def test_explain_without_compact_verdicts_is_refused_before_anything_is_written(images):
    out = images["root"] / "explained"
    done, _ = run_ptgen(
        "rerank", *images["candidates"][:3], "--refs", images["liked"],
        "--assessor", "analytic", "--explain", "--out", out,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--explain needs --verdict compact" in done.stderr
    assert not out.exists()


def test_an_assessor_that_fails_to_load_leaves_no_empty_run_folder(images):
    broken = images["root"] / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "qwen2_5_vl"}')  # no weights
    out = images["root"] / "never-filled"
    done, _ = run_ptgen(
        "rerank", *images["candidates"][:2], "--refs", images["liked"],
        "--assessor", broken, "--out", out,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert not out.exists()
