"""Text-to-image generators: the `Generator` protocol and `DiffusersGenerator` for diffusers.

`DiffusersGenerator` loads a pipeline by hub id or local path (`DiffusionPipeline.from_pretrained`:
SD 1.5, SD 2, SDXL, SD3, Flux, turbo/lightning/LCM variants), picks device and dtype, fills in
steps / guidance / size from the model family when not given, and generates candidates in batches.

Reproducibility: every image gets its own `torch.Generator`, on the CPU, seeded with that image's
seed. The initial noise of an image therefore depends only on its seed, never on the batch it was
drawn in or the device, so "same seed, same image" holds across batch sizes (up to float rounding
of batched kernels).

On a CUDA out-of-memory error the batch is halved and retried (and the smaller batch size kept for
the rest of the run); only a failure at batch size 1 is an error.

Example:
    >>> gen = DiffusersGenerator(GeneratorConfig(model="/tmp/t/generator"))
    >>> images = gen.generate("a castle", seeds=[0, 1, 2, 3])
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence, runtime_checkable

from preferthinker.devices import (
    check_device,
    dtype_name,
    looks_like_local_path,
    resolve_device,
    resolve_dtype,
)
from preferthinker.errors import EngineContractError, EngineError, InputError, ModelNotFoundError

logger = logging.getLogger(__name__)

# Fast, open (Apache-2.0) and strong at prompt following; 4 steps, no classifier-free guidance.
DEFAULT_GENERATOR = "black-forest-labs/FLUX.1-schnell"
# What a CPU-only user should pick for real images: 1-4 steps at 512 px, ~1B parameters.
CPU_GENERATOR = "stabilityai/sd-turbo"


@dataclass(frozen=True)
class FamilyDefaults:
    """Sampling defaults of a model family. None: leave it to the pipeline's own default.

    `source` names the model card the values come from (and says where ptgen departs from it);
    `scheduler` / `timestep_spacing` are what the card's scheduler must be for the steps to work
    (set on the loaded pipeline by `prepare_scheduler`).
    """

    family: str
    steps: Optional[int]
    guidance: Optional[float]
    size: Optional[int]
    dtype: str = "float16"  # on CUDA
    source: str = ""
    scheduler: Optional[str] = None
    timestep_spacing: Optional[str] = None


# Each family's defaults, checked against its model card (hub id first in `source`). Distilled
# models (turbo, lightning, hyper, schnell, LCM) want few steps and little or no guidance.
_F = FamilyDefaults
FAMILIES: dict[str, FamilyDefaults] = {
    "sd15": _F(
        "sd15",
        30,
        7.5,
        None,
        source=(
            "stable-diffusion-v1-5/stable-diffusion-v1-5 (card: the pipeline defaults, 50 steps, "
            "guidance 7.5; ptgen takes 30 steps)"
        ),
    ),
    "sd2": _F(
        "sd2",
        30,
        7.5,
        None,
        source=(
            "stabilityai/stable-diffusion-2-1 (card: the pipeline defaults, 50 steps, "
            "guidance 7.5; ptgen takes 30 steps)"
        ),
    ),
    "sd-turbo": _F(
        "sd-turbo",
        1,
        0.0,
        512,
        source=("stabilityai/sd-turbo (card: num_inference_steps=1, guidance_scale=0.0, 512x512)"),
    ),
    "sdxl": _F(
        "sdxl",
        30,
        5.0,
        None,
        source=(
            "stabilityai/stable-diffusion-xl-base-1.0 (card: the pipeline defaults, 50 steps, "
            "guidance 5.0; ptgen takes 30 steps)"
        ),
    ),
    "sdxl-turbo": _F(
        "sdxl-turbo",
        1,
        0.0,
        512,
        source=(
            "stabilityai/sdxl-turbo (card: num_inference_steps=1, guidance_scale=0.0, 512x512)"
        ),
    ),
    # Steps come from the checkpoint (1/2/4/8-step variants); 4 when the id does not say.
    "sdxl-lightning": _F(
        "sdxl-lightning",
        4,
        0.0,
        1024,
        source=(
            "ByteDance/SDXL-Lightning (card: EulerDiscreteScheduler with timestep_spacing="
            '"trailing", guidance_scale=0, steps = the checkpoint\'s 1/2/4/8-step variant; '
            '1-step: prediction_type="sample")'
        ),
        scheduler="EulerDiscreteScheduler",
        timestep_spacing="trailing",
    ),
    # Hyper-SD is not Lightning: its own N-step LoRAs / UNets, DDIM with trailing timesteps.
    "hyper-sd": _F(
        "hyper-sd",
        8,
        0.0,
        None,
        source=(
            'ByteDance/Hyper-SD (card: DDIMScheduler with timestep_spacing="trailing", '
            "guidance_scale=0, steps = the checkpoint's N-step variant; CFG variants: guidance 5)"
        ),
        scheduler="DDIMScheduler",
        timestep_spacing="trailing",
    ),
    # A distilled LCM UNet (guidance embedded, w = guidance - 1): LatentConsistencyModelPipeline's
    # own default is 8.5, the LCM Dreamshaper card uses 8.0.
    "lcm": _F(
        "lcm",
        4,
        8.0,
        None,
        source=(
            "SimianLuo/LCM_Dreamshaper_v7 (card: num_inference_steps=4, guidance_scale=8.0; "
            "LatentConsistencyModelPipeline's default is 8.5)"
        ),
    ),
    # LCM-LoRA on a base pipeline (no guidance embedding): guidance 1.0 turns CFG off.
    "lcm-lora": _F(
        "lcm-lora",
        4,
        1.0,
        None,
        source=(
            "latent-consistency/lcm-lora-sdxl, latent-consistency/lcm-lora-sdv1-5 (cards: "
            "LCMScheduler, num_inference_steps=4, guidance_scale=1)"
        ),
        scheduler="LCMScheduler",
    ),
    "sd3": _F(
        "sd3",
        28,
        7.0,
        1024,
        "bfloat16",
        source=(
            "stabilityai/stable-diffusion-3-medium-diffusers (card: num_inference_steps=28, "
            "guidance_scale=7.0)"
        ),
    ),
    "sd3.5": _F(
        "sd3.5",
        28,
        3.5,
        1024,
        "bfloat16",
        source=(
            "stabilityai/stable-diffusion-3.5-large (card: num_inference_steps=28, "
            "guidance_scale=3.5)"
        ),
    ),
    "sd3.5-medium": _F(
        "sd3.5-medium",
        40,
        4.5,
        1024,
        "bfloat16",
        source=(
            "stabilityai/stable-diffusion-3.5-medium (card: num_inference_steps=40, "
            "guidance_scale=4.5)"
        ),
    ),
    "sd3-turbo": _F(
        "sd3-turbo",
        4,
        0.0,
        1024,
        "bfloat16",
        source=(
            "stabilityai/stable-diffusion-3.5-large-turbo (card: num_inference_steps=4, "
            "guidance_scale=0.0)"
        ),
    ),
    "flux": _F(
        "flux",
        50,
        3.5,
        1024,
        "bfloat16",
        source=(
            "black-forest-labs/FLUX.1-dev (card: guidance_scale=3.5, num_inference_steps=50, "
            "1024x1024)"
        ),
    ),
    "flux-schnell": _F(
        "flux-schnell",
        4,
        0.0,
        1024,
        "bfloat16",
        source=(
            "black-forest-labs/FLUX.1-schnell (card: guidance_scale=0.0, num_inference_steps=4, "
            "max_sequence_length=256)"
        ),
    ),
    "unknown": _F("unknown", None, None, None, source="the pipeline's own defaults"),
}
del _F


def families_help() -> str:
    """One line per recognised family with its defaults, for `--help` and the docs.

    Example:
        >>> "sdxl-lightning: 4 steps" in families_help()
        True
    """
    lines = []
    for name, family in FAMILIES.items():
        if name == "unknown":
            continue
        size = f", {family.size}px" if family.size else ""
        steps = f"{family.steps} steps" + (
            " (or the checkpoint's N-step variant)" if family.timestep_spacing else ""
        )
        lines.append(f"{name}: {steps}, guidance {family.guidance:g}{size}")
    return "; ".join(lines)


_STEPS_IN_ID = re.compile(r"(?<![0-9])(1|2|4|8|12|16)[-_ ]?steps?(?![a-z])", re.I)


def steps_from_id(model_id: str) -> Optional[int]:
    """The step count a distilled checkpoint's id names ("sdxl_lightning_2step",
    "Hyper-SDXL-8steps").

    Example:
        >>> steps_from_id("ByteDance/SDXL-Lightning/sdxl_lightning_8step_unet")
        8
    """
    found = _STEPS_IN_ID.findall(model_id or "")
    return int(found[-1]) if found else None


# A pipeline folder may recommend its own settings (fine-tunes, the tiny test pipeline):
# {"steps": 2, "guidance": 5.0, "size": 64}; they override the family defaults.
DEFAULTS_FILE = "ptgen_defaults.json"


def folder_defaults(model: str, family: FamilyDefaults) -> FamilyDefaults:
    """`family`, with the values a local pipeline folder's `ptgen_defaults.json` recommends."""
    path = Path(model).expanduser() / DEFAULTS_FILE
    if not path.is_file():
        return family
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(f"{path} is not valid JSON ({error}); fix or delete it") from None
    known = {"steps", "guidance", "size"}
    unknown = set(data) - known
    if unknown:
        raise ModelNotFoundError(f"{path}: unknown keys {sorted(unknown)}; valid: {sorted(known)}")
    from dataclasses import replace

    return replace(
        family,
        steps=data.get("steps", family.steps),
        guidance=data.get("guidance", family.guidance),
        size=data.get("size", family.size),
    )


