"""Aggregating the study's evaluation results over seeds into one table (mean and spread).

Input: for each seed, the `preferthinker.evaluation.evaluate` result of every row (untrained,
+SFT, ...). Output: per row, per split, the mean and the sample standard deviation over seeds of
the pairwise accuracy, and the same for overall accuracy, profile SBERT similarity, exact term
match and the parse-failure rate; and a Markdown table of it.

Example:
    >>> summary = aggregate({0: {"sft": result0}, 1: {"sft": result1}})  # doctest: +SKIP
    >>> print(markdown_summary(summary))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

SPLITS = ("seen-SP", "seen-MP", "unseen-SP", "unseen-MP")


def mean_std(values: Sequence[Optional[float]]) -> dict[str, Optional[float]]:
    """Mean and sample standard deviation (n-1) of the values that are not None.

    Example:
        >>> mean_std([0.5, 0.7, None])
        {'mean': 0.6, 'std': 0.1414, 'n': 2}
    """
    present = [float(v) for v in values if v is not None]
    if not present:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(present) / len(present)
    std = (
        math.sqrt(sum((v - mean) ** 2 for v in present) / (len(present) - 1))
        if len(present) > 1
        else 0.0
    )
    return {"mean": round(mean, 4), "std": round(std, 4), "n": len(present)}


def _term_match(result: Mapping[str, Any]) -> Optional[float]:
    values = [v for v in (result.get("profile_term_match") or {}).values() if v is not None]
    return sum(values) / len(values) if values else None


def aggregate(
    per_seed: Mapping[Any, Mapping[str, Mapping[str, Any]]], rows: Optional[Sequence[str]] = None
) -> dict:
    """Mean and spread over seeds of every row's metrics.

    Args:
        per_seed: seed -> row name -> an `evaluate` result.
        rows: the row order (default: first-seen order).

    Returns:
        {row: {"accuracy": ms, "splits": {split: ms}, "profile_sbert": ms, "term_match": ms,
        "parse_failure": ms, "position_bias": ms}} where ms = {"mean", "std", "n"}.

    Example:
        >>> table = aggregate({0: {"random": {"accuracy": 0.5, "per_split": {}}}})
        >>> table["random"]["accuracy"]["mean"]
        0.5
    """
    if rows is None:
        rows = list(dict.fromkeys(row for results in per_seed.values() for row in results))
    summary: dict[str, Any] = {}
    for row in rows:
        results = [results[row] for results in per_seed.values() if row in results]
        splits = list(
            dict.fromkeys([*SPLITS, *(s for r in results for s in r.get("per_split", {}))])
        )
        summary[row] = {
            "accuracy": mean_std([r.get("accuracy") for r in results]),
            "splits": {
                s: mean_std([r.get("per_split", {}).get(s, {}).get("accuracy") for r in results])
                for s in splits
            },
            "profile_sbert": mean_std([r.get("profile_sbert") for r in results]),
            "term_match": mean_std([_term_match(r) for r in results]),
            "parse_failure": mean_std([r.get("parse_failure_rate") for r in results]),
            "position_bias": mean_std([r.get("position_bias_rate") for r in results]),
        }
    return summary


def _cell(ms: Mapping[str, Any], percent: bool = True) -> str:
    if ms.get("mean") is None:
        return "-"
    scale = 100 if percent else 1
    digits = 1 if percent else 3
    text = f"{ms['mean'] * scale:.{digits}f}"
    if ms.get("n", 0) > 1:
        text += f" ± {ms['std'] * scale:.{digits}f}"
    return text


def markdown_summary(summary: Mapping[str, Any], labels: Optional[Mapping[str, str]] = None) -> str:
    """The study table: one row per ablation row, accuracy per split (%), overall, profile SBERT
    similarity, exact term match (%), parse failures (%); each cell mean ± sd over seeds.

    Example:
        >>> table = aggregate({0: {"random": {"accuracy": 0.5, "per_split": {}}}})
        >>> print(markdown_summary(table))  # doctest: +SKIP
    """
    labels = labels or {}
    head = [
        "row",
        *(f"{s} acc %" for s in SPLITS),
        "all acc %",
        "profile SBERT",
        "term match %",
        "parse fail %",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, values in summary.items():
        cells = [labels.get(row, row)]
        cells += [_cell(values["splits"].get(s, {})) for s in SPLITS]
        cells += [
            _cell(values["accuracy"]),
            _cell(values["profile_sbert"], percent=False),
            _cell(values["term_match"]),
            _cell(values["parse_failure"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["SPLITS", "aggregate", "markdown_summary", "mean_std"]
