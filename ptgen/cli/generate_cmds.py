"""`ptgen generate` and `ptgen rerank`: the personalized loop, from the command line.

Thin: each command builds an `AssessorConfig`, a `GeneratorConfig` and a `LoopConfig`
(defaults < `--config` YAML < flags), calls `PersonalizedGenerator`, and writes the run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer

from ptgen.cli.options import (
    AssessorModelOption,
    AssessorOption,
    ConfigOption,
    DebiasOption,
    DeviceOption,
    DislikedOption,
    DtypeOption,
    MaxNewTokensOption,
    MaxPixelsOption,
    StrategyOption,
    TrustRemoteCodeOption,
    assessor_config,
    config_file,
    console,
    out,
)
from ptgen.cli.user_cmds import StoreOption, StoreRun, UserOption
from preferthinker.errors import PTGenError

OutOption = typer.Option(None, "--out", help="Folder for this run (must be empty unless --force). "
                         "Default: a new numbered folder under --out-root.")
OutRootOption = typer.Option(Path("ptgen-runs"), "--out-root", help="Where numbered run folders go.")
ForceOption = typer.Option(False, "--force", help="Allow a non-empty --out (its earlier run files are replaced).")
ModeOption = typer.Option(None, "--mode", help="profile: predict the profile once and reuse it (default); "
                          "full: the authors' full prompt with all references in every comparison.")
NoCacheOption = typer.Option(None, "--no-cache", help="Predict the profile even when a cached one exists.")
CacheDirOption = typer.Option(None, "--cache-dir", help="Profile cache folder (default ~/.cache/ptgen/profiles).")


def loop_config(config_path: Any, **flags: Any):
    """A `LoopConfig` from defaults < the file's `loop:` section < the flags the user gave."""
    from preferthinker.config import load_config

    from generation.loop import LoopConfig

    return load_config(LoopConfig, config_path, flags)


def generator_config(config_path: Any, **flags: Any):
    """A `GeneratorConfig` from defaults < the file's `generator:` section < the flags
    (`model:` names the generator)."""
    from preferthinker.config import load_config

    from generation.generator import GeneratorConfig

    return load_config(GeneratorConfig, config_path, flags)


class StageProgress:
    """Rich progress bars, one per stage, fed by the loop's `StageEvent` callback."""

    LABELS = {"references": "references", "profile": "profile", "rewrite": "rewrite",
              "generate": "generate", "rerank": "rerank"}

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description:<10}"), BarColumn(bar_width=20), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[note]}"), console=console, transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> "StageProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def __call__(self, event: Any) -> None:
        task = self.tasks.get(event.stage)
        if task is None:
            task = self.progress.add_task(self.LABELS.get(event.stage, event.stage), total=event.total, note="")
            self.tasks[event.stage] = task
        # A short note keeps each bar on one line in an 80-column terminal.
        note = event.message if len(event.message) <= 36 else event.message[:35] + "…"
        self.progress.update(task, completed=event.done, total=event.total, note=note)


class RunStopped(PTGenError):
    """Ctrl-C during a run, after the partial result was written."""

    exit_code = 130