def detect_family(class_name: str, model_id: str = "") -> str:
    """The model family from the pipeline class name and the model id or path.

    Example:
        >>> detect_family("FluxPipeline", "black-forest-labs/FLUX.1-schnell")
        'flux-schnell'
        >>> detect_family("StableDiffusionXLPipeline", "stabilityai/sdxl-turbo")
        'sdxl-turbo'
        >>> detect_family("StableDiffusionXLPipeline", "ByteDance/Hyper-SD")
        'hyper-sd'
    """
    name = class_name.lower()
    ident = model_id.lower()
    compact = re.sub(r"[^a-z0-9]", "", ident)
    if "lcmlora" in compact:
        return "lcm-lora"
    if "lcm" in ident or "latentconsistency" in name:
        return "lcm"
    if "hypersd" in compact:
        return "hyper-sd"
    fast = any(word in ident for word in ("turbo", "lightning", "schnell"))
    if "flux" in name or "flux" in ident:
        return "flux-schnell" if "schnell" in ident else "flux"
    if "stablediffusion3" in name or "stable-diffusion-3" in ident:
        if fast:
            return "sd3-turbo"
        if "3.5" in ident or "3-5" in ident:
            return "sd3.5-medium" if "medium" in ident else "sd3.5"
        return "sd3"
    if "xl" in name or "sdxl" in ident or "-xl" in ident:
        if "lightning" in ident:
            return "sdxl-lightning"
        return "sdxl-turbo" if fast else "sdxl"
    if "stablediffusion" in name:
        if fast:
            return "sd-turbo"
        return "sd2" if "stable-diffusion-2" in ident else "sd15"
    return "unknown"


