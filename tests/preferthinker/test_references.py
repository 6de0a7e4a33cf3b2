"""References loaded once: the 5-per-side cap reported and recorded, skipped files reported, the
profile cache key covering exactly the images the model saw, and no layer loading them again."""

from __future__ import annotations

import json
import warnings

import pytest
from PIL import Image

from generation.cache import ProfileCache
from generation.loop import LoopConfig, PersonalizedGenerator
from generation.report import write_run
from preferthinker.errors import InputError
from preferthinker.images import ImageSkippedWarning
from preferthinker.references import MAX_REFERENCES, References, ReferencesCutWarning
from ptgen.cli.main import main
from tests.generation.conftest import SolidGenerator, redness_responder


def _folder(path, colors):
    path.mkdir()
    for number, color in enumerate(colors, start=1):
        Image.new("RGB", (24, 24), color).save(path / f"{number:02d}.png")
    return path


SEVEN = [(250, 10 * k, 10) for k in range(7)]


@pytest.fixture()
def scripted_assessor():
    from preferthinker.assessor import Assessor, AssessorConfig
    from preferthinker.engines.scripted import ScriptedEngine

    return Assessor(ScriptedEngine(redness_responder), AssessorConfig(assessor="scripted"))


def test_seven_liked_keeps_the_first_five_and_says_which_were_cut(tmp_path):
    liked = _folder(tmp_path / "liked", SEVEN)
    expected = r"5 liked images used, 2 more left out \(.*06.png, .*07.png\)"
    with pytest.warns(ReferencesCutWarning, match=expected):
        refs = References.load(liked, max_pixels=None)
    assert MAX_REFERENCES == 5
    assert [image.getpixel((0, 0)) for image in refs.liked] == SEVEN[:5]
    assert refs.liked_sources == [str(liked / f"{n:02d}.png") for n in range(1, 6)]
    assert [(c.side, c.source) for c in refs.cut] == [
        ("liked", str(liked / "06.png")),
        ("liked", str(liked / "07.png")),
    ]
    record = refs.to_dict()
    assert record["liked"] == 5 and record["cut"][0]["source"].endswith("06.png")
    assert record["origin"] == {"liked": str(liked)}


