"""`ptgen eval --verdict compact`: with a known profile (`--mode profile`) the comparisons go out
as the compact prompt with the `</answer>` stop sequence, the compact answers are scored like
full ones, and the result records the verdict and the completion tokens; with `--mode full` the
command refuses in one line.

The model is the scripted engine (a real assessor cannot run here): it answers compact prompts
with a compact verdict for the candidate that matches the user's profile, except on one item."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.benchmark import load_benchmark
from preferthinker.compact import (
    COMPACT_FORMAT,
    COMPACT_STOP,
    COMPACT_SYSTEM_PROMPT,
    format_compact,
)
from preferthinker.engines.scripted import ScriptedEngine
from preferthinker.evaluation import EvalConfig, evaluate
from preferthinker.images import load_image
from preferthinker.profile import ELEMENTS
from preferthinker.results import ElementScore
from synthpref.bench import SynthPrefConfig, build_synthpref

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("compact-eval") / "sp"
    build_synthpref(out, SynthPrefConfig(seed=7, users=1, refs=1, pairs=2, size=64))
    return out


class Recording(ScriptedEngine):
    """The scripted engine, also keeping the GenerationConfig of each call (for the stop)."""

    def __init__(self, responses):
        super().__init__(responses)
        self.configs = []

    def generate(self, conversations, config=None):
        self.configs.extend([config] * len(conversations))
        return super().generate(conversations, config)


def _pixels(image) -> bytes:
    return image.convert("RGB").tobytes()


def test_compact_eval_scores_compact_answers_and_sends_the_compact_prompt(small_set):
    items = load_benchmark(small_set)
    assert len(items) == 8 and all(item.profile is not None for item in items)
    wrong = items[0].item_id
    # (pixels of the image shown as A, of the image shown as B) -> the letter to answer.
    answers, profiles = {}, {}
    for item in items:
        a, b = (_pixels(load_image(p)) for p in (item.image_a, item.image_b))
        truth = item.answer if item.item_id != wrong else {"A": "B", "B": "A"}[item.answer]
        answers[(a, b)] = truth
        answers[(b, a)] = {"A": "B", "B": "A"}[truth]  # the swapped (position-bias) order
        profiles[(a, b)] = profiles[(b, a)] = item.profile

    def respond(conversation) -> str:
        if conversation[0]["content"][0]["text"] != COMPACT_SYSTEM_PROMPT:
            return "A long full verdict that the compact parser cannot read."
        parts = conversation[-1]["content"]
        images = [_pixels(p["image"]) for p in parts if p["type"] == "image"]
        winner = answers[tuple(images)]
        scores = [ElementScore(e, *((4, 1) if winner == "A" else (1, 4))) for e in ELEMENTS]
        return format_compact(scores, winner)

    engine = Recording(respond)
    assessor = Assessor(engine, AssessorConfig(assessor="scripted", max_retries=0))
    result = evaluate(
        items, assessor, EvalConfig(mode="profile", verdict="compact", similarity=False)
    )
    assert result["verdict"] == "compact" and result["n"] == 8
    assert result["accuracy"] == pytest.approx(7 / 8)
    assert result["parse_failure_rate"] == 0 and result["position_bias_rate"] == 0
    # Every comparison (8 items, both orders) went out compact, with the stop sequence, and
    # carried the item's own profile.
    assert len(engine.calls) == 16
    assert all(config.stop == (COMPACT_STOP,) for config in engine.configs)
    for conversation in engine.calls:
        assert conversation[0]["content"][0]["text"] == COMPACT_SYSTEM_PROMPT
        parts = conversation[-1]["content"]
        assert parts[-1]["text"] == COMPACT_FORMAT
        images = tuple(_pixels(p["image"]) for p in parts if p["type"] == "image")
        liked_color = profiles[images].liked.terms("color")[0]
        assert liked_color in " ".join(p.get("text", "") for p in parts)
    # The scripted engine counts whitespace-separated words: 5 per compact verdict.
    assert result["mean_completion_tokens"] == 5
    assert [entry["completion_tokens"] for entry in result["items"]] == [5] * 8
    wrong_entry = next(e for e in result["items"] if e["id"] == wrong)
    assert wrong_entry["winner"] != wrong_entry["answer"]


def test_the_same_answers_read_as_full_verdicts_fail(small_set):
    """The compact path is what makes them count: without it the same engine fails to parse."""
    items = load_benchmark(small_set)[:2]
    engine = ScriptedEngine(["A long full verdict that the compact parser cannot read."])
    assessor = Assessor(engine, AssessorConfig(assessor="scripted", max_retries=0))
    result = evaluate(items, assessor, EvalConfig(mode="profile", similarity=False))
    assert result["verdict"] == "full" and result["parse_failure_rate"] == 1.0
    assert all(c[0]["content"][0]["text"] != COMPACT_SYSTEM_PROMPT for c in engine.calls)


def test_eval_config_refuses_compact_without_a_profile():
    with pytest.raises(ValueError, match="mode profile"):
        EvalConfig(verdict="compact")
    with pytest.raises(ValueError, match="protocol ptgen"):
        EvalConfig(mode="profile", verdict="compact", protocol="authors")


def _eval(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "ptgen", "eval", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_compact_needs_mode_profile_and_records_the_verdict(small_set, tmp_path):
    out = tmp_path / "res" / "compact.json"
    refused = _eval(
        "--data", str(small_set), "--assessor", "random", "--verdict", "compact",
        "--no-similarity", "--out", str(out),
    )  # fmt: skip
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    error = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(error) == 1 and "--mode profile" in error[0] and not out.exists()
    ran = _eval(
        "--data", str(small_set), "--assessor", "random", "--verdict", "compact",
        "--mode", "profile", "--no-similarity", "--out", str(out),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    result = json.loads(out.read_text())
    assert result["verdict"] == "compact" and result["mode"] == "profile" and result["n"] == 8
    assert result["parse_failure_rate"] == 0  # the random engine's "<answer>Image X</answer>"
    assert "mean_completion_tokens" in result
    assert all("completion_tokens" in entry for entry in result["items"])
