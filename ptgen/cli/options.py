"""Options shared by several `ptgen` commands, and the one function that turns them into configs.

Progress and notes go to stderr (`console`), results to stdout (`out`), so `--json` output can
be piped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

console = Console(stderr=True)
out = Console()

RefsOption = typer.Option(..., "--refs", help="Folder (or image file) of images the user likes.")
DislikedOption = typer.Option(None, "--disliked", help="Folder (or image file) of images the user dislikes.")
AssessorOption = typer.Option(
    None,
    "--assessor",
    help="Assessor: a model id or local path (in-process), an http(s)://HOST:PORT/v1 URL "
    "(OpenAI-compatible server, e.g. vLLM), or 'analytic'. Default: Qwen/Qwen2.5-VL-7B-Instruct.",
)
AssessorModelOption = typer.Option(None, "--assessor-model", help="Served model name, with an http(s) --assessor.")
ConfigOption = typer.Option(None, "--config", help="YAML file of options; flags override it.")
DeviceOption = typer.Option(None, "--device", help="Device for in-process models: cuda, cpu, mps (default: best available).")
DtypeOption = typer.Option(None, "--dtype", help="dtype for in-process models: bf16, fp16, fp32 (default: from device).")
MaxNewTokensOption = typer.Option(None, "--max-new-tokens", help="Most tokens the assessor may write (default: the model's own limit if its checkpoint sets one, else 4096).")
MaxPixelsOption = typer.Option(None, "--max-pixels", help="Downscale images to at most this many pixels (default 1048576).")
TrustRemoteCodeOption = typer.Option(
    None, "--trust-remote-code/--no-trust-remote-code",
    help="Run the model repository's own Python code (off by default: it executes the author's code).",
)
DebiasOption = typer.Option(None, "--debias/--no-debias", help="Judge each pair in both orders and combine.")
TimeoutOption = typer.Option(
    None, "--timeout",
    help="Seconds an HTTP assessor may take per request (default 300: a 7B writing 4096 tokens).",
)


def assessor_config(config_path: Optional[Path], **flags: Any):
    """An `AssessorConfig` from defaults < the YAML file < the flags the user gave."""
    from preferthinker.assessor import AssessorConfig
    from preferthinker.config import load_config

    return load_config(AssessorConfig, config_path, flags)