def pipeline_family(pipeline: Any, model_id: str = "") -> str:
    """`detect_family`, refined by what the loaded pipeline holds: an LCM scheduler on a UNet
    without a guidance embedding is LCM-LoRA on a base model (guidance 1.0), a UNet with one
    (`time_cond_proj_dim`) is a distilled LCM (guidance 8.0, used as w = guidance - 1).

    Example:
        >>> pipeline_family(pipe, "my-sd15-with-fused-lcm-lora")  # doctest: +SKIP
        'lcm-lora'
    """
    family = detect_family(type(pipeline).__name__, model_id)
    scheduler = type(getattr(pipeline, "scheduler", None)).__name__
    unet_config = getattr(getattr(pipeline, "unet", None), "config", None)
    guidance_embedded = getattr(unet_config, "time_cond_proj_dim", None) is not None
    if family in ("lcm", "lcm-lora") or scheduler == "LCMScheduler":
        if guidance_embedded:
            return "lcm"
        if unet_config is not None:
            return "lcm-lora"
    return family


def family_defaults(family: str, model_id: str = "") -> FamilyDefaults:
    """`FAMILIES[family]`, with the step count a Lightning / Hyper-SD checkpoint's id names.

    Example:
        >>> family_defaults("sdxl-lightning", "my/sdxl-lightning-2step").steps
        2
    """
    defaults = FAMILIES[family]
    if defaults.timestep_spacing and steps_from_id(model_id):
        from dataclasses import replace

        defaults = replace(defaults, steps=steps_from_id(model_id))
    if family == "hyper-sd" and "cfg" in model_id.lower():
        from dataclasses import replace

        defaults = replace(defaults, guidance=5.0)
    return defaults


