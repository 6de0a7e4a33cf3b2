"""Fast judging on SynthPref: how well each judge picks from N candidates, and what it costs.

For each simulated user (hidden profile) and seed, the procedural renderer draws the user's
references (3 liked, 3 disliked, as in SynthPref) and N candidates for a subject with random
terms (the renderer's own draw per seed: a diverse pool, so the judge alone decides what is
picked). The first 8 and 16 of the 32 candidates are the N = 8 and N = 16 pools. The picked image
is scored by the share of the user's five liked elements it shows (exact: the renderer records
what it drew). Judges:

- random pick: the expected match of a uniformly random candidate (the pool's mean);
- similarity only (MODEL): the candidate with the highest similarity score (cosine to the liked
  prototype minus cosine to the disliked one; `preferthinker/image_similarity.py`);
- analytic tournament: a knockout (N-1 comparisons) with the analytic assessor and the authors'
  full prompt (all references in every comparison);
- hybrid (MODEL K=8, then analytic): the pre-filter keeps 8, the analytic knockout ranks them
  (7 comparisons whatever N is);
- oracle: the best candidate by the hidden profile.

Cost: assessor calls and images sent per run (0 for the judges with no assessor), and the
embedding time per image on this CPU.

Run (about 1-2 minutes on 2 busy cores):

    python benchmarks/fast_judging.py --users 30 --seeds 3 --out /tmp/fast_judging.md

Example:
    >>> rows = run_fast_judging(users=2, seeds=1, sizes=(8,), backbones=("stats",))
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from ptgen.demo import match_score


def _available(backbones: Sequence[str]) -> list[str]:
    """The backbones that load here (EfficientNet-Lite0 needs its weights package)."""
    from preferthinker.errors import PTGenError
    from preferthinker.image_similarity import create_embedder

    found = []
    for name in backbones:
        try:
            create_embedder(name)
            found.append(name)
        except PTGenError as error:
            print(f"skipping {name}: {error}", file=sys.stderr)
    return found


def run_fast_judging(
    users: int = 30,
    seeds: int = 3,
    sizes: Sequence[int] = (8, 16, 32),
    backbones: Sequence[str] = ("stats", "efficientnet-lite0"),
    keep: int = 8,
    size: int = 96,
    embed_size: int = 128,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every judge on `users` x `seeds` runs per N; one row per (judge, N).

    Args:
        users, seeds: simulated users and runs per user (different references and candidates).
        sizes: the N values (each pool is a prefix of the largest).
        backbones: similarity models to try (those that do not load are skipped).
        keep: the hybrid pre-filter's K.
        size: rendered image side; embed_size: the side EfficientNet-Lite0 sees.
        seed: seeds users and runs.

    Returns:
        Rows with `judge`, `n`, `match` (mean), `se` (standard error over runs), `calls` and
        `images` (assessor, per run), `ms_per_image` (embedding, for similarity judges).
    """
    from generation.prefilter import expand_ranking, prefilter_candidates
    from generation.rerank import rerank
    from preferthinker.assessor import Assessor, AssessorConfig
    from preferthinker.image_similarity import create_embedder, reference_scores
    from preferthinker.references import References
    from synthpref.bench import DEFAULT_SUBJECTS, make_user_items
    from synthpref.renderer import SUPPORTED_TERMS, ProceduralRenderer, terms_distinct
    from synthpref.users import sample_users

    backbones = _available(backbones)
    for name in backbones:
        embedder = create_embedder(name)
        if hasattr(embedder, "image_size"):
            embedder.image_size = embed_size  # small images: a smaller input keeps this quick
    renderer = ProceduralRenderer(size=size)
    analytic = Assessor.from_config(AssessorConfig(assessor="analytic", max_retries=0))
    population = sample_users(users, SUPPORTED_TERMS, seed=seed, compatible=terms_distinct)
    largest = max(sizes)
    records: dict[tuple[str, int], list[tuple[float, int, int]]] = {}

    def record(judge: str, n: int, match: float, calls: int = 0, images: int = 0) -> None:
        records.setdefault((judge, n), []).append((match, calls, images))

    for user in population:
        for run in range(seeds):
            rng = random.Random(f"{seed}:{user.user_id}:{run}")
            item = make_user_items(user, renderer, DEFAULT_SUBJECTS, 3, 1, rng)[0]
            refs = References.load(item.preferred, item.non_preferred)
            subject = rng.choice(DEFAULT_SUBJECTS)
            base = rng.randrange(1_000_000)
            pool = [renderer.render(subject, {}, seed=base + k).image for k in range(largest)]
            matches = [match_score(image, user.profile)[0] for image in pool]
            for n in sizes:
                images, truth = pool[:n], matches[:n]
                record("random pick", n, statistics.fmean(truth))
                record("oracle", n, max(truth))
                for name in backbones:
                    scored = reference_scores(
                        create_embedder(name), images, refs.liked, refs.disliked
                    )
                    best = max(range(n), key=lambda i: (scored[i].score, -i))
                    record(f"similarity only ({name})", n, truth[best])
                ranking = rerank(images, analytic, liked=refs)
                record(
                    "analytic tournament",
                    n,
                    truth[ranking.order[0]],
                    ranking.usage.calls,
                    ranking.usage.images,
                )
                for name in backbones:
                    chosen = prefilter_candidates(images, refs, f"similarity:{name}", keep)
                    kept = rerank([images[i] for i in chosen.kept], analytic, liked=refs)
                    full = expand_ranking(kept, chosen)
                    record(
                        f"hybrid ({name} K={keep}, then analytic)",
                        n,
                        truth[full.order[0]],
                        kept.usage.calls,
                        kept.usage.images,
                    )
    analytic.close()
    order = (
        ["random pick"] + [f"similarity only ({b})" for b in backbones] + ["analytic tournament"]
    )
    order += [f"hybrid ({b} K={keep}, then analytic)" for b in backbones] + ["oracle"]
    rows = []
    for judge in order:
        for n in sizes:
            values = records[(judge, n)]
            scores = [v[0] for v in values]
            backbone = next((b for b in backbones if f"({b}" in judge), None)
            rows.append(
                {
                    "judge": judge,
                    "n": n,
                    "runs": len(values),
                    "match": statistics.fmean(scores),
                    "se": statistics.stdev(scores) / len(scores) ** 0.5 if len(scores) > 1 else 0.0,
                    "calls": statistics.fmean(v[1] for v in values),
                    "images": statistics.fmean(v[2] for v in values),
                    "ms_per_image": create_embedder(backbone).ms_per_image if backbone else None,
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]], command: str, wall: float) -> str:
    """The results table, with the command and the machine."""
    lines = [
        f"Command: `{command}` ({wall:.0f} s wall on {platform.machine()}, "
        f"Python {platform.python_version()}).",
        "",
        "| judge | N | runs | profile match of the pick | assessor calls / run "
        "| images sent / run | embed ms / image |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ms = f"{row['ms_per_image']:.1f}" if row["ms_per_image"] is not None else "-"
        lines.append(
            f"| {row['judge']} | {row['n']} | {row['runs']} "
            f"| {row['match']:.3f} +/- {row['se']:.3f} | "
            f"{row['calls']:.0f} | {row['images']:.0f} | {ms} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--backbones", nargs="+", default=["stats", "efficientnet-lite0"])
    parser.add_argument("--keep", type=int, default=8)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--out", type=Path, default=None, help="Write the markdown table here.")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = run_fast_judging(
        args.users, args.seeds, args.sizes, args.backbones, args.keep, args.size
    )
    command = "python benchmarks/fast_judging.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = markdown(rows, command.strip(), time.perf_counter() - start)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
