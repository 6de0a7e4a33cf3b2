"""The `ptgen eval` harness: run an assessor over a benchmark and report what matters.

One loader (`preferthinker.benchmark.load_benchmark`) reads the authors' PreferImg-Bench JSON and
SynthPref sets. For each user (items sharing their references) all pairs go to the assessor in one
`compare_many` call (concurrent over HTTP, batched in-process), together with the same pairs in
swapped order, which measures position bias. Reported: accuracy overall and per split,
parse-failure rate (undecided answers count as wrong), position-bias rate, profile-prediction
similarity (SBERT and exact term match per element, where the ground-truth profile is known),
per-element agreement (does the element's score favour the candidate that matches the user on
that element; SynthPref only), mean tokens and seconds per item.

`baseline="random"` answers A or B at random (seeded) through the same accounting.

Example:
    >>> from preferthinker.assessor import Assessor, AssessorConfig
    >>> result = evaluate(load_benchmark("synthpref"), Assessor.from_config(AssessorConfig("analytic")))
    >>> print(markdown_table([result]))
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from preferthinker.benchmark import BenchmarkItem
from preferthinker.errors import InputError
from preferthinker.profile import ELEMENTS

Progress = Callable[[int, int], None]
BASELINES = ("random",)


@dataclass
class EvalConfig:
    """How to evaluate.

    Args:
        limit: evaluate only the first `limit` items (None: all).
        mode: "full" (the assessor sees the references and predicts the profile, as in the
            paper) or "profile" (the ground-truth profile is given as text; needs `profile` in
            the items).
        position_bias: also judge each pair swapped, to measure position bias (doubles the cost).
        similarity: compute SBERT profile similarity (loads all-MiniLM-L6-v2).
        seed: seed of the random baseline.
        max_references: most references per side handed to the assessor (the authors use 5).
    """

    limit: Optional[int] = None
    mode: str = "full"
    position_bias: bool = True
    similarity: bool = True
    seed: int = 0
    max_references: int = 5

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 or None, got {self.limit}")
        if self.mode not in ("full", "profile"):
            raise ValueError(f"mode must be 'full' or 'profile', got {self.mode!r}")
        if self.max_references < 1:
            raise ValueError(f"max_references must be >= 1, got {self.max_references}")


def _groups(items: Sequence[BenchmarkItem]) -> list[list[int]]:
    """Indices of items sharing the same references (one user), in first-seen order."""
    groups: dict[Any, list[int]] = {}
    for index, item in enumerate(items):
        key = (item.user_id, tuple(map(str, item.preferred)), tuple(map(str, item.non_preferred)))
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def _load(image: Any, max_pixels: int) -> Any:
    from preferthinker.images import load_image

    return load_image(image, max_pixels=max_pixels)


def _element_agreement(item: BenchmarkItem, scores: list[Any]) -> dict[str, Optional[bool]]:
    """Per element where exactly one candidate matches the liked profile: did that candidate
    score higher on the element?"""
    attrs_a, attrs_b = item.meta.get("attributes_a"), item.meta.get("attributes_b")
    if not attrs_a or not attrs_b or item.profile is None or not scores:
        return {}
    by_element = {s.element: s for s in scores}
    result: dict[str, Optional[bool]] = {}
    for element in ELEMENTS:
        liked = {t.lower() for t in item.profile.liked.terms(element)}
        a_ok = str(attrs_a.get(element, "")).lower() in liked
        b_ok = str(attrs_b.get(element, "")).lower() in liked
        score = by_element.get(element)
        if a_ok == b_ok or score is None or score.score_a is None or score.score_b is None:
            continue
        result[element] = (score.score_a > score.score_b) if a_ok else (score.score_b > score.score_a)
    return result


def _mean(values: Sequence[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def evaluate(
    items: Sequence[BenchmarkItem],
    assessor: Any = None,
    config: Optional[EvalConfig] = None,
    baseline: Optional[str] = None,
    progress: Optional[Progress] = None,
    similarity: Any = None,
) -> dict[str, Any]:
    """Evaluate an assessor (or a baseline) on benchmark items.

    Args:
        items: from `load_benchmark`.
        assessor: a `preferthinker.assessor.Assessor` (None with `baseline`).
        config: an `EvalConfig`.
        baseline: "random" to answer at random instead of running an assessor.
        progress: called as `progress(items_done, items_total)`.
        similarity: a `ProfileSimilarity` to reuse (default: built when needed).

    Returns:
        A JSON-ready dict: `assessor`, `n`, `accuracy`, `per_split`, `parse_failure_rate`,
        `position_bias_rate`, `profile_sbert`, `profile_term_match`, `element_agreement`,
        `mean_prompt_tokens`, `mean_completion_tokens`, `mean_seconds`, `wall_seconds`, `items`.

    Example:
        >>> evaluate(items, baseline="random")["accuracy"]
        0.5
    """
    config = config or EvalConfig()
    if baseline is not None and baseline not in BASELINES:
        raise InputError(f"unknown baseline {baseline!r}; valid: {', '.join(BASELINES)}")
    if assessor is None and baseline is None:
        raise InputError("evaluate needs an assessor or a baseline ('random')")
    items = list(items)[: config.limit] if config.limit else list(items)
    if not items:
        raise InputError("no benchmark items to evaluate")
    if config.mode == "profile" and any(item.profile is None for item in items):
        raise InputError("mode 'profile' needs ground-truth profiles; this benchmark has none (use mode 'full')")
    start = time.perf_counter()
    records: list[dict[str, Any]] = [{} for _ in items]
    rng = random.Random(config.seed)
    done = 0
    for group in _groups(items):
        if baseline == "random":
            for index in group:
                records[index] = {"winner": rng.choice("AB"), "swapped_winner": rng.choice("AB")}
            done += len(group)
            if progress:
                progress(done, len(items))
            continue
        max_pixels = assessor.config.max_pixels
        first = items[group[0]]
        liked = [_load(p, max_pixels) for p in first.preferred[: config.max_references]]
        disliked = [_load(p, max_pixels) for p in first.non_preferred[: config.max_references]]
        pairs = []
        for index in group:
            a, b = _load(items[index].image_a, max_pixels), _load(items[index].image_b, max_pixels)
            pairs.append((a, b))
        if config.position_bias:
            pairs += [(b, a) for a, b in list(pairs)]
        if config.mode == "profile":
            comparisons = []
            for index, pair in zip(group + group if config.position_bias else group, pairs):
                comparisons += assessor.compare_many([pair], profile=items[index].profile)
        else:
            if not liked:
                raise InputError(f"item {group[0]} has no preferred images; full mode needs references")
            comparisons = assessor.compare_many(pairs, liked=liked, disliked=disliked or None)
        for k, index in enumerate(group):
            comparison = comparisons[k]
            record = {
                "winner": comparison.winner,
                "profile": comparison.profile,
                "scores": comparison.scores,
                "usage": comparison.usage,
                "swap_agrees": comparison.swap_agrees,
            }
            if config.position_bias:
                swapped = comparisons[len(group) + k]
                mapped = {"A": "B", "B": "A"}.get(swapped.winner or "")
                record["swapped_winner"] = mapped
                record["usage_swapped"] = swapped.usage
            records[index] = record
        done += len(group)
        if progress:
            progress(done, len(items))
    return _summarize(items, records, assessor, baseline, config, similarity, time.perf_counter() - start)


def _summarize(items, records, assessor, baseline, config, similarity, wall) -> dict[str, Any]:
    n = len(items)
    correct = [r["winner"] == item.answer for item, r in zip(items, records)]
    splits: dict[str, list[bool]] = {}
    for item, ok in zip(items, correct):
        splits.setdefault(item.split, []).append(ok)
    failures = sum(r["winner"] is None for r in records)
    bias = [r["winner"] != r["swapped_winner"] for r in records
            if r.get("winner") and r.get("swapped_winner")]
    if not bias and any(r.get("swap_agrees") is not None for r in records):
        bias = [not r["swap_agrees"] for r in records if r.get("swap_agrees") is not None]
    # Profile prediction against the ground truth (SynthPref; the authors' sets have none).
    pairs = [(r["profile"].liked, item.profile.liked) for item, r in zip(items, records)
             if r.get("profile") is not None and item.profile is not None]
    term_match: dict[str, Optional[float]] = {}
    sbert = None
    if pairs:
        for element in ELEMENTS:
            hits = [bool({t.lower() for t in p.terms(element)} & {t.lower() for t in g.terms(element)})
                    for p, g in pairs]
            term_match[element] = _mean(hits)
        if config.similarity:
            from preferthinker.similarity import ProfileSimilarity

            similarity = similarity or ProfileSimilarity()
            sbert = _mean(similarity.text_similarities([p for p, _ in pairs], [g for _, g in pairs]))
    agreement: dict[str, list[bool]] = {}
    for item, r in zip(items, records):
        for element, ok in _element_agreement(item, r.get("scores") or []).items():
            agreement.setdefault(element, []).append(bool(ok))
    usages = [r["usage"] for r in records if r.get("usage") is not None]
    name = f"baseline:{baseline}" if baseline else getattr(assessor, "name", str(assessor))
    return {
        "assessor": name,
        "mode": config.mode,
        "n": n,
        "accuracy": _mean(correct),
        "per_split": {s: {"n": len(v), "accuracy": _mean(v)} for s, v in splits.items()},
        "parse_failure_rate": failures / n,
        "position_bias_rate": _mean(bias),
        "profile_sbert": sbert,
        "profile_term_match": term_match,
        "element_agreement": {e: _mean(agreement[e]) for e in ELEMENTS if e in agreement},
        "mean_prompt_tokens": _mean([u.prompt_tokens for u in usages]),
        "mean_completion_tokens": _mean([u.completion_tokens for u in usages]),
        "mean_seconds": _mean([u.seconds for u in usages]),
        "wall_seconds": wall,
        "items": [
            {"id": item.item_id, "split": item.split, "answer": item.answer, "winner": r["winner"],
             "swapped_winner": r.get("swapped_winner"),
             "predicted_profile": r["profile"].to_dict() if r.get("profile") is not None else None}
            for item, r in zip(items, records)
        ],
    }


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per result: accuracy overall and per split, failures, bias, profile scores, cost.

    Example:
        >>> print(markdown_table([evaluate(items, baseline="random")]))
    """
    splits = list(dict.fromkeys(s for r in results for s in r["per_split"]))
    head = ["assessor", "n", "acc %"] + [f"{s} %" for s in splits] + [
        "parse fail %", "pos. bias %", "profile SBERT", "term match % (color/sat/detail)",
        "element agreement % (color/sat/detail)", "tokens/item", "s/item",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        tm, ag = r["profile_term_match"], r["element_agreement"]
        tokens = None
        if r["mean_completion_tokens"] is not None:
            tokens = (r["mean_prompt_tokens"] or 0) + r["mean_completion_tokens"]
        row = [r["assessor"], str(r["n"]), _pct(r["accuracy"])]
        row += [_pct(r["per_split"].get(s, {}).get("accuracy")) for s in splits]
        row += [
            _pct(r["parse_failure_rate"]), _pct(r["position_bias_rate"]),
            "-" if r["profile_sbert"] is None else f"{r['profile_sbert']:.3f}",
            "/".join(_pct(tm.get(e)) for e in ("color", "saturation", "detail")),
            "/".join(_pct(ag.get(e)) for e in ("color", "saturation", "detail")),
            "-" if tokens is None else f"{tokens:.0f}",
            "-" if r["mean_seconds"] is None else f"{r['mean_seconds']:.3f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


__all__ = ["BASELINES", "EvalConfig", "evaluate", "markdown_table"]
