"""One ModelFields dataclass for the SFT and GRPO configs; training configs in sectioned files;
the shipped training/configs/*.yaml still load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from preferthinker.config import load_config, section_of
from preferthinker.errors import ConfigError
from training.grpo import GRPOTrainingConfig
from training.modeling import DEFAULT_TRAINING_MAX_PIXELS, ModelFields
from training.rewards import RewardConfig
from training.sft import SFTTrainingConfig

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
REQUIRED = {"model_name_or_path": "m", "dataset_path": "d"}
CPU = {"use_cpu": True, "bf16": False, "report_to": "none"}


def _build(cls, tmp_path, **fields):
    return cls(output_dir=str(tmp_path), **REQUIRED, **CPU, **fields)


def test_both_configs_take_every_shared_field_from_the_one_dataclass(tmp_path):
    shared = {f.name: f for f in dataclasses.fields(ModelFields)}
    assert {
        "use_lora",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "lora_target_modules",
        "merge_lora",
        "model_name_or_path",
        "max_pixels",
        "freeze_vision",
    } <= set(shared)
    values = {
        "use_lora": True,
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.1,
        "lora_target_modules": ["q_proj"],
        "merge_lora": False,
        "max_pixels": 3136,
        "freeze_vision": False,
        "max_samples": 3,
        "final_dir": "f",
        "dataset_split": "test",
    }
    assert set(values) | set(REQUIRED) == set(shared)  # the test covers every shared field
    for cls in (SFTTrainingConfig, GRPOTrainingConfig):
        assert issubclass(cls, ModelFields)
        cfg = _build(cls, tmp_path, **values)
        assert {name: getattr(cfg, name) for name in values} == values
        defaults = _build(cls, tmp_path)
        assert defaults.max_pixels == DEFAULT_TRAINING_MAX_PIXELS and defaults.lora_r == 16


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("lora_r", 0, "lora_r must be >= 1, got 0"),
        ("lora_dropout", 1.0, "lora_dropout must be in"),
        ("max_samples", 0, "max_samples must be >= 1"),
        ("max_pixels", 100, "max_pixels must be >= 784"),
    ],
)
def test_both_configs_check_the_shared_fields_the_same_way(tmp_path, field, value, message):
    for cls in (SFTTrainingConfig, GRPOTrainingConfig):
        with pytest.raises(ValueError, match=message):
            _build(cls, tmp_path, **{field: value})


def test_grpo_reward_defaults_are_the_reward_configs(tmp_path):
    cfg = _build(GRPOTrainingConfig, tmp_path)
    assert cfg.reward_weights == RewardConfig().weights == [1.0, 0.3, 0.7]
    assert cfg.reward_config() == RewardConfig()


@pytest.mark.parametrize(
    "name, cls",
    [
        ("tiny-cpu-sft.yaml", SFTTrainingConfig),
        ("qwen2.5-vl-7b-sft.yaml", SFTTrainingConfig),
        ("tiny-cpu-grpo.yaml", GRPOTrainingConfig),
        ("qwen2.5-vl-7b-grpo.yaml", GRPOTrainingConfig),
    ],
)
def test_shipped_flat_training_configs_load_without_a_warning(name, cls, recwarn):
    cfg = load_config(cls, CONFIGS / name, {"bf16": False, "use_cpu": True})
    assert cfg.model_name_or_path and cfg.dataset_path
    assert not [w for w in recwarn if "flat config" in str(w.message)]


def test_training_sections_in_one_file(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(
        "sft:\n  model_name_or_path: m\n  dataset_path: d\n  lora_r: 4\n"
        "  use_cpu: true\n  bf16: false\n  output_dir: out\n"
        "grpo:\n  model_name_or_path: m2\n  dataset_path: d\n"
        "  use_cpu: true\n  bf16: false\n  output_dir: out2\n  reward_weights: [1, 0, 0]\n"
    )
    assert section_of(SFTTrainingConfig) == "sft" and section_of(GRPOTrainingConfig) == "grpo"
    sft = load_config(SFTTrainingConfig, path)
    grpo = load_config(GRPOTrainingConfig, path, {"max_steps": 2})
    assert (sft.model_name_or_path, sft.lora_r) == ("m", 4)
    assert (grpo.model_name_or_path, grpo.reward_weights, grpo.max_steps) == ("m2", [1, 0, 0], 2)


def test_a_grpo_key_in_the_sft_section_names_its_section(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(
        "sft:\n  model_name_or_path: m\n  dataset_path: d\n  reward_weights: [1, 0, 0]\n"
    )
    expected = (
        r"unknown key 'reward_weights' in section sft: for SFTTrainingConfig "
        r"\(it belongs to section grpo:\)"
    )
    with pytest.raises(ConfigError, match=expected):
        load_config(SFTTrainingConfig, path)
