"""`ptgen generate --prompts FILE`: the batch side of the generate command (kept apart from
generate_cmds.py so that the single-run command stays short). The work is
`generation.batch.run_batch`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ptgen.cli.options import console, out


def read_batch(
    prompt: Optional[str], prompts_file: Optional[Path], out_dir: Optional[Path]
) -> Optional[list]:
    """The batch's prompts for `--prompts FILE` (None for a single PROMPT); checks the arguments
    before any model loads, so a bad line fails fast."""
    from preferthinker.errors import InputError

    if prompts_file is None:
        if prompt is None:
            raise InputError("give a PROMPT, or --prompts FILE with one prompt a line")
        return None
    if prompt is not None:
        raise InputError("give either a PROMPT or --prompts FILE, not both")
    if out_dir is None:
        raise InputError(
            "--prompts needs --out DIR: the batch folder (run the same command again to resume it)"
        )
    from generation.batch import load_batch_prompts

    return load_batch_prompts(prompts_file)


def run_batch_command(
    prompts: list,
    refs: Any,
    disliked: Any,
    assessor: Any,
    generator: Any,
    loop_cfg: Any,
    out_dir: Path,
) -> None:
    """Run the batch with a progress bar (the main process's) and print where the summary is."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from generation.batch import SUMMARY_HTML, run_batch
    from generation.shards import current_process

    process = current_process()
    label = "prompts" if process.world_size == 1 else f"process {process.rank}/{process.world_size}"
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[note]}"),
        console=console,
        disable=not process.is_main,
    ) as bar:
        task = bar.add_task("prompts", total=None, note="")
        summary = run_batch(
            prompts,
            refs,
            disliked,
            assessor,
            generator,
            loop_cfg,
            out_dir,
            process=process,
            progress=lambda done, total, note: bar.update(
                task, completed=done, total=total, note=note[:36]
            ),
        )
    if not summary["merged"]:
        console.print(
            f"process {process.rank}/{process.world_size}: {summary['prompts']} prompts done "
            f"({summary['resumed']} resumed); the main process writes the summary"
        )
        return
    console.print(
        f"{summary['complete']} of {summary['prompts']} prompts complete"
        + (
            f", {summary['failed']} failed (run the same command again to retry)"
            if summary["failed"]
            else ""
        )
        + (f"; {summary['resumed']} were already done" if summary["resumed"] else "")
    )
    for row in summary["runs"]:
        if row["status"] == "failed":
            console.print(f"[yellow]failed[/yellow] line {row['line']}: {row['error']}")
    out.print(f"summary: {Path(out_dir) / SUMMARY_HTML}")
