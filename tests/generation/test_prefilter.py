"""The hybrid pre-filter (`--prefilter similarity:MODEL --keep K`): library and CLI, with the real
colour-statistics embedder, the analytic assessor and the procedural generator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from generation.loop import LoopConfig, PersonalizedGenerator
from generation.prefilter import prefilter_candidates
from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.references import References
from ptgen.cli.main import main

# Liked: pinks; disliked: a navy. Candidates: a spread of colours, two of them pink-ish.
LIKED = [(240, 120, 170), (230, 110, 160)]
DISLIKED = [(20, 30, 110)]
CANDIDATES = [
    (20, 30, 110),
    (30, 170, 160),
    (235, 115, 165),
    (240, 200, 30),
    (40, 160, 60),
    (225, 130, 175),
    (150, 60, 180),
    (120, 120, 120),
]


@pytest.fixture
def folders(tmp_path, make_images):
    made = {}
    for name, colors in (("liked", LIKED), ("disliked", DISLIKED), ("shots", CANDIDATES)):
        folder = tmp_path / name
        folder.mkdir()
        for k, image in enumerate(make_images(len(colors), colors=colors, pattern="stripes")):
            image.save(folder / f"{k:02d}.png")
        made[name] = folder
    return made


def _loop(**config):
    assessor = Assessor.from_config(AssessorConfig(assessor="analytic", max_retries=0))
    return PersonalizedGenerator(assessor, None, LoopConfig(cache=False, mode="full", **config))


def test_prefilter_keeps_the_candidates_most_like_the_references(folders):
    refs = References.load(folders["liked"], folders["disliked"])
    images = [Image.open(p).convert("RGB") for p in sorted(folders["shots"].glob("*.png"))]
    chosen = prefilter_candidates(images, refs, "similarity:stats", keep=2)
    assert sorted(chosen.kept) == [2, 5]  # the two pinks
    assert chosen.scores[0] == min(chosen.scores)  # the disliked navy is last
    assert chosen.ms_per_image is not None


def test_tournament_runs_only_on_the_kept_and_ranks_all(folders):
    images = [Image.open(p).convert("RGB") for p in sorted(folders["shots"].glob("*.png"))]
    full = _loop().rerank(images, folders["liked"], folders["disliked"])
    filtered = _loop(prefilter="similarity:stats", keep=4).rerank(
        images, folders["liked"], folders["disliked"]
    )
    assert full.usage.calls == 7 and filtered.usage.calls == 3  # knockout of 8 vs of 4
    kept = filtered.prefilter.kept
    order = filtered.ranking.order
    assert set(order[:4]) == set(kept) and sorted(order) == list(range(8))
    assert {m.a for m in filtered.ranking.matches} | {m.b for m in filtered.ranking.matches} == set(
        kept
    )
    dropped = order[4:]
    scores = filtered.prefilter.scores
    assert [scores[i] for i in dropped] == sorted((scores[i] for i in dropped), reverse=True)
    assert max(filtered.ranking.scores[i] for i in dropped) < min(
        filtered.ranking.scores[i] for i in kept
    )
    assert filtered.best.index in kept


def test_generate_with_prefilter_through_the_loop():
    from synthpref.renderer import ProceduralGenerator

    generator = ProceduralGenerator(size=64)
    refs = generator.generate("a castle in Pink Pop Art", seeds=[1, 2])
    assessor = Assessor.from_config(AssessorConfig(assessor="analytic", max_retries=0))
    loop = PersonalizedGenerator(
        assessor, generator, LoopConfig(n=6, cache=False, prefilter="similarity:stats", keep=3)
    )
    result = loop.run("a castle", refs)
    assert len(result.candidates) == 6 and len(result.prefilter.kept) == 3
    assert result.ranking.usage.calls == 2  # knockout of 3
    assert "prefilter" in result.timings


def test_cli_rerank_reports_prefilter_and_references_images_without_copying(folders, tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "rerank",
            str(folders["shots"]),
            "--refs",
            str(folders["liked"]),
            "--disliked",
            str(folders["disliked"]),
            "--assessor",
            "analytic",
            "--mode",
            "full",
            "--prefilter",
            "similarity:stats",
            "--keep",
            "3",
            "--out",
            str(out),
            "--no-cache",
        ]
    )
    assert code == 0
    data = json.loads((out / "result.json").read_text())
    assert (
        data["prefilter"]["model"] == "similarity:stats" and len(data["prefilter"]["scores"]) == 8
    )
    assert sum(c["kept"] for c in data["candidates"]) == 3
    assert len(data["ranking"]["comparisons"]) == 2
    assert not list(out.glob("*.png"))  # referenced, not copied
    first = data["candidates"][0]
    source = folders["shots"] / "00.png"
    assert first["source"] == str(source) and first["file"] is None
    assert first["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert "pre-filter" in (out / "report.html").read_text()


def test_cli_rerank_copy_writes_pngs(folders, tmp_path):
    out = tmp_path / "copied"
    code = main(
        [
            "rerank",
            str(folders["shots"]),
            "--refs",
            str(folders["liked"]),
            "--assessor",
            "analytic",
            "--out",
            str(out),
            "--no-cache",
            "--copy",
        ]
    )
    assert code == 0
    assert len(list(out.glob("candidate-*.png"))) == 8


def test_cli_rerank_copy_keeps_each_file_as_it_is(folders, tmp_path):
    # A JPEG is copied byte for byte (not re-encoded as PNG), so its hash is the source's.
    shots = []
    for k, source in enumerate(sorted(folders["shots"].glob("*.png"))[:3]):
        path = tmp_path / f"shot{k}.JPG"
        Image.open(source).convert("RGB").save(path, format="JPEG", quality=80)
        shots.append(path)
    out = tmp_path / "copied-jpegs"
    code = main(
        ["rerank", *map(str, shots), "--refs", str(folders["liked"]), "--assessor", "analytic",
         "--out", str(out), "--no-cache", "--copy"]
    )  # fmt: skip
    assert code == 0
    data = json.loads((out / "result.json").read_text())
    for entry in data["candidates"]:
        source = Path(entry["source"])
        copied = out / entry["file"]
        assert copied.suffix == ".jpg" and copied.read_bytes() == source.read_bytes()
        assert entry["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "flags,words",
    [
        (["--keep", "3"], "keep needs a prefilter"),
        (["--prefilter", "clip", "--keep", "3"], "similarity:MODEL"),
        (["--prefilter", "similarity:stats", "--keep", "1"], "keep must be >= 2"),
    ],
)
def test_bad_prefilter_flags_are_one_line_errors(folders, tmp_path, capsys, flags, words):
    code = main(
        [
            "rerank",
            str(folders["shots"]),
            "--refs",
            str(folders["liked"]),
            "--assessor",
            "analytic",
            "--out",
            str(tmp_path / "bad"),
            *flags,
        ]
    )
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
