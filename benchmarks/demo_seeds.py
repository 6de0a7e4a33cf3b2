"""Does `ptgen demo`'s personalized pick match the hidden profile better than the baseline pick?

Runs the demo for many seeds and prints a Markdown table (per seed and the mean), for
docs/results.md.

    python benchmarks/demo_seeds.py --seeds 20
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from typing import Optional

from ptgen.demo import DemoConfig, evaluate_demo


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1")
    parser.add_argument("--n", type=int, default=8, help="candidates per run")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = evaluate_demo(range(args.seeds), DemoConfig(n=args.n))
    seconds = time.perf_counter() - start
    personalized = [p for _, p, _ in rows]
    baseline = [b for _, _, b in rows]
    better = sum(p > b for p, b in zip(personalized, baseline))
    worse = sum(p < b for p, b in zip(personalized, baseline))
    print(
        f"`python benchmarks/demo_seeds.py --seeds {args.seeds} --n {args.n}` "
        f"({platform.machine()}, {seconds:.0f} s)\n"
    )
    print("| | personalized pick | baseline pick |")
    print("|---|---|---|")
    print(
        f"| mean profile match over {len(rows)} seeds | {statistics.mean(personalized):.2f} "
        f"| {statistics.mean(baseline):.2f} |"
    )
    print(
        f"| spread (stdev) | {statistics.pstdev(personalized):.2f} "
        f"| {statistics.pstdev(baseline):.2f} |"
    )
    print(
        f"\nPersonalized better on {better} seeds, worse on {worse}, "
        f"equal on {len(rows) - better - worse}."
    )
    print(
        "\nPer seed (personalized / baseline): "
        + ", ".join(f"{s}: {p:.1f}/{b:.1f}" for s, p, b in rows)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
