"""`ptgen data import`: files in the authors' exact training layout (CoT answers, bare answers,
answers in `<answer>` tags, dict and string profiles, a missing image, an unreadable image, an
unknown field, a question turn holding the format line) imported through the CLI, read back by
the SFT and GRPO loaders, trained on with the tiny configs, and the product evaluated on a small
multi-subset benchmark folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ptgen.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"

# The question turn of the authors' records: their format line names BOTH answers.
QUESTION = (
    "Using the predicted preference profile and non-preference profile, please analyze and score "
    "the "
    "two images across five dimensions. ... The answer should be in the format: "
    "<answer>Image A</answer> or <answer>Image B</answer>"
)
LIKED = {
    "Art Styles": "Mesoamerican Art",
    "Color": "Pink",
    "Artistic Medium": "Coiling",
    "Saturation": "Muted",
    "Detail": "Realistic",
}
DISLIKED = {
    "Art Styles": "Pixel Art",
    "Color": "Jungle Green",
    "Artistic Medium": "Digital Painting",
    "Saturation": "Mid-tone",
    "Detail": "Selective",
}
# A CoT written the way the authors' examples are (their "ArtisticMedium" key spelling, one
# rationale per image, "Total:" lines with the sums), for the LIKED / DISLIKED user, answer B.
AUTHORS_COT = """<visual preference profile>
"Art Styles": "Mesoamerican Art",
"Color": "Pink",
"ArtisticMedium": "Coiling",
"Saturation": "Muted",
"Detail": "Realistic"
</visual preference profile>

<visual non-preference profile>
"Art Styles": "Pixel Art",
"Color": "Jungle Green",
"ArtisticMedium": "Digital Painting",
"Saturation": "Mid-tone",
"Detail": "Selective"
</visual non-preference profile>

<think>
1. Artistic style: 
Image A(2) - blocky shapes closer to the disliked Pixel Art than to ceremonial motifs; 
Image B(5) - carved, symbolic forms in the spirit of Mesoamerican Art.

2. Color: 
Image A(1) - a green palette, the disliked Jungle Green; 
Image B(5) - a soft pink ground, the liked colour.

3. Artistic Medium: 
Image A(2) - smooth digital gradients; 
Image B(4) - coiled, hand-built texture.

4. Saturation: 
Image A(3) - mid-tone intensity; 
Image B(4) - restrained, muted colour.

5. Detail: 
Image A(3) - selective detail; 
Image B(4) - realistic light and texture.

Total:
Image A: total_score=2+1+2+3+3=11
Image B: total_score=5+5+4+4+4=22
</think>

