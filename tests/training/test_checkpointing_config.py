"""The training configs use transformers 5's `activation_checkpointing` (its deprecated alias
`gradient_checkpointing` warns, and TRL's configs set that alias to True by default)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


@pytest.mark.parametrize(
    "name",
    [
        "qwen2.5-vl-7b-sft.yaml",
        "qwen2.5-vl-7b-grpo.yaml",
        "tiny-cpu-sft.yaml",
        "tiny-cpu-grpo.yaml",
    ],
)
def test_configs_set_activation_checkpointing_without_the_deprecated_alias(name, tmp_path):
    from preferthinker.config import load_config
    from training.grpo import GRPOTrainingConfig
    from training.sft import SFTTrainingConfig

    raw = yaml.safe_load((CONFIGS / name).read_text())
    assert "gradient_checkpointing" not in raw and isinstance(raw["activation_checkpointing"], bool)
    cls = SFTTrainingConfig if "sft" in name else GRPOTrainingConfig
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the alias would warn here
        config = load_config(
            cls, CONFIGS / name, {"use_cpu": True, "bf16": False, "output_dir": str(tmp_path)}
        )
    assert config.activation_checkpointing is raw["activation_checkpointing"]
    assert (
        config.gradient_checkpointing is raw["activation_checkpointing"]
    )  # what TRL reads mirrors it
    if "7b" in name:
        assert config.activation_checkpointing  # 7B activations do not fit without it
