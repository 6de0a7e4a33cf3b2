"""Cold-start SFT: TRL's SFTTrainer on the CoT dataset `ptgen data build` writes.

Each sample is the predict-then-assess conversation (system prompt, liked and disliked
references, the two candidates) with the CoT as the assistant turn; TRL computes the loss on the
completion only. Full fine-tuning or LoRA, checkpoints and resume are TRL/transformers' own; the
final folder (merged weights + processor by default) loads in `ptgen assess --assessor <dir>`.

Multi-GPU: launch the same command through accelerate (see docs/training.md), e.g.
`accelerate launch --config_file training/configs/accelerate-zero3.yaml -m ptgen.cli train sft
--config ...`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from trl import SFTConfig

from training import modeling

logger = logging.getLogger(__name__)


@dataclass
class SFTTrainingConfig(modeling.ModelFields, SFTConfig):
    """TRL's SFTConfig plus what ptgen needs to find the model and the data.

    Our fields (everything else is SFTConfig / TrainingArguments, e.g. learning_rate,
    num_train_epochs, per_device_train_batch_size, gradient_accumulation_steps, bf16,
    save_steps, resume_from_checkpoint, deepspeed):

        model_name_or_path, dataset_path, dataset_split, max_samples, max_pixels, freeze_vision,
            use_lora, lora_r, lora_alpha, lora_dropout, lora_target_modules, merge_lora,
            final_dir: shared with GRPO (`training.modeling.ModelFields`); model_name_or_path is
            the base model, hub id or local folder (Qwen/Qwen2.5-VL-7B-Instruct).
        eval_split: the data file to evaluate on ("test"), or None.
        vision_learning_rate: with `freeze_vision: false`, the vision tower's learning rate
            (the rest keep `learning_rate`; the scheduler scales both alike). A tower trained
            from random weights at the language model's rate can blow up its features (the
            learning study, docs/results.md); a lower rate lets it learn without that.
        score_loss_weight: weight of the score tokens in the loss (the digit after "Image A(" /
            "Image B(" on each element line), relative to 1 for every other completion token.
            Scores are ~10 of a CoT's tokens and mostly one value, so at weight 1 a small model
            can lower the loss for a long time without making them depend on the images; >1
            makes them count (the learning study, docs/results.md).
        balance_scores: split the score tokens' weight equally between the score values present
            in each batch (each value's tokens share the same total), keeping the mean score weight
            at `score_loss_weight`. When most targets are one value (7 in 10 scores are "5" in the
            learning study), the plain loss is lowest for a long time by predicting that value
            whatever the images show, and greedy decoding then never writes the others.

    `max_length` defaults to None here so image tokens are never cut.

    Example:
        >>> cfg = SFTTrainingConfig(output_dir="runs/sft", model_name_or_path="tiny",
        ...     dataset_path="data", use_cpu=True, bf16=False)  # doctest: +SKIP
    """

    eval_split: Optional[str] = None
    vision_learning_rate: Optional[float] = None
    max_length: Optional[int] = None  # SFTConfig's 1024 would cut the image tokens
    score_loss_weight: float = 1.0
    balance_scores: bool = False

    def __post_init__(self) -> None:
        if not self.score_loss_weight > 0:
            raise ValueError(f"score_loss_weight must be > 0, got {self.score_loss_weight}")
        if self.vision_learning_rate is not None:
            if not self.vision_learning_rate > 0:
                raise ValueError(
                    f"vision_learning_rate must be > 0 or null, got {self.vision_learning_rate}"
                )
            if self.freeze_vision:
                raise ValueError(
                    "vision_learning_rate needs freeze_vision: false "
                    "(a frozen tower does not learn)"
                )
        super().__post_init__()


def score_token_ids(tokenizer: Any) -> tuple[set[int], set[int]]:
    """(ids of tokens that are one score digit 0-5, ids of tokens that end with "("): a score
    token is a digit whose previous token opens a parenthesis ("Image A(" "4"), which holds for
    byte-level BPE (Qwen) and for the study tokenizer alike.
    """
    digits, openers = set(), set()
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id])
        if text.strip() in {str(d) for d in range(6)}:
            digits.add(token_id)
        elif text.endswith("("):
            openers.add(token_id)
    return digits, openers


def score_positions(labels: Any, digits: set[int], openers: set[int]) -> Any:
    """Where next-token `labels` hold a score token (`digits`, `openers`: `score_token_ids`).

    Example:
        >>> import torch
        >>> score_positions(torch.tensor([[7, 9, 3, 3]]), {3}, {9}).tolist()
        [[False, False, True, False]]
    """
    import torch

    is_digit = torch.isin(labels, torch.tensor(sorted(digits), device=labels.device))
    opened = torch.zeros_like(is_digit)
    opened[:, 1:] = torch.isin(labels[:, :-1], torch.tensor(sorted(openers), device=labels.device))
    return is_digit & opened


def score_token_weights(
    labels: Any, digits: set[int], openers: set[int], weight: float, balance: bool = False
) -> Any:
    """Per-position loss weights for next-token `labels` (-100 = ignored): `weight` on score
    tokens, 1 elsewhere; with `balance`, the score tokens' total weight is split equally between
    the score values present (a value on 1 token in 4 weighs 2x `weight` there, the others 2/3x).

    Example:
        >>> import torch
        >>> score_token_weights(torch.tensor([[7, 9, 3]]), {3}, {9}, 5.0).tolist()
        [[1.0, 1.0, 5.0]]
        >>> labels = torch.tensor([[9, 3, 9, 3, 9, 3, 9, 4]])
        >>> weights = score_token_weights(labels, {3, 4}, {9}, 1.0, balance=True)[0]
        >>> [round(w, 2) for w in weights.tolist()]
        [1.0, 0.67, 1.0, 0.67, 1.0, 0.67, 1.0, 2.0]
    """
    import torch

    at_scores = score_positions(labels, digits, openers)
    weights = torch.ones(labels.shape, dtype=torch.float32, device=labels.device)
    if not balance:
        return weights.masked_fill(at_scores, weight)
    values, counts = labels[at_scores].unique(return_counts=True)
    for value, count in zip(values, counts):
        share = weight * at_scores.sum() / (len(values) * count)
        weights = weights.masked_fill(at_scores & (labels == value), share.item())
    return weights


def split_vision_groups(param_groups: list, model: Any, vision_lr: float) -> list:
    """The optimizer's parameter groups with the vision tower's parameters moved into groups of
    their own at `vision_lr` (each group's other settings, e.g. weight decay, kept).

    Example:
        >>> groups = split_vision_groups(optimizer.param_groups, model, 1e-4)  # doctest: +SKIP
    """
    vision = {id(p) for name, p in model.named_parameters() if modeling.is_vision_parameter(name)}
    groups = []
    for group in param_groups:
        for params, lr in (
            ([p for p in group["params"] if id(p) not in vision], group["lr"]),
            ([p for p in group["params"] if id(p) in vision], vision_lr),
        ):
            if params:
                groups.append({**group, "params": params, "lr": lr})
    return groups


def _score_weighted_trainer():
    """SFTTrainer with `score_loss_weight` (and `balance_scores`) applied to its token-level
    cross-entropy and `vision_learning_rate` to the vision tower."""
    from trl import SFTTrainer

    class ScoreWeightedSFTTrainer(SFTTrainer):
        def create_optimizer(self, *args, **kwargs):
            optimizer = super().create_optimizer(*args, **kwargs)
            if self.args.vision_learning_rate is not None:
                # Before the first step and before the scheduler reads the groups' rates.
                optimizer.param_groups = split_vision_groups(
                    optimizer.param_groups, self.model, self.args.vision_learning_rate
                )
            return optimizer

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if (
                self.args.score_loss_weight == 1.0 and not self.args.balance_scores
            ) or return_outputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if not hasattr(self, "_score_ids"):
                self._score_ids = score_token_ids(
                    getattr(self.processing_class, "tokenizer", self.processing_class)
                )
            inputs["use_cache"] = False
            outputs = model(**inputs, fused_lm_head=True)  # log-probs of labels[:, 1:]
            labels = inputs["labels"][:, 1:]
            weights = (
                score_token_weights(
                    labels, *self._score_ids, self.args.score_loss_weight, self.args.balance_scores
                )
                * outputs.label_mask
            )
            loss = -(outputs.log_probs * weights).sum() / weights.sum().clamp(min=1)
            if num_items_in_batch is not None:
                # This micro-batch's share of the step's tokens: `num_items_in_batch` counts the
                # tokens of every accumulation step (and, below, of every rank).
                loss = loss * outputs.label_mask.sum() / num_items_in_batch
                if self.args.average_tokens_across_devices:
                    # Like TRL's own loss: the count covers all ranks and DDP averages the
                    # gradients across ranks, so scale back up by the data-parallel ranks.
                    loss = loss * (self.accelerator.num_processes // self.get_tp_size())
            mode = "train" if self.model.training else "eval"
            valid = self.accelerator.gather_for_metrics(outputs.label_mask.sum()).sum()
            correct = self.accelerator.gather_for_metrics(outputs.is_top1.sum()).sum()
            self._metrics[mode]["mean_token_accuracy"].append((correct / valid.clamp(min=1)).item())
            return loss

    return ScoreWeightedSFTTrainer


def train_sft(config: SFTTrainingConfig, callbacks: Optional[Sequence[Any]] = None) -> Path:
    """Run cold-start SFT and save the final model; returns the final folder.

    Args:
        config: the SFTTrainingConfig (usually `load_config(SFTTrainingConfig, "sft.yaml")`).
        callbacks: extra transformers TrainerCallbacks (progress, early stopping, ...).

    Example:
        >>> from preferthinker.config import load_config
        >>> path = "training/configs/tiny-cpu-sft.yaml"
        >>> final = train_sft(load_config(SFTTrainingConfig, path))  # doctest: +SKIP
    """
    from training.dataset import load_training_split

    # 1. Data.
    train = load_training_split(
        config.dataset_path,
        config.dataset_split,
        mode="sft",
        max_pixels=config.max_pixels,
        max_samples=config.max_samples,
    )
    evaluation = None
    if config.eval_split:
        evaluation = load_training_split(
            config.dataset_path, config.eval_split, mode="sft", max_pixels=config.max_pixels
        )
    # 2. Model and processor.
    processor = modeling.load_processor(config.model_name_or_path)
    model = modeling.load_model(config)
    # 3. Train (resuming when asked).
    trainer = _score_weighted_trainer()(
        model=model,
        args=config,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=processor,
        peft_config=modeling.lora_config(config),
        callbacks=list(callbacks or []),
    )
    logger.info("SFT on %d samples from %s", len(train), config.dataset_path)
    trainer.train(resume_from_checkpoint=modeling.resume_checkpoint(config))
    # 4. Final save the assessor loads directly.
    return modeling.save_final(trainer, processor, config, stage="sft")


__all__ = [
    "SFTTrainingConfig",
    "score_positions",
    "score_token_ids",
    "score_token_weights",
    "split_vision_groups",
    "train_sft",
]
