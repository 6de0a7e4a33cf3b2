"""Feedback loop on SynthPref: does liking and disliking candidates bring later runs closer to a
hidden taste, and does aggregating many stored images beat the first-5 cut?

Simulated users (single-preference SynthPref users, hidden profile, all renderer terms) start with
2 liked + 2 disliked rendered references in a real `UserStore` (SQLite, temporary folder). Each
round draws a subject, runs the personalized loop (analytic assessor, procedural renderer,
`n` candidates, knockout), and the simulated user labels the candidates:

- rule: a candidate showing at least `k` of the user's hidden liked elements (default k = 3 of 5)
  is liked; one showing none of them is disliked; the rest get no label;
- noise: each label is flipped with probability `noise` (default 0.1), as a careless click.

The next round predicts the profile from the updated store. Conditions (same users, subjects and
seeds):

- aggregated: `generation.aggregate.predict_user_profile` over all stored images (subsets of 5+5,
  recency-weighted vote);
- first 5: the same growing store, but only the first 5 images per side in store order (oldest
  first, as `--refs DIR` reads a folder) reach the assessor, no aggregation;
- no feedback: the 2+2 starting references every round.

Per round: the pick's match (share of the hidden liked elements the ranked winner shows, exact from
the renderer) and the profile's term accuracy per element (the predicted liked terms include the
hidden one). The analytic assessor names no art style or medium, so those stay at 0 and the pick
match is about chance there.

Run (CPU on 2 busy cores: about 2 minutes at 64 px, 2-3 at 128 px, the size of docs/results.md):

    python benchmarks/feedback_loop.py --users 30 --seeds 3 --rounds 5 --size 128

Example:
    >>> rows = run_feedback_loop(users=2, seeds=1, rounds=2)
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Optional

from preferthinker.profile import ELEMENTS

CONDITIONS = ("aggregated", "first 5", "no feedback")


def _references(user: Any, renderer: Any, rng: random.Random, side: str, count: int) -> list:
    from synthpref.bench import DEFAULT_SUBJECTS

    profile = getattr(user.profile, side)
    images = []
    for _ in range(count):
        terms = {e: rng.choice(t) for e, t in profile.items() if t}
        images.append(
            renderer.render(rng.choice(DEFAULT_SUBJECTS), terms, seed=rng.randrange(2**31)).image
        )
    return images


def term_accuracy(predicted: Any, hidden: Any) -> dict[str, float]:
    """Per element: 1.0 when the predicted liked terms include a hidden liked term."""
    out = {}
    for element in ELEMENTS:
        wanted = {t.lower() for t in hidden.liked.terms(element)}
        got = {t.lower() for t in predicted.liked.terms(element)}
        out[element] = 1.0 if wanted & got else 0.0
    return out


def simulated_labels(
    candidates: list, user: Any, k: int, noise: float, rng: random.Random
) -> tuple[list, list]:
    """The rule of the module doc: (liked images, disliked images)."""
    from synthpref.renderer import image_attributes
    from synthpref.users import profile_matches

    liked, disliked = [], []
    for candidate in candidates:
        matched = sum(
            profile_matches(user.profile.liked, image_attributes(candidate.image)).values()
        )
        label = "liked" if matched >= k else ("disliked" if matched == 0 else None)
        if label and rng.random() < noise:
            label = "disliked" if label == "liked" else "liked"
        if label == "liked":
            liked.append(candidate.image)
        elif label == "disliked":
            disliked.append(candidate.image)
    return liked, disliked


def _first_five(user: Any, assessor: Any):
    from preferthinker.references import References

    oldest = {
        side: [str(i.path) for i in reversed(user.images(side))] for side in ("liked", "disliked")
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cut is the point of this condition
        refs = References.load(oldest["liked"], oldest["disliked"] or None, max_pixels=None)
    return refs, assessor.predict_profile(refs)


def run_feedback_loop(
    users: int = 30,
    seeds: int = 3,
    rounds: int = 5,
    n: int = 8,
    k: int = 3,
    noise: float = 0.1,
    size: int = 64,
) -> list[dict[str, Any]]:
    """Run every condition; one row per (condition, round) with means and spreads over users.

    Args:
        users: simulated users per seed; seeds: independent populations (seed 0, 1, ...).
        rounds: feedback rounds; n: candidates per round; k, noise: the labelling rule.
        size: image side in pixels.
    """
    from generation.aggregate import predict_user_profile
    from generation.cache import ProfileCache
    from generation.loop import LoopConfig, PersonalizedGenerator
    from generation.store import UserStore
    from preferthinker.assessor import Assessor, AssessorConfig
    from ptgen.demo import match_score
    from synthpref.bench import DEFAULT_SUBJECTS
    from synthpref.renderer import SUPPORTED_TERMS, ProceduralGenerator, terms_distinct
    from synthpref.users import sample_users

    assessor = Assessor.from_config(AssessorConfig(assessor="analytic", max_pixels=None))
    generator = ProceduralGenerator(size=size)
    loop = PersonalizedGenerator(assessor, generator, LoopConfig(n=n, cache=False))
    records: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        cache = ProfileCache(Path(folder) / "cache")
        for seed in range(seeds):
            population = sample_users(
                users,
                SUPPORTED_TERMS,
                seed=seed,
                compatible=terms_distinct,
                id_prefix=f"s{seed}-user",
            )
            for hidden in population:
                rng = random.Random(f"feedback:{seed}:{hidden.user_id}")
                liked = _references(hidden, generator.renderer, rng, "liked", 2)
                disliked = _references(hidden, generator.renderer, rng, "disliked", 2)
                stores = {}
                for condition in ("aggregated", "first 5"):
                    store = UserStore(Path(folder) / condition.replace(" ", "-"))
                    stores[condition] = store.create(hidden.user_id, liked, disliked)
                start_profile = assessor.predict_profile(liked, disliked)
                for round_ in range(1, rounds + 1):
                    subject = rng.choice(DEFAULT_SUBJECTS)
                    loop.config.seed = rng.randrange(10_000)
                    label_rng_seed = rng.randrange(2**31)
                    for condition in CONDITIONS:
                        if condition == "aggregated":
                            aggregated = predict_user_profile(stores[condition], assessor, cache)
                            refs, prediction = aggregated.references, aggregated.prediction
                        elif condition == "first 5":
                            refs, prediction = _first_five(stores[condition], assessor)
                        else:
                            refs, prediction = None, start_profile
                        result = loop.run(
                            subject, refs or liked, None if refs else disliked, profile=prediction
                        )
                        pick = result.best or result.candidates[0]
                        row = {"match": match_score(pick.image, hidden.profile)[0]}
                        row.update(term_accuracy(prediction.profile, hidden.profile))
                        records.setdefault((condition, round_), []).append(row)
                        if condition in stores:
                            labels = simulated_labels(
                                result.candidates, hidden, k, noise, random.Random(label_rng_seed)
                            )
                            for side, images in zip(("liked", "disliked"), labels, strict=True):
                                if images:
                                    stores[condition].label(images, side)
                for user in stores.values():
                    user.close()
    assessor.close()
    rows = []
    for (condition, round_), values in sorted(
        records.items(), key=lambda kv: (CONDITIONS.index(kv[0][0]), kv[0][1])
    ):
        matches = [v["match"] for v in values]
        row = {
            "condition": condition,
            "round": round_,
            "users": len(values),
            "match": statistics.mean(matches),
            "sd": statistics.pstdev(matches),
        }
        row.update({e: statistics.mean(v[e] for v in values) for e in ELEMENTS})
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], command: str, wall: float) -> str:
    head = (
        "| condition | round | users | pick match (mean) | sd | "
        + " | ".join(f"{e} acc." for e in ELEMENTS)
        + " |"
    )
    lines = [head, "|" + "---|" * (5 + len(ELEMENTS))]
    for r in rows:
        lines.append(
            f"| {r['condition']} | {r['round']} | {r['users']} | {r['match']:.3f} | "
            f"{r['sd']:.3f} | " + " | ".join(f"{r[e]:.2f}" for e in ELEMENTS) + " |"
        )
    lines.append("")
    lines.append(
        f"Command: `{command}`; machine: {platform.machine()} CPU ({platform.system()}), "
        f"Python {platform.python_version()}; wall time {wall:.0f} s."
    )
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=8, help="candidates per round")
    parser.add_argument("--k", type=int, default=3, help="liked elements needed for a like")
    parser.add_argument("--noise", type=float, default=0.1, help="chance a label is flipped")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = run_feedback_loop(
        args.users, args.seeds, args.rounds, args.n, args.k, args.noise, args.size
    )
    command = "python benchmarks/feedback_loop.py " + " ".join(
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
