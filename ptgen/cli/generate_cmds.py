"""`ptgen generate` and `ptgen rerank`: the personalized loop, from the command line.

Thin: each command builds an `AssessorConfig`, a `GeneratorConfig` and a `LoopConfig`
(defaults < `--config` YAML < flags; with `--resume`, < the options the run recorded < flags),
checks what is cheap to check before importing anything heavy (`preflight.py`), calls
`PersonalizedGenerator` with the run folder's journal, and writes the run folder, complete or
partial (on an error, Ctrl-C or SIGTERM).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer

from generation.generator import families_help
from preferthinker.errors import InputError, PTGenError
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
    TimeoutOption,
    TrustRemoteCodeOption,
    VerdictOption,
    assessor_config,
    config_file,
    console,
    out,
)
from ptgen.cli.user_cmds import StoreOption, StoreRun, UserOption

OutOption = typer.Option(
    None,
    "--out",
    help="Folder for this run (must be empty unless --force). "
    "Default: a new numbered folder under --out-root.",
)
OutRootOption = typer.Option(
    Path("ptgen-runs"), "--out-root", help="Where numbered run folders go."
)
ForceOption = typer.Option(
    False,
    "--force",
    help="Allow a non-empty --out: the new run replaces it when it finishes "
    "(the old folder is kept, renamed to OUT.ptgen-old-TIME; nothing is deleted).",
)
ResumeOption = typer.Option(
    None,
    "--resume",
    help="Continue the partial run in this folder: what its journal holds "
    "is not computed again; other flags must match the run's settings.",
)
ModeOption = typer.Option(
    None,
    "--mode",
    help="profile: predict the profile once and reuse it (default); "
    "full: the authors' full prompt with all references in every comparison.",
)
NoCacheOption = typer.Option(
    None, "--no-cache", help="Predict the profile even when a cached one exists."
)
CacheDirOption = typer.Option(
    None, "--cache-dir", help="Profile cache folder (default ~/.cache/ptgen/profiles)."
)
PrefilterOption = typer.Option(
    None,
    "--prefilter",
    help="similarity:MODEL: embed all candidates and let the assessor rank only "
    "the --keep most like the references (MODEL: stats, efficientnet-lite0, dreamsim, a CLIP id).",
)
KeepOption = typer.Option(
    None, "--keep", help="Candidates the pre-filter keeps for the tournament (default 8)."
)
ExplainOption = typer.Option(
    None,
    "--explain",
    help="With --verdict compact: judge the winner's last match again with a "
    "full verdict, for its rationale (one more call).",
)


def loop_config(config_path: Any, **flags: Any):
    """A `LoopConfig` from defaults < the file's `loop:` section < the flags the user gave."""
    from generation.loop import LoopConfig
    from preferthinker.config import load_config

    return load_config(LoopConfig, config_path, flags)


def generator_config(config_path: Any, **flags: Any):
    """A `GeneratorConfig` from defaults < the file's `generator:` section < the flags
    (`model:` names the generator)."""
    from generation.generator import GeneratorConfig
    from preferthinker.config import load_config

    return load_config(GeneratorConfig, config_path, flags)


class StageProgress:
    """Rich progress bars, one per stage, fed by the loop's `StageEvent` callback."""

    LABELS = {
        "references": "references",
        "profile": "profile",
        "rewrite": "rewrite",
        "generate": "generate",
        "rerank": "rerank",
    }

    def __init__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[note]}"),
            console=console,
            transient=False,
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
            task = self.progress.add_task(
                self.LABELS.get(event.stage, event.stage), total=event.total, note=""
            )
            self.tasks[event.stage] = task
        # A short note keeps each bar on one line in an 80-column terminal.
        note = event.message if len(event.message) <= 36 else event.message[:35] + "…"
        self.progress.update(task, completed=event.done, total=event.total, note=note)


