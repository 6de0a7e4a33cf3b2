"""Aggregation over seeds: mean, sample spread, every row and split in the table."""

from __future__ import annotations

import pytest

from training.study.report import SPLITS, aggregate, markdown_summary, mean_std


def _result(acc: float, sbert=None) -> dict:
    return {
        "accuracy": acc,
        "per_split": {s: {"n": 10, "accuracy": acc} for s in SPLITS},
        "profile_sbert": sbert,
        "profile_term_match": {"color": acc},
        "parse_failure_rate": 0.0,
    }


def test_mean_std():
    assert mean_std([0.5, 0.7, None]) == {
        "mean": 0.6,
        "std": pytest.approx(0.1414, abs=1e-4),
        "n": 2,
    }
    assert mean_std([None]) == {"mean": None, "std": None, "n": 0}
    assert mean_std([0.8])["std"] == 0.0


def test_aggregate_and_table():
    summary = aggregate({0: {"sft": _result(0.8, 0.6)}, 1: {"sft": _result(1.0, 0.8)}})
    assert summary["sft"]["splits"]["seen-SP"]["mean"] == pytest.approx(0.9)
    assert summary["sft"]["profile_sbert"]["mean"] == pytest.approx(0.7)
    table = markdown_summary(summary, {"sft": "+SFT"})
    assert "| +SFT | 90.0 ± 14.1 |" in table
    assert all(f"{s} acc %" in table for s in SPLITS)