def _quiet_loading() -> None:
    """Hide the per-file loading bars of transformers and diffusers: the stage bars say enough."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def _run_and_write(action: Callable[[Any], Any], folder: Path, **write_options: Any) -> Any:
    """Run with progress bars; on Ctrl-C write the partial result, then let the interrupt through
    (`write_options` go to `write_run`)."""
    from generation.loop import RunInterrupted
    from generation.report import write_run

    try:
        with StageProgress() as progress:
            result = action(progress)
    except RunInterrupted as interrupted:
        write_run(interrupted.result, folder, **write_options)
        # A ptgen error, not the interrupt itself: typer would swallow a KeyboardInterrupt into a
        # return value that main() does not read; main() prints this line and exits 130.
        raise RunStopped(f"interrupted: partial run written to {folder}") from None
    write_run(result, folder, **write_options)
    return result


def _print_ranking(result: Any, folder: Path, top_k: Optional[int] = None,
                   user: Optional[str] = None) -> None:
    from rich.table import Table

    ranking = result.ranking
    table = Table(title="candidates, best first" if ranking and ranking.decided else "candidates")
    for column in ("rank", "candidate", "score", "wins", "file"):
        table.add_column(column)
    from generation.report import candidate_filename

    shown = result.ranked[: top_k or None]
    for position, candidate in enumerate(shown, start=1):
        i = candidate.index
        table.add_row(
            str(ranking.ranks[i] if ranking else position),
            f"#{i}" + (f" seed {candidate.seed}" if candidate.seed is not None else ""),
            f"{round(ranking.scores[i], 2) + 0.0:+.2f}" if ranking else "-",  # + 0.0: no "-0.00"
            f"{ranking.wins[i]:g}/{ranking.games[i]}" if ranking else "-",
            candidate.source or candidate_filename(candidate),
        )
    out.print(table)
    for issue in result.issues:
        console.print(f"[yellow]note[/yellow]: {issue}")
    out.print(f"report: {folder / 'report.html'}")
    if result.best is not None:
        from generation.report import feedback_commands

        ((_, like, dislike),) = feedback_commands(folder, [result.best.index], user)
        typer.echo(f"feedback on the best (all candidates' commands are in the report): {like}"
                   f"  |  {dislike}")


def generate(
    prompt: Optional[str] = typer.Argument(None, help="What to draw (or --prompts FILE)."),
    prompts_file: Optional[Path] = typer.Option(
        None, "--prompts", help="A batch: one prompt a line, or JSON lines with per-prompt seed, "
        "n, negative_prompt; needs --out (the batch folder)."),
    refs: Optional[Path] = typer.Option(None, "--refs", help="Folder (or image file) of images the user likes."),
    disliked: Optional[Path] = DislikedOption,
    n: Optional[int] = typer.Option(None, "-n", "--n", help="Candidates to generate (default 8)."),
    out_dir: Optional[Path] = OutOption,
    out_root: Path = OutRootOption,
    force: bool = ForceOption,
    assessor: Optional[str] = AssessorOption,
    assessor_model: Optional[str] = AssessorModelOption,
    generator: Optional[str] = typer.Option(None, "--generator", help="diffusers pipeline id or local path. "
                                            "Default: black-forest-labs/FLUX.1-schnell."),
    strategy: Optional[str] = StrategyOption,
    mode: Optional[str] = ModeOption,
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the first candidate; candidate i uses seed+i."),
    no_personalize: bool = typer.Option(False, "--no-personalize", help="Plain prompt, no profile, rewrite or ranking."),
    strength: Optional[int] = typer.Option(None, "--strength", help="Profile elements injected into the prompt (0-5)."),
    negative_prompt: Optional[str] = typer.Option(None, "--negative-prompt", help="Your own negative prompt."),
    rewriter: Optional[str] = typer.Option(None, "--rewriter", help="template (default) or llm."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Denoising steps (default: per model family)."),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Guidance scale (default: per model family)."),
    width: Optional[int] = typer.Option(None, "--width", help="Image width (default: per model family)."),
    height: Optional[int] = typer.Option(None, "--height", help="Image height (default: per model family)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per pipeline call (default 4)."),
    cpu_offload: Optional[bool] = typer.Option(None, "--cpu-offload", help="Offload generator sub-models to CPU between uses."),
    sequential: Optional[bool] = typer.Option(
        None, "--sequential", help="Keep only the running stage's model on the GPU (assessor or "
        "generator; the other waits in CPU memory): for GPUs too small for both."),
    quantization: Optional[str] = typer.Option(
        None, "--quantization",
        help="Assessor weights: none (default), 8bit or 4bit (bitsandbytes, CUDA only)."),
    config: Optional[Path] = ConfigOption,
    device: Optional[str] = DeviceOption,
    dtype: Optional[str] = DtypeOption,
    max_new_tokens: Optional[int] = MaxNewTokensOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    debias: Optional[bool] = DebiasOption,
    trust_remote_code: Optional[bool] = TrustRemoteCodeOption,
    no_cache: Optional[bool] = NoCacheOption,
    cache_dir: Optional[str] = CacheDirOption,
    user: Optional[str] = UserOption,
    store: Optional[Path] = StoreOption,
) -> None:
    """Generate N candidates personalized to the images in --refs (or a stored --user), rank
    them, and write a report.

    Example: ptgen generate "a castle" --refs ./liked/ --disliked ./disliked/ -n 8
    """
    from preferthinker.errors import InputError

    from ptgen.cli.batch import read_batch, run_batch_command

    batch = read_batch(prompt, prompts_file, out_dir)  # None for one prompt

    from generation.generator import DiffusersGenerator
    from generation.loop import PersonalizedGenerator
    from generation.report import prepare_run_dir

    config = config_file(config)  # read once for the three configs
    loop_cfg = loop_config(
        config, n=n, strategy=strategy, mode=mode, seed=seed, strength=strength, negative_prompt=negative_prompt,
        rewriter=rewriter, cache=False if no_cache else None, cache_dir=cache_dir,
        personalize=False if no_personalize else None, sequential=sequential,
    )
    store_run = None
    if loop_cfg.personalize and refs is None:
        if user is None and batch is None:
            from generation.store import UserStore

            user = UserStore(store).default()  # the default user, when one is set
        if user is None:
            raise InputError("--refs (a folder of images you like) or --user NAME is required, "
                             "unless --no-personalize")
        if batch is not None:
            raise InputError("--prompts batches take --refs, not --user")
        store_run = StoreRun.open(user, store)  # an unknown user fails before any model loads
    if batch is not None and device is None:  # one GPU per process under accelerate/torchrun
        from generation.shards import current_process, process_device

        device = process_device(current_process())
    gen_cfg = generator_config(config, model=generator, steps=steps, guidance=guidance, width=width, height=height,
                               batch_size=batch_size, device=device, dtype=dtype, cpu_offload=cpu_offload)
    cfg = references = None
    if loop_cfg.personalize:
        from preferthinker.references import References

        cfg = assessor_config(config, assessor=assessor, assessor_model=assessor_model, device=device, dtype=dtype,
                              max_new_tokens=max_new_tokens, max_pixels=max_pixels, debias=debias,
                              trust_remote_code=trust_remote_code, quantization=quantization)
        # Loaded once, before any folder or model: bad references fail fast, the cap is told here.
        if store_run is None:
            references = References.load(refs, disliked, max_pixels=cfg.max_pixels,
                                         require_liked=True)
    folder = prepare_run_dir(out_dir, out_root, force) if batch is None else out_dir
    _quiet_loading()
    assessor_obj = None
    if cfg is not None:
        from preferthinker.assessor import Assessor

        with console.status(f"loading the assessor {cfg.assessor}"):
            assessor_obj = Assessor.from_config(cfg)
    try:
        if assessor_obj is not None and loop_cfg.sequential:
            assessor_obj.release()  # never both on the GPU, not even while loading
        with console.status(f"loading the generator {gen_cfg.model}"):
            generator_obj = DiffusersGenerator(gen_cfg)
        if batch is not None:
            return run_batch_command(batch, refs, disliked, assessor_obj, generator_obj, loop_cfg,
                                     out_dir)
        loop = PersonalizedGenerator(assessor_obj, generator_obj, loop_cfg)
        profile, extra = None, ""
        if store_run is not None:
            aggregated = store_run.predict(assessor_obj, loop.cache)
            references, profile = aggregated.references, aggregated.prediction
            extra = store_run.changes_html()
        result = _run_and_write(
            lambda progress: loop.run(prompt, references, callback=progress, profile=profile),
            folder, extra_html=extra, user=user)
        if store_run is not None:
            store_run.finish(folder, prompt, assessor_obj.name)
    finally:
        if assessor_obj is not None:
            assessor_obj.close()
    _print_ranking(result, folder, user=user)


def rerank(
    images: list[Path] = typer.Argument(..., help="Images to rank (files or folders)."),
    refs: Optional[Path] = typer.Option(None, "--refs", help="Folder (or image file) of images "
                                        "the user likes (or --user NAME)."),
    disliked: Optional[Path] = DislikedOption,
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Show only the K best."),
    out_dir: Optional[Path] = OutOption,
    out_root: Path = OutRootOption,
    force: bool = ForceOption,
    assessor: Optional[str] = AssessorOption,
    assessor_model: Optional[str] = AssessorModelOption,
    strategy: Optional[str] = StrategyOption,
    mode: Optional[str] = ModeOption,
    config: Optional[Path] = ConfigOption,
    device: Optional[str] = DeviceOption,
    dtype: Optional[str] = DtypeOption,
    max_new_tokens: Optional[int] = MaxNewTokensOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    debias: Optional[bool] = DebiasOption,
    trust_remote_code: Optional[bool] = TrustRemoteCodeOption,
    no_cache: Optional[bool] = NoCacheOption,
    cache_dir: Optional[str] = CacheDirOption,
    user: Optional[str] = UserOption,
    store: Optional[Path] = StoreOption,
) -> None:
    """Rank images you already have for the user behind --refs (or a stored --user), and write
    a report.

    Example: ptgen rerank shots/*.png --refs ./liked/ --top-k 3
    """
    from preferthinker.assessor import Assessor
    from preferthinker.errors import InputError
    from preferthinker.images import IMAGE_EXTENSIONS, image_paths, load_image
    from preferthinker.references import References

    from generation.loop import PersonalizedGenerator
    from generation.report import prepare_run_dir

    if top_k is not None and top_k < 1:
        raise InputError(f"--top-k must be >= 1, got {top_k}")
    config = config_file(config)  # read once for both configs
    loop_cfg = loop_config(config, strategy=strategy, mode=mode, cache=False if no_cache else None, cache_dir=cache_dir)
    cfg = assessor_config(config, assessor=assessor, assessor_model=assessor_model, device=device, dtype=dtype,
                          max_new_tokens=max_new_tokens, max_pixels=max_pixels, debias=debias,
                              trust_remote_code=trust_remote_code)
    # Folders may hold other files; files named one by one must be images (load_image says why not).
    paths = [path for source in images for path in image_paths(source)
             if not Path(source).is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS]
    if not paths:
        raise InputError("no images to rank; give PNG, JPEG or WebP files or folders of them")
    loaded = [load_image(path, max_pixels=cfg.max_pixels) for path in paths]
    store_run = references = profile = None
    if refs is None:
        from generation.store import UserStore

        user = user or UserStore(store).default()
        if user is None:
            raise InputError("--refs (a folder of images you like) or --user NAME is required")
        store_run = StoreRun.open(user, store)
    else:
        references = References.load(refs, disliked, max_pixels=cfg.max_pixels, require_liked=True)
    folder = prepare_run_dir(out_dir, out_root, force)
    _quiet_loading()
    with console.status(f"loading the assessor {cfg.assessor}"):
        assessor_obj = Assessor.from_config(cfg)
    try:
        loop = PersonalizedGenerator(assessor_obj, None, loop_cfg)
        extra = ""
        if store_run is not None:
            aggregated = store_run.predict(assessor_obj, loop.cache)
            references, profile = aggregated.references, aggregated.prediction
            extra = store_run.changes_html()
        result = _run_and_write(
            lambda progress: loop.rerank(loaded, references, callback=progress,
                                         sources=[str(p) for p in paths], profile=profile),
            folder, extra_html=extra, user=user if store_run else None,
        )
        if store_run is not None:
            store_run.finish(folder, "", assessor_obj.name)
    finally:
        assessor_obj.close()
    _print_ranking(result, folder, top_k, user=user if store_run else None)


def register(app: typer.Typer) -> None:
    """Add `generate` and `rerank` to the `ptgen` app."""
    app.command("generate")(generate)
    app.command("rerank")(rerank)
