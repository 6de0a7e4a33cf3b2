"""What a learning-study model reads in the candidates: accuracy by what tells the pair apart,
and a linear probe of its vision features.

1. Pair breakdown (default): every evaluation pair of a study run, grouped by the elements in
   which its two candidates differ (SynthPref's `meta.mismatched`): the colour differs; the
   colour is the same and the saturation differs; only detail, art style or medium differ. Then
   each row's accuracy per group. An assessor that reads only the colour is right on the first
   group and at chance on the others. A second table says which side each row answers in
   each group: a model that cannot tell a group's candidates apart tends to answer one fixed
   side there, whatever the truth (the truth is A or B at random).

       python benchmarks/study_reading.py runs/learning-study

2. Vision probe (`--probe MODEL`): the model's vision-tower output (the merged visual tokens of
   each candidate of the evaluation set) and, for reference, the candidate's raw 8x8 pixels; a
   ridge classifier per element, 4-fold cross-validated, predicts the candidate's true term.
   Says whether the tower keeps what an element needs, apart from whether the language model
   uses it.

       python benchmarks/study_reading.py --probe runs/learning-study/seed1/sft/final \\
           --data runs/learning-study/seed1/data/eval

3. Named terms (`--outputs MODEL`): for a model trained on targets that name each candidate's
   term before its score (`data.describe: observed`), its greedy outputs on the evaluation pairs,
   read line by line: how often the term named for a candidate is the one it shows (reading),
   and how often the score follows from that term and the line's restated profile terms (5
   liked, 0 disliked, else 2: deciding). Separates a model that cannot see an element from one
   that sees it and does not score by it.

       python benchmarks/study_reading.py --outputs runs/v8/observed/seed0/sft/final \\
           --data runs/v8/observed/seed0/data/eval
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROWS = ("analytic", "sft", "grpo", "grpo_pred")
GROUPS = (
    "colour differs",
    "same colour, saturation differs",
    "only detail / style / medium differ",
)
ELEMENTS = ("color", "saturation", "detail", "art_style", "art_medium")


def pair_group(mismatched: list[str]) -> str:
    """Which of GROUPS a pair falls in, from the elements its candidates differ in."""
    if "color" in mismatched:
        return GROUPS[0]
    if "saturation" in mismatched:
        return GROUPS[1]
    return GROUPS[2]


def breakdown(
    items: list[dict[str, Any]], benchmark: dict[str, dict[str, Any]]
) -> dict[str, tuple[int, int]]:
    """{group: (pairs, pairs decided right)} for one evaluation's items (`ptgen eval` results,
    with "id", "answer", "winner") against the benchmark entries by id."""
    total, right = Counter(), Counter()
    for item in items:
        group = pair_group(benchmark[item["id"]]["meta"]["mismatched"])
        total[group] += 1
        right[group] += item.get("winner") == item["answer"]
    return {group: (total[group], right[group]) for group in GROUPS if total[group]}


def answer_sides(
    items: list[dict[str, Any]], benchmark: dict[str, dict[str, Any]]
) -> dict[str, Counter]:
    """{group: Counter of the answers given ("A", "B", or "none" for undecided)} for one
    evaluation's items against the benchmark entries by id."""
    sides: dict[str, Counter] = {}
    for item in items:
        group = pair_group(benchmark[item["id"]]["meta"]["mismatched"])
        sides.setdefault(group, Counter())[item.get("winner") or "none"] += 1
    return sides


def _seed_evaluations(run: Path, rows: tuple[str, ...]):
    """(row, items, benchmark by id) for every evaluated row of every seed folder of a run."""
    seeds = sorted(run.glob("seed*"))
    if not seeds:
        raise SystemExit(
            f"error: no seed folders in {run} (expected the --out folder of learning_study.py)"
        )
    for seed in seeds:
        entries = json.loads(
            (seed / "data" / "eval" / "benchmark.json").read_text(encoding="utf-8")
        )
        benchmark = {entry["id"]: entry for entry in entries}
        for row in rows:
            path = seed / f"eval_{row}.json"
            if path.exists():
                yield row, json.loads(path.read_text(encoding="utf-8"))["items"], benchmark


def run_sides(run: Path, rows: tuple[str, ...] = ROWS) -> dict[str, dict[str, Counter]]:
    """{row: {group: Counter of answers}} pooled over the run's seed folders."""
    pooled: dict[str, dict[str, Counter]] = {}
    for row, items, benchmark in _seed_evaluations(run, rows):
        for group, counts in answer_sides(items, benchmark).items():
            pooled.setdefault(row, {}).setdefault(group, Counter()).update(counts)
    return {row: {g: groups[g] for g in GROUPS if g in groups} for row, groups in pooled.items()}


def run_breakdown(run: Path, rows: tuple[str, ...] = ROWS) -> dict[str, dict[str, tuple[int, int]]]:
    """{row: {group: (pairs, right)}} pooled over the run's seed folders."""
    pooled: dict[str, Counter] = {}
    for row, items, benchmark in _seed_evaluations(run, rows):
        counts = pooled.setdefault(row, Counter())
        for group, (n, good) in breakdown(items, benchmark).items():
            counts[(group, "n")] += n
            counts[(group, "right")] += good
    return {
        row: {g: (c[(g, "n")], c[(g, "right")]) for g in GROUPS if c[(g, "n")]}
        for row, c in pooled.items()
    }


