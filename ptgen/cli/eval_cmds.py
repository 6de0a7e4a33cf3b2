"""`ptgen eval` (an assessor on a benchmark) and `ptgen synthpref build` (a SynthPref set)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ptgen.cli.options import (
    AssessorModelOption,
    AssessorOption,
    ConfigOption,
    DebiasOption,
    DeviceOption,
    DtypeOption,
    MaxNewTokensOption,
    MaxPixelsOption,
    VerdictOption,
    assessor_config,
    console,
    out,
)

synthpref_app = typer.Typer(help="Build SynthPref simulated-user benchmarks.", no_args_is_help=True)


def eval_command(
    data: Path = typer.Option(
        ...,
        "--data",
        help="Benchmark JSON/JSONL (the authors' PreferImg-Bench or SynthPref), a SynthPref "
        "folder, or a folder of several benchmark files (e.g. PreferImg-Bench/data: every subset "
        "and the average).",
    ),
    image_root: Optional[Path] = typer.Option(
        None,
        "--image-root",
        help="Folder the benchmark's image paths start from (default: the file's folder).",
    ),
    assessor: Optional[str] = AssessorOption,
    assessor_model: Optional[str] = AssessorModelOption,
    config: Optional[Path] = ConfigOption,
    device: Optional[str] = DeviceOption,
    dtype: Optional[str] = DtypeOption,
    max_new_tokens: Optional[int] = MaxNewTokensOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    debias: Optional[bool] = DebiasOption,
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate only the first N items."),
    mode: str = typer.Option(
        "full",
        "--mode",
        help="full: references -> profile -> assess; profile: ground-truth profile given as text.",
    ),
    protocol: str = typer.Option(
        "ptgen",
        "--protocol",
        help="ptgen: tolerant answer reading, ptgen's decoding. authors: the authors' eval script "
        "(last <answer> block must be exactly 'Image A'/'Image B'; one greedy pass, "
        "repetition penalty 1.15, up to 4096 new tokens, no retries), comparable with the "
        "paper. both: the "
        "authors' decoding, both accuracies from the same generations.",
    ),
    position_bias: Optional[bool] = typer.Option(
        None,
        "--position-bias/--no-position-bias",
        help="Also judge each pair swapped to measure position bias (2x cost; default: on for "
        "--protocol ptgen, off otherwise).",
    ),
    similarity: bool = typer.Option(
        True,
        "--similarity/--no-similarity",
        help="SBERT similarity of predicted vs. true profiles.",
    ),
    out_file: Optional[Path] = typer.Option(
        None, "--out", help="Write the JSON result here (and the Markdown table next to it, .md)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the JSON result instead of the table."
    ),
    verdict: Optional[str] = VerdictOption,
) -> None:
    """Evaluate an assessor on a benchmark: accuracy (overall, per split), parse failures,
    position bias, profile similarity, per-element agreement, tokens and time per item."""
    from dataclasses import replace

    from preferthinker.assessor import Assessor
    from preferthinker.errors import ConfigError
    from preferthinker.evaluation import AUTHORS_DECODING, PROTOCOLS, EvalConfig

    if protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    cfg = assessor_config(
        config,
        assessor=assessor,
        assessor_model=assessor_model,
        device=device,
        dtype=dtype,
        max_new_tokens=max_new_tokens,
        max_pixels=max_pixels,
        debias=debias,
        verdict=verdict,
    )
    if cfg.verdict == "compact" and mode != "profile":
        raise ConfigError(
            "--verdict compact needs a known profile: add --mode profile (compact verdicts "
            "judge against the ground-truth profile; --mode full predicts it from references)"
        )
    if cfg.verdict == "compact" and protocol != "ptgen":
        raise ConfigError(
            f"--verdict compact is ptgen's format and --protocol {protocol} reads the authors' "
            "full verdicts; use --protocol ptgen"
        )
    skipped: list[str] = []
    run, total, render = _runner(data, image_root, limit, skipped)
    for reason in skipped:
        console.print(f"skipped: {reason}", markup=False)
    if position_bias is None:
        position_bias = protocol == "ptgen"
    eval_config = EvalConfig(
        limit=limit,
        mode=mode,
        position_bias=position_bias,
        similarity=similarity,
        protocol=protocol,
        verdict=cfg.verdict,
    )
    if protocol == "ptgen":
        console.print("protocol ptgen: tolerant answer reading")
    else:
        console.print(
            f"protocol {protocol}: one greedy pass, repetition penalty 1.15, up to "
            "4096 new tokens, no retries; the last <answer> block must be exactly "
            "Image A/Image B"
        )
    with console.status(f"evaluating {total} items") as status:

        def progress(done: int, all_: int) -> None:
            status.update(f"evaluated {done}/{all_} items")

        if protocol != "ptgen":
            cfg = replace(cfg, **AUTHORS_DECODING)
        with Assessor.from_config(cfg) as model:
            result = run(model, eval_config, progress=progress)
    result["data"] = str(data)
    result["skipped"] = [{"id": "", "reason": reason} for reason in skipped] + result.get(
        "skipped", []
    )
    for entry in result["skipped"][len(skipped) :]:
        console.print(f"skipped item {entry['id']}: {entry['reason']}", markup=False)
    table = render(result)
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
        out_file.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
        console.print(f"wrote {out_file} and {out_file.with_suffix('.md')}")
    if as_json:
        out.print_json(json.dumps(result, default=str))
        return
    out.print(table, markup=False, highlight=False, soft_wrap=True)


def _runner(data: Path, image_root: Optional[Path], limit: Optional[int], skipped: list[str]):
    """(run(assessor, config, baseline=, progress=), items to evaluate, result -> table): one
    benchmark file through `evaluate`, or a folder of several (the authors' release: one file per
    subset) through `evaluate_suite`, each subset and the average as in the paper's main table.
    Items of a single file that cannot be evaluated are left out and described in `skipped`."""
    from functools import partial

    from preferthinker.benchmark import load_benchmark
    from preferthinker.evaluation import evaluate, markdown_table
    from preferthinker.suite import (
        evaluate_suite,
        find_subsets,
        is_suite,
        subset_details,
        suite_table,
    )

    if not is_suite(data):
        items = load_benchmark(data, image_root=image_root, skipped=skipped)
        total = min(len(items), limit or len(items))
        return partial(evaluate, items), total, lambda r: markdown_table([r])
    subsets = find_subsets(data, image_root)
    sizes = [len(load_benchmark(s.path, image_root=s.image_root)) for s in subsets]
    total = sum(min(n, limit or n) for n in sizes)
    return (
        partial(evaluate_suite, data, image_root=image_root),
        total,
        lambda r: suite_table([r]) + "\n\n" + subset_details(r),
    )


@synthpref_app.command("build")
def build_command(
    out_dir: Path = typer.Argument(
        ..., help="Output folder (benchmark.json, train.json, images/, users.json)."
    ),
    seed: int = typer.Option(0, "--seed", help="Everything follows from this seed."),
    users: int = typer.Option(
        10, "--users", help="Users per evaluation split (seen-SP, seen-MP, unseen-SP, unseen-MP)."
    ),
    train_users: int = typer.Option(
        0, "--train-users", help="Users of the train split (seen terms)."
    ),
    refs: int = typer.Option(3, "--refs", help="Liked (and disliked) references per user."),
    pairs: int = typer.Option(2, "--pairs", help="Candidate pairs per user."),
    size: int = typer.Option(256, "--size", help="Image side in pixels (multiple of 32)."),
    held_out: float = typer.Option(
        0.25, "--held-out", help="Share of each element's terms held out (unseen)."
    ),
    mismatch: Optional[int] = typer.Option(
        None,
        "--mismatch",
        help="Elements on which the other candidate differs (default: 1-5 at random).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty folder."),
) -> None:
    """Build a SynthPref set with the procedural renderer (a simulator for evaluation)."""
    from synthpref.bench import SynthPrefConfig, build_synthpref

    try:
        cfg = SynthPrefConfig(
            seed=seed,
            users=users,
            train_users=train_users,
            refs=refs,
            pairs=pairs,
            size=size,
            held_out_fraction=held_out,
            mismatch=mismatch,
        )
    except ValueError as error:
        from preferthinker.errors import ConfigError

        raise ConfigError(str(error)) from None
    with console.status("rendering") as status:
        summary = build_synthpref(
            out_dir,
            cfg,
            overwrite=overwrite,
            progress=lambda d, t: status.update(f"rendered {d}/{t} users"),
        )
    console.print(
        f"wrote {out_dir}: " + ", ".join(f"{k} {v} pairs" for k, v in summary["counts"].items())
    )


def register(app: typer.Typer) -> None:
    """Add `eval` and `synthpref build` to the `ptgen` app."""
    app.command("eval")(eval_command)
    app.add_typer(synthpref_app, name="synthpref")
