"""What SFT and GRPO share: LoRA settings, loading the processor, freezing the vision tower,
finding the checkpoint to resume from, and the final save the assessor loads directly.

The final folder holds either merged weights (default: `ptgen assess --assessor <dir>` and
`ptgen serve` load it like any Qwen2.5-VL checkpoint) or the LoRA adapter alone with a note
(`merge_adapter` merges it later). The processor is always saved next to the weights.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from preferthinker.errors import InputError, ModelNotFoundError

logger = logging.getLogger(__name__)

FINAL_NOTE = "ptgen_training.json"


# Training images: 512 x 512 is ~330 visual tokens per image for Qwen2.5-VL, 12 images per sample.
DEFAULT_TRAINING_MAX_PIXELS = 512 * 512


@dataclass
class ModelFields:
    """The model, data and LoRA fields SFT and GRPO share, written once: both training configs
    inherit them (next to TRL's own config), so their YAML files keep the same flat keys.

    Args:
        model_name_or_path: the base model (SFT) or the SFT final folder (GRPO), hub id or folder.
        dataset_path: the folder `ptgen data build` wrote; dataset_split: the data file to train on.
        max_samples: use only the first N training samples (smoke tests).
        max_pixels: downscale reference and candidate images above this many pixels.
        freeze_vision: keep the vision encoder frozen (default, as the authors' recipe).
        use_lora, lora_r, lora_alpha, lora_dropout, lora_target_modules: PEFT LoRA.
        merge_lora: merge the adapter into the final weights (default) or save the adapter alone.
        final_dir: where the final model goes (default: <output_dir>/final).

    Example:
        >>> ModelFields(model_name_or_path="m", dataset_path="d").lora_r
        16
    """

    model_name_or_path: str = ""
    dataset_path: str = ""
    dataset_split: str = "train"
    max_samples: Optional[int] = None
    max_pixels: Optional[int] = DEFAULT_TRAINING_MAX_PIXELS
    freeze_vision: bool = True
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: Union[str, list] = "all-linear"
    merge_lora: bool = True
    final_dir: Optional[str] = None

    def __post_init__(self) -> None:
        check_lora_fields(self)
        parent = getattr(super(), "__post_init__", None)  # TRL's config next in the MRO
        if parent is not None:
            parent()


def check_lora_fields(config: Any) -> None:
    """The checks of the `ModelFields` of both training configs."""
    if config.max_samples is not None and config.max_samples < 1:
        raise ValueError(f"max_samples must be >= 1 or null, got {config.max_samples}")
    if config.lora_r < 1:
        raise ValueError(f"lora_r must be >= 1, got {config.lora_r}")
    if config.lora_alpha <= 0:
        raise ValueError(f"lora_alpha must be > 0, got {config.lora_alpha}")
    if not 0 <= config.lora_dropout < 1:
        raise ValueError(f"lora_dropout must be in [0, 1), got {config.lora_dropout}")
    if config.max_pixels is not None and config.max_pixels < 28 * 28:
        raise ValueError(
            f"max_pixels must be >= 784 (one 28x28 patch) or null, got {config.max_pixels}"
        )
    if not config.model_name_or_path:
        raise ValueError(
            "model_name_or_path must name the base model (hub id or local folder), got ''"
        )
    if not config.dataset_path:
        raise ValueError("dataset_path must name the folder `ptgen data build` wrote, got ''")


def lora_config(config: Any):
    """The peft LoraConfig from a training config's lora_* fields, or None without `use_lora`."""
    if not config.use_lora:
        return None
    from peft import LoraConfig

    targets = config.lora_target_modules
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets if isinstance(targets, str) else list(targets),
        task_type="CAUSAL_LM",
    )


def check_model_path(model: str) -> None:
    """A clear error for a missing local folder before the trainer's long traceback."""
    looks_local = model.startswith((".", "/", "~")) or Path(model).exists()
    if looks_local and not (Path(model).expanduser() / "config.json").is_file():
        raise ModelNotFoundError(
            f"model folder {model} has no config.json; pass a saved model "
            "(e.g. `ptgen make-tiny` output or an SFT final folder)"
        )


def load_processor(model: str):
    """The model's processor (tokenizer + image processor), as saved next to it."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(model)
    except OSError as error:
        raise ModelNotFoundError(
            f"cannot load the processor of {model}: {str(error).splitlines()[0]}"
        ) from None


def model_init_kwargs(config: Any) -> dict[str, Any]:
    """`model_init_kwargs` for the trainer: the dtype the config asks for, on top of the user's."""
    kwargs = dict(config.model_init_kwargs or {})
    if config.bf16 and "dtype" not in kwargs:
        kwargs["dtype"] = "bfloat16"
    return kwargs


def load_model(config: Any):
    """The base model, loaded the way TRL would, with the vision tower frozen if asked."""
    from transformers import AutoModelForImageTextToText

    check_model_path(config.model_name_or_path)
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            config.model_name_or_path, **model_init_kwargs(config)
        )
    except OSError as error:
        raise ModelNotFoundError(
            f"cannot load {config.model_name_or_path}: {str(error).splitlines()[0]}"
        ) from None
    if config.freeze_vision:
        freeze_vision_tower(model)
    return model


