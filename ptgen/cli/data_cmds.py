"""`ptgen data build`, `ptgen train sft`, `ptgen train grpo`: the training pipeline's commands.

Each command reads its YAML config (every key must be a field of the config class; flags
override the file) and calls one function of `training`, imported inside the command so that
`ptgen --help` never loads TRL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ptgen.cli.options import console, out

data_app = typer.Typer(help="Build training data for the assessor.", no_args_is_help=True)
train_app = typer.Typer(help="Train the assessor: cold-start SFT, then GRPO.", no_args_is_help=True)

TrainConfigOption = typer.Option(..., "--config", help="YAML file of the training config (see training/configs/).")


def load_strict(cls: type, path: Optional[Path], overrides: dict[str, Any]):
    """`load_config` for one command's own file: an unknown key is an error that names it
    (a typo in a training config must not silently fall back to a default)."""
    from preferthinker.config import load_config, read_yaml
    from preferthinker.errors import ConfigError

    if path is not None:
        import dataclasses

        names = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in read_yaml(path) if str(k).replace("-", "_") not in names]
        if unknown:
            raise ConfigError(
                f"{path}: unknown option(s) {', '.join(map(str, unknown))} for {cls.__name__}; "
                "see the config class docstring (or TRL's config) for valid names"
            )
    return load_config(cls, path, overrides)


def build(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of DataConfig options."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", help="Dataset folder (resumed if it holds this build)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of users, subjects, images and wording."),
    train_users: Optional[int] = typer.Option(None, "--train-users", help="Users of the train split."),
    eval_users: Optional[int] = typer.Option(None, "--eval-users", help="Users per evaluation split."),
    pairs: Optional[int] = typer.Option(None, "--pairs", help="Candidate pairs per user."),
    generator: Optional[str] = typer.Option(
        None, "--generator", help="'procedural' or a diffusers pipeline id/path (e.g. a ptgen make-tiny generator)."
    ),
    prompts_file: Optional[str] = typer.Option(None, "--prompts", help="Subject prompts file, one per line."),
    cot_rewriter: Optional[str] = typer.Option(
        None, "--cot-rewriter", help="OpenAI-compatible URL or model path that rewords the CoT rationales."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Build a PreferImg-CoT style dataset: simulated users, rendered references and pairs, CoT targets.

    An interrupted build continues where it stopped when run again with the same config.
    Under `accelerate launch` or `torchrun` the users are shared out over the processes and the
    main process merges (see docs/training.md, "At paper scale").
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from generation.shards import current_process
    from training.data import DataConfig, build_dataset

    cfg = load_strict(DataConfig, config, dict(
        output_dir=output_dir, seed=seed, train_users=train_users, eval_users=eval_users, pairs=pairs,
        generator=generator, prompts_file=prompts_file, cot_rewriter=cot_rewriter,
    ))
    process = current_process()
    label = "building pairs"
    if process.world_size > 1:
        label = f"process {process.rank}/{process.world_size}"
    # One bar per launch: the main process's (the others' would interleave on one terminal).
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not process.is_main) as bar:
        task = bar.add_task("pairs", total=None)
        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = build_dataset(cfg, progress=progress, process=process)
    if not report["merged"]:
        console.print(f"process {process.rank}/{process.world_size}: {report['users']} users done "
                      f"({report['resumed_users']} resumed); the main process merges")
        return
    if as_json:
        out.print_json(json.dumps(report))
        return
    console.print(f"dataset: {report['output_dir']}  kept {report['kept']} pairs {report['kept_per_split']}")
    if report["resumed_users"]:
        console.print(f"resumed: {report['resumed_users']} users were already done")
    if report["dropped_total"]:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(report["dropped"].items()))
        console.print(f"dropped {report['dropped_total']} pairs ({reasons})")
    else:
        console.print("dropped 0 pairs")
    if report["rewrite_rejected"]:
        console.print(f"LLM rewrites rejected (template kept): {report['rewrite_rejected']}")


def _train_overrides(output_dir, model, dataset, max_steps, resume) -> dict[str, Any]:
    return dict(output_dir=output_dir, model_name_or_path=model, dataset_path=dataset, max_steps=max_steps,
                resume_from_checkpoint=True if resume else None)


def sft(
    config: Path = TrainConfigOption,
    output_dir: Optional[str] = typer.Option(None, "--output-dir", help="Checkpoints and final model go here."),
    model: Optional[str] = typer.Option(None, "--model", help="Base model id or folder."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Folder written by `ptgen data build`."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps."),
    resume: bool = typer.Option(False, "--resume", help="Resume from the newest checkpoint in --output-dir."),
) -> None:
    """Cold-start SFT on the CoT dataset (TRL SFTTrainer); saves a folder `ptgen assess` loads."""
    from training.sft import SFTTrainingConfig, train_sft

    cfg = load_strict(SFTTrainingConfig, config, _train_overrides(output_dir, model, dataset, max_steps, resume))
    final = train_sft(cfg)
    console.print(f"SFT model: {final}")
    console.print(f"try: ptgen assess A.png B.png --refs <liked folder> --assessor {final}")


def grpo(
    config: Path = TrainConfigOption,
    output_dir: Optional[str] = typer.Option(None, "--output-dir", help="Checkpoints and final model go here."),
    model: Optional[str] = typer.Option(None, "--model", help="The SFT final folder (or any checkpoint)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Folder written by `ptgen data build`."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps."),
    resume: bool = typer.Option(False, "--resume", help="Resume from the newest checkpoint in --output-dir."),
) -> None:
    """GRPO with the accuracy, format and prediction rewards (TRL GRPOTrainer)."""
    from training.grpo import GRPOTrainingConfig, train_grpo

    cfg = load_strict(GRPOTrainingConfig, config, _train_overrides(output_dir, model, dataset, max_steps, resume))
    final = train_grpo(cfg)
    console.print(f"GRPO model: {final}")
    console.print(f"try: ptgen assess A.png B.png --refs <liked folder> --assessor {final}")


def register(app: typer.Typer) -> None:
    """Add `data build`, `train sft` and `train grpo` to the `ptgen` app."""
    data_app.command("build")(build)
    train_app.command("sft")(sft)
    train_app.command("grpo")(grpo)
    app.add_typer(data_app, name="data")
    app.add_typer(train_app, name="train")
