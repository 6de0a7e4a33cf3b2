"""The loop-utility script runs the real loop on the procedural generator and writes its table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("loop_utility", ROOT / "benchmarks" / "loop_utility.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loop_utility_table(tmp_path):
    module = _module()
    out = tmp_path / "loop.md"
    assert module.main(["--users", "3", "--n", "4", "--size", "64", "--out", str(out)]) == 0
    text = out.read_text()
    rows = {line.split("|")[1].strip(): float(line.split("|")[3]) for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| condition")}
    assert set(rows) == {"plain + random pick", "rewrite only (analytic profile)",
                         "rewrite + rerank (analytic)", "oracle (best rewrite candidate)"}
    # The oracle picks the best of the rewrite candidates: nothing chosen from them can beat it.
    assert rows["oracle (best rewrite candidate)"] >= rows["rewrite + rerank (analytic)"]
    # Each value is a mean over 3 users of (elements matched) / 5: a multiple of 1/15.
    assert all(abs(v * 15 - round(v * 15)) < 0.01 for v in rows.values()), rows
    # The claim the table exists for: the profile brings the images closer to the user's taste.
    assert rows["rewrite only (analytic profile)"] > rows["plain + random pick"] + 0.1
    assert rows["rewrite + rerank (analytic)"] > rows["plain + random pick"] + 0.1
    assert "Command: `python benchmarks/loop_utility.py --users 3" in text
