"""The full-size models of the GPU evidence run, and how it measures them.

Random weights with the real architectures, built from configs (no download): a Qwen2.5-VL-7B
assessor saved for `TransformersEngine`, an SDXL `DiffusersGenerator`
(benchmarks/generator_batching.py), an engine wrapper that forces answer lengths
(`ForcedLengths`), and the timers and GPU-memory readings that benchmarks/gpu_evidence.py
records. Every function also runs at toy size on a CPU (`--tiny`), where memory reads None.

Example:
    >>> folder = build_assessor_folder(Path("/tmp/a"), "tiny", "cpu")["folder"]  # doctest: +SKIP
    >>> assessor = load_assessor(Path(folder), "cpu", 8, 12)  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any, Callable, Optional

from preferthinker.engines.base import Engine

GIB = 1024**3
# What a 24 GB card (e.g. an RTX 4090: 24,564 MiB) leaves to PyTorch after the CUDA context.
FITS_24GB_GIB = 23.0


# -- GPU helpers --------------------------------------------------------------------------------


def on_cuda(device: str) -> bool:
    return device.startswith("cuda")


def sync(device: str) -> None:
    if on_cuda(device):
        import torch

        torch.cuda.synchronize()


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def memory_now(device: str) -> Optional[dict[str, float]]:
    """Allocated and reserved GPU memory (GiB) now, and the peaks since the last reset; None on
    a CPU."""
    if not on_cuda(device):
        return None
    import torch

    return {
        "allocated_gib": round(torch.cuda.memory_allocated() / GIB, 2),
        "reserved_gib": round(torch.cuda.memory_reserved() / GIB, 2),
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GIB, 2),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GIB, 2),
    }


def reset_peak(device: str) -> None:
    if on_cuda(device):
        import torch

        torch.cuda.reset_peak_memory_stats()


def fits_24gb(memory: Optional[dict[str, float]]) -> Optional[bool]:
    """Whether a peak fits a 24 GB card (peak reserved <= FITS_24GB_GIB); None without a reading."""
    if not memory:
        return None
    return memory["peak_reserved_gib"] <= FITS_24GB_GIB


class StagePeaks:
    """A loop callback: peak GPU memory of each stage (reset when the next stage begins)."""

    def __init__(self, device: str):
        self.device = device
        self.current: Optional[str] = None
        self.peaks: dict[str, Any] = {}

    def __call__(self, event: Any) -> None:
        if event.stage != self.current:
            self.close()
            self.current = event.stage
            reset_peak(self.device)

    def close(self) -> None:
        if self.current is not None:
            sync(self.device)
            self.peaks[self.current] = memory_now(self.device)
            self.current = None


def timed(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    sync(device)
    start = time.perf_counter()
    value = fn()
    sync(device)
    return time.perf_counter() - start, value


def median_time(fn: Callable[[], Any], device: str, repeats: int = 3) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    fn()
    times = sorted(timed(fn, device)[0] for _ in range(repeats))
    return times[len(times) // 2]


# -- the models -----------------------------------------------------------------------------


def qwen25_vl_7b_config(ids: dict[str, int]):
    """Qwen/Qwen2.5-VL-7B-Instruct's architecture (8,292,166,656 parameters), with the special
    token ids of the offline tokenizer. Built from the published config.json's values."""
    from transformers import Qwen2_5_VLConfig

    common = dict(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=152064,
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            max_position_embeddings=128000,
            rope_theta=1000000.0,
            rms_norm_eps=1e-6,
            tie_word_embeddings=False,
            rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
            **common,
        ),
        vision_config=dict(
            depth=32,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            out_hidden_size=3584,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=[7, 15, 23, 31],
            hidden_act="silu",
            tokens_per_second=2,
            in_chans=3,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        **common,
    )


def build_assessor_folder(folder: Path, architecture: str, device: str) -> dict[str, Any]:
    """Save a random-weight assessor (model + processor) to `folder` for `TransformersEngine`:
    `architecture` "qwen2.5-vl-7b" (built on `device`, saved in bf16) or "tiny".

    The tokenizer is the offline byte-level one of preferthinker/tiny.py (Qwen's special tokens;
    text costs one token per byte, about 4x Qwen's own tokenizer; images are unaffected).
    """
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from preferthinker.tiny import (
        SPECIAL_TOKENS,
        build_tiny_assessor,
        build_tiny_processor,
        processor_for,
    )

    started = time.perf_counter()
    if architecture == "tiny":
        tiny, processor = build_tiny_assessor(image_size=56)
        config = tiny.config
    else:
        tokenizer = build_tiny_processor().tokenizer
        # Images resized to Qwen's budget: 1296 visual tokens per 1024 px image.
        processor = processor_for(tokenizer, image_size=1024)
        ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
        config = qwen25_vl_7b_config(ids)
    # The same construction at both sizes; on the GPU directly (8B parameters on a CPU: minutes).
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    built = time.perf_counter() - started
    parameters = sum(p.numel() for p in model.parameters())
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    del model
    free_memory()
    return {
        "architecture": architecture,
        "parameters": parameters,
        "build_seconds": round(built, 1),
        "save_seconds": round(time.perf_counter() - started - built, 1),
        "folder": str(folder),
    }


