"""benchmarks/rerank_cost.py's token model: compact verdicts cost at most 1/5 of the completion
tokens of full verdicts per best-of-8 rerank, and pick the same winner."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "rerank_cost.py"


def test_compact_verdicts_write_a_fifth_of_the_tokens():
    spec = importlib.util.spec_from_file_location("rerank_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cost = module.measure_cost(n=8, liked=5, disliked=5, size=256)
    assert cost["compact"]["calls"] == cost["default"]["calls"] == 8
    assert cost["compact"]["winner"] == cost["default"]["winner"]
    assert cost["compact_completion_ratio"] <= 0.2
    assert cost["compact"]["completion_tokens"] > 0