class RunStopped(PTGenError):
    """Ctrl-C or SIGTERM during a run, after the partial result was written (exit 130 or 143)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


def _quiet_loading(transformers: bool, diffusers: bool) -> None:
    """Hide the per-file loading bars of the libraries this command uses (and import no other)."""
    if diffusers:
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()
    if transformers:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def _given(**options: Any) -> dict[str, Any]:
    """The options a user gave (not None), paths made absolute, as JSON values for the journal."""
    given: dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, Path):
            value = str(value.expanduser().resolve())
        elif isinstance(value, list):
            value = [
                str(Path(v).expanduser().resolve()) if isinstance(v, Path) else v for v in value
            ]
        given[name] = value
    return given


def _with_resumed(
    resume: Optional[Path], given: dict[str, Any], command: str = "generate"
) -> dict[str, Any]:
    """The options of the run being resumed, overridden by the ones given now.

    Raises:
        InputError: the run was made by the other command (rerank runs record `images`).
    """
    if resume is None:
        return given
    from generation.journal import run_options

    recorded = run_options(resume)
    made_by = "rerank" if "images" in recorded else "generate"
    if made_by != command:
        raise InputError(
            f"--resume {resume}: it is a `ptgen {made_by}` run; continue it with "
            f"`ptgen {made_by} --resume {resume}`"
        )
    return {**recorded, **given}


def _local_or_id(spec: Optional[str]) -> Optional[str]:
    """A local path made absolute (so --resume finds it from anywhere); a hub id as given."""
    if spec is None or not Path(spec).expanduser().exists():
        return spec
    return str(Path(spec).expanduser().resolve())


def _style_config(adapter: Optional[str], scale: Optional[float], loop_cfg: Any) -> Any:
    """The `StyleAdapterConfig` of --style-adapter/--style-scale (None without an adapter)."""
    if adapter is None:
        if scale is not None or loop_cfg.compare_adapter:
            raise InputError("--style-scale and --compare-adapter need --style-adapter")
        return None
    if not loop_cfg.personalize:
        raise InputError("--style-adapter conditions on the --refs images; drop --no-personalize")
    from generation.style import StyleAdapterConfig, default_embed_cache_dir

    try:
        return StyleAdapterConfig(
            adapter,
            scale=scale,
            cache=loop_cfg.cache,
            cache_dir=str(default_embed_cache_dir(loop_cfg.cache_dir)),
        )
    except ValueError as error:
        raise InputError(str(error)) from None


def _check_explain(loop_cfg: Any, cfg: Any) -> None:
    """`--explain` re-judges one match with a full verdict: it means something only when the
    tournament's verdicts were compact (a full verdict already carries its rationale)."""
    if loop_cfg.explain and (cfg is None or cfg.verdict != "compact"):
        raise InputError(
            "--explain needs --verdict compact (full verdicts already explain every match)"
        )


@contextmanager
def _dropped_if_left_empty(folder: Optional[Path]) -> Iterator[None]:
    """On a failure inside (a model that does not load), remove `folder`, the run folder this
    command has just created, if nothing was written to it: no empty run folders left behind."""
    try:
        yield
    except BaseException:
        if folder is not None and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


def _open_folder(
    resume: Optional[Path], out_dir: Optional[Path], out_root: Path, force: bool
) -> Path:
    """The run folder: the one being resumed, or a new one (a staging folder under --force)."""
    from ptgen.cli.preflight import check_writable

    if resume is not None:
        if out_dir is not None:
            raise InputError("--resume continues the run in its own folder; leave out --out")
        if force:  # --force replaces a folder; a resumed run keeps what it has
            raise InputError("--resume keeps the run's results; leave out --force")
        folder = resume.expanduser()
    else:
        from generation.report import prepare_run_dir

        folder = prepare_run_dir(out_dir, out_root, force)
    check_writable(folder)
    return folder


