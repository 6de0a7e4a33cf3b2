"""Profiles from many stored images: predict on several subsets, vote per element.

The assessor sees at most `MAX_REFERENCES` (5) images per side per prompt. A user with more
stored images gets several predictions:

- subset 0: the 5 most recently labelled liked and disliked images;
- subsets 1..: the rest, spread over time (subset j takes every k-th image from the j-th), so
  each covers old and new feedback ("diverse"), at most `max_subsets` in all.

Each subset's vote weighs `confidence x recency`: confidence is 1 for a complete prediction,
0.5 for a partial one, 0 for a failed one (the assessor reports no finer confidence); recency is
the mean over the subset's liked images of `0.5 ** (age / HALF_LIFE)`, where age counts labels
(0 = the newest): with `HALF_LIFE = 10`, feedback 10 labels old counts half as much as the newest.
Per element and side, the terms with at least half of the top term's votes are kept (ties keep
several terms, as multi-preference users have), and `certainty` is the top term's share of all
votes cast for that element (1.0 = every subset agreed).

Each subset's prediction goes through the `ProfileCache`, keyed by the images actually used,
so an unchanged store costs no model call.

Example:
    >>> aggregated = predict_user_profile(user, assessor, ProfileCache())
    >>> aggregated.prediction.profile.liked.color, aggregated.certainty["liked"]["color"]
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from preferthinker.profile import ELEMENTS, Profile, UserProfile
from preferthinker.references import MAX_REFERENCES, References
from preferthinker.results import ProfilePrediction, Usage

HALF_LIFE = 10  # labels
MAX_SUBSETS = 4
CONFIDENCE = {"ok": 1.0, "partial": 0.5, "failed": 0.0}


@dataclass
class AggregatedProfile:
    """The voted profile, how sure each element is, and what it was predicted from.

    Args:
        prediction: the aggregate as a `ProfilePrediction` (what the loop uses).
        certainty: {"liked"|"disliked": {element: share of votes for the top term, 0..1}}.
        subsets: per subset, the image hashes used (liked, disliked).
        references: the first subset as `References` (what a report shows, and "full" mode uses).
        predictions: the per-subset predictions; from_cache: how many came from the cache.
    """

    prediction: ProfilePrediction
    certainty: dict[str, dict[str, float]]
    subsets: list[tuple[list[str], list[str]]]
    references: References
    predictions: list[ProfilePrediction] = field(default_factory=list)
    from_cache: int = 0


def recency_weight(age: int, half_life: float = HALF_LIFE) -> float:
    """`0.5 ** (age / half_life)`: the weight of feedback `age` labels older than the newest.

    Example:
        >>> recency_weight(10)
        0.5
    """
    return 0.5 ** (age / half_life)


def choose_subsets(
    liked: Sequence[Any],
    disliked: Sequence[Any],
    per_side: int = MAX_REFERENCES,
    max_subsets: int = MAX_SUBSETS,
) -> list[tuple[list[int], list[int]]]:
    """Index subsets over the (newest-first) liked and disliked lists: the newest `per_side`
    first, then the rest spread over time. A side shorter than a subset is topped up with its
    newest images, so every subset has both sides when the store has.

    Example:
        >>> choose_subsets(list(range(12)), [0, 1])
        [([0, 1, 2, 3, 4], [0, 1]), ([5, 7, 9, 11], [0, 1]), ([6, 8, 10], [0, 1])]
    """
    count = max(1, min(max_subsets, math.ceil(max(len(liked), len(disliked)) / per_side)))

    def split(n: int) -> list[list[int]]:
        first = list(range(min(n, per_side)))
        rest = list(range(len(first), n))
        groups = [first] + [rest[j :: count - 1][:per_side] for j in range(count - 1)]
        return [group or first for group in groups]

    liked_groups, disliked_groups = split(len(liked)), split(len(disliked))
    subsets = []
    for j in range(count):
        subsets.append((liked_groups[j], disliked_groups[j] if disliked else []))
    return [s for s in subsets if s[0]]


def vote(
    predictions: Sequence[ProfilePrediction], weights: Sequence[float]
) -> tuple[UserProfile, dict[str, dict[str, float]]]:
    """The per-element vote over several predictions (see the module doc).

    Example:
        >>> profile, certainty = vote([prediction_a, prediction_b], [1.0, 0.5])
    """
    sides: dict[str, Profile] = {}
    certainty: dict[str, dict[str, float]] = {}
    for side in ("liked", "disliked"):
        terms: dict[str, list[str]] = {}
        certainty[side] = {}
        for element in ELEMENTS:
            votes: dict[str, float] = defaultdict(float)
            spelling: dict[str, str] = {}
            total = 0.0
            for prediction, weight in zip(predictions, weights, strict=True):
                w = weight * CONFIDENCE.get(prediction.status, 0.0)
                found = getattr(prediction.profile, side).terms(element)
                found = [t for t in found if t.lower() != "unknown"]
                if not found or w <= 0:
                    continue
                total += w
                for term in found:  # several terms share the subset's vote
                    votes[term.lower()] += w / len(found)
                    spelling.setdefault(term.lower(), term)
            if not votes:
                certainty[side][element] = 0.0
                terms[element] = []
                continue
            top = max(votes.values())
            ranked = sorted(votes, key=lambda t: -votes[t])
            terms[element] = [spelling[t] for t in ranked if votes[t] >= top / 2]
            certainty[side][element] = round(top / total, 3)
        sides[side] = Profile(**terms)
    return UserProfile(sides["liked"], sides["disliked"]), certainty


def predict_user_profile(
    user: Any,
    assessor: Any,
    cache: Any = None,
    *,
    max_subsets: int = MAX_SUBSETS,
    max_pixels: Optional[int] = None,
    aggregate: bool = True,
) -> AggregatedProfile:
    """Predict a stored user's profile from all their images (see the module doc).

    Args:
        user: a `generation.store.User` (or anything with `images(label)`).
        assessor: an `Assessor` (`predict_profile`, `name`).
        cache: a `ProfileCache` (None: predict every subset).
        max_subsets: most predictions per call (1: the newest 5 + 5 only).
        max_pixels: downscale references to this many pixels (None: the assessor's setting).
        aggregate: False predicts only the first subset (for comparison).

    Raises:
        InputError: the user has no liked image.

    Example:
        >>> predict_user_profile(store.user("ana"), assessor).certainty["liked"]
    """
    from preferthinker.errors import InputError

    liked = user.images("liked")
    disliked = user.images("disliked")
    if not liked:
        raise InputError(
            f"user {user.name} has no liked image yet; "
            f"`ptgen like --user {user.name} FILE` adds one"
        )
    if max_pixels is None:
        max_pixels = getattr(getattr(assessor, "config", None), "max_pixels", None)
    subsets = choose_subsets(liked, disliked, max_subsets=max_subsets if aggregate else 1)
    predictions, weights, used, first = [], [], [], None
    from_cache = 0
    usage = Usage()
    for liked_ids, disliked_ids in subsets:
        refs = References.load(
            [str(liked[i].path) for i in liked_ids],
            [str(disliked[i].path) for i in disliked_ids] or None,
            max_pixels=max_pixels,
        )
        first = first or refs
        prediction = None
        key = cache.key(refs, None, assessor.name) if cache is not None else None
        if key is not None:
            prediction = cache.get(key)
            from_cache += prediction is not None
        if prediction is None:
            prediction = assessor.predict_profile(refs)
            usage.add(prediction.usage)
            if key is not None:
                cache.put(key, prediction, {"assessor": assessor.name, "user": user.name})
        predictions.append(prediction)
        weights.append(sum(recency_weight(i) for i in liked_ids) / len(liked_ids))
        used.append(([liked[i].hash for i in liked_ids], [disliked[i].hash for i in disliked_ids]))
    profile, certainty = vote(predictions, weights)
    statuses = {p.status for p in predictions}
    status = "ok" if "ok" in statuses else ("partial" if "partial" in statuses else "failed")
    issues = [f"subset {k}: {issue}" for k, p in enumerate(predictions) for issue in p.issues]
    summary = (
        f"aggregated over {len(predictions)} subset(s) of at most {MAX_REFERENCES}+"
        f"{MAX_REFERENCES} images ({from_cache} from the cache)\n"
        + "\n---\n".join(p.raw_text for p in predictions)
    )
    prediction = ProfilePrediction(
        profile=profile, status=status, raw_text=summary, issues=issues, usage=usage
    )
    return AggregatedProfile(prediction, certainty, used, first, predictions, from_cache)


def profile_changes(before: Optional[dict], after: dict) -> list[str]:
    """Lines saying what changed between two profile dicts (`UserProfile.to_dict()` form).

    Example:
        >>> profile_changes({"liked": {"color": ["Red"]}}, {"liked": {"color": ["Blue"]}})
        ['liked color: Red -> Blue']
    """
    if before is None:
        return ["first profile for this user"]
    lines = []
    for side in ("liked", "disliked"):
        for element in ELEMENTS:
            old = list((before.get(side) or {}).get(element) or [])
            new = list((after.get(side) or {}).get(element) or [])
            if [t.lower() for t in old] != [t.lower() for t in new]:
                was, now = ", ".join(old) or "-", ", ".join(new) or "-"
                lines.append(f"{side} {element}: {was} -> {now}")
    return lines or ["no change"]


__all__ = [
    "AggregatedProfile",
    "HALF_LIFE",
    "MAX_SUBSETS",
    "choose_subsets",
    "predict_user_profile",
    "profile_changes",
    "recency_weight",
    "vote",
]
