"""Evaluating a whole benchmark suite in one call: the authors' PreferImg-Bench release holds one
JSON file per subset, each with its own image folder (`data/SP_ID/SP_ID.json` and
`data/SP_ID/images/`).

`evaluate_suite(folder, ...)` finds the subsets, loads them all first (a bad file fails before any
model time is spent), runs the per-file `preferthinker.evaluation.evaluate` on each with the
evaluation config passed through as given, and reports each subset and the average over subsets
(the unweighted mean of subset accuracies, as in the paper's main table; the pooled accuracy over
all items is reported beside it).

Example:
    >>> result = evaluate_suite("PreferImg-Bench/data", baseline="random")  # doctest: +SKIP
    >>> print(suite_table([result]))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from preferthinker.errors import InputError

PathLike = Union[str, Path]
Progress = Callable[[int, int], None]

# The paper's column order and names: ID = seen terms (in-domain), OD = unseen (out-of-domain).
PAPER_NAMES = {
    "SP_ID": "Seen-SP",
    "MP_ID": "Seen-MP",
    "SP_OD": "Unseen-SP",
    "MP_OD": "Unseen-MP",
    "PICKAPIC": "Pick-a-Pic",
}
BENCHMARK_SUFFIXES = (".json", ".jsonl")


@dataclass
class Subset:
    """One benchmark file of a suite: its name (the file stem), the file and its image root."""

    name: str
    path: Path
    image_root: Path


def _canonical(name: str) -> str:
    """ "TEST_SP_ID" / "sp_id" -> "SP_ID": the authors name their subsets both ways."""
    upper = name.upper()
    return upper[5:] if upper.startswith("TEST_") else upper


def _order(name: str) -> tuple[int, str]:
    order = list(PAPER_NAMES)
    canonical = _canonical(name)
    return (order.index(canonical) if canonical in order else len(order), name)


def _benchmark_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in BENCHMARK_SUFFIXES and not p.name.startswith(".")
    )


def _image_root(path: Path, candidates: Sequence[Path]) -> Path:
    """Where a subset's image paths start: the first existing candidate folder in which the first
    item's `imageA` exists (else the first existing one). The root used is reported with the
    results, never applied silently."""
    from preferthinker.benchmark import load_benchmark

    folders = [c for c in candidates if c.is_dir()]
    for folder in folders:
        items = load_benchmark(path, image_root=folder)
        if items and Path(items[0].image_a).is_file():
            return folder
    return folders[0] if folders else path.parent


def find_subsets(folder: PathLike, image_root: Optional[PathLike] = None) -> list[Subset]:
    """The benchmark files of a suite folder, in the paper's order (others after, by name).

    A subset is a `.json`/`.jsonl` file in `folder`, or the single such file inside a subfolder
    (the authors' `data/<SUBSET>/<SUBSET>.json`), or a subfolder's `benchmark.json` (a SynthPref
    or `ptgen data build` folder, named after the subfolder). `image_root` given: every subset's
    paths start there; else each subset's root is the first of `<subfolder>/images`,
    `<subfolder>` (for a file `X.json` directly in `folder`: `X/images`, `X`, `images`, `folder`
    itself) where its first item's `imageA` exists.

    Example:
        >>> [s.name for s in find_subsets("PreferImg-Bench/data")]  # doctest: +SKIP
        ['SP_ID', 'MP_ID', 'SP_OD', 'MP_OD', 'PICKAPIC']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"benchmark folder not found: {folder}")
    found: list[tuple[str, Path, list[Path]]] = [
        (
            path.stem,
            path,
            [folder / path.stem / "images", folder / path.stem, folder / "images", folder],
        )
        for path in _benchmark_files(folder)
    ]
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = _benchmark_files(sub)
        named = [f for f in files if f.stem == sub.name]
        ptgen_made = [f for f in files if f.stem == "benchmark"]  # SynthPref, `ptgen data build`
        if len(named) == 1 or len(files) == 1:
            path = (named or files)[0]
            found.append((path.stem, path, [sub / "images", sub]))
        elif len(ptgen_made) == 1:  # beside train.json, users.json...: named after its folder
            found.append((sub.name, ptgen_made[0], [sub / "images", sub]))
    subsets: list[Subset] = []
    for name, path, candidates in found:
        root = Path(image_root) if image_root is not None else _image_root(path, candidates)
        subsets.append(Subset(name=name, path=path, image_root=root))
    names = [s.name for s in subsets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(
            f"{folder}: subset name(s) {', '.join(duplicates)} found twice; "
            "keep one file per subset"
        )
    return sorted(subsets, key=lambda s: _order(s.name))


def is_suite(path: PathLike) -> bool:
    """Whether `path` is a folder of several benchmark files (not a SynthPref or `ptgen data
    build` folder, which hold one `benchmark.json`/`benchmark.jsonl`).

    Example:
        >>> is_suite("PreferImg-Bench/data")  # doctest: +SKIP
        True
    """
    path = Path(path)
    if not path.is_dir() or any((path / f"benchmark{s}").is_file() for s in BENCHMARK_SUFFIXES):
        return False
    return bool(_benchmark_files(path)) or any(
        p.is_dir() and _benchmark_files(p) for p in path.iterdir() if not p.name.startswith(".")
    )


def _exists(image: Any) -> bool:
    """A path that is a file, or an in-memory image (nothing to find)."""
    return Path(image).is_file() if isinstance(image, (str, Path)) else True


def _mean(values: Sequence[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def evaluate_suite(
    folder: PathLike,
    assessor: Any = None,
    config: Any = None,
    baseline: Optional[str] = None,
    progress: Optional[Progress] = None,
    image_root: Optional[PathLike] = None,
    similarity: Any = None,
) -> dict[str, Any]:
    """Evaluate an assessor (or a baseline) on every benchmark file of a folder.

    Args:
        folder: the suite folder (e.g. the authors' `PreferImg-Bench/data`).
        assessor, config, baseline, similarity: passed to `evaluate` for each subset unchanged
            (`config.limit` therefore applies per subset).
        progress: called as `progress(items_done, items_total)` over the whole suite.
        image_root: one image root for every subset (default: found beside each file).

    Returns:
        `{"data", "assessor", "subsets": {name: evaluate's result + "image_root"}, "average"
        (unweighted mean of subset accuracies), "pooled_accuracy", "n"}`.

    Example:
        >>> evaluate_suite("PreferImg-Bench/data", baseline="random")["average"]  # doctest: +SKIP
        0.49
    """
    from preferthinker.benchmark import load_benchmark
    from preferthinker.evaluation import evaluate

    subsets = find_subsets(folder, image_root)
    if not subsets:
        raise InputError(f"{folder} holds no benchmark files (.json/.jsonl, or one per subfolder)")
    loaded = [
        (subset, load_benchmark(subset.path, image_root=subset.image_root)) for subset in subsets
    ]
    limit = getattr(config, "limit", None)
    for subset, items in loaded:  # a subset with no readable pair would fail after hours of work
        pairs = [(item.image_a, item.image_b) for item in items[: limit or len(items)]]
        if pairs and not any(_exists(a) and _exists(b) for a, b in pairs):
            missing = next(str(p) for pair in pairs for p in pair if not _exists(p))
            raise InputError(
                f"subset {subset.name}: no pair's images found (first missing: {missing}); "
                "fix the image folder or give --image-root"
            )
    if (
        similarity is None
        and getattr(config, "similarity", False)
        and any(item.profile is not None for _, items in loaded for item in items)
    ):
        from preferthinker.similarity import ProfileSimilarity

        similarity = ProfileSimilarity()  # loaded once for all subsets
    sizes = [min(len(items), limit or len(items)) for _, items in loaded]
    total, offset = sum(sizes), 0
    results: dict[str, dict[str, Any]] = {}
    for (subset, items), size in zip(loaded, sizes, strict=True):

        def subset_progress(done: int, _all: int, start: int = offset) -> None:
            if progress:
                progress(start + done, total)

        result = evaluate(
            items,
            assessor,
            config,
            baseline=baseline,
            progress=subset_progress,
            similarity=similarity,
        )
        result["data"] = str(subset.path)
        result["image_root"] = str(subset.image_root)
        results[subset.name] = result
        offset += size
    accuracies = [r["accuracy"] for r in results.values() if r["accuracy"] is not None]
    n = sum(r["n"] for r in results.values())
    pooled = sum((r["accuracy"] or 0) * r["n"] for r in results.values()) / n if n else None
    first = next(iter(results.values()))
    return {
        "data": str(folder),
        "assessor": first["assessor"],
        "subsets": results,
        "average": _mean(accuracies),
        "pooled_accuracy": pooled,
        "n": n,
    }


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def suite_table(results: Sequence[dict[str, Any]]) -> str:
    """The paper's main-table layout: one row per assessor, one column per subset, the average.
    Column headers carry the paper's names beside the file names (`SP_ID (Seen-SP)`).

    Example:
        >>> result = evaluate_suite("PreferImg-Bench/data", baseline="random")  # doctest: +SKIP
        >>> print(suite_table([result]))  # doctest: +SKIP
    """
    names = sorted(dict.fromkeys(n for r in results for n in r["subsets"]), key=_order)
    labels = [
        f"{n} ({PAPER_NAMES[_canonical(n)]})" if _canonical(n) in PAPER_NAMES else n for n in names
    ]
    head = ["assessor"] + [f"{label} %" for label in labels] + ["avg %", "pooled %", "n"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [r["assessor"]] + [_pct(r["subsets"].get(n, {}).get("accuracy")) for n in names]
        row += [_pct(r["average"]), _pct(r["pooled_accuracy"]), str(r["n"])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def subset_details(result: dict[str, Any]) -> str:
    """`markdown_table` with one row per subset (parse failures, position bias, cost, ...).

    Example:
        >>> result = evaluate_suite("PreferImg-Bench/data", baseline="random")  # doctest: +SKIP
        >>> print(subset_details(result))  # doctest: +SKIP
    """
    from preferthinker.evaluation import markdown_table

    # The subset is the row; its accuracy is the "acc %" column (no per-split columns).
    rows = [dict(r, assessor=name, per_split={}) for name, r in result["subsets"].items()]
    return markdown_table(rows).replace("| assessor |", "| subset |", 1)


__all__ = [
    "PAPER_NAMES",
    "Subset",
    "evaluate_suite",
    "find_subsets",
    "is_suite",
    "subset_details",
    "suite_table",
]