def _run_and_write(
    action: Callable[[Any, Any], Any], folder: Path, command: str, **write_options: Any
) -> tuple[Any, Path]:
    """Run with a journal, progress bars and signal handling; write the result, complete or not
    (`write_options` go to `write_run`).

    A failed or interrupted run still writes everything that finished (status "partial") and
    says how to resume it. Returns the result and the run's final folder.
    """
    from generation.journal import Journal
    from generation.loop import RunInterrupted
    from generation.report import finish_run_dir, write_run
    from ptgen.cli.signals import stop_on_signals

    journal = Journal.open(folder)
    resume_hint = f"continue it with `ptgen {command} --resume {folder}`"
    try:
        with stop_on_signals():
            try:
                with StageProgress() as progress:
                    result = action(progress, journal)
            except RunInterrupted as interrupted:
                write_run(interrupted.result, folder, **write_options)
                # A ptgen error, not the interrupt itself: typer would swallow a KeyboardInterrupt
                # into a return value that main() does not read; main() prints this line.
                raise RunStopped(
                    f"interrupted: partial run written to {folder}; {resume_hint}",
                    interrupted.exit_code,
                ) from None
            except Exception as error:
                partial = getattr(error, "partial_result", None)
                if partial is not None:
                    write_run(partial, folder, **write_options)
                    console.print(
                        f"partial run written to {folder}; {resume_hint}",
                        highlight=False,
                        soft_wrap=True,
                    )
                raise
            write_run(result, folder, **write_options)
    finally:
        journal.close()
    final = finish_run_dir(folder)
    if final != folder:
        console.print(
            f"the earlier contents of {final} were kept as {final.name}.ptgen-old-*",
            highlight=False,
            soft_wrap=True,
        )
    return result, final


def _print_ranking(
    result: Any, folder: Path, top_k: Optional[int] = None, user: Optional[str] = None
) -> None:
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
        typer.echo(
            f"feedback on the best (all candidates' commands are in the report): {like}"
            f"  |  {dislike}"
        )


