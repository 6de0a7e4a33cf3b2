"""benchmarks/fast_judging.py and benchmarks/calibrate_score.py at a tiny scale (real renders,
the real analytic assessor and colour-statistics embedder)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _module(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fast_judging_rows_hold_their_invariants():
    bench = _module("fast_judging")
    rows = bench.run_fast_judging(
        users=3, seeds=1, sizes=(4, 12), backbones=("stats",), keep=4, size=64
    )
    by = {(r["judge"], r["n"]): r for r in rows}
    for n in (4, 12):
        oracle = by[("oracle", n)]["match"]
        assert all(r["match"] <= oracle + 1e-9 for r in rows if r["n"] == n)
        assert by[("analytic tournament", n)]["calls"] == n - 1  # knockout
    hybrid = "hybrid (stats K=4, then analytic)"
    assert by[(hybrid, 12)]["calls"] == 3  # the pre-filter keeps 4 whatever N is
    assert by[("similarity only (stats)", 12)]["ms_per_image"] > 0
    assert "| oracle | 12 |" in bench.markdown(rows, "cmd", 1.0)


def test_logistic_fit_recovers_a_known_curve():
    calibrate = _module("calibrate_score")
    rng = np.random.default_rng(0)
    x = rng.normal(size=20_000)
    y = (rng.random(x.size) < 1 / (1 + np.exp(-(3.0 * x - 0.5)))).astype(float)
    slope, intercept = calibrate.fit_logistic(x, y)
    assert abs(slope - 3.0) < 0.15 and abs(intercept + 0.5) < 0.1