def test_five_or_fewer_warn_nothing(tmp_path):
    liked = _folder(tmp_path / "liked", SEVEN[:5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refs = References.load(liked)
    assert len(refs.liked) == 5 and refs.cut == [] and refs.cut_message() == ""


def test_unreadable_files_are_skipped_with_the_reason_and_do_not_count_against_the_cap(tmp_path):
    liked = _folder(tmp_path / "liked", SEVEN[:5])
    (liked / "00_notes.png").write_text("not an image", encoding="utf-8")  # sorts first
    with pytest.warns(ImageSkippedWarning, match="00_notes.png"):
        refs = References.load(liked)
    assert len(refs.liked) == 5 and refs.cut == []  # the five real images, none cut
    assert [(s.side, s.source) for s in refs.skipped] == [("liked", str(liked / "00_notes.png"))]
    assert "Pillow" in refs.skipped[0].reason
    assert refs.to_dict()["skipped"][0]["reason"] == refs.skipped[0].reason


def test_a_side_with_no_usable_image_is_an_error(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.png").write_text("no", encoding="utf-8")
    expected = r"no usable image in the disliked .*skipped: .*a.png \(not an image"
    with pytest.raises(InputError, match=expected):
        References.load([Image.new("RGB", (4, 4))], folder)


def test_cache_key_covers_the_images_seen_not_the_ones_cut(tmp_path):
    cache = ProfileCache(tmp_path)
    images = [Image.new("RGB", (8, 8), color) for color in SEVEN]
    with pytest.warns(ReferencesCutWarning):
        key = cache.key(References.load(images), None, "m")
        changed_cut = images[:6] + [Image.new("RGB", (8, 8), "blue")]  # the 7th is cut
        assert cache.key(References.load(changed_cut), None, "m") == key
        changed_seen = [Image.new("RGB", (8, 8), "blue")] + images[1:]  # the 1st is seen
        assert cache.key(References.load(changed_seen), None, "m") != key
        # Lists go through the same cap as the prompt: the same key as their References.
        assert cache.key(images, None, "m") == key
    assert cache.key(images[:5], None, "m") == key


def test_loop_records_the_cut_in_issues_and_result_json(scripted_assessor, tmp_path):
    liked = _folder(tmp_path / "liked", SEVEN)
    loop = PersonalizedGenerator(
        scripted_assessor, SolidGenerator(), LoopConfig(n=2, cache_dir=str(tmp_path / "cache"))
    )
    with pytest.warns(ReferencesCutWarning):
        result = loop.run("a castle", liked)
    assert any("5 liked images used, 2 more left out" in issue for issue in result.issues)
    write_run(result, tmp_path / "run")
    references = json.loads((tmp_path / "run" / "result.json").read_text())["references"]
    assert references["liked"] == 5 and references["disliked"] == 0
    assert [c["source"] for c in references["cut"]] == [
        str(liked / "06.png"),
        str(liked / "07.png"),
    ]
    assert references["liked_sources"][0] == str(liked / "01.png")


def test_full_mode_loads_each_reference_once(scripted_assessor, tmp_path, monkeypatch):
    """Counts `load_image` calls per reference (the real function, wrapped): the loop loads each
    file once, and the assessor, prompt builder and cache reuse the images for every comparison."""
    import preferthinker.images as images_module

    liked = _folder(tmp_path / "liked", SEVEN[:3])
    disliked = _folder(tmp_path / "disliked", [(10, 10, 250), (20, 20, 240)])
    calls: list = []
    real = images_module.load_image

    def counting(source, *args, **kwargs):
        image = real(source, *args, **kwargs)
        calls.append((source, image))
        return image

    monkeypatch.setattr(images_module, "load_image", counting)
    monkeypatch.setattr("preferthinker.references.load_image", counting)
    loop = PersonalizedGenerator(
        scripted_assessor,
        SolidGenerator(),
        LoopConfig(n=4, mode="full", strategy="round-robin", cache=False),
    )
    result = loop.run("a castle", liked, disliked)
    assert result.ranking is not None and len(result.ranking.matches) == 6
    reference_images = {id(image) for image in result.liked + result.disliked}
    from_files = [source for source, _ in calls if not isinstance(source, Image.Image)]
    reloaded = [
        image
        for source, image in calls
        if isinstance(source, Image.Image)
        and (id(source) in reference_images or id(image) in reference_images)
    ]
    files = [*liked.iterdir(), *disliked.iterdir()]
    assert sorted(map(str, from_files)) == sorted(map(str, files))
    assert reloaded == []


def test_cli_profile_warns_about_the_cap_and_records_it(capsys, tmp_path):
    liked = _folder(tmp_path / "liked", SEVEN)
    code = main(["profile", "--refs", str(liked), "--assessor", "analytic", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    warning_lines = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warning_lines) == 1 and "5 liked images used, 2 more left out" in warning_lines[0]
    data = json.loads(captured.out)
    cut = [c["source"] for c in data["references"]["cut"]]
    assert cut == [str(liked / "06.png"), str(liked / "07.png")]


def test_rerank_images_loads_the_references_once_for_all_rounds(
    scripted_assessor, tmp_path, monkeypatch
):
    from generation.loop import rerank_images

    liked = _folder(tmp_path / "liked", SEVEN[:3])
    opened: list = []
    real = References.load.__func__

    def counting(cls, *args, **kwargs):
        opened.append(args[0])
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(References, "load", classmethod(counting))
    candidates = [Image.new("RGB", (16, 16), (red, 80, 80)) for red in (10, 200, 120, 60)]
    ranking = rerank_images(
        candidates, scripted_assessor, liked=sorted(liked.iterdir()), strategy="knockout"
    )
    assert ranking.winner == 1 and len({match.round for match in ranking.matches}) == 2
    assert len(opened) == 1  # one load, not one per round