<answer>Image B</answer>"""


def _profile_string(profile: dict) -> str:
    return ", ".join(f'"{k}": "{v}"' for k, v in profile.items())


def _png(path: Path, color) -> str:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (56, 56), color).save(path)
    return path.name


def authors_layout(root: Path) -> tuple[list[dict], Path]:
    """Records in the authors' layout and their image folder; what each should become is noted."""
    images = root / "images"
    for name, color in (
        ("u1/p0.png", (240, 150, 190)),
        ("u1/p1.png", (235, 160, 200)),
        ("u1/n0.png", (40, 120, 80)),
        ("u1/a.png", (40, 120, 80)),
        ("u1/b.png", (240, 150, 190)),
    ):
        _png(images / name, color)
    (images / "u1" / "broken.png").write_bytes(b"not a png at all")

    def record(answer_turn, **fields):
        base = {
            "imageA": "u1/a.png",
            "imageB": "u1/b.png",
            "prefered_images": ["u1/p0.png", "u1/p1.png"],
            "non_prefered_images": ["u1/n0.png"],
            "conversations": [
                {"from": "human", "value": QUESTION},
                {"from": "gpt", "value": answer_turn},
            ],
            "user_id": "u1",
            "reference_prompt_list": ["a lighthouse at dusk", "a bowl of fruit"],
            "prefer_attributes": LIKED,
            "non_prefer_attributes": DISLIKED,
        }
        base.update(fields)
        return base

    swapped_cot = AUTHORS_COT.replace("Image B</answer>", "Image A</answer>")
    wrong_profile_cot = AUTHORS_COT.replace('"Color": "Pink"', '"Color": "Teal"', 1)
    records = [
        record(AUTHORS_COT),  # 0 SFT (dict profile)
        record(
            AUTHORS_COT,
            prefer_attributes=_profile_string(LIKED),  # 1 SFT (string profiles)
            non_prefer_attributes=_profile_string(DISLIKED),
        ),
        record("Image A"),  # 2 GRPO, bare answer
        record(
            "<answer>Image B</answer>", prefer_attributes=_profile_string(LIKED)
        ),  # 3 GRPO, tagged
        record("<answer> Image A </answer>", imageB="u1/missing.png"),  # 4 missing image
        # 5 GRPO + an unknown field + an unknown profile key
        record("Image B", style_notes="from a pilot", prefer_attributes=LIKED | {"Mood": "Calm"}),
        record(swapped_cot),  # 6 totals contradict answer
        record(wrong_profile_cot),  # 7 profile mismatch
        record("Image A", prefered_images=["u1/p0.png", "u1/broken.png"]),  # 8 unreadable image
        record("Image A", conversations=[{"from": "human", "value": QUESTION}]),  # 9 no answer turn
        record(
            "Image B", prefer_attributes=None, non_prefer_attributes=None
        ),  # 10 no truth profile
    ]
    return records, images


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("authors")
    records, images = authors_layout(root)
    source = root / "train.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = root / "dataset"
    rc = main(["data", "import", str(source), "--images", str(images), "--out", str(out), "--json"])
    assert rc == 0
    return out, records, images


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_import_sorts_records_into_sft_targets_grpo_prompts_and_rejects(imported):
    out, records, _ = imported
    report = json.loads((out / "import_report.json").read_text())
    assert report["records"] == 11
    assert report["sft_targets"] == 2 and report["grpo_prompts"] == 3
    assert report["rejected"] == {
        "missing_image": 1,
        "totals_contradict_answer": 1,
        "profile_mismatch": 1,
        "unreadable_image": 1,
        "no_answer_turn": 1,
        "no_profile_for_grpo": 1,
    }
    assert report["unknown_fields"] == {"prefer_attributes.Mood": 1, "style_notes": 1}
    assert report["missing_fields"] == {"non_prefer_attributes": 1, "prefer_attributes": 1}
    by_record = {p["record"]: p for p in report["problems"]}
    assert by_record[4]["reason"] == "missing_image" and by_record[4]["detail"].endswith(
        "u1/missing.png"
    )
    assert by_record[8]["detail"].startswith("prefered_images[1]")
    sft, grpo = _lines(out / "sft.jsonl"), _lines(out / "grpo.jsonl")
    assert [r["meta"]["source_index"] for r in sft] == [0, 1]
    # GRPO: the answer-only records, then the CoT records (their truth is known too).
    assert sorted(r["meta"]["source_index"] for r in grpo) == [0, 1, 2, 3, 5]


def test_truth_comes_from_the_answer_turn_not_the_question(imported):
    out, _, _ = imported
    grpo = {r["meta"]["source_index"]: r for r in _lines(out / "grpo.jsonl")}
    # The question names Image A first; the answers are read from conversations[1] only.
    assert {i: grpo[i]["answer"] for i in (0, 2, 3, 5)} == {0: "B", 2: "A", 3: "B", 5: "B"}


