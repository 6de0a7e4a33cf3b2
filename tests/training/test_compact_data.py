"""`ptgen data build` with `verdict: compact`: compact targets after the compact prompt, written
from the same ground-truth scores as the full CoT, checked by `parse_compact`, rejects counted by
reason, and a tiny SFT run on the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preferthinker.compact import COMPACT_SYSTEM_PROMPT, format_compact, parse_compact
from preferthinker.errors import ConfigError, InputError
from preferthinker.parser import parse_output
from preferthinker.profile import ELEMENTS, Profile, UserProfile
from preferthinker.results import ElementScore
from ptgen.cli.main import main
from training.cot import check_cot
from training.data import DataConfig, build_dataset

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


def small_config(out: Path, **overrides) -> DataConfig:
    values = dict(
        output_dir=str(out),
        seed=3,
        train_users=2,
        eval_users=1,
        eval_splits=["unseen-MP"],
        refs=2,
        pairs=2,
        size=64,
        verdict="compact",
    )
    values.update(overrides)
    return DataConfig(**values)


def _records(out: Path, name: str = "benchmark") -> list[dict]:
    return [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def compact_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("compact")
    report = build_dataset(small_config(root / "compact"))
    build_dataset(small_config(root / "full", verdict="full"))
    return root / "compact", root / "full", report


def test_compact_targets_parse_to_the_ground_truth(compact_build):
    out, full_out, report = compact_build
    assert report["kept"] == 6 and report["dropped_total"] == 0
    records, full = _records(out), {r["id"]: r for r in _records(full_out)}
    assert sorted(r["id"] for r in records) == sorted(full)
    for record in records:
        parsed = parse_compact(record["cot"])
        assert record["verdict"] == "compact" and parsed.complete and not parsed.issues
        assert parsed.answer == record["answer"]
        # Scores follow the candidates' drawn terms: liked 4-5, disliked 0-1, else 1-3.
        liked, disliked = record["profile"]["liked"], record["profile"]["disliked"]
        for letter, score in (("a", "score_a"), ("b", "score_b")):
            attrs = record["meta"][f"attributes_{letter}"]
            for s in parsed.scores:
                term = str(attrs.get(s.element) or "").lower()
                value = getattr(s, score)
                if term in {t.lower() for t in liked[s.element]}:
                    assert value in (4, 5), (record["id"], s.element, letter)
                elif term in {t.lower() for t in disliked[s.element]}:
                    assert value in (0, 1), (record["id"], s.element, letter)
                else:
                    assert 1 <= value <= 3, (record["id"], s.element, letter)
        winner_total = parsed.total_a if record["answer"] == "A" else parsed.total_b
        assert winner_total > parsed.total_a + parsed.total_b - winner_total
        # One place for the scores: the full build of the same config holds the same ones.
        full_parsed = parse_output(full[record["id"]]["cot"])
        assert [(s.element, s.score_a, s.score_b) for s in parsed.scores] == [
            (s.element, s.score_a, s.score_b) for s in full_parsed.scores
        ]


def test_compact_records_hold_the_compact_conversation(compact_build):
    out, _, _ = compact_build
    for record in _records(out):
        system, user, assistant = record["messages"]
        assert system["content"][0]["text"] == COMPACT_SYSTEM_PROMPT
        text = " ".join(p.get("text", "") for p in user["content"])
        for term in record["profile"]["liked"]["color"]:
            assert term in text  # the known profile is in the prompt
        # Only the two candidates are sent (the references stay in the record's own fields).
        assert record["images"] == [record["imageA"], record["imageB"]]
        assert sum(p["type"] == "image" for p in user["content"]) == 2
        assert assistant["content"][0]["text"] == record["cot"]
        assert text.rstrip().endswith("<answer>Image A or Image B</answer>")


def test_compact_build_drops_and_counts_reasons(tmp_path, monkeypatch):
    import synthpref.bench as synthpref

    real = synthpref.make_user_items

    def corrupted(*args, **kwargs):
        items = real(*args, **kwargs)
        meta = items[0].meta  # the profile contradicts the answer
        meta["attributes_a"], meta["attributes_b"] = meta["attributes_b"], meta["attributes_a"]
        items[1].meta["attributes_b"] = dict(items[1].meta["attributes_a"])  # cannot decide
        return items

    monkeypatch.setattr(synthpref, "make_user_items", corrupted)
    report = build_dataset(small_config(tmp_path / "data", eval_users=0))
    assert report["dropped"] == {
        "profile_contradicts_ground_truth": 2,
        "profile_does_not_decide": 2,
    }


def test_check_cot_reads_compact_targets_with_parse_compact():
    profile = UserProfile(Profile(color="Pink"), Profile(color="Charcoal Gray"))
    scores = [ElementScore(e, 1, 4) for e in ELEMENTS]
    good = format_compact(scores, "B")
    assert check_cot(good, profile, "B", scores, verdict="compact") is None
    # The full parser would not read it: the compact check is not the full one.
    assert check_cot(good, profile, "B", scores) is not None
    assert check_cot("I like B.", profile, "B", verdict="compact") == "unparseable"
    assert check_cot(good, profile, "A", verdict="compact") == "totals_contradict_answer"
    wrong_answer = good.replace("Image B", "Image A")
    assert check_cot(wrong_answer, profile, "B", verdict="compact") == "answer_mismatch"
    other = [ElementScore(e, 0, 4) for e in ELEMENTS]
    assert check_cot(good, profile, "B", other, verdict="compact") == "scores_changed"


def test_compact_and_full_builds_do_not_share_a_folder(compact_build, tmp_path):
    _, full_out, _ = compact_build
    with pytest.raises(ConfigError, match="another config"):
        build_dataset(small_config(full_out))
    with pytest.raises(ValueError, match="verdict"):
        small_config(tmp_path, verdict="short")
    with pytest.raises(ValueError, match="cot_rewriter"):
        small_config(tmp_path, cot_rewriter="http://127.0.0.1:9/v1")


def test_grpo_view_of_a_compact_build_is_refused(compact_build):
    from training.dataset import load_training_split

    out, _, _ = compact_build
    with pytest.raises(InputError, match="compact"):
        load_training_split(out, "train", mode="grpo")


def test_cli_build_from_a_config_file_then_tiny_sft(tmp_path, tiny_assessor_path):
    from preferthinker.config import load_config
    from training.dataset import load_training_split
    from training.sft import SFTTrainingConfig, train_sft

    config = tmp_path / "data.yaml"
    config.write_text(
        "seed: 1\ntrain_users: 1\neval_users: 0\nrefs: 1\npairs: 2\nsize: 64\nverdict: compact\n"
    )
    data = tmp_path / "data"
    assert main(["data", "build", "--config", str(config), "--output-dir", str(data)]) == 0
    sft_view = load_training_split(data, "train", mode="sft")
    assert parse_compact(sft_view[0]["completion"][0]["content"][0]["text"]).complete
    cfg = load_config(
        SFTTrainingConfig,
        CONFIGS / "tiny-cpu-sft.yaml",
        {
            "model_name_or_path": str(tiny_assessor_path),
            "dataset_path": str(data),
            "output_dir": str(tmp_path / "sft"),
            "max_steps": 2,
            "save_strategy": "no",
        },
    )
    from transformers import TrainerCallback

    losses = []

    class Losses(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    final = train_sft(cfg, callbacks=[Losses()])
    assert (final / "model.safetensors").is_file()
    note = json.loads((final / "ptgen_training.json").read_text())
    assert note["stage"] == "sft" and note["steps"] == 2
    assert len(losses) == 2 and all(0 < loss < float("inf") for loss in losses)