def build_generator(
    device: str, small: bool, size: int, steps: int, guidance: float, batch_size: int
):
    """`DiffusersGenerator` over a random-weight SDXL-architecture pipeline (generator_batching.py;
    `small`: its shrunken architecture), fp16 on CUDA."""
    from generator_batching import build_sdxl_pipeline

    from generation.generator import DiffusersGenerator, GeneratorConfig

    dtype = "float16" if on_cuda(device) else "float32"
    pipeline = build_sdxl_pipeline(small=small, device=device, dtype=dtype)
    config = GeneratorConfig(
        model="random-sdxl-architecture",
        steps=steps,
        guidance=guidance,
        width=size,
        height=size,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
    )
    return DiffusersGenerator(config, pipeline=pipeline)


def component_parameters(generator: Any) -> dict[str, int]:
    pipeline = generator.pipeline
    return {
        name: sum(p.numel() for p in getattr(pipeline, name).parameters())
        for name in ("unet", "vae", "text_encoder", "text_encoder_2")
    }


class ForcedLengths(Engine):
    """Wraps an in-process engine so that random weights write answers of a set length.

    Every call generates exactly `verdict_tokens` new tokens (`profile_tokens` for the profile
    prediction): min_new_tokens = max_new_tokens. The profile answer's text is then replaced by
    `profile_text`, a valid profile, so the loop ranks in its default profile mode; the compute
    and the token counts stay the model's own.
    """

    def __init__(self, engine: Any, profile_tokens: int, verdict_tokens: int, profile_text: str):
        self.engine = engine
        self.name = engine.name
        self.profile_tokens = profile_tokens
        self.verdict_tokens = verdict_tokens
        self.profile_text = profile_text

    @staticmethod
    def is_comparison(conversation: list) -> bool:
        return any(
            part.get("text") == "Image A"
            for message in conversation
            if isinstance(message.get("content"), list)
            for part in message["content"]
        )

    def generate(self, conversations: list, config: Any = None) -> list:
        from dataclasses import replace

        from preferthinker.engines.base import GenerationConfig

        profile = [not self.is_comparison(c) for c in conversations]
        if any(profile) and not all(profile):
            raise ValueError("ForcedLengths expects profile and comparison calls apart")
        length = self.profile_tokens if all(profile) else self.verdict_tokens
        self.engine.model.generation_config.min_new_tokens = length
        outputs = self.engine.generate(
            conversations, replace(config or GenerationConfig(), max_new_tokens=length)
        )
        if all(profile):
            outputs = [replace(output, text=self.profile_text) for output in outputs]
        return outputs

    def release(self) -> None:
        self.engine.release()

    def restore(self) -> None:
        self.engine.restore()

    def close(self) -> None:
        self.engine.close()


def valid_profile_text() -> str:
    from preferthinker.profile import Profile, UserProfile

    return UserProfile(
        liked=Profile(
            art_style=["Pixel Art"],
            color=["Crimson"],
            art_medium=["Digital Painting"],
            saturation=["Intense"],
            detail=["Fine"],
        ),
        disliked=Profile(color=["Cobalt Blue"]),
    ).to_tag_text()


def load_assessor(
    folder: Path, device: str, profile_tokens: int, verdict_tokens: int, quantization: str = "none"
):
    """An `Assessor` over `TransformersEngine(folder)` (bf16 on CUDA, batch 4, no retries) with
    forced answer lengths."""
    from preferthinker.assessor import Assessor, AssessorConfig
    from preferthinker.engines.transformers_engine import TransformersEngine

    config = AssessorConfig(
        assessor=str(folder),
        device=device,
        dtype="bf16" if on_cuda(device) else "fp32",
        max_retries=0,
        repetition_penalty=1.0,
        batch_size=4,
        quantization=quantization,
    )
    engine = TransformersEngine(
        str(folder),
        device=device,
        dtype=config.dtype,
        batch_size=config.batch_size,
        quantization=quantization,
    )
    return Assessor(
        ForcedLengths(engine, profile_tokens, verdict_tokens, valid_profile_text()), config
    )


def reference_images(size: int, count: int) -> tuple[list, list]:
    """`count` liked and `count` disliked references: procedural SynthPref renderings."""
    from synthpref.renderer import ProceduralGenerator

    renderer = ProceduralGenerator(size=size)
    liked = renderer.generate(
        "a castle, Pixel Art style, Crimson color palette", seeds=range(count)
    )
    disliked = renderer.generate(
        "a castle, Watercolor, Cobalt Blue color palette", seeds=range(100, 100 + count)
    )
    return liked, disliked


def stage_summary(result: Any) -> dict[str, Any]:
    """Stage timings, model time and the loop's own overhead of a `RunResult`."""
    timings = {k: round(v, 3) for k, v in result.timings.items()}
    model = {k: round(v, 3) for k, v in result.model_seconds.items()}
    overhead = result.timings["total"] - sum(result.model_seconds.values())
    return {
        "timings_seconds": timings,
        "model_seconds": model,
        "overhead_seconds": round(overhead, 3),
        "overhead_share": round(overhead / result.timings["total"], 4),
        "assessor_calls": result.usage.calls,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "images_sent": result.usage.images,
        "comparisons": len(result.ranking.matches) if result.ranking else 0,
        "mode": result.mode,
        "issues": result.issues,
    }


def valid_profile() -> Any:
    """The `UserProfile` of `valid_profile_text`."""
    from preferthinker.parser import parse_profiles

    return parse_profiles(valid_profile_text())