def test_profiles_dict_and_string_read_alike_and_reward_columns(imported):
    out, _, images = imported
    sft = _lines(out / "sft.jsonl")
    want = {
        "liked": {
            "art_style": ["Mesoamerican Art"],
            "color": ["Pink"],
            "art_medium": ["Coiling"],
            "saturation": ["Muted"],
            "detail": ["Realistic"],
        },
        "disliked": {
            "art_style": ["Pixel Art"],
            "color": ["Jungle Green"],
            "art_medium": ["Digital Painting"],
            "saturation": ["Mid-tone"],
            "detail": ["Selective"],
        },
    }
    assert sft[0]["profile"] == want and sft[1]["profile"] == want
    # The CoT is the SFT target as written (the authors' key spelling kept).
    assert (
        sft[0]["cot"] == AUTHORS_COT and sft[0]["messages"][-1]["content"][0]["text"] == AUTHORS_COT
    )
    assert "ArtisticMedium" in sft[0]["cot"]
    grpo = {r["meta"]["source_index"]: r for r in _lines(out / "grpo.jsonl")}
    assert grpo[2]["prompt_subject"] == "a lighthouse at dusk"
    assert grpo[2]["meta"]["reference_prompt_list"] == ["a lighthouse at dusk", "a bowl of fruit"]
    assert grpo[5]["meta"]["style_notes"] == "from a pilot"
    assert grpo[5]["profile"]["liked"]["color"] == ["Pink"]  # the known keys of that profile kept
    # Images: absolute paths into the source folder, in placeholder order liked, disliked, A, B.
    root = images.resolve()
    assert grpo[2]["images"] == [
        str(root / p) for p in ("u1/p0.png", "u1/p1.png", "u1/n0.png", "u1/a.png", "u1/b.png")
    ]
    placeholders = sum(
        part["type"] == "image" for m in grpo[2]["messages"] for part in m["content"]
    )
    assert placeholders == 5


def test_loaders_read_the_import_as_sft_and_grpo(imported):
    from training.dataset import load_training_split
    from training.rewards import to_user_profile

    out, _, _ = imported
    sft = load_training_split(out, "sft", mode="sft")
    assert len(sft) == 2 and sft[0]["completion"][0]["content"][0]["text"] == AUTHORS_COT
    grpo = load_training_split(out, "grpo", mode="grpo")
    assert len(grpo) == 5 and len(grpo[0]["images"]) == 5
    assert to_user_profile(grpo[0]["profile"]).liked.color == ("Pink",)


def test_a_missing_split_names_the_imported_ones(imported):
    from preferthinker.errors import InputError
    from training.dataset import load_training_split

    out, _, _ = imported
    with pytest.raises(InputError, match=r"splits here: grpo, sft; choose one with dataset_split"):
        load_training_split(out, "train", mode="sft")


def test_only_the_first_five_references_per_side_are_used_and_checked(tmp_path):
    from training.importer import ImportConfig, import_dataset

    records, images = authors_layout(tmp_path)
    for k in range(5):
        _png(images / "u1" / f"extra{k}.png", (240, 150, 190))
    liked = [f"u1/extra{k}.png" for k in range(5)] + ["u1/gone.png"]  # the 6th does not exist
    source = tmp_path / "six.json"
    source.write_text(json.dumps([records[2] | {"prefered_images": liked}]))
    report = import_dataset(ImportConfig(str(source), str(images), str(tmp_path / "out")))
    assert report["grpo_prompts"] == 1 and report["rejected_total"] == 0
    record = _lines(tmp_path / "out" / "grpo.jsonl")[0]
    assert record["prefered_images"] == [str((images / p).resolve()) for p in liked[:5]]
    assert len(record["images"]) == 5 + 1 + 2


