"""`score_loss_weight` and `balance_scores`: the SFT loss can weight the assessment's score tokens (learning study)."""

from __future__ import annotations

import pytest

from preferthinker.profile import ELEMENTS


def test_score_tokens_are_exactly_the_element_scores(tiny_assessor_path, handmade):
    import torch
    from transformers import AutoProcessor

    from preferthinker.parser import parse_output
    from training.sft import score_token_ids, score_token_weights

    tokenizer = AutoProcessor.from_pretrained(tiny_assessor_path).tokenizer
    cot = handmade.make_sample(0).cot
    labels = torch.tensor([tokenizer(cot)["input_ids"]])
    weights = score_token_weights(labels, *score_token_ids(tokenizer), 7.0)
    flagged = [tokenizer.decode([i]).strip() for i, w in zip(labels[0].tolist(), weights[0].tolist()) if w == 7.0]
    parsed = parse_output(cot)
    # Ten digits, in writing order: A and B per element; totals and numbered headers are not scores.
    assert len(flagged) == 2 * len(ELEMENTS)
    assert flagged == [str(v) for s in parsed.scores for v in (s.score_a, s.score_b)]
    assert set(weights[0].tolist()) == {1.0, 7.0}


def test_balanced_weights_give_each_score_value_the_same_total(tiny_assessor_path, handmade):
    import torch
    from transformers import AutoProcessor

    from training.sft import score_positions, score_token_ids, score_token_weights

    tokenizer = AutoProcessor.from_pretrained(tiny_assessor_path).tokenizer
    labels = torch.tensor([tokenizer(handmade.make_sample(0).cot)["input_ids"]])
    ids = score_token_ids(tokenizer)
    at_scores = score_positions(labels, *ids)
    values = labels[at_scores]
    assert len(values.unique()) > 1 and len(set(values.tolist())) < len(values)  # unequal counts to balance
    weights = score_token_weights(labels, *ids, 3.0, balance=True)
    totals = {v: weights[at_scores & (labels == v)].sum().item() for v in values.unique().tolist()}
    assert max(totals.values()) == pytest.approx(min(totals.values()))
    assert weights[at_scores].mean().item() == pytest.approx(3.0)  # the mean score weight is kept
    assert (weights[~at_scores] == 1.0).all()


@pytest.mark.parametrize("weight, balance", [(4.0, False), (200.0, True)])  # 200: the scores dominate
def test_weighted_loss_is_the_weighted_token_cross_entropy(sft_trainer, weight, balance):
    import torch

    from training.sft import score_positions, score_token_ids

    trainer = sft_trainer(score_loss_weight=weight, balance_scores=balance, per_device_train_batch_size=2)
    processor = trainer.processing_class
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    model = trainer.model.eval()
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(30)  # peaked logits: token losses far apart, so weightings differ
        weighted = trainer.compute_loss(model, dict(batch)).item()
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    token_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
    ids = score_token_ids(processor.tokenizer)
    # The score positions (checked against the parser above); the weights are written out here.
    positions = (score_positions(labels, *ids) & mask).nonzero().tolist()
    assert len(positions) == 2 * 2 * len(ELEMENTS)  # ten scores a sample
    values = [labels[i, j].item() for i, j in positions]

    def by_hand(balanced: bool):
        weights = mask.float()
        for (i, j), value in zip(positions, values):
            # balanced: each score value present gets an equal share of the scores' total weight
            share = len(values) / (len(set(values)) * values.count(value)) if balanced else 1.0
            weights[i, j] = weight * share
        return ((token_loss * weights).sum() / weights.sum()).item()

    plain = (token_loss * mask).sum() / mask.sum()
    assert weighted == pytest.approx(by_hand(balance), rel=1e-4)
    assert abs(weighted - plain.item()) > 1e-4  # the weighting changed the loss
    if balance:  # and balancing changed it
        assert abs(weighted - by_hand(False)) > 1e-3 * weighted


@pytest.mark.parametrize("processes", [1, 4])
def test_weighted_loss_scales_across_processes_like_trls(sft_trainer, monkeypatch, processes):
    """With `average_tokens_across_devices` (the default), `num_items_in_batch` counts every
    rank's tokens and DDP averages gradients; TRL scales its loss by the number of ranks. The
    weighted loss must do the same: at weight ~1 it equals TRL's own loss on N ranks. (One CPU
    process here: the rank count the trainer reads is patched; the arithmetic is what is tested.)"""
    import torch
    from accelerate import Accelerator

    trainer = sft_trainer(score_loss_weight=1.0, per_device_train_batch_size=2)
    assert trainer.args.average_tokens_across_devices
    monkeypatch.setattr(Accelerator, "num_processes", property(lambda self: processes))
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    local_tokens = (batch["labels"][:, 1:] != -100).sum()
    # All ranks' tokens over 2 accumulation steps, as Trainer computes it (ranks alike here).
    num_items = local_tokens * processes * 2
    model = trainer.model.eval()
    with torch.no_grad():
        trl_loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=num_items).item()
        trainer.args.score_loss_weight = 1.0 + 1e-6  # our weighted path, at (almost) TRL's weights
        ours = trainer.compute_loss(model, dict(batch), num_items_in_batch=num_items).item()
        trainer.args.score_loss_weight = 1.0
        plain = trainer.compute_loss(model, dict(batch)).item()  # mean over this micro-batch
    assert ours == pytest.approx(trl_loss, rel=1e-4)
    assert ours == pytest.approx(plain / 2, rel=1e-4)  # a rank's share, scaled back by the ranks


def test_score_loss_weight_must_be_positive(tmp_path):
    from training.sft import SFTTrainingConfig

    with pytest.raises(ValueError, match="score_loss_weight"):
        SFTTrainingConfig(output_dir=str(tmp_path), model_name_or_path="m", dataset_path="d", score_loss_weight=0.0,
                          use_cpu=True, bf16=False)
