"""Benchmark format: the authors' JSON and ours, through one loader; clear errors for bad items."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from preferthinker.benchmark import BenchmarkItem, load_benchmark, write_benchmark
from preferthinker.errors import InputError
from preferthinker.profile import Profile, UserProfile


@pytest.fixture()
def image_root(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    for name in ["a.png", "b.png", "p1.png", "p2.png", "n1.png"]:
        Image.new("RGB", (8, 8), (10, 20, 30)).save(root / name)
    return root


def authors_items():
    return [
        {
            "imageA": "a.png",
            "imageB": "b.png",
            "prefered_images": ["p1.png", "p2.png"],
            "non_prefered_images": ["n1.png"],
            "conversations": [{"from": "human", "value": "Image B"}],
        },
        {
            "imageA": "b.png",
            "imageB": "a.png",
            "prefered_images": ["p1.png"],
            "non_prefered_images": [],
            "conversations": [{"value": "Image A"}],
            "prefer_attributes": "Pixel Art",
        },
    ]


def test_load_authors_format(tmp_path, image_root):
    path = tmp_path / "SP_ID.json"
    path.write_text(json.dumps(authors_items()))
    items = load_benchmark(path, image_root=image_root, check_files=True)
    assert [i.answer for i in items] == ["B", "A"]
    assert items[0].image_a == str(image_root / "a.png")
    assert items[0].preferred == [str(image_root / "p1.png"), str(image_root / "p2.png")]
    assert items[1].non_preferred == []
    assert items[0].split == "SP_ID"
    assert items[1].meta["prefer_attributes"] == "Pixel Art"
    assert items[0].profile is None


def test_authors_training_layout_answer_in_second_turn(tmp_path, image_root):
    raw = authors_items()[0]
    raw["conversations"] = [
        {"value": "<image> question"},
        {"value": "<think>..</think><answer>Image A</answer>"},
    ]
    path = tmp_path / "train.json"
    path.write_text(json.dumps([raw]))
    assert load_benchmark(path, image_root=image_root)[0].answer == "A"


def test_write_then_load_ours_json_and_jsonl(tmp_path, image_root):
    profile = UserProfile(liked=Profile(color=("Pink",)), disliked=Profile(color=("Teal",)))
    items = [
        BenchmarkItem(
            image_a=str(image_root / "a.png"),
            image_b=str(image_root / "b.png"),
            preferred=[str(image_root / "p1.png")],
            non_preferred=[str(image_root / "n1.png")],
            answer="B",
            split="seen-SP",
            user_id="u1",
            profile=profile,
            meta={"attributes_a": {"color": "Teal"}},
            item_id="x1",
        ),
    ]
    for name in ["set.json", "set.jsonl"]:
        path = write_benchmark(items, tmp_path / name)
        raw = path.read_text()
        record = json.loads(raw)[0] if name.endswith(".json") else json.loads(raw.splitlines()[0])
        # The authors' fields are there, relative to the file's folder, so their script reads ours.
        assert record["imageA"] == "images/a.png"
        assert record["conversations"][0]["value"] == "Image B"
        assert record["prefered_images"] == ["images/p1.png"]
        back = load_benchmark(path, check_files=True)
        assert back[0].answer == "B" and back[0].split == "seen-SP" and back[0].user_id == "u1"
        assert back[0].profile == profile
        assert back[0].meta == {"attributes_a": {"color": "Teal"}}
        assert back[0].item_id == "x1"
        assert back[0].image_a == str(tmp_path / "images" / "a.png")
    # A folder holding benchmark.json loads too.
    write_benchmark(items, tmp_path / "benchmark.json")
    assert len(load_benchmark(tmp_path)) == 1


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.pop("imageB"), "item 1: missing field 'imageB'"),
        (lambda r: r.update(conversations=[{"value": "yes"}]), "item 1: field 'conversations'"),
        (lambda r: r.pop("conversations"), "item 1: no ground truth"),
        (lambda r: r.update(prefered_images=3), "item 1: field 'prefered_images'"),
        (lambda r: r.update(imageA=""), "item 1: field 'imageA'"),
        (lambda r: r.update(answer="C"), "item 1: field 'answer'"),
    ],
)
def test_malformed_items_name_index_and_field(tmp_path, mutate, message):
    records = authors_items()
    mutate(records[1])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(records))
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_benchmark(path)


def test_file_errors(tmp_path, image_root):
    with pytest.raises(InputError, match="not found"):
        load_benchmark(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_benchmark(bad)
    bad.write_text(json.dumps(authors_items()))
    with pytest.raises(InputError, match="image file not found"):
        load_benchmark(bad, check_files=True)  # paths are relative to the image root, not the file
    with pytest.raises(InputError, match="image root not found"):
        load_benchmark(bad, image_root=tmp_path / "nope")


def test_swapped_flips_answer():
    item = BenchmarkItem(image_a="a", image_b="b", answer="A")
    s = item.swapped()
    assert (s.image_a, s.image_b, s.answer) == ("b", "a", "B")
    with pytest.raises(ValueError, match="answer"):
        BenchmarkItem(image_a="a", image_b="b", answer="C")


def test_write_refuses_pil_images(tmp_path):
    item = BenchmarkItem(image_a=Image.new("RGB", (2, 2)), image_b="b.png")
    with pytest.raises(InputError, match="item 0"):
        write_benchmark([item], tmp_path / "x.json")