def generate(
    ctx: typer.Context,
    prompt: Optional[str] = typer.Argument(
        None, help="What to draw (or --prompts FILE).", show_default=False
    ),
    prompts_file: Optional[Path] = typer.Option(
        None,
        "--prompts",
        help="A batch: one prompt a line, or JSON lines with per-prompt seed, "
        "n, negative_prompt; needs --out (the batch folder).",
    ),
    refs: Optional[Path] = typer.Option(
        None, "--refs", help="Folder (or image file) of images the user likes."
    ),
    disliked: Optional[Path] = DislikedOption,
    n: Optional[int] = typer.Option(None, "-n", "--n", help="Candidates to generate (default 8)."),
    out_dir: Optional[Path] = OutOption,
    out_root: Path = OutRootOption,
    force: bool = ForceOption,
    resume: Optional[Path] = ResumeOption,
    assessor: Optional[str] = AssessorOption,
    assessor_model: Optional[str] = AssessorModelOption,
    generator: Optional[str] = typer.Option(
        None,
        "--generator",
        help="diffusers pipeline id or local path. "
        "Default: black-forest-labs/FLUX.1-schnell. Families "
        "recognised from the id and pipeline, with their "
        "default steps and guidance (model cards: "
        "docs/cli.md): " + families_help() + ".",
    ),
    strategy: Optional[str] = StrategyOption,
    mode: Optional[str] = ModeOption,
    seed: Optional[int] = typer.Option(
        None, "--seed", help="Seed of the first candidate; candidate i uses seed+i."
    ),
    no_personalize: bool = typer.Option(
        False, "--no-personalize", help="Plain prompt, no profile, rewrite or ranking."
    ),
    strength: Optional[int] = typer.Option(
        None, "--strength", help="Profile elements injected into the prompt (0-5)."
    ),
    negative_prompt: Optional[str] = typer.Option(
        None, "--negative-prompt", help="Your own negative prompt."
    ),
    rewriter: Optional[str] = typer.Option(None, "--rewriter", help="template (default) or llm."),
    steps: Optional[int] = typer.Option(
        None, "--steps", help="Denoising steps (default: per model family)."
    ),
    guidance: Optional[float] = typer.Option(
        None, "--guidance", help="Guidance scale (default: per model family)."
    ),
    width: Optional[int] = typer.Option(
        None, "--width", help="Image width (default: per model family)."
    ),
    height: Optional[int] = typer.Option(
        None, "--height", help="Image height (default: per model family)."
    ),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", help="Images per pipeline call (default 4)."
    ),
    cpu_offload: Optional[bool] = typer.Option(
        None, "--cpu-offload", help="Offload generator sub-models to CPU between uses."
    ),
    sequential: Optional[bool] = typer.Option(
        None,
        "--sequential",
        help="Keep only the running stage's model on the GPU (assessor or "
        "generator; the other waits in CPU memory): for GPUs too small for both.",
    ),
    quantization: Optional[str] = typer.Option(
        None,
        "--quantization",
        help="Assessor weights: none (default), 8bit or 4bit (bitsandbytes, CUDA only).",
    ),
    config: Optional[Path] = ConfigOption,
    device: Optional[str] = DeviceOption,
    dtype: Optional[str] = DtypeOption,
    max_new_tokens: Optional[int] = MaxNewTokensOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    debias: Optional[bool] = DebiasOption,
    verdict: Optional[str] = VerdictOption,
    trust_remote_code: Optional[bool] = TrustRemoteCodeOption,
    no_cache: Optional[bool] = NoCacheOption,
    cache_dir: Optional[str] = CacheDirOption,
    timeout: Optional[float] = TimeoutOption,
    rewrite: Optional[bool] = typer.Option(
        None, "--rewrite/--no-rewrite", help="Put the profile's terms into the prompt (default on)."
    ),
    style_adapter: Optional[str] = typer.Option(
        None,
        "--style-adapter",
        help="IP-Adapter conditioned on the liked images (the disliked: "
        "negative image embedding): 'auto' (the family's default), a weight file or folder, "
        "or REPO/SUBFOLDER/FILE.",
    ),
    style_scale: Optional[float] = typer.Option(
        None, "--style-scale", help="Style adapter strength (default: per family)."
    ),
    compare_adapter: bool = typer.Option(
        False,
        "--compare-adapter",
        help="Also draw the first seed without the style adapter; the report shows the pair.",
    ),
    prefilter: Optional[str] = PrefilterOption,
    keep: Optional[int] = KeepOption,
    explain: Optional[bool] = ExplainOption,
    user: Optional[str] = UserOption,
    store: Optional[Path] = StoreOption,
) -> None:
    """Generate N candidates personalized to the images in --refs (or a stored --user), rank
    them, and write a report.

    Example: ptgen generate "a castle" --refs ./liked/ --disliked ./disliked/ -n 8
    """
    from ptgen.cli.batch import read_batch, run_batch_command
    from ptgen.cli.preflight import check_assessor, check_model, check_references

    if prompt is None and resume is None and prompts_file is None:
        ctx.fail(
            "Missing argument 'PROMPT' (what to draw), or give --prompts FILE or --resume RUN."
        )
    batch = None  # the prompts of a --prompts batch
    if prompts_file is not None:
        if resume is not None:
            raise InputError(
                "--resume continues one run; a --prompts batch resumes when the same "
                "command runs again"
            )
        batch = read_batch(prompt, prompts_file, out_dir)
    options = _with_resumed(
        resume,
        _given(
            prompt=prompt,
            refs=refs,
            disliked=disliked,
            n=n,
            assessor=assessor,
            assessor_model=assessor_model,
            generator=generator,
            strategy=strategy,
            mode=mode,
            seed=seed,
            personalize=False if no_personalize else None,
            strength=strength,
            negative_prompt=negative_prompt,
            rewriter=rewriter,
            steps=steps,
            guidance=guidance,
            width=width,
            height=height,
            batch_size=batch_size,
            cpu_offload=cpu_offload,
            sequential=sequential,
            quantization=quantization,
            config=config,
            device=device,
            dtype=dtype,
            max_new_tokens=max_new_tokens,
            max_pixels=max_pixels,
            debias=debias,
            trust_remote_code=trust_remote_code,
            cache=False if no_cache else None,
            cache_dir=cache_dir,
            timeout=timeout,
            rewrite=rewrite,
            style_adapter=_local_or_id(style_adapter),
            style_scale=style_scale,
            compare_adapter=True if compare_adapter else None,
            prefilter=prefilter,
            keep=keep,
            explain=explain,
            verdict=verdict,
            user=user,
            store=store,
        ),
    )
    o = options.get
    config_path = config_file(Path(o("config")) if o("config") else None)  # read once
    loop_cfg = loop_config(
        config_path,
        n=o("n"),
        strategy=o("strategy"),
        mode=o("mode"),
        seed=o("seed"),
        strength=o("strength"),
        negative_prompt=o("negative_prompt"),
        rewriter=o("rewriter"),
        cache=o("cache"),
        cache_dir=o("cache_dir"),
        personalize=o("personalize"),
        sequential=o("sequential"),
        rewrite=o("rewrite"),
        compare_adapter=o("compare_adapter"),
        prefilter=o("prefilter"),
        keep=o("keep"),
        explain=o("explain"),
    )
    style_cfg = _style_config(o("style_adapter"), o("style_scale"), loop_cfg)
    refs_path = Path(o("refs")) if o("refs") else None
    disliked_path = Path(o("disliked")) if o("disliked") else None
    user, store = o("user"), Path(o("store")) if o("store") else None
    store_run = None
    if loop_cfg.personalize and refs_path is None:
        if user is None and batch is None:
            from generation.store import UserStore

            user = UserStore(store).default()  # the default user, when one is set
        if user is None:
            raise InputError(
                "--refs (a folder of images you like) or --user NAME is required, "
                "unless --no-personalize"
            )
        if batch is not None:
            raise InputError("--prompts batches take --refs, not --user")
        if style_cfg is not None:
            raise InputError("--style-adapter conditions on --refs images; it does not take --user")
        store_run = StoreRun.open(user, store)  # an unknown user fails before any model loads
    device = o("device")
    if batch is not None and device is None:  # one GPU per process under accelerate/torchrun
        from generation.shards import current_process, process_device

        device = process_device(current_process())
    gen_cfg = generator_config(
        config_path,
        model=o("generator"),
        steps=o("steps"),
        guidance=o("guidance"),
        width=o("width"),
        height=o("height"),
        batch_size=o("batch_size"),
        device=device,
        dtype=o("dtype"),
        cpu_offload=o("cpu_offload"),
    )
    cfg = None
    if loop_cfg.personalize:
        cfg = assessor_config(
            config_path,
            assessor=o("assessor"),
            assessor_model=o("assessor_model"),
            device=o("device"),
            dtype=o("dtype"),
            max_new_tokens=o("max_new_tokens"),
            max_pixels=o("max_pixels"),
            debias=o("debias"),
            trust_remote_code=o("trust_remote_code"),
            quantization=o("quantization"),
            timeout=o("timeout"),
            verdict=o("verdict"),
        )
    _check_explain(loop_cfg, cfg)
    # Everything cheap first: a typo must not cost the imports and model loads below.
    check_references(refs_path if loop_cfg.personalize else None, "--refs")
    check_references(disliked_path if loop_cfg.personalize else None, "--disliked")
    if cfg is not None:
        check_assessor(cfg.assessor)
    check_model(gen_cfg.model, "generator", "--generator", "model_index.json")
    references = None
    if cfg is not None and batch is None and store_run is None:
        from preferthinker.references import References

        # Loaded once, before any folder or model; the cap is told here.
        references = References.load(
            refs_path, disliked_path, max_pixels=cfg.max_pixels, require_liked=True
        )
    folder = _open_folder(resume, out_dir, out_root, force) if batch is None else out_dir

    from generation.generator import DiffusersGenerator
    from generation.loop import PersonalizedGenerator
    from preferthinker.engines import backend_for

    in_process = cfg is not None and backend_for(cfg.assessor) == "transformers"
    _quiet_loading(transformers=in_process, diffusers=True)
    assessor_obj = None
    fresh = folder if batch is None and resume is None else None
    if cfg is not None:
        from preferthinker.assessor import Assessor

        with _dropped_if_left_empty(fresh), console.status(f"loading the assessor {cfg.assessor}"):
            assessor_obj = Assessor.from_config(cfg)
    try:
        if assessor_obj is not None and loop_cfg.sequential:
            assessor_obj.release()  # never both on the GPU, not even while loading
        with (
            _dropped_if_left_empty(fresh),
            console.status(f"loading the generator {gen_cfg.model}"),
        ):
            generator_obj = DiffusersGenerator(gen_cfg, style=style_cfg)
        if batch is not None:
            return run_batch_command(
                batch, refs_path, disliked_path, assessor_obj, generator_obj, loop_cfg, out_dir
            )
        loop = PersonalizedGenerator(assessor_obj, generator_obj, loop_cfg)
        profile, extra = None, ""
        if store_run is not None:
            aggregated = store_run.predict(assessor_obj, loop.cache)
            references, profile = aggregated.references, aggregated.prediction
            extra = store_run.changes_html()
        result, folder = _run_and_write(
            lambda progress, journal: loop.run(
                o("prompt"),
                references,
                callback=progress,
                journal=journal,
                options=options,
                profile=profile,
            ),
            folder,
            "generate",
            extra_html=extra,
            user=user,
        )
        if store_run is not None:
            store_run.finish(folder, o("prompt"), assessor_obj.name)
    finally:
        if assessor_obj is not None:
            assessor_obj.close()
    _print_ranking(result, folder, user=user)


