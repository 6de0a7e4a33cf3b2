"""benchmarks/gpu_evidence.py: the `--tiny` CPU run goes through every stage of every section
for real (a subprocess, as the GPU machine will run it) and writes one JSON with each section's
figures; a failing section is recorded and the next one still runs; time budgets cut steps and
say so; the full-size architectures the GPU run builds have the published parameter counts."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_evidence.py"
TINY_BUDGET = 300


def _script():
    """benchmarks/gpu_evidence.py imported as a module."""
    spec = importlib.util.spec_from_file_location("gpu_evidence", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_evidence"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evidence") / "evidence.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--budget", str(TINY_BUDGET), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TINY_BUDGET + 120,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8")), seconds, done.stdout


def test_every_section_ran_and_the_run_kept_its_budget(tiny_run):
    report, seconds, stdout = tiny_run
    assert {name: s["status"] for name, s in report["sections"].items()} == {
        "study": "ok",
        "loop": "ok",
        "memory": "ok",
    }, json.dumps(report["sections"], default=str)[:3000]
    assert json.loads(stdout.strip().splitlines()[-1]) == {
        "study": "ok",
        "loop": "ok",
        "memory": "ok",
    }
    assert report["elapsed_seconds"] <= TINY_BUDGET
    environment = report["environment"]
    assert environment["device"] == "cpu" and environment["gpu"] is None
    assert environment["date"].startswith("20") and "cuda" in environment
    for package in ("torch", "transformers", "diffusers", "trl", "peft"):
        assert environment["versions"][package], package
    assert report["mode"].startswith("tiny")


def test_study_section_trained_and_evaluated_every_row(tiny_run):
    study = tiny_run[0]["sections"]["study"]
    assert study["setting"].endswith("study-gpu.yaml")
    # The tiny overrides' steps all ran (no budget cut), GRPO included.
    assert study["done"]["sft_steps"] == study["planned"]["sft_steps"] == 3
    assert study["done"]["grpo_steps"] == study["planned"]["grpo_steps"] == 1
    assert not study["done"]["sft_stopped_by_budget"]
    assert list(study["summary"]) == ["random", "analytic", "sft", "grpo"]
    for row in study["summary"].values():
        assert set(row["splits"]) == {"seen-SP", "seen-MP", "unseen-SP", "unseen-MP"}
        assert 0.0 <= row["accuracy"]["mean"] <= 1.0
    assert study["table"].count("\n") == 5  # header, rule, four rows
    # The pair breakdown counts every evaluation pair once per row (4 splits x 2 users x 2 pairs).
    for row in ("analytic", "sft", "grpo"):
        assert sum(group["pairs"] for group in study["pair_breakdown"][row].values()) == 16
    assert {"data", "sft", "eval_sft", "grpo", "eval_grpo"} <= set(study["timings"])


def test_loop_section_forced_the_verdict_lengths(tiny_run):
    report = tiny_run[0]
    loop, sizes = report["sections"]["loop"], report["sizes"]
    for name, tokens in (
        ("full_verdicts", sizes["full_tokens"]),
        ("compact_verdicts", sizes["compact_tokens"]),
    ):
        run = loop[name]
        assert run["mode"] == "profile"  # the profile parsed: comparisons use the known profile
        # profile + knockout over n: n - 1 comparisons, each exactly the forced length
        assert run["comparisons"] == sizes["n"] - 1
        assert run["completion_tokens"] == sizes["profile_tokens"] + (sizes["n"] - 1) * tokens
        assert 0 <= run["overhead_share"] < 0.5
        assert set(run["timings_seconds"]) >= {"profile", "rerank", "total"}
    full = loop["full_verdicts"]
    assert {"references", "profile", "rewrite", "generate", "rerank"} <= set(
        full["timings_seconds"]
    )
    assert full["model_seconds"]["generator"] > 0 and full["settings"]["width"] == sizes["size"]
    assert set(full["peak_memory_by_stage"]) == {
        "references",
        "profile",
        "rewrite",
        "generate",
        "rerank",
    }
    assert loop["assessor"]["architecture"] == "tiny" and loop["assessor"]["parameters"] > 0
    anchors = loop["anchors"]
    assert anchors["unet_step_seconds"] > 0 and anchors["vae_decode_seconds"] > 0
    for batch in ("batch1", "batch4"):
        assert anchors[batch]["prefill_seconds"] > 0 and anchors[batch]["prompt_tokens"] > 0
    assert (
        anchors["rerank_predicted_seconds"]["full"]
        > anchors["rerank_predicted_seconds"]["compact"]
        > 0
    )
    batching = loop["batching"]
    assert (
        batching["n"] == sizes["n"] and batching["batched_seconds"] > 0 and batching["speedup"] > 0
    )


def test_memory_section_measured_each_component_and_reports_quantization_clearly(tiny_run):
    memory = tiny_run[0]["sections"]["memory"]
    assert "23.0 GiB" in memory["fits_24gb_rule"]
    assert "batch2" in memory["generator"] and "compare_batch4" in memory["assessor_bf16"]
    for name in ("both_on_gpu", "sequential"):
        run = memory["loop"][name]
        assert (
            set(run["peak_by_stage"]) >= {"profile", "generate", "rerank"}
            and run["total_seconds"] > 0
        )
    # No CUDA here: each quantized assessor is one clear line, not a crash of the section.
    for quantization in ("8bit", "4bit"):
        entry = memory[f"assessor_{quantization}"]
        assert entry["status"] == "error"
        assert entry["error"].startswith(
            f"InputError: quantization '{quantization}' needs a CUDA GPU"
        )


def test_a_failing_section_is_recorded_and_the_next_still_runs(tmp_path, monkeypatch):
    evidence = _script()

    def broken(*args, **kwargs):
        raise RuntimeError("the study broke")

    def quick(sizes, device, work, deadline, record, save, context):
        record["figure"] = 1.0

    # The sections themselves are tested above; here only the orchestration around them.
    monkeypatch.setitem(evidence.RUNNERS, "study", broken)
    monkeypatch.setitem(evidence.RUNNERS, "loop", quick)
    out = tmp_path / "evidence.json"
    report = evidence.main(["--tiny", "--sections", "study", "loop", "--out", str(out)])
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["sections"]["study"]["status"] == "error"
    assert saved["sections"]["study"]["error"] == "RuntimeError: the study broke"
    assert "Traceback" in saved["sections"]["study"]["traceback"]
    assert saved["sections"]["loop"] == {**report["sections"]["loop"], "status": "ok"}
    assert saved["sections"]["loop"]["figure"] == 1.0


def test_spent_budgets_cut_steps_and_sections_and_say_so(tmp_path):
    evidence = _script()
    record: dict = {}
    ran = []
    evidence.run_steps(
        [("first", lambda: ran.append(1)), ("second", lambda: ran.append(2))],
        time.monotonic() - 1,
        record,
        lambda: None,
    )
    assert ran == [] and record["first"]["status"].startswith("cut: the section's time budget")
    report = evidence.main(
        ["--tiny", "--sections", "memory", "--budget", "0", "--out", str(tmp_path / "e.json")]
    )
    assert report["sections"]["memory"]["status"] == "cut: the run's time budget was spent"
    # Each section gets its share of what is left (study 50 %, loop 30 %, memory 20 %), in
    # proportion to the sections still to run: the last one gets all that is left.
    budget = evidence.Budget(100.0, ["study", "loop", "memory"])
    assert budget.section_deadline("study") - time.monotonic() == pytest.approx(50.0, abs=0.5)
    assert budget.section_deadline("memory") - time.monotonic() == pytest.approx(100.0, abs=0.5)


def test_full_size_architectures_have_the_published_parameter_counts():
    """The GPU run's models, built on the meta device (no memory, no weights): Qwen2.5-VL-7B
    (8,292,166,656 parameters) and SDXL's UNet (2,567,463,684) and VAE (83,653,863)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from preferthinker.tiny import SPECIAL_TOKENS, build_tiny_processor

    _script()  # puts benchmarks/ on the path
    from full_size import qwen25_vl_7b_config

    tokenizer = build_tiny_processor().tokenizer
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(qwen25_vl_7b_config(ids))
    assert sum(p.numel() for p in model.parameters()) == 8_292_166_656
    from generator_batching import build_sdxl_pipeline

    pipeline = build_sdxl_pipeline(small=False, device="meta", dtype="float16")
    assert sum(p.numel() for p in pipeline.unet.parameters()) == 2_567_463_684
    assert sum(p.numel() for p in pipeline.vae.parameters()) == 83_653_863
