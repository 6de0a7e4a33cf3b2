"""`ptgen score`: calibrated per-user scores, filtering, JSON, and metadata that never
touches pixels (real files, the real colour-statistics embedder, the CLI in-process)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from generation.score import CALIBRATIONS, calibrate, read_score_metadata
from ptgen.cli.main import main

LIKED = [(240, 120, 170), (230, 110, 160)]
DISLIKED = [(20, 30, 110)]
SHOTS = {
    "pink.png": (235, 115, 165),
    "navy.png": (20, 30, 110),
    "teal.jpg": (30, 170, 160),
    "rose.jpg": (225, 130, 175),
    "grey.png": (120, 120, 120),
}


@pytest.fixture
def folders(tmp_path, make_images):
    made = {}
    for name, colors in (("liked", LIKED), ("disliked", DISLIKED)):
        folder = tmp_path / name
        folder.mkdir()
        for k, image in enumerate(make_images(len(colors), colors=colors, pattern="stripes")):
            image.save(folder / f"{k}.png")
        made[name] = folder
    shots = tmp_path / "shots"
    shots.mkdir()
    pictures = make_images(len(SHOTS), colors=SHOTS.values(), pattern="stripes")
    for name, image in zip(SHOTS, pictures, strict=True):
        info = PngInfo()
        info.add_text("prompt", "my own prompt")
        image.save(shots / name, pnginfo=info) if name.endswith(".png") else image.save(
            shots / name
        )
    made["shots"] = shots
    return made


def _score(capsys, folders, *flags):
    code = main(
        [
            "score",
            str(folders["shots"]),
            "--refs",
            str(folders["liked"]),
            "--disliked",
            str(folders["disliked"]),
            "--json",
            *flags,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_scores_are_calibrated_probabilities_best_first(capsys, folders):
    data = _score(capsys, folders)
    names = [image["path"].rsplit("/", 1)[-1] for image in data["images"]]
    assert set(names[:2]) == {"pink.png", "rose.jpg"} and names[-1] == "navy.png"
    scores = [image["score"] for image in data["images"]]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    slope, intercept = CALIBRATIONS["stats"]
    first = data["images"][0]
    assert first["score"] == pytest.approx(
        1 / (1 + np.exp(-(slope * first["raw"] + intercept))), abs=1e-4
    )
    assert data["calibrated"] is True and data["scored"] == 5
    assert data["ms_per_image"] > 0  # the embedder's average over the images it embedded


def test_min_score_and_top_k_filter(capsys, folders):
    everything = _score(capsys, folders)["images"]
    threshold = everything[2]["score"]
    kept = _score(capsys, folders, "--min-score", str(threshold))["images"]
    assert len(kept) == 3 and all(image["score"] >= threshold for image in kept)
    assert len(_score(capsys, folders, "--top-k", "2")["images"]) == 2


def test_write_metadata_keeps_pixels_and_other_chunks(capsys, folders):
    png, jpg = folders["shots"] / "pink.png", folders["shots"] / "teal.jpg"
    pixels_before = np.asarray(Image.open(png).convert("RGB"))
    jpg_bytes = jpg.read_bytes()
    data = _score(capsys, folders, "--write-metadata")
    assert len(data["metadata_written"]) == 5
    with Image.open(png) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), pixels_before)
        assert image.text["prompt"] == "my own prompt"  # the user's own chunk survives
    written = read_score_metadata(png)
    by_name = {i["path"].rsplit("/", 1)[-1]: i for i in data["images"]}
    assert written["score"] == by_name["pink.png"]["score"] and written["model"] == "stats"
    assert jpg.read_bytes() == jpg_bytes  # JPEG untouched: the score goes to a sidecar
    sidecar = jpg.with_name("teal.jpg.xmp")
    assert float(read_score_metadata(jpg)["score"]) == by_name["teal.jpg"]["score"]
    # A second run replaces ptgen's own chunk and sidecar instead of adding more.
    _score(capsys, folders, "--write-metadata")
    assert png.read_bytes().count(b"ptgen:score") == 1
    assert sidecar.read_text().count("ptgen:score=") == 1


def test_a_foreign_sidecar_is_left_alone(capsys, folders):
    foreign = folders["shots"] / "rose.jpg.xmp"
    foreign.write_text("<x:xmpmeta>someone else's ratings</x:xmpmeta>")
    data = _score(capsys, folders, "--write-metadata")
    assert foreign.read_text() == "<x:xmpmeta>someone else's ratings</x:xmpmeta>"
    assert len(data["metadata_written"]) == 4


def test_a_sidecar_that_cannot_be_written_is_a_note_and_the_rest_are_written(capsys, folders):
    # A folder where the sidecar goes fails the write even for root (no permissions needed).
    (folders["shots"] / "rose.jpg.xmp").mkdir()
    data = _score(capsys, folders, "--write-metadata")
    assert len(data["metadata_written"]) == 4
    assert read_score_metadata(folders["shots"] / "pink.png") is not None


def test_nothing_is_written_without_the_flag(capsys, folders):
    before = sorted(p.name for p in folders["shots"].iterdir())
    _score(capsys, folders)
    assert sorted(p.name for p in folders["shots"].iterdir()) == before


def test_uncalibrated_model_says_so():
    assert calibrate(0.1, "stats")[1] is True
    value, own = calibrate(0.1, "openai/clip-vit-base-patch32")
    assert own is False and value == calibrate(0.1, "stats")[0]
    assert calibrate(0.3, "stats")[0] > calibrate(0.1, "stats")[0]


def test_liked_only_runs_use_their_own_curve(capsys, folders):
    # Without disliked references the raw score is a plain cosine (about 0.3-1), not a difference.
    code = main(["score", str(folders["shots"]), "--refs", str(folders["liked"]), "--json"])
    assert code == 0
    images = json.loads(capsys.readouterr().out)["images"]
    slope, intercept = CALIBRATIONS["stats/liked-only"]
    for image in images:
        assert image["score"] == pytest.approx(
            1 / (1 + np.exp(-(slope * image["raw"] + intercept))), abs=1e-4
        )


@pytest.mark.parametrize(
    "flags,words",
    [
        (["--min-score", "2"], "--min-score must be between 0 and 1"),
        (["--top-k", "0"], "--top-k must be >= 1"),
        (["--model", "no-such-org/no-such-model"], "could not be loaded"),
    ],
)
def test_bad_input_is_one_line(capsys, folders, monkeypatch, flags, words):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["score", str(folders["shots"]), "--refs", str(folders["liked"]), *flags])
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_refs_without_images_is_one_line(capsys, folders, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["score", str(folders["shots"]), "--refs", str(empty)])
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "liked" in err[0]


def test_a_stored_user_scores_like_the_same_references_given_as_folders(
    capsys, folders, tmp_path, monkeypatch
):
    monkeypatch.setenv("PTGEN_STORE", str(tmp_path / "store"))
    made = ["user", "create", "ana", "--refs", str(folders["liked"])]
    assert main([*made, "--disliked", str(folders["disliked"])]) == 0
    capsys.readouterr()
    by_folders = _score(capsys, folders)
    assert main(["score", str(folders["shots"]), "--user", "ana", "--json"]) == 0
    by_user = json.loads(capsys.readouterr().out)
    assert [i["path"] for i in by_user["images"]] == [i["path"] for i in by_folders["images"]]
    assert [i["score"] for i in by_user["images"]] == pytest.approx(
        [i["score"] for i in by_folders["images"]], abs=1e-6
    )


def test_score_needs_refs_or_a_known_user(capsys, folders, tmp_path, monkeypatch):
    monkeypatch.setenv("PTGEN_STORE", str(tmp_path / "store"))
    assert main(["score", str(folders["shots"]), "--user", "nobody"]) == 2
    err = capsys.readouterr().err
    assert "unknown user 'nobody'" in err and "Traceback" not in err
    both = ["--refs", str(folders["liked"]), "--user", "ana"]
    assert main(["score", str(folders["shots"]), *both]) == 2
    assert "give --refs or --user, not both" in capsys.readouterr().err
