"""Options shared by several `ptgen` commands, and the one function that turns them into configs.

Progress and notes go to stderr (`console`), results to stdout (`out`), so `--json` output can
be piped.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from generation.strategies import describe_strategies
from preferthinker.assessor import DEFAULT_ASSESSOR
from preferthinker.engines import describe_specs
from preferthinker.images import DEFAULT_MAX_PIXELS

console = Console(stderr=True)
out = Console()

RefsOption = typer.Option(..., "--refs", help="Folder (or image file) of images the user likes.")
DislikedOption = typer.Option(
    None, "--disliked", help="Folder (or image file) of images the user dislikes."
)
AssessorOption = typer.Option(
    None,
    "--assessor",
    help=f"Assessor: {describe_specs()}. Default: {DEFAULT_ASSESSOR}.",
)
StrategyOption = typer.Option(None, "--strategy", help=f"Tournament: {describe_strategies()}.")
AssessorModelOption = typer.Option(
    None, "--assessor-model", help="Served model name, with an http(s) --assessor."
)
ConfigOption = typer.Option(
    None,
    "--config",
    help="YAML config file with sections (assessor:, generator:, loop:, ...; see docs/cli.md); "
    "flags override it.",
)
DeviceOption = typer.Option(
    None, "--device", help="Device for in-process models: cuda, cpu, mps (default: best available)."
)
DtypeOption = typer.Option(
    None, "--dtype", help="dtype for in-process models: bf16, fp16, fp32 (default: from device)."
)
MaxNewTokensOption = typer.Option(
    None,
    "--max-new-tokens",
    help=(
        "Most tokens the assessor may write (default: the model's own limit if its checkpoint "
        "sets one, else 4096)."
    ),
)
MaxPixelsOption = typer.Option(
    None,
    "--max-pixels",
    help=f"Downscale images to at most this many pixels (default {DEFAULT_MAX_PIXELS}).",
)
TrustRemoteCodeOption = typer.Option(
    None,
    "--trust-remote-code/--no-trust-remote-code",
    help=(
        "Run the model repository's own Python code "
        "(off by default: it executes the author's code)."
    ),
)
DebiasOption = typer.Option(
    None, "--debias/--no-debias", help="Judge each pair in both orders and combine."
)
TimeoutOption = typer.Option(
    None,
    "--timeout",
    help="Seconds an HTTP assessor may take per request (default 300: a 7B writing 4096 tokens).",
)
VerdictOption = typer.Option(
    None,
    "--verdict",
    help="full: the authors' verdict with rationales (default); compact: "
    "per-element scores and the answer only, stopping at </answer> (with a known profile).",
)


def config_file(config_path: Any):
    """The `--config` file read once (a `ConfigFile`), or None; commands that build several
    configs pass it to each, so a deprecated flat file warns once."""
    from preferthinker.config import ConfigFile

    if config_path is None or isinstance(config_path, ConfigFile):
        return config_path
    return ConfigFile.read(config_path)


def assessor_config(config_path: Any, **flags: Any):
    """An `AssessorConfig` from defaults < the file's `assessor:` section < the flags the user
    gave (`config_path`: a path, a `ConfigFile` or None)."""
    from preferthinker.assessor import AssessorConfig
    from preferthinker.config import load_config

    return load_config(AssessorConfig, config_path, flags)