def rerank(
    images: Optional[list[Path]] = typer.Argument(
        None, help="Images to rank (files or folders).", show_default=False
    ),
    refs: Optional[Path] = typer.Option(
        None, "--refs", help="Folder (or image file) of images the user likes."
    ),
    disliked: Optional[Path] = DislikedOption,
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Show only the K best."),
    out_dir: Optional[Path] = OutOption,
    out_root: Path = OutRootOption,
    force: bool = ForceOption,
    resume: Optional[Path] = ResumeOption,
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
    verdict: Optional[str] = VerdictOption,
    trust_remote_code: Optional[bool] = TrustRemoteCodeOption,
    no_cache: Optional[bool] = NoCacheOption,
    cache_dir: Optional[str] = CacheDirOption,
    timeout: Optional[float] = TimeoutOption,
    prefilter: Optional[str] = PrefilterOption,
    keep: Optional[int] = KeepOption,
    explain: Optional[bool] = ExplainOption,
    copy: bool = typer.Option(
        False,
        "--copy",
        help="Copy the images into the run folder as PNG (default: referenced by path and sha256).",
    ),
    user: Optional[str] = UserOption,
    store: Optional[Path] = StoreOption,
) -> None:
    """Rank images you already have for the user behind --refs (or a stored --user), and write
    a report.

    Example: ptgen rerank shots/*.png --refs ./liked/ --top-k 3
    """
    from preferthinker.engines import backend_for
    from preferthinker.images import IMAGE_EXTENSIONS, image_paths, load_image
    from preferthinker.references import References
    from ptgen.cli.preflight import check_assessor, check_references

    if top_k is not None and top_k < 1:
        raise InputError(f"--top-k must be >= 1, got {top_k}")
    # Folders may hold other files; files named one by one must be images (load_image says why not).
    paths = [
        path
        for source in images or []
        for path in image_paths(source)
        if not Path(source).is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS
    ]
    options = _with_resumed(
        resume,
        _given(
            images=paths or None,
            refs=refs,
            disliked=disliked,
            assessor=assessor,
            assessor_model=assessor_model,
            strategy=strategy,
            mode=mode,
            config=config,
            device=device,
            dtype=dtype,
            max_new_tokens=max_new_tokens,
            max_pixels=max_pixels,
            debias=debias,
            trust_remote_code=trust_remote_code,
            cache=False if no_cache else None,
            cache_dir=cache_dir,
            timeout=timeout,
            prefilter=prefilter,
            keep=keep,
            explain=explain,
            verdict=verdict,
            copy=True if copy else None,
            user=user,
            store=store,
        ),
        command="rerank",
    )
    o = options.get
    paths = [Path(path) for path in o("images") or []]
    if not paths:
        raise InputError("no images to rank; give PNG, JPEG or WebP files or folders of them")
    user, store = o("user"), Path(o("store")) if o("store") else None
    store_run = None
    if not o("refs"):
        from generation.store import UserStore

        user = user or UserStore(store).default()
        if user is None:
            raise InputError("--refs (a folder of images you like) or --user NAME is required")
        store_run = StoreRun.open(user, store)  # an unknown user fails before any model loads
    refs_path = Path(o("refs")) if o("refs") else None
    disliked_path = Path(o("disliked")) if o("disliked") else None
    config_path = config_file(Path(o("config")) if o("config") else None)  # read once
    loop_cfg = loop_config(
        config_path,
        strategy=o("strategy"),
        mode=o("mode"),
        cache=o("cache"),
        cache_dir=o("cache_dir"),
        prefilter=o("prefilter"),
        keep=o("keep"),
        explain=o("explain"),
    )
    cfg = assessor_config(
        config_path,
        assessor=o("assessor"),
        assessor_model=o("assessor_model"),
        device=o("device"),
        dtype=o("dtype"),
        max_new_tokens=o("max_new_tokens"),
        max_pixels=o("max_pixels"),
        debias=o("debias"),
        trust_remote_code=o("trust_remote_code"),
        timeout=o("timeout"),
        verdict=o("verdict"),
    )
    _check_explain(loop_cfg, cfg)
    check_references(refs_path, "--refs")
    check_references(disliked_path, "--disliked")
    check_assessor(cfg.assessor)
    loaded = [load_image(path, max_pixels=cfg.max_pixels) for path in paths]
    references = profile = None
    if store_run is None:
        references = References.load(
            refs_path, disliked_path, max_pixels=cfg.max_pixels, require_liked=True
        )
    folder = _open_folder(resume, out_dir, out_root, force)

    from generation.loop import PersonalizedGenerator
    from preferthinker.assessor import Assessor

    _quiet_loading(transformers=backend_for(cfg.assessor) == "transformers", diffusers=False)
    fresh = folder if resume is None else None
    with _dropped_if_left_empty(fresh), console.status(f"loading the assessor {cfg.assessor}"):
        assessor_obj = Assessor.from_config(cfg)
    try:
        loop = PersonalizedGenerator(assessor_obj, None, loop_cfg)
        extra = ""
        if store_run is not None:
            aggregated = store_run.predict(assessor_obj, loop.cache)
            references, profile = aggregated.references, aggregated.prediction
            extra = store_run.changes_html()
        result, folder = _run_and_write(
            lambda progress, journal: loop.rerank(
                loaded,
                references,
                callback=progress,
                sources=[str(p) for p in paths],
                journal=journal,
                options=options,
                profile=profile,
            ),
            folder,
            "rerank",
            copy_sources=bool(o("copy")),
            extra_html=extra,
            user=user if store_run else None,
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