def test_question_format_line_alone_is_never_an_answer(tmp_path):
    """A record whose answer turn is the format line itself (both answers named) is rejected."""
    records, images = authors_layout(tmp_path)
    source = tmp_path / "one.json"
    source.write_text(
        json.dumps(
            [
                records[2]
                | {
                    "conversations": [
                        {"from": "human", "value": "Compare."},
                        {"from": "gpt", "value": QUESTION},
                    ]
                }
            ]
        )
    )
    from preferthinker.errors import InputError
    from training.importer import ImportConfig, import_dataset

    # the only record rejected: nothing to train on, so an error that says why, and no folder
    with pytest.raises(InputError, match=r"none of its 1 records can be used \(no_answer: 1\)"):
        import_dataset(ImportConfig(str(source), str(images), str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


def test_a_reference_prompt_list_that_holds_no_prompts_is_a_counted_reject(tmp_path):
    """Not a crash ('int' is not subscriptable) and not a prompt subject made of str(None)."""
    records, images = authors_layout(tmp_path)
    source = tmp_path / "bad_prompts.json"
    good = records[2]
    bad = [good | {"reference_prompt_list": 5}, good | {"reference_prompt_list": [None, 3]}]
    source.write_text(json.dumps([good, *bad]))
    from training.importer import ImportConfig, import_dataset

    report = import_dataset(ImportConfig(str(source), str(images), str(tmp_path / "out")))
    assert report["grpo_prompts"] == 1
    assert report["rejected"] == {"bad_reference_prompt_list": 2}


def test_json_list_datasets_folder_and_parquet_read_alike(tmp_path):
    import datasets

    from training.importer import read_records

    records, _ = authors_layout(tmp_path)
    records = records[:4]  # one column type per field: the rows datasets can hold together
    for r in records:
        r["prefer_attributes"], r["non_prefer_attributes"] = (
            _profile_string(LIKED),
            _profile_string(DISLIKED),
        )
    as_list = tmp_path / "train.json"
    as_list.write_text(json.dumps(records))
    ds = datasets.Dataset.from_list(records)
    ds.save_to_disk(str(tmp_path / "saved"))
    ds.to_parquet(str(tmp_path / "train.parquet"))
    want = [r["conversations"][1]["value"] for r in records]
    for source in (as_list, tmp_path / "saved", tmp_path / "train.parquet"):
        got = read_records(source)
        assert [r["conversations"][1]["value"] for r in got] == want, source
        assert got[3]["prefer_attributes"] == _profile_string(LIKED)


def test_import_refuses_a_used_folder_and_bad_paths(tmp_path, capsys):
    records, images = authors_layout(tmp_path)
    source = tmp_path / "train.jsonl"
    source.write_text(json.dumps(records[0]) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier work")
    assert main(["data", "import", str(source), "--images", str(images), "--out", str(out)]) == 2
    assert (
        "not empty" in capsys.readouterr().err and (out / "keep.txt").read_text() == "earlier work"
    )
    assert (
        main(
            [
                "data",
                "import",
                str(tmp_path / "nope.jsonl"),
                "--images",
                str(images),
                "--out",
                str(tmp_path / "o2"),
            ]
        )
        == 2
    )
    assert "training data not found" in capsys.readouterr().err
    assert (
        main(
            [
                "data",
                "import",
                str(source),
                "--images",
                str(tmp_path / "noimg"),
                "--out",
                str(tmp_path / "o3"),
            ]
        )
        == 2
    )
    assert "image folder not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("train.json", b"\xff\xfe\x00 not text", "is not UTF-8 text"),
        ("train.parquet", b"not parquet at all", "cannot read parquet"),
        ("train.jsonl", b'{"imageA": "a.png"}\n{"imageA": \n', "line 2 is not valid JSON"),
    ],
)
def test_import_of_an_unreadable_file_is_a_one_line_error(tmp_path, capsys, name, content, message):
    images = tmp_path / "images"
    images.mkdir()
    source = tmp_path / name
    source.write_bytes(content)
    args = ["data", "import", str(source), "--images", str(images), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"error: {source}" in err or f"error: cannot read parquet {source}" in err
    assert message in err and "Traceback" not in err


def test_a_line_that_is_not_json_costs_only_its_record(tmp_path, capsys):
    records, images = authors_layout(tmp_path)
    lines = [json.dumps(r) for r in records]
    lines.insert(1, '{"imageA": "u1/a.png", "conversations": [')  # cut short
    source = tmp_path / "train.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ds"
    assert main(["data", "import", str(source), "--images", str(images), "--out", str(out)]) == 0
    report = json.loads((out / "import_report.json").read_text())
    assert report["records"] == len(records) + 1
    assert report["rejected"]["not_json"] == 1
    assert {"record": 1, "reason": "not_json", "detail": report["problems"][0]["detail"]} in (
        report["problems"]
    )
    assert "record 1: not_json (line 2 is not valid JSON" in capsys.readouterr().err
    # every good record is still there
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert (
        main(["data", "import", str(clean), "--images", str(images), "--out", str(tmp_path / "c")])
        == 0
    )
    expected = json.loads((tmp_path / "c" / "import_report.json").read_text())
    assert (report["sft"], report["grpo"]) == (expected["sft"], expected["grpo"])


def test_import_summary_lines(tmp_path, capsys):
    records, images = authors_layout(tmp_path)
    source = tmp_path / "train.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    capsys.readouterr()
    assert (
        main(
            ["data", "import", str(source), "--images", str(images), "--out", str(tmp_path / "ds")]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert (
        "records read 11; SFT targets 2; GRPO prompts 3 (grpo.jsonl: 5); rejected 6 "
        "(missing_image: 1, no_answer_turn: 1, no_profile_for_grpo: 1, profile_mismatch: 1, "
        "totals_contradict_answer: 1, unreadable_image: 1)"
    ) in captured.out
    assert "skipped record 4: missing_image (imageB:" in captured.err
    assert "unknown field 'style_notes' in 1 record(s)" in captured.err
    assert "unknown field 'prefer_attributes.Mood' in 1 record(s)" in captured.err


# --- The tiny SFT and GRPO configs on the import, then the product on a multi-subset benchmark ---


def _config_with_split(tmp_path: Path, name: str, split: str) -> Path:
    """The tiny CPU config with the imported folder's split named (`dataset_split`)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text((CONFIGS / f"tiny-cpu-{name}.yaml").read_text() + f"\ndataset_split: {split}\n")
    return path


def authors_benchmark(root: Path, answers: dict[str, list[str]]) -> Path:
    """The authors' release layout: data/<SUBSET>/<SUBSET>.json + data/<SUBSET>/images/."""
    data = root / "data"
    for subset, subset_answers in answers.items():
        images = data / subset / "images"
        for name, color in (
            ("p.png", (240, 150, 190)),
            ("n.png", (40, 120, 80)),
            ("a.png", (200, 10, 10)),
            ("b.png", (10, 10, 200)),
        ):
            _png(images / name, color)
        items = [
            {
                "imageA": "a.png",
                "imageB": "b.png",
                "prefered_images": ["p.png"],
                "non_prefered_images": ["n.png"],
                "conversations": [{"from": "gpt", "value": f"Image {a}"}],
            }
            for a in subset_answers
        ]
        (data / subset / f"{subset}.json").write_text(json.dumps(items))
    return data


def test_tiny_sft_then_grpo_on_the_import_then_suite_eval(
    imported, tiny_assessor_path, tmp_path, capsys
):
    out, _, _ = imported
    sft_out, grpo_out = tmp_path / "sft", tmp_path / "grpo"
    assert (
        main(
            [
                "train",
                "sft",
                "--config",
                str(_config_with_split(tmp_path, "sft", "sft")),
                "--model",
                str(tiny_assessor_path),
                "--dataset",
                str(out),
                "--output-dir",
                str(sft_out),
            ]
        )
        == 0
    )
    note = json.loads((sft_out / "final" / "ptgen_training.json").read_text())
    assert note["stage"] == "sft" and note["steps"] == 2 and note["dataset"] == str(out)
    assert (
        main(
            [
                "train",
                "grpo",
                "--config",
                str(_config_with_split(tmp_path, "grpo", "grpo")),
                "--model",
                str(sft_out / "final"),
                "--dataset",
                str(out),
                "--output-dir",
                str(grpo_out),
            ]
        )
        == 0
    )
    state = json.loads((grpo_out / "final" / "ptgen_training.json").read_text())
    assert state["stage"] == "grpo" and state["steps"] == 2
    # The product, evaluated on every subset in one call.
    data = authors_benchmark(tmp_path, {"SP_ID": ["A", "B"], "PICKAPIC": ["B"]})
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                "--data",
                str(data),
                "--assessor",
                str(grpo_out / "final"),
                "--device",
                "cpu",
                "--max-new-tokens",
                "8",
                "--no-position-bias",
                "--no-similarity",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert list(result["subsets"]) == ["SP_ID", "PICKAPIC"] and result["n"] == 3
    assert [result["subsets"][s]["n"] for s in ("SP_ID", "PICKAPIC")] == [2, 1]
    assert result["subsets"]["PICKAPIC"]["image_root"] == str(data / "PICKAPIC" / "images")
