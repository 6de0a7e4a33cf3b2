"""Loop utility: does the personalized loop give simulated users images closer to their taste?

For each simulated user (hidden profile), the full `generate` loop (`generation.loop`) runs
against the procedural generator (a simulator for evaluation) with the user's rendered liked and
disliked references. The chosen image is scored by the fraction of the user's profile elements it
matches (the renderer records the term it drew for each element, so this is exact). Conditions:

- plain + random pick: no personalization, one of the N candidates at random;
- rewrite only: the assessor's predicted profile rewrites the prompt, no reranking;
- rewrite + rerank: the same, then a knockout tournament with the assessor;
- oracle: the best of the rewrite candidates by the hidden profile (the ceiling for reranking).

Run (CPU, about a minute with the analytic assessor):

    python benchmarks/loop_utility.py --users 12 --n 8 --out docs/loop_utility.md
    python benchmarks/loop_utility.py --users 4 --n 4 --tiny-assessor /tmp/tiny/assessor

Example:
    >>> rows = run_loop_utility(users=2, n=4, assessors={"analytic": "analytic"})
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any, Optional

from ptgen.demo import match_score
from synthpref.bench import DEFAULT_SUBJECTS, make_user_items
from synthpref.renderer import SUPPORTED_TERMS, ProceduralGenerator, terms_distinct
from synthpref.users import sample_users


def match_fraction(image: Any, user: Any) -> float:
    """Share of the user's liked elements the image shows (from the renderer's record)."""
    return match_score(image, user.profile)[0]


def _assessor(spec: str, max_new_tokens: int):
    from preferthinker.assessor import Assessor, AssessorConfig

    return Assessor.from_config(
        AssessorConfig(
            assessor=spec,
            max_new_tokens=max_new_tokens,
            max_retries=0,
            device="cpu" if spec != "analytic" else None,
        )
    )


def _run(assessor, generator, prompt, liked, disliked, **config) -> Any:
    from generation.loop import LoopConfig, PersonalizedGenerator

    loop = PersonalizedGenerator(assessor, generator, LoopConfig(cache=False, **config))
    return loop.run(prompt, liked, disliked)


def run_loop_utility(
    users: int = 8,
    n: int = 8,
    seed: int = 0,
    assessors: Optional[dict[str, str]] = None,
    max_new_tokens: int = 64,
    size: int = 128,
) -> list[dict[str, Any]]:
    """Run every condition for `users` simulated users; one row per condition with the mean
    match fraction, its spread over users and the seconds per user.

    Args:
        users: simulated users (single-preference, all renderer terms).
        n: candidates per run.
        seed: seed of users, prompts and candidates.
        assessors: name -> `--assessor` spec for the rewrite/rerank conditions
            (default {"analytic": "analytic"}); the first also predicts the profile for
            "rewrite only" and the oracle.
        max_new_tokens: decoding cap for model assessors.
        size: image side.
    """
    assessors = assessors or {"analytic": "analytic"}
    generator = ProceduralGenerator(size=size)
    population = sample_users(users, SUPPORTED_TERMS, seed=seed, compatible=terms_distinct)
    built = {name: _assessor(spec, max_new_tokens) for name, spec in assessors.items()}
    first = next(iter(built))
    scores: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}

    def record(name: str, value: float, spent: float) -> None:
        scores.setdefault(name, []).append(value)
        seconds[name] = seconds.get(name, 0.0) + spent

    for user in population:
        rng = random.Random(f"{seed}:{user.user_id}")
        refs = make_user_items(user, generator, DEFAULT_SUBJECTS, 3, 1, rng)[0]
        prompt = rng.choice(DEFAULT_SUBJECTS)
        base_seed = rng.randrange(10_000)
        t = time.perf_counter()
        plain = _run(
            built[first],
            generator,
            prompt,
            refs.preferred,
            refs.non_preferred,
            n=n,
            seed=base_seed,
            personalize=False,
        )
        pick = rng.choice(plain.candidates).image
        record("plain + random pick", match_fraction(pick, user), time.perf_counter() - t)
        t = time.perf_counter()
        rewritten = _run(
            built[first],
            generator,
            prompt,
            refs.preferred,
            refs.non_preferred,
            n=n,
            seed=base_seed,
            rerank=False,
        )
        pick = rng.choice(rewritten.candidates).image
        record(
            f"rewrite only ({first} profile)", match_fraction(pick, user), time.perf_counter() - t
        )
        record(
            "oracle (best rewrite candidate)",
            max(match_fraction(c.image, user) for c in rewritten.candidates),
            0.0,
        )
        for name, assessor in built.items():
            t = time.perf_counter()
            result = _run(
                assessor,
                generator,
                prompt,
                refs.preferred,
                refs.non_preferred,
                n=n,
                seed=base_seed,
                strategy="knockout",
            )
            record(
                f"rewrite + rerank ({name})",
                match_fraction(result.best.image, user),
                time.perf_counter() - t,
            )
    for assessor in built.values():
        assessor.close()
    order = ["plain + random pick", f"rewrite only ({first} profile)"]
    order += [f"rewrite + rerank ({name})" for name in built] + ["oracle (best rewrite candidate)"]
    rows = []
    for name in order:
        values = scores[name]
        mean = sum(values) / len(values)
        spread = (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
        rows.append(
            {
                "condition": name,
                "users": len(values),
                "match": mean,
                "sd": spread,
                "seconds_per_user": seconds[name] / len(values),
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]], command: str, wall: float) -> str:
    lines = [
        "| condition | users | profile elements matched (mean) | sd over users | s/user |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['condition']} | {r['users']} | {r['match']:.3f} | {r['sd']:.3f} "
            f"| {r['seconds_per_user']:.2f} |"
        )
    lines.append("")
    lines.append(
        f"Command: `{command}`; machine: {platform.machine()} CPU ({platform.system()}), "
        f"Python {platform.python_version()}; wall time {wall:.0f} s."
    )
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--n", type=int, default=8, help="candidates per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument(
        "--tiny-assessor", default=None, help="path of a tiny (or any) VLM assessor to add"
    )
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    args = parser.parse_args(argv)
    assessors = {"analytic": "analytic"}
    if args.tiny_assessor:
        assessors["tiny VLM"] = args.tiny_assessor
    start = time.perf_counter()
    rows = run_loop_utility(
        args.users, args.n, args.seed, assessors, args.max_new_tokens, args.size
    )
    command = "python benchmarks/loop_utility.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    table = markdown(rows, command.strip(), time.perf_counter() - start)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
