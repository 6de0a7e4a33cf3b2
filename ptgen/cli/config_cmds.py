"""`ptgen config convert`: print a flat (deprecated) config file as a sectioned one."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

config_app = typer.Typer(
    help="Config files: sections assessor:, generator:, loop:, serve:, data:, sft:, grpo:.",
    no_args_is_help=True,
)


@config_app.command("convert")
def convert(
    file: Path = typer.Argument(..., help="A flat YAML config file."),
    section: Optional[str] = typer.Option(
        None,
        "--section",
        help="Put every key under this one section (e.g. sft for a flat training file).",
    ),
) -> None:
    """Print FILE with each key under its section (stdout; the file is not changed).

    Example: ptgen config convert ptgen.yaml > ptgen.sectioned.yaml
    """
    from preferthinker.config import convert_flat

    typer.echo(convert_flat(file, section), nl=False)


def register(app: typer.Typer) -> None:
    """Add `config convert` to the `ptgen` app."""
    app.add_typer(config_app, name="config")
