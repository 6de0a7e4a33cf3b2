"""Fit the calibration of `ptgen score` on SynthPref: raw similarity score -> P(preferred over a
random candidate).

Data: simulated users (seed 1, so not the users of benchmarks/fast_judging.py), each with
rendered references (3 liked, 3 disliked, as in SynthPref) and `--candidates` random procedural
candidates. The simulated user's utility of an image is the number of liked terms it shows minus
the number of disliked terms it shows (the renderer records what it drew). Every ordered pair
(x, y) of the user's candidates with different utilities is one example: the label is
1[x preferred over y], the feature is raw(x) (cosine to the liked prototype minus cosine to the
disliked one). A logistic regression (Newton's method) on the first half of the users gives
(slope, intercept); the second half checks it (log loss, and the observed rate per predicted bin).
Each model is fitted twice: with the disliked references (raw = the difference) and without them
("MODEL/liked-only": raw = the cosine to the liked prototype alone, whose scale differs).
Copy the printed lines into `CALIBRATIONS` in generation/score.py.

Run (under a minute):

    python benchmarks/calibrate_score.py --users 60 --candidates 16

Example:
    >>> fit = calibrate(users=4, candidates=6, models=("stats",))
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from typing import Any, Optional, Sequence

import numpy as np


def _examples(
    model: str,
    users: Sequence[Any],
    candidates: int,
    size: int,
    seed: int,
    with_disliked: bool = True,
):
    from preferthinker.image_similarity import create_embedder, reference_scores
    from synthpref.bench import DEFAULT_SUBJECTS, make_user_items
    from synthpref.renderer import ProceduralRenderer, image_attributes
    from synthpref.users import profile_matches

    renderer = ProceduralRenderer(size=size)
    embedder = create_embedder(model)
    if hasattr(embedder, "image_size"):
        embedder.image_size = 128
    features, labels = [], []
    for user in users:
        rng = random.Random(f"{seed}:{user.user_id}")
        item = make_user_items(user, renderer, DEFAULT_SUBJECTS, 3, 1, rng)[0]
        subject = rng.choice(DEFAULT_SUBJECTS)
        base = rng.randrange(1_000_000)
        pool = [renderer.render(subject, {}, seed=base + k).image for k in range(candidates)]
        utility = []
        for image in pool:
            attributes = image_attributes(image)
            liked = sum(profile_matches(user.profile.liked, attributes).values())
            disliked = sum(profile_matches(user.profile.disliked, attributes).values())
            utility.append(liked - disliked)
        disliked = item.non_preferred if with_disliked else []
        raw = [s.score for s in reference_scores(embedder, pool, item.preferred, disliked)]
        rows, rows_labels = [], []
        for i in range(len(pool)):
            for j in range(len(pool)):
                if i != j and utility[i] != utility[j]:
                    rows.append(raw[i])
                    rows_labels.append(1.0 if utility[i] > utility[j] else 0.0)
        features.append(rows)
        labels.append(rows_labels)
    return features, labels


def fit_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """(slope, intercept) maximising the likelihood of y ~ sigmoid(slope * x + intercept).

    Example:
        >>> fit_logistic(np.array([-1.0, -1.0, 1.0, 1.0]), np.array([0.0, 1.0, 1.0, 1.0]))[0] > 0
        True
    """
    design = np.stack([x, np.ones_like(x)], axis=1)
    weights = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-design @ weights))
        gradient = design.T @ (y - p)
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        weights += step
        if np.abs(step).max() < 1e-9:
            break
    return float(weights[0]), float(weights[1])


def calibrate(
    users: int = 60,
    candidates: int = 16,
    models: Sequence[str] = ("stats", "efficientnet-lite0"),
    size: int = 96,
    seed: int = 1,
) -> dict[str, dict[str, Any]]:
    """Fit each model on the first half of the users and check it on the second half."""
    from synthpref.renderer import SUPPORTED_TERMS, terms_distinct
    from synthpref.users import sample_users

    population = sample_users(users, SUPPORTED_TERMS, seed=seed, compatible=terms_distinct)
    half = len(population) // 2
    results = {}
    for model, with_disliked in [(m, d) for m in models for d in (True, False)]:
        features, labels = _examples(model, population, candidates, size, seed, with_disliked)
        train_x = np.array([v for rows in features[:half] for v in rows])
        train_y = np.array([v for rows in labels[:half] for v in rows])
        test_x = np.array([v for rows in features[half:] for v in rows])
        test_y = np.array([v for rows in labels[half:] for v in rows])
        slope, intercept = fit_logistic(train_x, train_y)
        p = 1.0 / (1.0 + np.exp(-(slope * test_x + intercept)))
        eps = 1e-9
        log_loss = float(-np.mean(test_y * np.log(p + eps) + (1 - test_y) * np.log(1 - p + eps)))
        bins = []
        for low in (0.0, 0.2, 0.4, 0.6, 0.8):
            inside = (p >= low) & (p < low + 0.2 + (1e-9 if low == 0.8 else 0))
            if inside.any():
                bins.append(
                    (low, int(inside.sum()), float(p[inside].mean()), float(test_y[inside].mean()))
                )
        results[model if with_disliked else f"{model}/liked-only"] = {
            "slope": slope,
            "intercept": intercept,
            "train_pairs": len(train_y),
            "test_pairs": len(test_y),
            "log_loss": log_loss,
            "baseline_log_loss": math.log(2),
            "bins": bins,
        }
    return results


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--models", nargs="+", default=["stats", "efficientnet-lite0"])
    args = parser.parse_args(argv)
    results = calibrate(args.users, args.candidates, args.models)
    for model, fit in results.items():
        print(
            f'    "{model}": ({fit["slope"]:.3f}, {fit["intercept"]:.3f}),'
            f"  # {fit['train_pairs']} training pairs"
        )
        print(
            f"      held-out: {fit['test_pairs']} pairs, log loss {fit['log_loss']:.3f} "
            f"(chance {fit['baseline_log_loss']:.3f})"
        )
        for low, count, predicted, observed in fit["bins"]:
            print(
                f"      predicted {low:.1f}-{low + 0.2:.1f}: {count} pairs, mean predicted "
                f"{predicted:.2f}, observed {observed:.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
