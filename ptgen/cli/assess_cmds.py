"""`ptgen profile`, `ptgen assess` and `ptgen make-tiny`: the assessor on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

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
    RefsOption,
    TimeoutOption,
    TrustRemoteCodeOption,
    assessor_config,
    console,
    out,
)


def profile(
    refs: Path = RefsOption,
    disliked: Optional[Path] = DislikedOption,
    assessor: Optional[str] = AssessorOption,
    assessor_model: Optional[str] = AssessorModelOption,
    config: Optional[Path] = ConfigOption,
    device: Optional[str] = DeviceOption,
    dtype: Optional[str] = DtypeOption,
    max_new_tokens: Optional[int] = MaxNewTokensOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    trust_remote_code: Optional[bool] = TrustRemoteCodeOption,
    timeout: Optional[float] = TimeoutOption,
    as_json: bool = typer.Option(False, "--json", help="Print the prediction as JSON."),
) -> None:
    """Predict the visual preference profile of the images in --refs (and --disliked)."""
    from preferthinker.assessor import Assessor

    cfg = assessor_config(
        config,
        assessor=assessor,
        assessor_model=assessor_model,
        device=device,
        dtype=dtype,
        max_new_tokens=max_new_tokens,
        max_pixels=max_pixels,
        trust_remote_code=trust_remote_code,
        timeout=timeout,
    )
    references = _references(refs, disliked, cfg.max_pixels)
    with console.status(f"predicting the profile with {cfg.assessor}"):
        with Assessor.from_config(cfg) as model:
            prediction = model.predict_profile(references)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "assessor": cfg.assessor,
                    **prediction.to_dict(),
                    "references": references.to_dict(),
                },
                indent=2,
            )
        )
        return
    _print_profile(prediction)


def assess(
    image_a: Path = typer.Argument(..., help="Candidate image A.", exists=False),
    image_b: Path = typer.Argument(..., help="Candidate image B.", exists=False),
    refs: Path = RefsOption,
    disliked: Optional[Path] = DislikedOption,
    assessor: Optional[str] = AssessorOption,
    assessor_model: Optional[str] = AssessorModelOption,
    config: Optional[Path] = ConfigOption,
    device: Optional[str] = DeviceOption,
    dtype: Optional[str] = DtypeOption,
    max_new_tokens: Optional[int] = MaxNewTokensOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    debias: Optional[bool] = DebiasOption,
    trust_remote_code: Optional[bool] = TrustRemoteCodeOption,
    timeout: Optional[float] = TimeoutOption,
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Judge which of two images the user behind --refs prefers, element by element."""
    from preferthinker.assessor import Assessor
    from preferthinker.images import load_image

    cfg = assessor_config(
        config,
        assessor=assessor,
        assessor_model=assessor_model,
        device=device,
        dtype=dtype,
        max_new_tokens=max_new_tokens,
        max_pixels=max_pixels,
        debias=debias,
        trust_remote_code=trust_remote_code,
        timeout=timeout,
    )
    a = load_image(image_a, max_pixels=cfg.max_pixels)
    b = load_image(image_b, max_pixels=cfg.max_pixels)
    references = _references(refs, disliked, cfg.max_pixels)
    with console.status(f"assessing with {cfg.assessor}"):
        with Assessor.from_config(cfg) as model:
            comparison = model.compare(a, b, liked=references)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "assessor": cfg.assessor,
                    "image_a": str(image_a),
                    "image_b": str(image_b),
                    **comparison.to_dict(),
                    "references": references.to_dict(),
                },
                indent=2,
            )
        )
        return
    _print_comparison(comparison, str(image_a), str(image_b))


def make_tiny(
    directory: Path = typer.Argument(
        ..., help="Folder to write DIR/assessor and DIR/generator into."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing tiny models in DIR."),
) -> None:
    """Write a tiny random-weight assessor and diffusion pipeline, for trying ptgen offline.

    Their output is meaningless; every code path (loading, prompting, parsing, generating,
    reranking, reporting) is the real one.
    """
    from preferthinker.errors import OutputExistsError
    from preferthinker.tiny import make_tiny_assessor

    targets = {
        "assessor": directory / "assessor",
        "generator": directory / "generator",
        "style_adapter": directory / "style_adapter",
    }
    for path in targets.values():
        if path.exists() and any(path.iterdir()) and not force:
            raise OutputExistsError(f"{path} is not empty; pass --force to overwrite it")
    with console.status("building the tiny assessor"):
        make_tiny_assessor(targets["assessor"])
    with console.status("building the tiny generator"):
        from generation.tiny import make_tiny_generator

        make_tiny_generator(targets["generator"])
    with console.status("building the tiny style adapter"):
        from generation.tiny import make_tiny_style_adapter

        make_tiny_style_adapter(targets["style_adapter"], targets["generator"])
    console.print(f"tiny assessor:  {targets['assessor']}")
    console.print(f"tiny generator: {targets['generator']}")
    console.print(f"tiny style adapter (IP-Adapter): {targets['style_adapter']}")
    console.print(
        f"try: ptgen profile --refs <folder of images> --assessor {targets['assessor']} --json"
    )


def _references(refs: Path, disliked: Optional[Path], max_pixels: int):
    """The user's references, loaded once (at most 5 per side; a warning names any left out)."""
    from preferthinker.references import References

    return References.load(refs, disliked, max_pixels=max_pixels, require_liked=True)


def _print_profile(prediction: Any) -> None:
    from rich.table import Table

    from preferthinker.profile import ELEMENT_LABELS, ELEMENTS

    table = Table(title=f"visual preference profile ({prediction.status})")
    table.add_column("element")
    table.add_column("liked")
    table.add_column("disliked")
    for element in ELEMENTS:
        table.add_row(
            ELEMENT_LABELS[element],
            ", ".join(prediction.profile.liked.terms(element)) or "-",
            ", ".join(prediction.profile.disliked.terms(element)) or "-",
        )
    out.print(table)
    for issue in prediction.issues:
        console.print(f"[yellow]note:[/] {issue}")


def _print_comparison(comparison: Any, name_a: str, name_b: str) -> None:
    from rich.table import Table

    from preferthinker.profile import ELEMENT_LABELS

    table = Table(title=f"A = {name_a}   B = {name_b}")
    for column in ("element", "A", "B", "why A", "why B"):
        table.add_column(column)
    for score in comparison.scores:
        table.add_row(
            ELEMENT_LABELS.get(score.element, score.element),
            "-" if score.score_a is None else str(score.score_a),
            "-" if score.score_b is None else str(score.score_b),
            score.rationale_a,
            score.rationale_b,
        )
    if comparison.parsed:
        first = comparison.parsed[0]
        table.add_row(
            "total",
            str(first.total_a if first.total_a is not None else "-"),
            str(first.total_b if first.total_b is not None else "-"),
            "",
            "",
        )
    out.print(table)
    if comparison.winner is None:
        console.print("[yellow]undecided[/]: the assessor gave no usable answer")
    else:
        name = name_a if comparison.winner == "A" else name_b
        console.print(f"preferred: Image {comparison.winner} ({name})")
    for issue in comparison.issues:
        console.print(f"[yellow]note:[/] {issue}")


def register(app: typer.Typer) -> None:
    """Add `profile`, `assess` and `make-tiny` to the `ptgen` app."""
    app.command("profile")(profile)
    app.command("assess")(assess)
    app.command("make-tiny")(make_tiny)
