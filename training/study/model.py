"""The study model: a small Qwen2.5-VL (same architecture as the 7B, shrunk) with random weights.

`StudyModelConfig` names the few sizes that matter; `make_study_model` builds the model and its
processor (the study BPE tokenizer + a Qwen2-VL image processor that resizes every image to
`image_size` x `image_size`) and saves both with `save_pretrained`, so SFT, GRPO and the
evaluation load it exactly like any Qwen2.5-VL checkpoint (`from_pretrained(folder)`).

Image size and patch size set the visual tokens: 56 px -> 4x4 patches of 14 px -> 2x2 merged = 4
tokens per image; 112 px with 14 px patches, or 56 px with 7 px patches -> 16 tokens.

Example:
    >>> config = StudyModelConfig()
    >>> folder = make_study_model("runs/study/base", config, tokenizer)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

from preferthinker.tiny import SPECIAL_TOKENS, mrope_section


@dataclass
class StudyModelConfig:
    """Sizes of the study model.

    Args:
        hidden_size: text hidden size (also the vision width).
        layers: text decoder layers.
        heads: attention heads (hidden_size must divide by it; head size even).
        vision_depth: vision transformer blocks (the last one uses full attention).
        image_size: images are resized to this side in pixels (a multiple of 2 x patch_size).
        patch_size: side of a vision patch in pixels (Qwen2.5-VL's is 14); 2x2 patches merge
            into one visual token, so 7 gives 4 times the tokens of 14 from the same pixels.
        rope_theta: rotary base. Qwen's 1e6 is made for 32k-token contexts; in a ~150-token
            sequence most of its frequencies barely turn, which leaves a small model few ways to
            tell the liked references from the disliked ones by position. 1e4 suits short ones.
        image_mean, image_std: per-channel (RGB) pixel normalisation written into the processor;
            None keeps Qwen2.5-VL's (CLIP's mean and std, which put mid-grey near zero, so a
            flat patch's saturation is mostly the length of its vector, which the vision blocks'
            RMSNorm divides away). [0, 0, 0] / [1, 1, 1] makes saturation a direction instead;
            tried in the learning study, it left the model at chance (docs/results.md).
        seed: weight initialisation seed.
    """

    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    vision_depth: int = 2
    image_size: int = 56
    patch_size: int = 14
    rope_theta: float = 10000.0
    image_mean: Optional[list[float]] = None
    image_std: Optional[list[float]] = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden_size", "layers", "heads", "vision_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.heads or (self.hidden_size // self.heads) % 2:
            raise ValueError(
                "hidden_size / heads must be an even whole number, "
                f"got {self.hidden_size} / {self.heads}"
            )
        if self.rope_theta <= 1:
            raise ValueError(f"rope_theta must be > 1, got {self.rope_theta}")
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {self.patch_size}")
        side = 2 * self.patch_size
        if self.image_size < side or self.image_size % side:
            raise ValueError(
                f"image_size must be a multiple of {side} (2x2 patches of {self.patch_size} px), "
                f"got {self.image_size}"
            )
        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            if value is None:
                continue
            if (
                not isinstance(value, (list, tuple))
                or len(value) != 3
                or not all(isinstance(v, (int, float)) for v in value)
            ):
                raise ValueError(f"{name} must be 3 numbers (R, G, B) or null, got {value!r}")
        if self.image_std is not None and not all(v > 0 for v in self.image_std):
            raise ValueError(f"image_std must be > 0 in every channel, got {self.image_std}")

    @property
    def visual_tokens(self) -> int:
        """Tokens per image after the 2x2 patch merge."""
        return (self.image_size // (2 * self.patch_size)) ** 2


def build_processor(
    tokenizer: Any,
    image_size: int = 56,
    image_mean: Optional[list[float]] = None,
    image_std: Optional[list[float]] = None,
    patch_size: int = 14,
):
    """A Qwen2.5-VL processor around the study tokenizer; images resized to `image_size`^2, cut
    into `patch_size` patches and normalised with `image_mean` / `image_std` where given (else
    Qwen2.5-VL's)."""
    from preferthinker.tiny import processor_for

    processor = processor_for(tokenizer, image_size, patch_size)
    if image_mean is not None:
        processor.image_processor.image_mean = [float(v) for v in image_mean]
    if image_std is not None:
        processor.image_processor.image_std = [float(v) for v in image_std]
    return processor


def build_study_model(config: StudyModelConfig, tokenizer: Any):
    """A random-weight `Qwen2_5_VLForConditionalGeneration` sized by `config` for `tokenizer`.

    Example:
        >>> config = StudyModelConfig(hidden_size=64, layers=2)
        >>> model = build_study_model(config, tokenizer)  # doctest: +SKIP
    """
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    hidden, heads = config.hidden_size, config.heads
    common = dict(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    model_config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=hidden * 3,
            num_hidden_layers=config.layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=4096,
            rope_parameters={
                "rope_type": "default",
                "type": "mrope",
                "rope_theta": float(config.rope_theta),
                "mrope_section": mrope_section(hidden // heads),
            },
            tie_word_embeddings=True,
            **common,
        ),
        vision_config=dict(
            depth=config.vision_depth,
            hidden_size=hidden,
            intermediate_size=hidden * 2,
            num_heads=heads,
            out_hidden_size=hidden,
            patch_size=config.patch_size,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=config.image_size,
            fullatt_block_indexes=[config.vision_depth - 1],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        **common,
    )
    torch.manual_seed(config.seed)
    model = Qwen2_5_VLForConditionalGeneration(model_config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    return model


def count_parameters(model: Any) -> int:
    """All parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def make_study_model(directory: Union[str, Path], config: StudyModelConfig, tokenizer: Any) -> Path:
    """Build the random-weight study model and its processor and save both to `directory`.

    Returns the folder, which `AutoModelForImageTextToText.from_pretrained` and
    `AutoProcessor.from_pretrained` load (and so `ptgen eval --assessor <folder>`).

    Example:
        >>> config = StudyModelConfig()
        >>> make_study_model("runs/study/seed0/untrained", config, tokenizer)  # doctest: +SKIP
    """
    import json

    directory = Path(directory)
    model = build_study_model(config, tokenizer)
    processor = build_processor(
        tokenizer, config.image_size, config.image_mean, config.image_std, config.patch_size
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    processor.save_pretrained(directory)
    note = asdict(config) | {"parameters": count_parameters(model), "vocab_size": len(tokenizer)}
    (directory / "study_model.json").write_text(json.dumps(note, indent=1) + "\n", encoding="utf-8")
    return directory


__all__ = [
    "StudyModelConfig",
    "build_processor",
    "build_study_model",
    "count_parameters",
    "make_study_model",
]