def is_vision_parameter(name: str) -> bool:
    """Whether a parameter name belongs to the vision tower (Qwen2/2.5-VL's `visual`, also under
    PEFT's `base_model.model.` prefix)."""
    return ".visual." in f".{name}"


def freeze_vision_tower(model: Any) -> int:
    """Freeze the vision encoder (the authors fine-tune the language model); returns how many
    parameters were frozen. A model without a recognisable vision tower is left as is."""
    frozen = 0
    for name, parameter in model.named_parameters():
        if is_vision_parameter(name):
            if parameter.requires_grad:
                parameter.requires_grad_(False)
                frozen += parameter.numel()
    if not frozen:
        logger.warning("freeze_vision: no vision-tower parameters found; nothing frozen")
    return frozen


def resume_checkpoint(config: Any) -> Optional[Union[str, bool]]:
    """What to pass to `trainer.train(resume_from_checkpoint=...)`.

    `resume_from_checkpoint: true` resumes from the newest checkpoint in output_dir and starts
    fresh (with a log line) when there is none yet, so one command serves first runs and
    restarts. A path must exist.
    """
    value = config.resume_from_checkpoint
    if value in (None, False, "", "false", "False"):
        return None
    if value in (True, "true", "True"):
        from transformers.trainer_utils import get_last_checkpoint

        output = Path(config.output_dir)
        last = get_last_checkpoint(str(output)) if output.is_dir() else None
        if last is None:
            logger.warning(
                "resume_from_checkpoint: no checkpoint in %s yet; starting from scratch", output
            )
            return None
        return last
    if not Path(value).is_dir():
        raise InputError(f"resume_from_checkpoint: {value} is not a checkpoint folder")
    return str(value)


def _zero3(trainer: Any) -> bool:
    plugin = getattr(
        getattr(getattr(trainer, "accelerator", None), "state", None), "deepspeed_plugin", None
    )
    return bool(
        getattr(trainer, "is_deepspeed_enabled", False)
        and plugin is not None
        and plugin.zero_stage == 3
    )


def save_final(trainer: Any, processor: Any, config: Any, stage: str) -> Path:
    """Save the trained model where the assessor loads it; returns the folder.

    Full fine-tuning saves the weights (`trainer.save_model`, which gathers ZeRO-3 shards; every
    rank must call it). A LoRA model is merged into the base weights when `merge_lora` is true
    (default): in memory, or under ZeRO-3 (where the weights are sharded) by saving the adapter
    and merging it on the main process from the base model. With `merge_lora: false` the
    adapter alone is saved. The processor goes next to the weights, and `ptgen_training.json`
    records how the folder was made.
    """
    final = Path(config.final_dir or Path(config.output_dir) / "final")
    model = trainer.accelerator.unwrap_model(trainer.model)
    is_peft = hasattr(model, "peft_config")
    main_process = trainer.is_world_process_zero()
    layout = "merged" if is_peft and config.merge_lora else "adapter" if is_peft else "full"
    if layout == "merged" and _zero3(trainer):
        adapter = final / "adapter"
        trainer.save_model(str(adapter))  # collective under ZeRO-3
        if main_process:
            merge_adapter(adapter, final, dtype="bfloat16" if config.bf16 else None)
    elif layout == "merged":
        if main_process:
            merged = model.merge_and_unload()
            merged.save_pretrained(str(final), safe_serialization=True)
    else:
        trainer.save_model(str(final))  # weights, or the adapter; collective under ZeRO-3
    if main_process:
        final.mkdir(parents=True, exist_ok=True)
        processor.save_pretrained(str(final))
        generation_config = getattr(model, "generation_config", None)
        if generation_config is not None and layout != "adapter":
            generation_config.save_pretrained(str(final))
        note = {
            "stage": stage,
            "layout": layout,
            "base_model": config.model_name_or_path,
            "dataset": config.dataset_path,
            "steps": int(getattr(trainer.state, "global_step", 0)),
            "load": (
                f"ptgen assess --assessor {final}"
                if layout != "adapter"
                else "adapter only: merge with "
                f"training.modeling.merge_adapter('{final}', OUT) and use OUT"
            ),
        }
        (final / FINAL_NOTE).write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
    trainer.accelerator.wait_for_everyone()
    return final


def merge_adapter(
    adapter_dir: Union[str, Path], output_dir: Union[str, Path], dtype: Optional[str] = None
) -> Path:
    """Merge a saved LoRA adapter into its base model and save weights + processor to `output_dir`.

    Example:
        >>> merge_adapter("runs/sft/final", "runs/sft/merged")  # doctest: +SKIP
    """
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForImageTextToText

    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise InputError(
            f"{adapter_dir} holds no adapter_config.json; is it a merged model already?"
        )
    base = PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path
    kwargs = {"dtype": dtype} if dtype else {}
    model = PeftModel.from_pretrained(
        AutoModelForImageTextToText.from_pretrained(base, **kwargs), str(adapter_dir)
    )
    merged = model.merge_and_unload()
    output_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(output_dir), safe_serialization=True)
    has_processor = (adapter_dir / "processor_config.json").is_file() or (
        adapter_dir / "preprocessor_config.json"
    ).is_file()
    load_processor(str(adapter_dir) if has_processor else base).save_pretrained(str(output_dir))
    return output_dir
