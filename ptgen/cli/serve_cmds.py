"""`ptgen serve`: start vLLM's OpenAI-compatible server for an assessor, wait until it is healthy.

A thin layer over `preferthinker.serving`: it builds a `ServeConfig` from the flags (and an
optional YAML `--config`), prints or starts the vLLM command, waits for `/health` and prints the
`--assessor` URL to use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from preferthinker.images import DEFAULT_MAX_PIXELS
from preferthinker.references import MAX_REFERENCES
from preferthinker.serving import DEFAULT_MAX_IMAGES


def serve(
    model: str = typer.Argument(..., help="Base model id/path or merged checkpoint folder."),
    adapter: Optional[str] = typer.Option(None, help="LoRA adapter folder served on top of MODEL."),
    adapter_name: Optional[str] = typer.Option(
        None, help="Model name clients use for the adapter [preferthinker]."
    ),
    served_model_name: Optional[str] = typer.Option(
        None, help="Model name clients use for the base model [MODEL]."
    ),
    host: Optional[str] = typer.Option(
        None, help="Bind address [127.0.0.1]; 0.0.0.0 exposes the server."
    ),
    port: Optional[int] = typer.Option(None, help="Port [8000]."),
    api_key: Optional[str] = typer.Option(
        None,
        envvar="PTGEN_SERVE_API_KEY",
        help="Require this bearer key (env PTGEN_SERVE_API_KEY).",
    ),
    tensor_parallel_size: Optional[int] = typer.Option(
        None,
        "--tensor-parallel-size",
        "--tp",
        help="GPUs per replica [1]; must divide the model's attention heads (7B: 1, 2, 4).",
    ),
    pipeline_parallel_size: Optional[int] = typer.Option(
        None,
        "--pipeline-parallel-size",
        "--pp",
        help="Pipeline stages, across nodes with --ray [1].",
    ),
    data_parallel_size: Optional[int] = typer.Option(
        None, "--data-parallel-size", "--dp", help="Replicas behind this one URL [1]."
    ),
    ray: Optional[bool] = typer.Option(
        None,
        "--ray/--no-ray",
        help="Use the Ray executor (multi-node; needs `pip install ray` in the vLLM environment "
        "and `ray start` first).",
    ),
    max_images: Optional[int] = typer.Option(
        None,
        help=f"Images per request [{DEFAULT_MAX_IMAGES} = {MAX_REFERENCES} liked + "
        f"{MAX_REFERENCES} disliked + 2].",
    ),
    max_pixels: Optional[int] = typer.Option(
        None, help=f"Largest image in pixels [{DEFAULT_MAX_PIXELS}]."
    ),
    max_model_len: Optional[int] = typer.Option(
        None, help="Context length [computed from images and pixels]."
    ),
    gpu_memory_utilization: Optional[float] = typer.Option(
        None, help="GPU memory fraction for vLLM."
    ),
    dtype: Optional[str] = typer.Option(None, help="Weights dtype (auto, bfloat16, float16)."),
    prefix_caching: Optional[bool] = typer.Option(
        None,
        "--prefix-caching/--no-prefix-caching",
        help="Reuse KV cache of shared prompt prefixes [on]; off emits --no-enable-prefix-caching.",
    ),
    vllm_arg: Optional[list[str]] = typer.Option(
        None, "--vllm-arg", help="Extra vLLM flag, repeatable: --vllm-arg=--seed --vllm-arg=0"
    ),
    vllm_python: Optional[str] = typer.Option(None, help="Python of an environment that has vLLM."),
    vllm: Optional[str] = typer.Option(
        None, help="`vllm` executable of an environment that has vLLM."
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="YAML file with these options (flags win)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the exact vLLM command and exit."),
    health_timeout: float = typer.Option(1800.0, help="Seconds to wait for /health."),
    log_file: Optional[Path] = typer.Option(
        None, help="Write the server's output here instead of the terminal."
    ),
) -> None:
    """Serve an assessor with vLLM (OpenAI-compatible) and print the URL for --assessor."""
    from preferthinker.config import load_config
    from preferthinker.serving import (
        INSTALL_HINT,
        ServeConfig,
        build_serve_command,
        check_tensor_parallel,
        start_server,
        stop_server,
        wait_for_health,
    )

    overrides = {
        "model": model,
        "adapter": adapter,
        "adapter_name": adapter_name,
        "served_model_name": served_model_name,
        "host": host,
        "port": port,
        "api_key": api_key,
        "tensor_parallel_size": tensor_parallel_size,
        "pipeline_parallel_size": pipeline_parallel_size,
        "data_parallel_size": data_parallel_size,
        "ray": ray,
        "max_images": max_images,
        "max_pixels": max_pixels,
        "max_model_len": max_model_len,
        "gpu_memory_utilization": gpu_memory_utilization,
        "dtype": dtype,
        "prefix_caching": prefix_caching,
        "extra_args": tuple(vllm_arg) if vllm_arg else None,
        "vllm_python": vllm_python,
        "vllm": vllm,
    }
    cfg = load_config(ServeConfig, config, overrides)
    if check_tensor_parallel(cfg) is None:
        typer.echo(
            f"# the attention heads of {cfg.model} are unknown here (no config.json): "
            "--tensor-parallel-size not checked",
            err=True,
        )
    command = build_serve_command(cfg)
    hint = f"--assessor {cfg.base_url} --assessor-model {cfg.client_model}"

    if dry_run:
        typer.echo(command.shell())
        typer.echo(f"# vLLM {command.launcher.describe()}", err=True)
        if not command.launcher.found:
            typer.echo(f"# {INSTALL_HINT}", err=True)
        typer.echo(f"# then use: {hint}", err=True)
        return

    typer.echo(f"starting: {command.shell()}", err=True)
    process = start_server(command, log_path=log_file)
    last_report = [0.0]

    def progress(waited: float, status: Optional[int]) -> None:
        if waited - last_report[0] >= 15:
            last_report[0] = waited
            state = f"HTTP {status}" if status is not None else "not listening yet"
            typer.echo(f"waiting for {cfg.base_url} ({waited:.0f}s, {state})", err=True)

    try:
        health = wait_for_health(
            cfg.base_url,
            timeout=health_timeout,
            process=process,
            api_key=cfg.api_key,
            progress=progress,
        )
        typer.echo(f"ready after {health.seconds:.0f}s: {cfg.base_url}", err=True)
        typer.echo(hint)
        process.wait()
    except KeyboardInterrupt:
        typer.echo("stopping the server", err=True)
        raise
    finally:
        stop_server(process)
    if process.returncode:
        raise typer.Exit(process.returncode)


def register(app: typer.Typer) -> None:
    """Add `ptgen serve` to the app."""
    app.command("serve")(serve)
