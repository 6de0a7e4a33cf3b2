"""`vision_learning_rate`: SFT can train the vision tower at its own, lower rate (learning study)."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


def _trainer(tiny_assessor_path, tmp_path, handmade, **fields):
    from transformers import AutoProcessor

    from preferthinker.config import load_config
    from training import modeling
    from training.dataset import finalize_dataset, load_training_split, write_sample
    from training.sft import SFTTrainingConfig, _score_weighted_trainer

    for index in range(2):
        write_sample(handmade.make_sample(index), tmp_path / "data")
    finalize_dataset(tmp_path / "data")
    cfg = load_config(SFTTrainingConfig, CONFIGS / "tiny-cpu-sft.yaml", {
        "model_name_or_path": str(tiny_assessor_path), "dataset_path": str(tmp_path / "data"),
        "output_dir": str(tmp_path / "run"), "per_device_train_batch_size": 2, "max_steps": 1,
        "learning_rate": 1e-3, "warmup_steps": 0, "lr_scheduler_type": "constant", "weight_decay": 0.0,
        "save_strategy": "no", "report_to": [], **fields,
    })
    return _score_weighted_trainer()(
        model=modeling.load_model(cfg), args=cfg, processing_class=AutoProcessor.from_pretrained(tiny_assessor_path),
        train_dataset=load_training_split(cfg.dataset_path, "train", mode="sft", max_pixels=cfg.max_pixels),
    )


def _max_change(trainer, vision: bool) -> float:
    from training.modeling import is_vision_parameter

    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()
              if p.requires_grad and is_vision_parameter(n) == vision}
    assert before
    trainer.train()
    after = dict(trainer.model.named_parameters())
    return max((after[n].detach() - p).abs().max().item() for n, p in before.items())


def test_vision_tower_steps_at_its_own_rate(tiny_assessor_path, tmp_path, handmade):
    # Adam's first step moves each weight by about the learning rate, so the largest change
    # shows the rate each part trained at.
    trainer = _trainer(tiny_assessor_path, tmp_path, handmade, freeze_vision=False, vision_learning_rate=1e-5)
    from training.modeling import is_vision_parameter

    trainer.create_optimizer()
    rates = {is_vision_parameter(n): {g["lr"] for g in trainer.optimizer.param_groups
                                      if any(p is q for q in g["params"])}
             for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert rates == {True: {1e-5}, False: {1e-3}}
    trainer.optimizer = None  # train() builds it again, with its scheduler
    vision_change = _max_change(trainer, vision=True)
    assert 0 < vision_change <= 1.5e-5

    language_change = _max_change(
        _trainer(tiny_assessor_path, tmp_path / "plain", handmade, freeze_vision=False), vision=False)
    assert language_change > 5e-4


def test_vision_learning_rate_needs_a_trainable_tower(tmp_path):
    from training.sft import SFTTrainingConfig

    common = dict(output_dir=str(tmp_path), model_name_or_path="m", dataset_path="d", use_cpu=True, bf16=False)
    with pytest.raises(ValueError, match="vision_learning_rate needs freeze_vision: false"):
        SFTTrainingConfig(vision_learning_rate=1e-4, **common)
    with pytest.raises(ValueError, match="vision_learning_rate must be > 0"):
        SFTTrainingConfig(vision_learning_rate=0.0, freeze_vision=False, **common)
