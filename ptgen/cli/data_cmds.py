"""`ptgen data build`, `ptgen data import`, `ptgen train sft`, `ptgen train grpo`: the training
pipeline's commands.

Each command reads its YAML config (its section `data:`, `sft:` or `grpo:`, or a flat file of
its own; every key must be a field of the config class; flags override the file) and calls one
function of `training`, imported inside the command so that `ptgen --help` never loads TRL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ptgen.cli.options import console, out

data_app = typer.Typer(help="Build training data for the assessor.", no_args_is_help=True)
train_app = typer.Typer(help="Train the assessor: cold-start SFT, then GRPO.", no_args_is_help=True)

TrainConfigOption = typer.Option(
    ..., "--config", help="YAML file of the training config (see training/configs/)."
)


def load_strict(cls: type, path: Optional[Path], overrides: dict[str, Any]):
    """`load_config` for a training command: its section of a sectioned file, or a flat file of
    its own; an unknown key is an error that names it (a typo in a training config must not
    silently fall back to a default)."""
    from preferthinker.config import load_config

    return load_config(cls, path, overrides)


def build(
    config: Optional[Path] = typer.Option(
        None, "--config", help="YAML file of DataConfig options."
    ),
    output_dir: Optional[str] = typer.Option(
        None, "--output-dir", help="Dataset folder (resumed if it holds this build)."
    ),
    seed: Optional[int] = typer.Option(
        None, "--seed", help="Seed of users, subjects, images and wording."
    ),
    train_users: Optional[int] = typer.Option(
        None, "--train-users", help="Users of the train split."
    ),
    eval_users: Optional[int] = typer.Option(
        None, "--eval-users", help="Users per evaluation split."
    ),
    pairs: Optional[int] = typer.Option(None, "--pairs", help="Candidate pairs per user."),
    generator: Optional[str] = typer.Option(
        None,
        "--generator",
        help="'procedural' or a diffusers pipeline id/path (e.g. a ptgen make-tiny generator).",
    ),
    prompts_file: Optional[str] = typer.Option(
        None, "--prompts", help="Subject prompts file, one per line."
    ),
    cot_rewriter: Optional[str] = typer.Option(
        None,
        "--cot-rewriter",
        help="OpenAI-compatible URL or model path that rewords the CoT rationales.",
    ),
    verdict: Optional[str] = typer.Option(
        None,
        "--verdict",
        help="full: the predict-then-assess CoT targets (default); compact: the compact prompt "
        "(known profile) and compact verdicts, for training a --verdict compact judge.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Build a PreferImg-CoT style dataset: simulated users, rendered references and pairs, \
CoT targets.

    An interrupted build continues where it stopped when run again with the same config.
    Under `accelerate launch` or `torchrun` the users are shared out over the processes and the
    main process merges (see docs/training.md, "At paper scale").
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from generation.shards import current_process
    from training.data import DataConfig, build_dataset

    cfg = load_strict(
        DataConfig,
        config,
        dict(
            output_dir=output_dir,
            seed=seed,
            train_users=train_users,
            eval_users=eval_users,
            pairs=pairs,
            generator=generator,
            prompts_file=prompts_file,
            cot_rewriter=cot_rewriter,
            verdict=verdict,
        ),
    )
    process = current_process()
    label = "building pairs"
    if process.world_size > 1:
        label = f"process {process.rank}/{process.world_size}"
    # One bar per launch: the main process's (the others' would interleave on one terminal).
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not process.is_main,
    ) as bar:
        task = bar.add_task("pairs", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = build_dataset(cfg, progress=progress, process=process)
    if not report["merged"]:
        console.print(
            f"process {process.rank}/{process.world_size}: {report['users']} users done "
            f"({report['resumed_users']} resumed); the main process merges"
        )
        return
    if as_json:
        out.print_json(json.dumps(report))
        return
    console.print(
        f"dataset: {report['output_dir']}  kept {report['kept']} pairs {report['kept_per_split']}"
    )
    if report["resumed_users"]:
        console.print(f"resumed: {report['resumed_users']} users were already done")
    if report["dropped_total"]:
        reasons = ", ".join(
            f"{reason}: {count}" for reason, count in sorted(report["dropped"].items())
        )
        console.print(f"dropped {report['dropped_total']} pairs ({reasons})")
    else:
        console.print("dropped 0 pairs")
    if report["rewrite_rejected"]:
        console.print(f"LLM rewrites rejected (template kept): {report['rewrite_rejected']}")


def import_command(
    source: Path = typer.Argument(
        ...,
        help="The authors' training data: JSON list, JSONL, a datasets folder (save_to_disk) "
        "or a parquet file.",
    ),
    images: Path = typer.Option(
        ..., "--images", help="Folder the records' image paths start from."
    ),
    output_dir: Path = typer.Option(
        ..., "--out", help="The ptgen training folder to write (new or empty)."
    ),
    check_profile: bool = typer.Option(
        True,
        "--check-profile/--no-check-profile",
        help="Reject a CoT whose profile differs from the record's prefer_attributes "
        "(profile_mismatch).",
    ),
    cot_as_grpo: bool = typer.Option(
        True, "--cot-as-grpo/--no-cot-as-grpo", help="CoT records also become GRPO prompts."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the import report as JSON."),
) -> None:
    """Import the authors' training data (PreferThinker-Dataset layout) as a ptgen training folder.

    Full-CoT answers become SFT targets (sft.jsonl), bare answers GRPO prompts (grpo.jsonl) with
    the ground-truth profiles for the prediction reward. Records with missing or unreadable
    images, or CoTs the quality filter rejects, are skipped and counted by reason.
    """
    from training.importer import ImportConfig, import_dataset, iter_problems

    try:
        cfg = ImportConfig(
            source=str(source),
            images=str(images),
            output_dir=str(output_dir),
            check_profile=check_profile,
            cot_as_grpo=cot_as_grpo,
        )
    except ValueError as error:
        from preferthinker.errors import ConfigError

        raise ConfigError(str(error)) from None
    with console.status("importing") as status:
        report = import_dataset(
            cfg, progress=lambda done, total: status.update(f"read {done}/{total} records")
        )
    if as_json:
        out.print_json(json.dumps(report))
        return
    for line in list(iter_problems(report))[:20]:
        console.print(f"skipped {line}", markup=False, highlight=False, soft_wrap=True)
    if len(report["problems"]) > 20:
        more = report["rejected_total"] - 20
        console.print(f"... {more} more in {output_dir}/import_report.json", soft_wrap=True)
    for name, count in report["unknown_fields"].items():
        console.print(
            f"unknown field {name!r} in {count} record(s): not used", markup=False, soft_wrap=True
        )
    for name, count in report["missing_fields"].items():
        console.print(f"missing field {name!r} in {count} record(s)", markup=False, soft_wrap=True)
    reasons = ", ".join(f"{reason}: {count}" for reason, count in report["rejected"].items())
    out.print(
        f"records read {report['records']}; SFT targets {report['sft_targets']}; "
        f"GRPO prompts {report['grpo_prompts']} (grpo.jsonl: {report['grpo']}); "
        f"rejected {report['rejected_total']}" + (f" ({reasons})" if reasons else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"dataset: {report['output_dir']} "
        "(train with dataset_split: sft, then dataset_split: grpo)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _train_overrides(output_dir, model, dataset, max_steps, resume) -> dict[str, Any]:
    return dict(
        output_dir=output_dir,
        model_name_or_path=model,
        dataset_path=dataset,
        max_steps=max_steps,
        resume_from_checkpoint=True if resume else None,
    )


def sft(
    config: Path = TrainConfigOption,
    output_dir: Optional[str] = typer.Option(
        None, "--output-dir", help="Checkpoints and final model go here."
    ),
    model: Optional[str] = typer.Option(None, "--model", help="Base model id or folder."),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", help="Folder written by `ptgen data build`."
    ),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", help="Stop after this many optimizer steps."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Resume from the newest checkpoint in --output-dir."
    ),
) -> None:
    """Cold-start SFT on the CoT dataset (TRL SFTTrainer); saves a folder `ptgen assess` loads."""
    from training.sft import SFTTrainingConfig, train_sft

    cfg = load_strict(
        SFTTrainingConfig, config, _train_overrides(output_dir, model, dataset, max_steps, resume)
    )
    final = train_sft(cfg)
    console.print(f"SFT model: {final}")
    console.print(f"try: ptgen assess A.png B.png --refs <liked folder> --assessor {final}")


def grpo(
    config: Path = TrainConfigOption,
    output_dir: Optional[str] = typer.Option(
        None, "--output-dir", help="Checkpoints and final model go here."
    ),
    model: Optional[str] = typer.Option(
        None, "--model", help="The SFT final folder (or any checkpoint)."
    ),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", help="Folder written by `ptgen data build`."
    ),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", help="Stop after this many optimizer steps."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Resume from the newest checkpoint in --output-dir."
    ),
) -> None:
    """GRPO with the accuracy, format and prediction rewards (TRL GRPOTrainer)."""
    from training.grpo import GRPOTrainingConfig, train_grpo

    cfg = load_strict(
        GRPOTrainingConfig, config, _train_overrides(output_dir, model, dataset, max_steps, resume)
    )
    final = train_grpo(cfg)
    console.print(f"GRPO model: {final}")
    console.print(f"try: ptgen assess A.png B.png --refs <liked folder> --assessor {final}")


def register(app: typer.Typer) -> None:
    """Add `data build`, `data import`, `train sft` and `train grpo` to the `ptgen` app."""
    data_app.command("build")(build)
    data_app.command("import")(import_command)
    train_app.command("sft")(sft)
    train_app.command("grpo")(grpo)
    app.add_typer(data_app, name="data")
    app.add_typer(train_app, name="train")
