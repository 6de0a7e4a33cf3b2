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

Protocols (`EvalConfig.protocol`), all reading the answer with `preferthinker.parser.read_answer`:
- "ptgen" (default): ptgen's tolerant reading and decoding (retries, debiasing as configured).
- "authors": the authors' eval_PreferThinker.py: the last `<answer>` block must be exactly
  `Image A`/`Image B`, anything else counts wrong. Decoding is theirs too, set by the caller
  (`AUTHORS_DECODING`: one greedy pass, repetition penalty 1.15, up to 4096 new tokens, no
  retries, no debiasing).
- "both": the authors' decoding, and both readings of the same generations (no second pass).
References: at most 5 per side. Under "authors"/"both" the reference block is sent only when an
item has liked AND disliked images (their prompt); otherwise the candidates alone. Under "ptgen",
liked-only items keep their liked images; items without liked images go without references.
A bad item (unreadable image, bad reference) is reported in `skipped` and left out; never fatal.

Verdicts (`EvalConfig.verdict`): "full" (the default) or "compact" (`preferthinker.compact`:
scores and answer only, stopping at `</answer>`). Compact needs a known profile, so mode
"profile", and is ptgen's format, so protocol "ptgen"; its answers are scored the same way.

Example:
    >>> from preferthinker.assessor import Assessor, AssessorConfig
    >>> assessor = Assessor.from_config(AssessorConfig("analytic"))
    >>> result = evaluate(load_benchmark("synthpref"), assessor)
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
PROTOCOLS = ("ptgen", "authors", "both")
# AssessorConfig fields that reproduce the authors' decoding (eval_PreferThinker.py).
AUTHORS_DECODING = {
    "temperature": 0.0,
    "repetition_penalty": 1.15,
    "max_new_tokens": 4096,
    "max_retries": 0,
    "debias": False,
}


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
        protocol: "ptgen", "authors" or "both" (see the module docstring).
        verdict: "full" or "compact" (compact verdicts; needs mode "profile" and protocol
            "ptgen").
    """

    limit: Optional[int] = None
    mode: str = "full"
    position_bias: bool = True
    similarity: bool = True
    seed: int = 0
    max_references: int = 5
    protocol: str = "ptgen"
    verdict: str = "full"

    def __post_init__(self) -> None:
        from preferthinker.compact import VERDICTS

        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {self.verdict!r}")
        if self.verdict == "compact" and self.mode != "profile":
            raise ValueError(
                "verdict compact needs a known profile: use mode profile (--mode profile)"
            )
        if self.verdict == "compact" and self.protocol != "ptgen":
            raise ValueError(
                "verdict compact is ptgen's format; the authors' protocol reads full verdicts "
                "(use protocol ptgen)"
            )
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"
            )
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
        result[element] = (
            (score.score_a > score.score_b) if a_ok else (score.score_b > score.score_a)
        )
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
        A JSON-ready dict: `assessor`, `protocol`, `mode`, `verdict`, `n` (items evaluated),
        `accuracy` (of the first protocol: ptgen, or authors for protocol "authors"),
        `accuracy_by_protocol` (both accuracies for "both"), `per_split`, `parse_failure_rate`,
        `position_bias_rate`, `profile_sbert`, `profile_term_match`, `element_agreement`,
        `mean_prompt_tokens`, `mean_completion_tokens`, `mean_seconds`, `wall_seconds`, `items`
        (each with its `completion_tokens`), `skipped` (`{"id", "reason"}` per item left out).

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
        raise InputError(
            "mode 'profile' needs ground-truth profiles; this benchmark has none (use mode 'full')"
        )
    start = time.perf_counter()
    records: list[Optional[dict[str, Any]]] = [None for _ in items]
    skipped: list[dict[str, str]] = []
    rng = random.Random(config.seed)
    done = 0
    for group in _groups(items):
        if baseline == "random":
            for index in group:
                records[index] = {"winner": rng.choice("AB"), "swapped_winner": rng.choice("AB")}
        else:
            try:
                _judge_group(items, group, assessor, config, records, skipped)
            except (InputError, OSError) as error:  # a bad item, not a bad run
                for index in group:
                    listed = any(s["id"] == _item_id(items, index) for s in skipped)
                    if records[index] is None and not listed:
                        skipped.append({"id": _item_id(items, index), "reason": _one_line(error)})
        done += len(group)
        if progress:
            progress(done, len(items))
    kept = [i for i, r in enumerate(records) if r is not None]
    if not kept:
        raise InputError(f"every item was skipped; the first reason: {skipped[0]['reason']}")
    result = _summarize(
        [items[i] for i in kept],
        [records[i] for i in kept],
        assessor,
        baseline,
        config,
        similarity,
        time.perf_counter() - start,
    )
    result["protocol"] = config.protocol
    result["skipped"] = skipped
    return result


def _item_id(items: Sequence[BenchmarkItem], index: int) -> str:
    return items[index].item_id or str(index)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__


def _judge_group(items, group, assessor, config, records, skipped) -> None:
    """Judge the items of one user (shared references) and fill their records."""
    from preferthinker.parser import read_answer

    max_pixels = assessor.config.max_pixels
    first = items[group[0]]
    liked = [_load(p, max_pixels) for p in first.preferred[: config.max_references]]
    disliked = [_load(p, max_pixels) for p in first.non_preferred[: config.max_references]]
    if config.protocol in ("authors", "both") and not (liked and disliked):
        liked, disliked = [], []  # their reference block needs both sides
    pairs, judged = [], []
    for index in group:
        try:
            a, b = _load(items[index].image_a, max_pixels), _load(items[index].image_b, max_pixels)
        except (InputError, OSError) as error:
            skipped.append({"id": _item_id(items, index), "reason": _one_line(error)})
            continue
        pairs.append((a, b))
        judged.append(index)
    if not judged:
        return
    if config.position_bias:
        pairs += [(b, a) for a, b in list(pairs)]
    if config.mode == "profile":
        comparisons = []
        order = judged + judged if config.position_bias else judged
        for index, pair in zip(order, pairs, strict=True):
            comparisons += assessor.compare_many(
                [pair], profile=items[index].profile, verdict=config.verdict
            )
    elif liked:
        comparisons = assessor.compare_many(pairs, liked=liked, disliked=disliked or None)
    else:
        comparisons = assessor.compare_many(pairs, without_references=True)
    for k, index in enumerate(judged):
        comparison = comparisons[k]
        raw = comparison.raw_texts[0] if comparison.raw_texts else ""
        record = {
            "winner": comparison.winner,
            "winner_authors": read_answer(raw, "authors"),
            "references": "liked+disliked" if disliked else ("liked" if liked else "none"),
            "profile": comparison.profile,
            "scores": comparison.scores,
            "usage": comparison.usage,
            "swap_agrees": comparison.swap_agrees,
        }
        if config.protocol == "authors":
            record["winner"] = record["winner_authors"]
        if config.position_bias:
            swapped = comparisons[len(judged) + k]
            if config.protocol == "authors":
                swapped_raw = swapped.raw_texts[0] if swapped.raw_texts else ""
                swapped_winner = read_answer(swapped_raw, "authors")
            else:
                swapped_winner = swapped.winner
            record["swapped_winner"] = {"A": "B", "B": "A"}.get(swapped_winner or "")
            record["usage_swapped"] = swapped.usage
        records[index] = record


def _summarize(items, records, assessor, baseline, config, similarity, wall) -> dict[str, Any]:
    n = len(items)
    correct = [r["winner"] == item.answer for item, r in zip(items, records)]
    splits: dict[str, list[bool]] = {}
    for item, ok in zip(items, correct):
        splits.setdefault(item.split, []).append(ok)
    failures = sum(r["winner"] is None for r in records)
    bias = [
        r["winner"] != r["swapped_winner"]
        for r in records
        if r.get("winner") and r.get("swapped_winner")
    ]
    if not bias and any(r.get("swap_agrees") is not None for r in records):
        bias = [not r["swap_agrees"] for r in records if r.get("swap_agrees") is not None]
    # Profile prediction against the ground truth (SynthPref; the authors' sets have none).
    pairs = [
        (r["profile"].liked, item.profile.liked)
        for item, r in zip(items, records)
        if r.get("profile") is not None and item.profile is not None
    ]
    term_match: dict[str, Optional[float]] = {}
    sbert = None
    if pairs:
        for element in ELEMENTS:
            hits = [
                bool({t.lower() for t in p.terms(element)} & {t.lower() for t in g.terms(element)})
                for p, g in pairs
            ]
            term_match[element] = _mean(hits)
        if config.similarity:
            from preferthinker.similarity import ProfileSimilarity

            similarity = similarity or ProfileSimilarity()
            sbert = _mean(
                similarity.text_similarities([p for p, _ in pairs], [g for _, g in pairs])
            )
    agreement: dict[str, list[bool]] = {}
    for item, r in zip(items, records):
        for element, ok in _element_agreement(item, r.get("scores") or []).items():
            agreement.setdefault(element, []).append(bool(ok))
    usages = [r["usage"] for r in records if r.get("usage") is not None]
    name = f"baseline:{baseline}" if baseline else getattr(assessor, "name", str(assessor))
    by_protocol = {"authors" if config.protocol == "authors" else "ptgen": _mean(correct)}
    if config.protocol == "both" and baseline is None:
        by_protocol["authors"] = _mean(
            [r["winner_authors"] == item.answer for item, r in zip(items, records, strict=True)]
        )
    return {
        "assessor": name,
        "mode": config.mode,
        "verdict": config.verdict,
        "n": n,
        "accuracy": _mean(correct),
        "accuracy_by_protocol": by_protocol,
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
            {
                "id": item.item_id,
                "split": item.split,
                "answer": item.answer,
                "winner": r["winner"],
                "winner_authors": r.get("winner_authors"),
                "references": r.get("references"),
                "swapped_winner": r.get("swapped_winner"),
                # as in mean_completion_tokens: the judgement in the given order
                "completion_tokens": r["usage"].completion_tokens if r.get("usage") else None,
                "predicted_profile": r["profile"].to_dict()
                if r.get("profile") is not None
                else None,
            }
            for item, r in zip(items, records)
        ],
    }


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per result: accuracy overall (one column per protocol) and per split (of the
    result's first protocol), failures, bias, profile scores, cost.

    Example:
        >>> print(markdown_table([evaluate(items, baseline="random")]))
    """
    splits = list(dict.fromkeys(s for r in results for s in r["per_split"]))
    protocols = [
        p
        for p in ("ptgen", "authors")
        if any(p in r.get("accuracy_by_protocol", {}) for r in results)
    ]
    head = (
        ["assessor", "n"]
        + [f"acc % ({p})" for p in protocols]
        + [f"{s} %" for s in splits]
        + [
            "parse fail %",
            "pos. bias %",
            "profile SBERT",
            "term match % (color/sat/detail)",
            "element agreement % (color/sat/detail)",
            "tokens/item",
            "s/item",
        ]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        tm, ag = r["profile_term_match"], r["element_agreement"]
        tokens = None
        if r["mean_completion_tokens"] is not None:
            tokens = (r["mean_prompt_tokens"] or 0) + r["mean_completion_tokens"]
        row = [r["assessor"], str(r["n"])]
        row += [_pct(r.get("accuracy_by_protocol", {}).get(p)) for p in protocols]
        row += [_pct(r["per_split"].get(s, {}).get("accuracy")) for s in splits]
        row += [
            _pct(r["parse_failure_rate"]),
            _pct(r["position_bias_rate"]),
            "-" if r["profile_sbert"] is None else f"{r['profile_sbert']:.3f}",
            "/".join(_pct(tm.get(e)) for e in ("color", "saturation", "detail")),
            "/".join(_pct(ag.get(e)) for e in ("color", "saturation", "detail")),
            "-" if tokens is None else f"{tokens:.0f}",
            "-" if r["mean_seconds"] is None else f"{r['mean_seconds']:.3f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


__all__ = ["AUTHORS_DECODING", "BASELINES", "PROTOCOLS", "EvalConfig", "evaluate", "markdown_table"]
