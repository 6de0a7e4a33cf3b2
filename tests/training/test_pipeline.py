"""The whole pipeline through the CLI on tiny models: `ptgen data build` with the tiny diffusion
generator, `ptgen train sft` (then resumed), `ptgen train grpo` (LoRA, merged), and the final
model loading in `ptgen assess` and TransformersEngine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ptgen.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


@pytest.fixture(scope="module")
def tiny_generator_path(tmp_path_factory) -> Path:
    from generation.tiny import make_tiny_generator

    return make_tiny_generator(tmp_path_factory.mktemp("tinygen") / "generator")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, tiny_generator_path) -> Path:
    out = tmp_path_factory.mktemp("tinydata") / "data"
    rc = main(
        [
            "data",
            "build",
            "--config",
            str(CONFIGS / "tiny-cpu-data.yaml"),
            "--output-dir",
            str(out),
            "--generator",
            str(tiny_generator_path),
            "--train-users",
            "1",
            "--eval-users",
            "0",
        ]
    )
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory, tiny_assessor_path, tiny_data) -> Path:
    out = tmp_path_factory.mktemp("sft") / "run"
    rc = main(
        [
            "train",
            "sft",
            "--config",
            str(CONFIGS / "tiny-cpu-sft.yaml"),
            "--model",
            str(tiny_assessor_path),
            "--dataset",
            str(tiny_data),
            "--output-dir",
            str(out),
        ]
    )
    assert rc == 0
    return out


def test_data_build_with_the_tiny_diffusion_generator(tiny_data):
    manifest = json.loads((tiny_data / "manifest.json").read_text())
    assert manifest["report"]["kept"] == 2 and manifest["report"]["generator"].endswith("generator")
    record = json.loads((tiny_data / "train.jsonl").read_text().splitlines()[0])
    from PIL import Image

    with Image.open(tiny_data / record["imageA"]) as image:
        assert image.size == (64, 64)


def test_sft_saves_a_model_the_assessor_loads(sft_run, tiny_data, capsys):
    final = sft_run / "final"
    for name in (
        "config.json",
        "model.safetensors",
        "processor_config.json",
        "tokenizer.json",
        "ptgen_training.json",
    ):
        assert (final / name).is_file(), name
    note = json.loads((final / "ptgen_training.json").read_text())
    assert note["stage"] == "sft" and note["layout"] == "full" and note["steps"] == 2
    assert (sft_run / "checkpoint-2").is_dir()
    # `ptgen assess` loads the folder as it is.
    record = json.loads((tiny_data / "train.jsonl").read_text().splitlines()[0])
    refs = tiny_data / Path(record["prefered_images"][0]).parent
    capsys.readouterr()
    rc = main(
        [
            "assess",
            str(tiny_data / record["imageA"]),
            str(tiny_data / record["imageB"]),
            "--refs",
            str(refs),
            "--assessor",
            str(final),
            "--max-new-tokens",
            "8",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["assessor"] == str(final) and "winner" in result


def test_sft_resumes_from_its_last_checkpoint(sft_run, tiny_data, tiny_assessor_path):
    rc = main(
        [
            "train",
            "sft",
            "--config",
            str(CONFIGS / "tiny-cpu-sft.yaml"),
            "--model",
            str(tiny_assessor_path),
            "--dataset",
            str(tiny_data),
            "--output-dir",
            str(sft_run),
            "--max-steps",
            "3",
            "--resume",
        ]
    )
    assert rc == 0
    state = json.loads((sft_run / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    # Only one step ran after the resume: the log holds steps 1-2 from the checkpoint and step 3.
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3]


def test_grpo_lora_merged_from_the_sft_model(sft_run, tiny_data, tmp_path):
    out = tmp_path / "grpo"
    rc = main(
        [
            "train",
            "grpo",
            "--config",
            str(CONFIGS / "tiny-cpu-grpo.yaml"),
            "--model",
            str(sft_run / "final"),
            "--dataset",
            str(tiny_data),
            "--output-dir",
            str(out),
        ]
    )
    assert rc == 0
    final = out / "final"
    note = json.loads((final / "ptgen_training.json").read_text())
    assert note["stage"] == "grpo" and note["layout"] == "merged"
    assert not (final / "adapter_config.json").exists()
    from preferthinker.engines import create_engine
    from preferthinker.engines.base import GenerationConfig

    engine = create_engine(str(final), device="cpu")
    text = engine.generate(
        [[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]],
        GenerationConfig(max_new_tokens=4),
    )[0].text
    assert isinstance(text, str)


def test_unknown_config_key_is_refused(tmp_path, capsys):
    bad = tmp_path / "sft.yaml"
    bad.write_text("model_name_or_path: x\ndataset_path: y\nlerning_rate: 0.1\n")
    rc = main(["train", "sft", "--config", str(bad)])
    assert rc == 2
    assert "lerning_rate" in capsys.readouterr().err


def test_lora_adapter_only_save_and_merge(tiny_assessor_path, tiny_data, tmp_path):
    from preferthinker.config import load_config
    from training.modeling import merge_adapter
    from training.sft import SFTTrainingConfig, train_sft

    cfg = load_config(
        SFTTrainingConfig,
        CONFIGS / "tiny-cpu-sft.yaml",
        {
            "model_name_or_path": str(tiny_assessor_path),
            "dataset_path": str(tiny_data),
            "output_dir": str(tmp_path / "lora"),
            "max_steps": 1,
            "use_lora": True,
            "merge_lora": False,
            "lora_r": 4,
            "lora_alpha": 8,
            "save_strategy": "no",
        },
    )
    final = train_sft(cfg)
    assert (final / "adapter_config.json").is_file() and not (final / "model.safetensors").exists()
    assert json.loads((final / "ptgen_training.json").read_text())["layout"] == "adapter"
    merged = merge_adapter(final, tmp_path / "merged")
    from preferthinker.engines import create_engine

    assert create_engine(str(merged), device="cpu").name == str(merged)
