"""`vision_learning_rate`: SFT can train the vision tower at its own, lower rate (learning
study)."""

from __future__ import annotations

import pytest

# One Adam step at known rates (weight decay off, constant schedule).
ONE_STEP = dict(
    per_device_train_batch_size=2,
    max_steps=1,
    learning_rate=1e-3,
    warmup_steps=0,
    lr_scheduler_type="constant",
    weight_decay=0.0,
    save_strategy="no",
    report_to=[],
)


def _max_change(trainer, vision: bool) -> float:
    from training.modeling import is_vision_parameter

    before = {
        n: p.detach().clone()
        for n, p in trainer.model.named_parameters()
        if p.requires_grad and is_vision_parameter(n) == vision
    }
    assert before
    trainer.train()
    after = dict(trainer.model.named_parameters())
    return max((after[n].detach() - p).abs().max().item() for n, p in before.items())


def test_vision_tower_steps_at_its_own_rate(sft_trainer):
    # Adam's first step moves each weight by about the learning rate, so the largest change
    # shows the rate each part trained at.
    from training.modeling import is_vision_parameter

    trainer = sft_trainer(freeze_vision=False, vision_learning_rate=1e-5, **ONE_STEP)
    trainer.create_optimizer()
    group_lr = {id(p): g["lr"] for g in trainer.optimizer.param_groups for p in g["params"]}
    rates: dict[bool, set] = {}
    for name, parameter in trainer.model.named_parameters():
        if parameter.requires_grad:  # every trainable parameter is in exactly one group
            rates.setdefault(is_vision_parameter(name), set()).add(group_lr[id(parameter)])
    assert rates == {True: {1e-5}, False: {1e-3}}
    assert len(group_lr) == sum(len(g["params"]) for g in trainer.optimizer.param_groups)
    trainer.optimizer = None  # train() builds it again, with its scheduler
    vision_change = _max_change(trainer, vision=True)
    assert 0 < vision_change <= 1.5e-5

    language_change = _max_change(
        sft_trainer("plain", freeze_vision=False, **ONE_STEP), vision=False
    )
    assert language_change > 5e-4


def test_vision_learning_rate_needs_a_trainable_tower(tmp_path):
    from training.sft import SFTTrainingConfig

    common = dict(
        output_dir=str(tmp_path), model_name_or_path="m", dataset_path="d", use_cpu=True, bf16=False
    )
    with pytest.raises(ValueError, match="vision_learning_rate needs freeze_vision: false"):
        SFTTrainingConfig(vision_learning_rate=1e-4, **common)
    with pytest.raises(ValueError, match="vision_learning_rate must be > 0"):
        SFTTrainingConfig(vision_learning_rate=0.0, freeze_vision=False, **common)
