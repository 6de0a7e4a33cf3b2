"""`ptgen demo`: the whole idea working, offline, on a CPU, in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ptgen.cli.options import console


def demo(
    seed: int = typer.Option(
        0, "--seed", help="Picks the simulated user, the prompt and the candidates."
    ),
    n: int = typer.Option(8, "-n", "--n", help="Candidates per run."),
    prompt: Optional[str] = typer.Option(
        None, "--prompt", help="What to draw (default: picked by the seed)."
    ),
    out_dir: Optional[Path] = typer.Option(
        None,
        "--out",
        help="Folder for the report (must be empty unless --force). "
        "Default: a new numbered folder under ptgen-demo/.",
    ),
    force: bool = typer.Option(False, "--force", help="Allow a non-empty --out."),
) -> None:
    """Simulate a user with a hidden taste, personalize for them, and compare with no \
personalization.

    Runs the real loop (profile -> rewrite -> generate -> rerank) against ptgen's procedural
    renderer (a simulator for evaluation) with the analytic assessor; no model downloads.
    """
    from generation.report import finish_run_dir, prepare_run_dir
    from ptgen.cli.generate_cmds import StageProgress
    from ptgen.demo import DemoConfig, run_demo, summary_lines, write_demo

    config = DemoConfig(seed=seed, n=n, prompt=prompt)
    folder = prepare_run_dir(out_dir, "ptgen-demo", force=force)
    with StageProgress() as progress:
        outcome = run_demo(config, callback=progress)
    write_demo(outcome, folder)
    folder = finish_run_dir(folder)  # under --force: replaces --out only now, keeping the old one
    for line in summary_lines(outcome):
        typer.echo(line)
    console.print(f"report: {folder / 'report.html'}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `demo` to the `ptgen` app."""
    app.command("demo")(demo)