def prepare_scheduler(
    pipeline: Any, defaults: FamilyDefaults, steps: Optional[int]
) -> Optional[str]:
    """Give the pipeline the scheduler its family's card asks for (Lightning: Euler with trailing
    timesteps, 1-step: sample prediction; Hyper-SD: DDIM, trailing; LCM-LoRA: LCMScheduler).
    Returns what was changed, None when nothing was.

    Example:
        >>> prepare_scheduler(pipe, FAMILIES["sdxl-lightning"], 4)  # doctest: +SKIP
        'EulerDiscreteScheduler, timestep_spacing=trailing'
    """
    current = getattr(pipeline, "scheduler", None)
    if defaults.scheduler is None or current is None or not hasattr(current, "config"):
        return None
    import diffusers

    wanted: dict[str, Any] = {}
    config = current.config
    if defaults.timestep_spacing and config.get("timestep_spacing") != defaults.timestep_spacing:
        wanted["timestep_spacing"] = defaults.timestep_spacing
    lightning_one_step = defaults.family == "sdxl-lightning" and steps == 1
    if lightning_one_step and config.get("prediction_type") != "sample":
        wanted["prediction_type"] = "sample"
    same_class = type(current).__name__ == defaults.scheduler
    # Any scheduler already on trailing timesteps is kept for Hyper-SD (the card also uses TCD).
    keep_class = same_class or (defaults.family == "hyper-sd" and "timestep_spacing" not in wanted)
    if keep_class and not wanted:
        return None
    cls = type(current) if keep_class else getattr(diffusers, defaults.scheduler)
    pipeline.scheduler = cls.from_config(current.config, **wanted)
    changes = [cls.__name__] + [f"{k}={v}" for k, v in wanted.items()]
    return ", ".join(changes)


@runtime_checkable
class Generator(Protocol):
    """Anything that draws images for a prompt, one per seed (same seed -> same image)."""

    name: str

    def generate(self, prompt: str, negative_prompt: str = "", seeds: Sequence[int] = (0,)) -> list:
        """Return one PIL image per seed, in the order of `seeds`."""
        ...