def ridge_cv_accuracy(
    features: np.ndarray, labels: list[str], folds: int = 4, alpha: float = 1.0, seed: int = 0
) -> float:
    """Cross-validated accuracy of a one-vs-rest ridge classifier (standardised features)."""
    classes = sorted(set(labels))
    y = np.array([classes.index(label) for label in labels])
    order = np.random.default_rng(seed).permutation(len(y))
    right = 0
    for fold in range(folds):
        test = order[fold::folds]
        train = np.setdiff1d(order, test)
        mean, std = features[train].mean(0), features[train].std(0) + 1e-6
        x_train, x_test = (features[train] - mean) / std, (features[test] - mean) / std
        x_train = np.hstack([x_train, np.ones((len(train), 1))])
        x_test = np.hstack([x_test, np.ones((len(test), 1))])
        targets = np.eye(len(classes))[y[train]] * 2 - 1
        weights = np.linalg.solve(
            x_train.T @ x_train + alpha * np.eye(x_train.shape[1]), x_train.T @ targets
        )
        right += int(((x_test @ weights).argmax(1) == y[test]).sum())
    return right / len(y)


def probe(
    model_dir: str, data: Path, batch: int = 64, pool: str = "concat"
) -> list[dict[str, Any]]:
    """Probe accuracy per element for the vision features and the 8x8 pixels, with chance (the
    most common term's share). `pool`: "concat" joins an image's visual tokens (the probe sees
    where things are), "mean" averages them (one hidden-size vector per image whatever the
    token count, so 4-token and 16-token models are probed with as many features)."""
    if pool not in ("concat", "mean"):
        raise ValueError(f"pool must be concat or mean, got {pool!r}")
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    entries = json.loads((data / "benchmark.json").read_text(encoding="utf-8"))
    paths, attributes = [], []
    for entry in entries:
        for side in "AB":
            paths.append(data / entry["image" + side])
            attributes.append(entry["meta"]["attributes_" + side.lower()])
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    features, pixels = [], []
    with torch.no_grad():
        for start in range(0, len(paths), batch):
            images = [Image.open(path).convert("RGB") for path in paths[start : start + batch]]
            encoded = processor.image_processor(images=images, return_tensors="pt")
            output = model.model.get_image_features(
                encoded["pixel_values"], encoded["image_grid_thw"]
            )
            tokens = output.pooler_output if hasattr(output, "pooler_output") else output
            tokens = torch.cat(list(tokens)) if isinstance(tokens, (list, tuple)) else tokens
            tokens = tokens.reshape(len(images), -1, tokens.shape[-1])
            tokens = tokens.mean(1) if pool == "mean" else tokens.reshape(len(images), -1)
            features.append(tokens.float().numpy())
            pixels.append(
                np.stack(
                    [np.asarray(im.resize((8, 8)), dtype=np.float32).ravel() / 255 for im in images]
                )
            )
    vision, raw = np.concatenate(features), np.concatenate(pixels)
    results = []
    for element in ELEMENTS:
        labels = [a[element] for a in attributes]
        chance = Counter(labels).most_common(1)[0][1] / len(labels)
        results.append(
            {
                "element": element,
                "terms": len(set(labels)),
                "chance": chance,
                "vision": ridge_cv_accuracy(vision, labels),
                "pixels_8x8": ridge_cv_accuracy(raw, labels),
            }
        )
    return results


# "2. Color: Orange / Pink; Pink: Image A(0); Orange: Image B(5)" (training.study.compact, inline)
_OBSERVED_LINE = re.compile(
    r"^\d+\.\s*(?P<name>[^:]+):\s*(?P<liked>[^/;]*?)\s*/\s*(?P<disliked>[^;]*?);\s*"
    r"(?P<term_a>[^;:]+):\s*Image A\((?P<score_a>\d)\);\s*"
    r"(?P<term_b>[^;:]+):\s*Image B\((?P<score_b>\d)\)\s*$"
)


def read_observed(text: str) -> dict[str, dict[str, Any]]:
    """{element: {liked, disliked (term sets), term_a, term_b, score_a, score_b}} for each
    element line of an observed-terms output that reads cleanly (others are left out)."""
    from preferthinker.profile import ELEMENT_NAMES

    by_name = {name.lower(): element for element, name in ELEMENT_NAMES.items()}
    lines: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        match = _OBSERVED_LINE.match(line.strip())
        element = match and by_name.get(match["name"].strip().lower())
        if not element:
            continue
        lines[element] = {
            "liked": {t.strip().lower() for t in match["liked"].split(",") if t.strip()},
            "disliked": {t.strip().lower() for t in match["disliked"].split(",") if t.strip()},
            **{f"term_{s}": match[f"term_{s}"].strip() for s in "ab"},
            **{f"score_{s}": int(match[f"score_{s}"]) for s in "ab"},
        }
    return lines


