"""GRPO: TRL's GRPOTrainer from the SFT checkpoint with the PreferThinker rewards.

Rewards (training/rewards.py), weighted through `reward_weights` in this order:
accuracy (1.0), format (0.3), prediction (0.7) - the paper's weights. TRL logs each term as
`rewards/<name>/mean`; the prediction reward also logs its parts as `prediction/s_text` and
`prediction/s_img`.

Defaults follow the authors' run where they published it: 2 generations per prompt, beta 0.04,
completions up to 2048 tokens. Generation with vLLM is TRL's own (`use_vllm: true`,
`vllm_mode: colocate | server`); ptgen passes those fields through unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from trl import GRPOConfig

from training import modeling
from training.rewards import RewardConfig

logger = logging.getLogger(__name__)

_REWARDS = RewardConfig()  # the defaults of the reward_* fields


@dataclass
class GRPOTrainingConfig(modeling.ModelFields, GRPOConfig):
    """TRL's GRPOConfig plus the model, the data, LoRA and the reward settings.

    Our fields (all others are GRPOConfig / TrainingArguments: learning_rate, num_generations,
    beta, max_completion_length, use_vllm, vllm_mode, bf16, save_steps, deepspeed, ...):

        model_name_or_path, dataset_path, dataset_split, max_samples, max_pixels, freeze_vision,
            use_lora, lora_r, lora_alpha, lora_dropout, lora_target_modules, merge_lora,
            final_dir: shared with SFT (`training.modeling.ModelFields`); model_name_or_path is
            the SFT final folder (or any Qwen2.5-VL checkpoint).
        reward_weights: [accuracy, format, prediction], default the paper's [1.0, 0.3, 0.7].
        reward_text_weight / reward_image_weight: w_text / w_img inside the prediction reward.
        reward_similarity_model: SBERT model (None = bundled all-MiniLM-L6-v2).
        reward_image_generator: "procedural", a diffusers pipeline id/path, or None (text only).
        reward_generator_options: GeneratorConfig fields for a diffusers generator.
        reward_image_similarity: "auto", "dreamsim" or "fallback".
        reward_image_seeds: seeds rendered per profile.
        reward_cache_dir / reward_cache_size: the rendered-image cache.

    Example:
        >>> cfg = GRPOTrainingConfig(output_dir="runs/grpo", model_name_or_path="runs/sft/final",
        ...     dataset_path="data", use_cpu=True, bf16=False)  # doctest: +SKIP
    """

    # The reward_* defaults are RewardConfig's own (the paper's), not copies.
    reward_text_weight: float = _REWARDS.text_weight
    reward_image_weight: float = _REWARDS.image_weight
    reward_similarity_model: Optional[str] = _REWARDS.similarity_model
    reward_image_generator: Optional[str] = _REWARDS.image_generator
    reward_generator_options: dict = field(default_factory=lambda: dict(_REWARDS.generator_options))
    reward_image_similarity: str = _REWARDS.image_similarity
    reward_image_seeds: list = field(default_factory=lambda: list(_REWARDS.image_seeds))
    reward_cache_dir: Optional[str] = _REWARDS.cache_dir
    reward_cache_size: int = _REWARDS.cache_size
    # The authors' settings (GRPOConfig's own defaults differ).
    reward_weights: Optional[list] = field(default_factory=lambda: list(_REWARDS.weights))
    num_generations: Optional[int] = 2
    beta: float = 0.04
    max_completion_length: Optional[int] = 2048

    def __post_init__(self) -> None:
        if self.reward_weights is None or len(self.reward_weights) != 3:
            raise ValueError(
                "reward_weights must hold 3 numbers [accuracy, format, prediction], "
                f"got {self.reward_weights!r}"
            )
        self.reward_config()  # validates the reward_* fields with their own messages
        super().__post_init__()

    def reward_config(self) -> RewardConfig:
        """The RewardConfig these fields describe."""
        accuracy, fmt, prediction = (float(w) for w in self.reward_weights)
        return RewardConfig(
            accuracy_weight=accuracy,
            format_weight=fmt,
            prediction_weight=prediction,
            text_weight=self.reward_text_weight,
            image_weight=self.reward_image_weight,
            similarity_model=self.reward_similarity_model,
            image_generator=self.reward_image_generator,
            generator_options=dict(self.reward_generator_options or {}),
            image_similarity=self.reward_image_similarity,
            image_seeds=list(self.reward_image_seeds),
            cache_dir=self.reward_cache_dir,
            cache_size=self.reward_cache_size,
        )


def train_grpo(
    config: GRPOTrainingConfig,
    callbacks: Optional[Sequence[Any]] = None,
    reward_components: Optional[dict] = None,
) -> Path:
    """Run GRPO and save the final model; returns the final folder.

    Args:
        config: the GRPOTrainingConfig (usually `load_config(GRPOTrainingConfig, "grpo.yaml")`).
        callbacks: extra transformers TrainerCallbacks.
        reward_components: ready parts for the prediction reward (`generator`, `similarity`,
            `image_similarity`), e.g. to share an already loaded SBERT model.

    Example:
        >>> from preferthinker.config import load_config
        >>> path = "training/configs/tiny-cpu-grpo.yaml"
        >>> final = train_grpo(load_config(GRPOTrainingConfig, path))  # doctest: +SKIP
    """
    from trl import GRPOTrainer

    from training.dataset import load_training_split
    from training.rewards import create_reward_funcs

    # 1. Data: prompts with images, plus the columns the rewards read (answer, profile, subject).
    train = load_training_split(
        config.dataset_path,
        config.dataset_split,
        mode="grpo",
        max_pixels=config.max_pixels,
        max_samples=config.max_samples,
    )
    # 2. Rewards, in the order of reward_weights.
    reward_funcs, _ = create_reward_funcs(config.reward_config(), **(reward_components or {}))
    # 3. Model and processor.
    processor = modeling.load_processor(config.model_name_or_path)
    model = modeling.load_model(config)
    # 4. Train (resuming when asked).
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=train,
        processing_class=processor,
        peft_config=modeling.lora_config(config),
        callbacks=list(callbacks or []),
    )
    logger.info(
        "GRPO on %d prompts from %s, rewards %s weighted %s",
        len(train),
        config.dataset_path,
        [getattr(f, "__name__", type(f).__name__) for f in reward_funcs],
        config.reward_weights,
    )
    trainer.train(resume_from_checkpoint=modeling.resume_checkpoint(config))
    # 5. Final save.
    return modeling.save_final(trainer, processor, config, stage="grpo")


__all__ = ["GRPOTrainingConfig", "train_grpo"]