@dataclass
class GeneratorConfig:
    """How to load and run a diffusers pipeline.

    Args:
        model: hub id or local folder of a diffusers pipeline (`model_index.json`).
        steps, guidance, width, height: sampling settings; None takes the family default
            (see `FAMILIES`) or, for unknown families, the pipeline's own default.
        batch_size: images per pipeline call (halved automatically on CUDA out-of-memory).
        device: "cuda", "cpu" or "mps"; None picks CUDA, then MPS, then CPU.
        dtype: "float16", "bfloat16" or "float32"; None: the family's half type on GPUs,
            float32 on CPU.
        cpu_offload: move each sub-model to the GPU only while it runs (less memory, slower).
        progress_bar: show diffusers' own per-step progress bar.
    """

    model: str = DEFAULT_GENERATOR
    steps: Optional[int] = None
    guidance: Optional[float] = None
    width: Optional[int] = None
    height: Optional[int] = None
    batch_size: int = 4
    device: Optional[str] = None
    dtype: Optional[str] = None
    cpu_offload: bool = False
    progress_bar: bool = False

    def __post_init__(self) -> None:
        if not self.model or not isinstance(self.model, str):
            raise ValueError(f"model must be a diffusers pipeline id or path, got {self.model!r}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.guidance is not None and self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (value < 8 or value % 8):
                raise ValueError(f"{name} must be a multiple of 8 and >= 8, got {value}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        self.device = check_device(self.device)
        self.dtype = dtype_name(self.dtype)


def _is_oom(error: BaseException) -> bool:
    import torch

    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _local_class_name(model: str) -> str:
    """The pipeline class a local folder declares (before loading), or ""."""
    index = Path(model).expanduser() / "model_index.json"
    if index.is_file():
        try:
            return str(json.loads(index.read_text(encoding="utf-8")).get("_class_name", ""))
        except (OSError, ValueError):
            return ""
    return ""


def load_pipeline(model: str, dtype: Any = None):
    """`DiffusionPipeline.from_pretrained(model)`, with one-line errors that say how to fix them.

    Raises:
        ModelNotFoundError: not a local pipeline folder and not loadable from the hub.
    """
    from diffusers import DiffusionPipeline

    path = Path(model).expanduser()
    looks_local = looks_like_local_path(model)
    if looks_local:
        if not path.exists():
            raise ModelNotFoundError(
                f"generator folder {model} does not exist; "
                "`ptgen make-tiny DIR` writes one to DIR/generator"
            )
        if not (path / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"{model} is not a diffusers pipeline folder (no model_index.json); "
                "save one with pipeline.save_pretrained(DIR) or pass a hub id"
            )
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        import diffusers
        from packaging.version import Version

        # diffusers 0.42 renamed torch_dtype to dtype (the old name warns); older ones know only
        # torch_dtype.
        new_name = Version(diffusers.__version__).release >= (0, 42)
        kwargs["dtype" if new_name else "torch_dtype"] = dtype
    try:
        return DiffusionPipeline.from_pretrained(str(path) if looks_local else model, **kwargs)
    except (OSError, ValueError, EnvironmentError) as error:
        if looks_local:
            raise ModelNotFoundError(
                f"cannot load generator {model}: {str(error).splitlines()[0]}"
            ) from None
        raise ModelNotFoundError(
            f"cannot load generator {model!r}: it is not in the local Hugging Face cache and "
            "the hub is unreachable; download it where the hub is reachable, or pass "
            "--generator /path/to/pipeline (`ptgen make-tiny DIR` writes a tiny one)"
        ) from None


@dataclass
class GenerationTimings:
    """Seconds spent in the pipeline, and how the batches went."""

    seconds: float = 0.0
    images: int = 0
    calls: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class DiffusersGenerator:
    """A `Generator` over any diffusers text-to-image pipeline.

    Args:
        config: what to load and how to sample.
        pipeline: an already loaded pipeline (for creative tools that hold one, and for tests);
            `config.model` is then only its name.
        style: load an IP-Adapter style adapter (`generation.style`); then call
            `set_style_references(liked, disliked)` before `generate`.

    Example:
        >>> gen = DiffusersGenerator(GeneratorConfig(model="stabilityai/sdxl-turbo"))
        >>> gen.generate("a castle at dusk", seeds=range(8))  # 8 PIL images, batched
    """

    def __init__(
        self, config: Optional[GeneratorConfig] = None, pipeline: Any = None, style: Any = None
    ):
        self.config = config or GeneratorConfig()
        self.name = self.config.model
        family_guess = detect_family(_local_class_name(self.config.model), self.config.model)
        self.device = resolve_device(self.config.device)
        family_dtype = FAMILIES[family_guess].dtype
        dtype = resolve_dtype(self.config.dtype, self.device, gpu_default=family_dtype)
        self.dtype_name = str(dtype).removeprefix("torch.")
        self.pipeline = pipeline
        if pipeline is None:
            self.pipeline = load_pipeline(self.config.model, dtype)
        self.family = pipeline_family(self.pipeline, self.config.model)
        self.defaults = folder_defaults(
            self.config.model, family_defaults(self.family, self.config.model)
        )
        steps = self.config.steps if self.config.steps is not None else self.defaults.steps
        self.scheduler_change = prepare_scheduler(self.pipeline, self.defaults, steps)
        if self.scheduler_change:
            logger.info(
                "%s (%s): scheduler set to %s, as its model card says",
                self.name,
                self.family,
                self.scheduler_change,
            )
        self.style = None
        if style is not None:
            from generation.style import StyleAdapter

            # Before placement: the image encoder it adds then moves (or offloads) with the rest.
            self.style = StyleAdapter(self.pipeline, self.family, style, self.name)
        if pipeline is None:
            self._place()
        if hasattr(self.pipeline, "set_progress_bar_config"):
            self.pipeline.set_progress_bar_config(disable=not self.config.progress_bar)
        self.batch_size = self.config.batch_size
        self.timings = GenerationTimings()
        self.resident = True  # on `device`; False after `release()`
        self._call_parameters = set(inspect.signature(self.pipeline.__call__).parameters)

    def _place(self) -> None:
        if self.config.cpu_offload:
            if not self.device.startswith("cuda"):
                raise InputError(
                    f"cpu_offload needs a CUDA device, got device {self.device!r}; "
                    "drop --cpu-offload"
                )
            self.pipeline.enable_model_cpu_offload(device=self.device)
        else:
            self.pipeline.to(self.device)

    # -- what the rewriter needs to know -----------------------------------------------------

    @property
    def prompt_tokenizer(self) -> Any:
        """The tokenizer of the text encoder that reads the whole prompt.

        T5 for Flux/SD3, else CLIP.
        """
        if self.family.startswith("flux"):
            return getattr(self.pipeline, "tokenizer_2", None) or getattr(
                self.pipeline, "tokenizer", None
            )
        if self.family.startswith("sd3"):
            return getattr(self.pipeline, "tokenizer_3", None) or getattr(
                self.pipeline, "tokenizer", None
            )
        return getattr(self.pipeline, "tokenizer", None)

    @property
    def prompt_token_limit(self) -> int:
        """Tokens of prompt text the encoder reads (special tokens excluded)."""
        if self.family.startswith("flux"):
            return (256 if self.family == "flux-schnell" else 512) - 1
        if (
            self.family.startswith("sd3")
            and getattr(self.pipeline, "tokenizer_3", None) is not None
        ):
            return 256 - 1
        tokenizer = getattr(self.pipeline, "tokenizer", None)
        limit = getattr(tokenizer, "model_max_length", 77) or 77
        return (limit if limit < 100_000 else 77) - 2

    @property
    def supports_negative_prompt(self) -> bool:
        """Whether the negative prompt changes the image. Flux pipelines accept one but ignore it
        unless true CFG is on (twice the compute); ptgen does not turn that on."""
        return "negative_prompt" in self._call_parameters and not self.family.startswith("flux")

    def settings(self) -> dict[str, Any]:
        """The sampling settings actually used (config, else family default), for reports."""
        size = self.defaults.size
        return {
            "model": self.name,
            "pipeline": type(self.pipeline).__name__,
            "family": self.family,
            "scheduler": type(getattr(self.pipeline, "scheduler", None)).__name__,
            "steps": self.config.steps if self.config.steps is not None else self.defaults.steps,
            "guidance": self.config.guidance
            if self.config.guidance is not None
            else self.defaults.guidance,
            "width": self.config.width or size,
            "height": self.config.height or size,
            "device": self.device,
            "dtype": self.dtype_name,
            "cpu_offload": self.config.cpu_offload,
            "batch_size": self.batch_size,
        }

    # -- style adapter (IP-Adapter) ------------------------------------------------------------

    @property
    def uses_cfg(self) -> bool:
        """Whether a pipeline call runs classifier-free guidance (diffusers: guidance > 1, no
        guidance-embedding UNet); only then is there a negative branch."""
        guidance = self.settings()["guidance"]
        if guidance is None:
            parameter = inspect.signature(self.pipeline.__call__).parameters.get("guidance_scale")
            guidance = parameter.default if parameter is not None else None
        unet = getattr(self.pipeline, "unet", None)
        # LCM-style UNets embed the guidance instead of running a negative branch.
        distilled = getattr(getattr(unet, "config", None), "time_cond_proj_dim", None) is not None
        return guidance is not None and guidance > 1 and not distilled

    def set_style_references(
        self, liked: Sequence[Any], disliked: Optional[Sequence[Any]] = None
    ) -> Any:
        """Embed the references for the style adapter (each image once, cached); see `StyleAdapter`.

        Example:
            >>> gen.set_style_references([Image.open("liked.png")], [Image.open("disliked.png")])
        """
        if self.style is None:
            raise InputError(
                "no style adapter loaded; pass style=StyleAdapterConfig(...) (--style-adapter)"
            )
        return self.style.set_references(liked, disliked)

    def style_info(self) -> Optional[dict[str, Any]]:
        """The style adapter, its scale and the references used, for reports (None: no adapter)."""
        return self.style.describe(self.uses_cfg) if self.style is not None else None

    # -- generation --------------------------------------------------------------------------

    def _call_kwargs(
        self, prompt: str, negative_prompt: str, seeds: Sequence[int]
    ) -> dict[str, Any]:
        import torch

        settings = self.settings()
        kwargs: dict[str, Any] = {
            "prompt": [prompt] * len(seeds),
            # CPU generators: the noise depends only on the seed, not on the device or the batch.
            "generator": [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds],
            "output_type": "pil",
        }
        optional = {
            "num_inference_steps": settings["steps"],
            "guidance_scale": settings["guidance"],
            "width": settings["width"],
            "height": settings["height"],
        }
        for key, value in optional.items():
            if value is not None and key in self._call_parameters:
                kwargs[key] = value
        if negative_prompt and self.supports_negative_prompt:
            kwargs["negative_prompt"] = [negative_prompt] * len(seeds)
        if self.family == "flux-schnell" and "max_sequence_length" in self._call_parameters:
            kwargs["max_sequence_length"] = 256
        if self.style is not None:
            kwargs.update(self.style.call_kwargs(len(seeds), self.uses_cfg))
        return kwargs

    def _run_batch(self, prompt: str, negative_prompt: str, seeds: Sequence[int]) -> list:
        kwargs = self._call_kwargs(prompt, negative_prompt, seeds)
        start = time.perf_counter()
        output = self.pipeline(**kwargs)
        self.timings.seconds += time.perf_counter() - start  # the pipeline alone: model compute
        images = list(output.images if hasattr(output, "images") else output[0])
        if len(images) != len(seeds):
            EngineContractError.check(
                f"pipeline {self.name}", len(images), len(seeds), "images", "seeds"
            )
        self.timings.images += len(images)
        self.timings.calls += 1
        self.timings.batch_sizes.append(len(seeds))
        return [image.convert("RGB") for image in images]

    def generate(
        self,
        prompt: str,
        negative_prompt: str = "",
        seeds: Sequence[int] = (0,),
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> list:
        """Draw one image per seed, `batch_size` at a time.

        Args:
            prompt: the text prompt.
            negative_prompt: what to avoid (ignored by pipelines without negative prompts).
            seeds: one seed per image; the same seed gives the same image.
            progress: called with (images done, total) after each batch.

        Returns:
            PIL RGB images, in the order of `seeds`.

        Example:
            >>> gen.generate("a castle", "blurry", seeds=[7, 8])
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f"prompt must be a non-empty string, got {prompt!r}")
        seeds = [int(seed) for seed in seeds]
        if not seeds:
            raise InputError("seeds must hold at least one seed")
        self.restore()
        images: list = []
        while len(images) < len(seeds):
            batch = seeds[len(images) : len(images) + self.batch_size]
            try:
                images.extend(self._run_batch(prompt, negative_prompt, batch))
            except Exception as error:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
                if not _is_oom(error):
                    raise
                _free_memory()
                if self.batch_size == 1:
                    raise EngineError(
                        "out of GPU memory generating one "
                        f"{self.settings()['width']}x{self.settings()['height']} "
                        f"image with {self.name}; try cpu_offload (--cpu-offload), "
                        "a smaller size, or a smaller model"
                    ) from None
                self.batch_size = max(1, self.batch_size // 2)
                logger.warning(
                    "out of GPU memory at batch %d; retrying with batch %d",
                    len(batch),
                    self.batch_size,
                )
                continue
            if progress:
                progress(len(images), len(seeds))
        return images

    def release(self) -> None:
        """Move the pipeline off the accelerator into CPU memory so that the assessor can use
        the GPU (sequential loading); `restore()` or the next `generate` brings it back. No-op
        on the CPU and with `cpu_offload` (diffusers moves the sub-models itself)."""
        if self.pipeline is None or not self.resident:
            return
        self.resident = False
        if self.device != "cpu" and not self.config.cpu_offload:
            self.pipeline.to("cpu")
            _free_memory()

    def restore(self) -> None:
        """Put a released pipeline back on its device (see `release`)."""
        if self.pipeline is None or self.resident:
            return
        if self.device != "cpu" and not self.config.cpu_offload:
            self.pipeline.to(self.device)
        self.resident = True

    def close(self) -> None:
        """Drop the pipeline and free GPU memory."""
        self.pipeline = None
        _free_memory()