def scored_by_term(line: dict[str, Any], side: str) -> bool:
    """Whether a line's score for `side` is what its named term earns against the line's
    restated terms (5 liked, 0 disliked, else 2)."""
    term = line[f"term_{side}"].lower()
    earned = 5 if term in line["liked"] else 0 if term in line["disliked"] else 2
    return line[f"score_{side}"] == earned


def named_terms(lines_per_pair: list[tuple[dict, dict, dict]]) -> list[dict[str, Any]]:
    """Per element: candidates named (n), named right (the term it shows), scored by the
    named term; from (read_observed lines, attributes A, attributes B) per pair."""
    results = []
    for element in ELEMENTS:
        n = right = scored = 0
        for lines, attrs_a, attrs_b in lines_per_pair:
            line = lines.get(element)
            if line is None:
                continue
            for side, attrs in (("a", attrs_a), ("b", attrs_b)):
                n += 1
                right += line[f"term_{side}"].lower() == str(attrs.get(element, "")).lower()
                scored += scored_by_term(line, side)
        results.append({"element": element, "n": n, "named_right": right, "scored_by_term": scored})
    return results


def outputs(model_dir: str, data: Path, max_new_tokens: int = 200) -> list[dict[str, Any]]:
    """Greedy outputs of `model_dir` on every evaluation pair of `data`, read by `named_terms`."""
    from transformers.utils import logging as transformers_logging

    from preferthinker.assessor import Assessor, AssessorConfig
    from preferthinker.benchmark import load_benchmark

    transformers_logging.set_verbosity_error()  # one kwargs warning per pair otherwise
    items = load_benchmark(data)
    config = AssessorConfig(
        assessor=model_dir,
        device="cpu",
        max_new_tokens=max_new_tokens,
        repetition_penalty=1.0,  # as the study's evaluation: the format repeats its pieces
        max_retries=0,
        max_pixels=64 * 64,
    )
    read = []
    with Assessor.from_config(config) as assessor:
        for item in items:
            comparison = assessor.compare(
                item.image_a, item.image_b, liked=item.preferred, disliked=item.non_preferred
            )
            text = comparison.raw_texts[0] if comparison.raw_texts else ""
            read.append((read_observed(text), item.meta["attributes_a"], item.meta["attributes_b"]))
    return named_terms(read)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="?", type=Path, help="a learning_study.py --out folder")
    parser.add_argument("--probe", help="a model folder: probe its vision features instead")
    parser.add_argument(
        "--pool",
        choices=("concat", "mean"),
        default="concat",
        help="with --probe: join an image's visual tokens or average them (default: concat)",
    )
    parser.add_argument(
        "--outputs", help="a model folder (observed-terms targets): read its named terms"
    )
    parser.add_argument(
        "--data", type=Path, help="with --probe / --outputs: a seed's data/eval folder"
    )
    args = parser.parse_args(argv)
    mode = "--outputs" if args.outputs else "--probe" if args.probe else None
    if mode and (args.data is None or not (args.data / "benchmark.json").exists()):
        parser.error(f"{mode} needs --data <seed>/data/eval (a folder with benchmark.json)")
    if args.outputs:
        print(
            "| element | candidates named | named right % | scored by the named term % |\n"
            "|---|---|---|---|"
        )
        for r in outputs(args.outputs, args.data):
            n = r["n"] or 1
            print(
                f"| {r['element']} | {r['n']} | {100 * r['named_right'] / n:.1f} "
                f"| {100 * r['scored_by_term'] / n:.1f} |"
            )
        return
    if args.probe:
        print(
            "| element | terms | chance % | vision features % | raw 8x8 pixels % |\n"
            "|---|---|---|---|---|"
        )
        for r in probe(args.probe, args.data, pool=args.pool):
            print(
                f"| {r['element']} | {r['terms']} | {100 * r['chance']:.1f} "
                f"| {100 * r['vision']:.1f} | {100 * r['pixels_8x8']:.1f} |"
            )
        return
    if args.run is None:
        parser.error("give a run folder, or --probe MODEL --data EVAL")
    table = run_breakdown(args.run)
    print("| row | " + " | ".join(GROUPS) + " |\n|---|" + "---|" * len(GROUPS))
    for row, groups in table.items():
        cells = [
            f"{100 * right / n:.1f} (n={n})" if n else "-"
            for n, right in (groups.get(g, (0, 0)) for g in GROUPS)
        ]
        print(f"| {row} | " + " | ".join(cells) + " |")
    print("\nAnswers per group, % A / % B (undecided counted apart):\n")
    print("| row | " + " | ".join(GROUPS) + " |\n|---|" + "---|" * len(GROUPS))
    for row, groups in run_sides(args.run).items():
        cells = []
        for group in GROUPS:
            counts = groups.get(group)
            total = sum(counts.values()) if counts else 0
            cells.append(
                f"{100 * counts['A'] / total:.0f} / {100 * counts['B'] / total:.0f}"
                if total
                else "-"
            )
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
