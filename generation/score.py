"""A per-user 0-1 score for images you already have (`ptgen score`), and writing it into metadata.

The raw score of an image is the similarity assessor's (`preferthinker.image_similarity`): cosine
to the liked references' prototype minus cosine to the disliked references' prototype. It is
turned into a probability with a logistic curve fitted on SynthPref,

    score = 1 / (1 + exp(-(slope * raw + intercept)))

so that 0.8 means "on SynthPref, an image with this raw score was preferred by the simulated user
over a random candidate about 80 % of the time". The fit (`benchmarks/calibrate_score.py`, whose
data and command are in docs/benchmarks.md): simulated users with rendered references; for each,
random procedural candidates x and y; the label is whether the user prefers x to y (more liked
terms matched minus disliked terms matched; ties left out); a logistic regression of the label on
raw(x). `CALIBRATIONS` holds the fitted (slope, intercept) per embedding model, with and without
disliked references; a model without a fit is reported as uncalibrated and scored with the
`stats` curve.

Metadata (`write_score_metadata`), never touching pixels: a PNG gets an `iTXt` chunk `ptgen:score`
inserted before `IEND` (the image data chunks are copied byte for byte; an earlier `ptgen:score`
chunk is replaced); any other format gets an XMP sidecar `<file>.xmp` (e.g. `photo.jpg.xmp`, the
darktable/digiKam naming), which ptgen writes only when the sidecar is absent or its own.

Example:
    >>> scored = score_images(["a.jpg", "b.png"], References.load("liked/"), "efficientnet-lite0")
    >>> [(s.path, round(s.score, 2)) for s in scored]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from preferthinker.errors import InputError

# (slope, intercept) of the logistic calibration per embedding model, from
# `python benchmarks/calibrate_score.py` (see docs/benchmarks.md for the data and the fit quality).
# "MODEL/liked-only": the fit for runs without disliked references (raw = cosine to the liked
# prototype alone, a different scale). 5,232 training pairs each (30 users); held-out log loss
# against 0.693 for a coin in the comment.
CALIBRATIONS: dict[str, tuple[float, float]] = {
    "stats": (3.733, 0.022),  # 0.629
    "stats/liked-only": (3.097, -1.635),  # 0.665
    "efficientnet-lite0": (2.619, 0.053),  # 0.666
    "efficientnet-lite0/liked-only": (2.735, -1.123),  # 0.680
}
UNCALIBRATED_FALLBACK = "stats"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEYWORD = "ptgen:score"
XMP_NAMESPACE = "https://github.com/ptgen/ptgen/ns/score/1.0/"


@dataclass
class ImageScore:
    """One image's score: `score` in [0, 1] (calibrated), `raw` (similarity rule), `sha256` of the
    file, the nearest liked reference (index into the liked list)."""

    path: str
    score: float
    raw: float
    sha256: str
    nearest_liked: int
    calibrated: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "score": round(self.score, 4),
            "raw": round(self.raw, 5),
            "sha256": self.sha256,
            "nearest_liked": self.nearest_liked,
            "calibrated": self.calibrated,
        }


def calibrate(raw: float, model: str, with_disliked: bool = True) -> tuple[float, bool]:
    """The calibrated 0-1 score of a raw similarity score, and whether `model` has its own fit.

    Args:
        raw: the similarity rule's score.
        model: the embedding model.
        with_disliked: whether disliked references took part (else the liked-only fit).

    Example:
        >>> calibrate(0.0, "stats")[0] == 1 / (1 + math.exp(-CALIBRATIONS["stats"][1]))
        True
    """
    suffix = "" if with_disliked else "/liked-only"
    own = model + suffix in CALIBRATIONS
    slope, intercept = CALIBRATIONS[model + suffix if own else UNCALIBRATED_FALLBACK + suffix]
    return 1.0 / (1.0 + math.exp(-(slope * raw + intercept))), own


def _sha256(path: Path) -> str:
    from generation.report import file_sha256

    return file_sha256(path)


def score_images(
    paths: Sequence[Union[str, Path]],
    references: Any,
    model: str = "stats",
    device: Optional[str] = None,
    max_pixels: Optional[int] = None,
) -> list[ImageScore]:
    """Score image files for the user behind `references`, in the order given.

    Args:
        paths: image files.
        references: a `References` with at least one liked image.
        model: an embedding model (`create_embedder` names; a leading "similarity:" is accepted).
        device: torch device for the model.
        max_pixels: downscale before embedding (None: full size; the embedders resize anyway).

    Raises:
        InputError: no liked reference, an unreadable image; ModelNotFoundError: the model.

    Example:
        >>> refs = References.load("liked/")  # doctest: +SKIP
        >>> score_images(["shot.png"], refs, "stats")[0].score  # doctest: +SKIP
        0.73
    """
    from preferthinker.image_similarity import create_embedder, reference_scores
    from preferthinker.images import load_image

    model = model[len("similarity:") :] if model.startswith("similarity:") else model
    liked = list(getattr(references, "liked", None) or [])
    if not liked:
        raise InputError("ptgen score needs at least one liked reference image; pass --refs DIR")
    embedder = create_embedder(model, device)
    images = [load_image(path, max_pixels=max_pixels) for path in paths]
    disliked = list(getattr(references, "disliked", None) or [])
    raw = reference_scores(embedder, images, liked, disliked)
    results = []
    for path, item in zip(paths, raw, strict=True):
        value, own = calibrate(item.score, model, with_disliked=bool(disliked))
        results.append(
            ImageScore(str(path), value, item.score, _sha256(Path(path)), item.nearest_liked, own)
        )
    return results


# -- metadata --------------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(PNG_SIGNATURE):
        raise InputError("not a PNG file")
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(data):
        if offset + 8 > len(data):
            raise InputError("truncated PNG file")
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append((kind, data[offset : offset + 12 + length]))
        offset += 12 + length
        if kind == b"IEND":
            break
    if not chunks or chunks[-1][0] != b"IEND":
        raise InputError("PNG file without an IEND chunk")
    return chunks


def _itxt_chunk(keyword: str, text: str) -> bytes:
    body = keyword.encode("latin-1") + b"\x00\x00\x00" + b"\x00" + b"\x00" + text.encode("utf-8")
    crc = zlib.crc32(b"iTXt" + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", crc)


def _is_our_itxt(chunk: bytes) -> bool:
    return chunk[4:8] == b"iTXt" and chunk[8:].startswith(PNG_KEYWORD.encode("latin-1") + b"\x00")


def _atomic_bytes(path: Path, data: bytes) -> None:
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    except OSError as error:  # a read-only folder: the image stays as it was
        raise InputError(f"cannot write the score for {path}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise InputError(f"cannot write the score for {path}: {error.strerror}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _xmp(payload: dict[str, Any]) -> str:
    attributes = "".join(f'\n    ptgen:{key}="{_xml(value)}"' for key, value in payload.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'  <rdf:Description rdf:about="" xmlns:ptgen="{XMP_NAMESPACE}"{attributes}/>\n'
        ' </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end="w"?>\n'
    )


def _xml(value: Any) -> str:
    return (
        str(value)
        .replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def write_score_metadata(scored: ImageScore, model: str, references: str = "") -> Path:
    """Write one score into the image's metadata without touching its pixels.

    PNG: an `iTXt` chunk `ptgen:score` (JSON) before `IEND`, replacing an earlier one; every
    other chunk is kept byte for byte. Other formats: the sidecar `<file>.xmp`.

    Returns:
        The file written (the PNG itself, or the sidecar).

    Raises:
        InputError: a sidecar exists that ptgen did not write (it is left alone), or the
            folder cannot be written.

    Example:
        >>> write_score_metadata(scored, "efficientnet-lite0")  # doctest: +SKIP
        PosixPath('shots/a.jpg.xmp')
    """
    path = Path(scored.path)
    payload = {
        "score": round(scored.score, 4),
        "raw": round(scored.raw, 5),
        "model": model,
        "calibrated": scored.calibrated,
        "references": references,
    }
    data = path.read_bytes()
    if data.startswith(PNG_SIGNATURE):
        chunks = [chunk for kind, chunk in _png_chunks(data) if not _is_our_itxt(chunk)]
        end = next(i for i, chunk in enumerate(chunks) if chunk[4:8] == b"IEND")
        chunks.insert(end, _itxt_chunk(PNG_KEYWORD, json.dumps(payload, sort_keys=True)))
        _atomic_bytes(path, PNG_SIGNATURE + b"".join(chunks))
        return path
    sidecar = path.with_name(path.name + ".xmp")
    if sidecar.exists() and XMP_NAMESPACE not in sidecar.read_text(
        encoding="utf-8", errors="replace"
    ):
        raise InputError(
            f"{sidecar} exists and was not written by ptgen; left unchanged "
            "(move it away to let ptgen write its score there)"
        )
    _atomic_bytes(sidecar, _xmp(payload).encode("utf-8"))
    return sidecar


def read_score_metadata(path: Union[str, Path]) -> Optional[dict[str, Any]]:
    """The score ptgen wrote for an image (PNG chunk or XMP sidecar), or None.

    Example:
        >>> read_score_metadata("shots/a.png")["score"]  # doctest: +SKIP
        0.81
    """
    path = Path(path)
    data = path.read_bytes()
    if data.startswith(PNG_SIGNATURE):
        for _, chunk in _png_chunks(data):
            if _is_our_itxt(chunk):
                body = chunk[8:-4]
                text = body.split(b"\x00", 1)[1][4:]  # compression flag, method, 2 empty strings
                return json.loads(text.decode("utf-8"))
        return None
    sidecar = path.with_name(path.name + ".xmp")
    if not sidecar.exists():
        return None
    import re

    text = sidecar.read_text(encoding="utf-8")
    found = dict(re.findall(r'ptgen:(\w+)="([^"]*)"', text))
    return found or None
