"""`build_dataset`: a small procedural build, its loaders, the quality filter's report, and resume
after an interruption (finished samples untouched, result equal to an uninterrupted build)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from preferthinker.errors import ConfigError, OutputExistsError
from training.data import DataConfig, build_dataset, load_prompts


def small_config(out: Path, **overrides) -> DataConfig:
    values = dict(
        output_dir=str(out),
        seed=3,
        train_users=3,
        eval_users=1,
        eval_splits=["seen-SP", "unseen-MP"],
        refs=2,
        pairs=2,
        size=64,
    )
    values.update(overrides)
    return DataConfig(**values)


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """mtime (ns) and sha256 of every sample file and image."""
    files = list((root / "samples").glob("*.json")) + list((root / "images").rglob("*.png"))
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in files
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "data"
    report = build_dataset(small_config(out))
    return out, report


def test_build_report_files_and_loaders(built):
    out, report = built
    assert report["kept"] == 10 and report["dropped_total"] == 0
    assert report["kept_per_split"] == {"train": 6, "seen-SP": 2, "unseen-MP": 2}
    assert report["files"] == {"train": 6, "test": 4}
    # The authors' benchmark fields + ours, paths relative to the folder and present.
    record = json.loads((out / "train.jsonl").read_text().splitlines()[0])
    for key in (
        "imageA",
        "imageB",
        "prefered_images",
        "non_prefered_images",
        "conversations",
        "cot",
        "profile",
        "split",
        "messages",
        "images",
    ):
        assert key in record
    assert record["conversations"][0]["value"] == f"Image {record['answer']}"
    assert all((out / p).is_file() for p in record["images"])
    placeholders = sum(part["type"] == "image" for m in record["messages"] for part in m["content"])
    assert placeholders == len(record["images"]) == 2 + 2 + 2
    assert (
        record["messages"][-1]["role"] == "assistant"
        and record["messages"][-1]["content"][0]["text"] == record["cot"]
    )


def test_build_readable_by_load_benchmark_and_datasets(built):
    import datasets

    from preferthinker.benchmark import load_benchmark

    out, _ = built
    items = load_benchmark(out, check_files=True)
    assert len(items) == 10 and {i.split for i in items} == {"train", "seen-SP", "unseen-MP"}
    assert all(i.profile is not None and not i.profile.liked.is_empty() for i in items)
    loaded = datasets.load_dataset(str(out))
    assert loaded["train"].num_rows == 6 and loaded["test"].num_rows == 4


def test_training_views_of_the_folder(built):
    from training.dataset import load_training_split

    out, _ = built
    sft = load_training_split(out, "train", mode="sft", max_pixels=32 * 32)
    assert set(sft.column_names) == {"prompt", "completion", "images"}
    row = sft[0]
    assert row["completion"][0]["role"] == "assistant" and len(row["images"]) == 6
    assert row["images"][0].size[0] * row["images"][0].size[1] <= 32 * 32
    grpo = load_training_split(out, "test", mode="grpo", max_samples=3)
    assert grpo.num_rows == 3 and grpo[0]["answer"] in ("A", "B")
    assert json.loads(grpo[0]["profile"])["liked"]


def test_resume_after_interruption_leaves_finished_samples_untouched(tmp_path, built):
    out = tmp_path / "data"
    config = small_config(out)

    class Stop(Exception):
        pass

    def stop_after(k):
        def progress(done, total):
            if done >= k:
                raise Stop

        return progress

    with pytest.raises(Stop):
        build_dataset(config, progress=stop_after(3))  # user 0 complete, user 1 half done
    first = snapshot(out)
    assert len(list((out / "samples").glob("*.json"))) == 3
    assert not (out / "train.jsonl").exists()
    report = build_dataset(config)
    assert report["resumed_users"] == 1 and report["kept"] == 10
    after = snapshot(out)
    for path, stamp in first.items():
        assert after[path] == stamp, f"{path} was rewritten"
    # The resumed build equals an uninterrupted one.
    full_out, _ = built
    assert (out / "train.jsonl").read_text() == (full_out / "train.jsonl").read_text()
    assert (out / "test.jsonl").read_text() == (full_out / "test.jsonl").read_text()
    # Running again is a no-op.
    again = build_dataset(config)
    assert again["resumed_users"] == 5 and snapshot(out) == after


def test_folder_of_another_build_is_refused(tmp_path, built):
    out, _ = built
    with pytest.raises(ConfigError, match="another config"):
        build_dataset(small_config(out, seed=4))
    stranger = tmp_path / "other"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        build_dataset(small_config(stranger))


def test_quality_filter_drops_and_counts_reasons(tmp_path, monkeypatch):
    import synthpref.bench as synthpref

    real = synthpref.make_user_items

    def corrupted(*args, **kwargs):
        items = real(*args, **kwargs)
        # First pair: candidates' ground truth swapped (the profile contradicts the answer).
        meta = items[0].meta
        meta["attributes_a"], meta["attributes_b"] = meta["attributes_b"], meta["attributes_a"]
        # Second pair: both candidates identical (the profile cannot decide).
        items[1].meta["attributes_b"] = dict(items[1].meta["attributes_a"])
        return items

    monkeypatch.setattr(synthpref, "make_user_items", corrupted)
    report = build_dataset(small_config(tmp_path / "data", eval_users=0, train_users=2))
    assert report["kept"] == 0 and report["dropped_total"] == 4
    assert report["dropped"] == {
        "profile_contradicts_ground_truth": 2,
        "profile_does_not_decide": 2,
    }
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert manifest["report"]["dropped"] == report["dropped"]


def test_user_prompts_file(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# mine\na red kite\n\na red kite\na blue door\n")
    assert load_prompts(prompts) == ["a red kite", "a blue door"]
    assert len(load_prompts()) >= 150


@pytest.mark.parametrize(
    "field,value",
    [("pairs", 0), ("held_out_fraction", 1.0), ("eval_splits", ["easy"]), ("output_dir", "")],
)
def test_data_config_rejects_bad_values(tmp_path, field, value):
    values = dict(output_dir=str(tmp_path))
    values[field] = value
    with pytest.raises(ValueError, match=field):
        DataConfig(**values)


def test_llm_rewrites_kept_when_valid_and_counted_when_rejected(tmp_path):
    from preferthinker.engines.scripted import ScriptedEngine

    calls = {"n": 0}

    def responder(conversation):
        calls["n"] += 1
        text = conversation[1]["content"][0]["text"]
        # Every other rewrite breaks the format; the others only reword.
        return (
            "I prefer the first one."
            if calls["n"] % 2 == 0
            else text.replace("<think>", "<think>\n")
        )

    report = build_dataset(
        small_config(tmp_path / "data", train_users=2, eval_users=0),
        rewriter=ScriptedEngine(responder),
    )
    assert report["kept"] == 4 and report["rewrite_rejected"] == {"rewrite_unparseable": 2}
    records = [
        json.loads(line) for line in (tmp_path / "data" / "train.jsonl").read_text().splitlines()
    ]
    sources = sorted(r["meta"]["cot_source"] for r in records)
    assert sources == ["llm", "llm", "template", "template"]
    assert all(r["cot"] == r["messages"][-1]["content"][0]["text"] for r in records)
