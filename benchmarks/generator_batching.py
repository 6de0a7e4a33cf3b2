"""Batched vs. one-at-a-time generation of 8 candidates through `DiffusersGenerator` (GPU timing).

Builds a random-weight pipeline with the SDXL architecture from configs (no download: UNet
2.6B with SDXL's config, SDXL's VAE, CLIP-L and OpenCLIP-bigG-sized text encoders with a byte-level
tokenizer), wraps it in `DiffusersGenerator(pipeline=...)`, and times 8 candidates with
batch_size 8 against batch_size 1, after a warm-up. Random weights give meaningless images and
representative timings. Also checks that a seed gives the same image in both batch sizes.

Run on a CUDA machine (about 2-3 minutes including building the model):

    python benchmarks/generator_batching.py --size 512 --steps 4 --out batching.json

A CPU smoke test of the same code path with a shrunken SDXL-architecture model:

    python benchmarks/generator_batching.py --small --device cpu --size 64 --steps 2

Example:
    >>> run_batching(small=True, device="cpu", size=64, steps=2)["speedup"] > 0
    True
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Optional


def build_sdxl_pipeline(small: bool = False, device: str = "cuda", dtype: str = "float16"):
    """A random-weight StableDiffusionXLPipeline with SDXL's architecture (or a shrunken one)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from generation.tiny import build_tiny_tokenizer

    torch_dtype = getattr(torch, dtype)
    tokenizer = build_tiny_tokenizer()
    vocab = len(tokenizer)
    if small:
        channels, layers, transformer_layers, heads = (32, 64, 64), 1, (1, 1, 1), (2, 4, 4)
        text1, text2 = (32, 2, 4, 64), (64, 2, 4, 128)
        vae_channels, vae_layers = (8, 8, 8, 8), 1
        cross = text1[0] + text2[0]
        groups = 8
    else:  # stabilityai/stable-diffusion-xl-base-1.0's configs
        channels, layers, transformer_layers, heads = (320, 640, 1280), 2, (1, 2, 10), (5, 10, 20)
        text1, text2 = (768, 12, 12, 3072), (1280, 32, 20, 5120)
        vae_channels, vae_layers = (128, 256, 512, 512), 2
        cross = 2048
        groups = 32
    # Build on the target device directly: initialising 2.6B parameters on a CPU takes minutes.
    with torch.device(device):
        unet = UNet2DConditionModel(
            sample_size=128,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=channels,
            layers_per_block=layers,
            transformer_layers_per_block=transformer_layers,
            attention_head_dim=heads,
            cross_attention_dim=cross,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=256 if not small else 8,
            projection_class_embeddings_input_dim=text2[0] + 6 * (256 if not small else 8),
            norm_num_groups=groups,
        ).to(torch_dtype)
        vae = AutoencoderKL(
            block_out_channels=vae_channels,
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=vae_layers,
            norm_num_groups=min(groups, vae_channels[0]),
            sample_size=1024,
            scaling_factor=0.13025,
            force_upcast=False,
        ).to(torch_dtype)
        ids = dict(
            bos_token_id=vocab - 2,
            eos_token_id=vocab - 1,
            pad_token_id=vocab - 1,
            vocab_size=vocab,
            max_position_embeddings=77,
        )
        encoder = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=text1[0],
                num_hidden_layers=text1[1],
                num_attention_heads=text1[2],
                intermediate_size=text1[3],
                projection_dim=text1[0],
                **ids,
            )
        ).to(torch_dtype)
        encoder_2 = CLIPTextModelWithProjection(
            CLIPTextConfig(
                hidden_size=text2[0],
                num_hidden_layers=text2[1],
                num_attention_heads=text2[2],
                intermediate_size=text2[3],
                projection_dim=text2[0],
                hidden_act="gelu",
                **ids,
            )
        ).to(torch_dtype)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=encoder,
        text_encoder_2=encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
    )


def _timed(
    generator: Any, batch_size: int, seeds: list[int], prompt: str, sync: Any
) -> tuple[float, list]:
    generator.batch_size = batch_size
    sync()
    start = time.perf_counter()
    images = generator.generate(prompt, "blurry", seeds=seeds)
    sync()
    return time.perf_counter() - start, images


def run_batching(
    small: bool = False,
    device: str = "cuda",
    size: int = 512,
    steps: int = 4,
    guidance: float = 0.0,
    n: int = 8,
    repeats: int = 3,
) -> dict[str, Any]:
    """Time n candidates at batch_size n vs. batch_size 1 (median of `repeats` after a warm-up)."""
    import numpy as np
    import torch

    from generation.generator import DiffusersGenerator, GeneratorConfig

    build_start = time.perf_counter()
    dtype = "float16" if device.startswith("cuda") else "float32"
    pipeline = build_sdxl_pipeline(small=small, device=device, dtype=dtype)
    build_seconds = time.perf_counter() - build_start
    config = GeneratorConfig(
        model="random-sdxl-architecture",
        steps=steps,
        guidance=guidance,
        width=size,
        height=size,
        batch_size=n,
        device=device,
        dtype=dtype,
    )
    generator = DiffusersGenerator(config, pipeline=pipeline)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    seeds = list(range(n))
    prompt = "a castle, Pixel Art style, Pink color palette"
    _timed(generator, n, seeds, prompt, sync)  # warm-up: kernels, allocator, cuDNN autotune
    _timed(generator, 1, seeds[:1], prompt, sync)
    batched, one_by_one = [], []
    images_batched = images_single = None
    for _ in range(repeats):
        seconds, images_batched = _timed(generator, n, seeds, prompt, sync)
        batched.append(seconds)
        seconds, images_single = _timed(generator, 1, seeds, prompt, sync)
        one_by_one.append(seconds)
    diffs = [
        int(np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max())
        for a, b in zip(images_batched, images_single)
    ]
    median_batched = sorted(batched)[len(batched) // 2]
    median_single = sorted(one_by_one)[len(one_by_one) // 2]
    return {
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
        "architecture": "SDXL (shrunken)" if small else "SDXL",
        "unet_parameters": sum(p.numel() for p in pipeline.unet.parameters()),
        "dtype": dtype,
        "size": size,
        "steps": steps,
        "guidance": guidance,
        "n": n,
        "build_seconds": round(build_seconds, 2),
        "batched_seconds": round(median_batched, 3),
        "one_at_a_time_seconds": round(median_single, 3),
        "speedup": round(median_single / median_batched, 2),
        "per_image_batched_ms": round(1000 * median_batched / n, 1),
        "per_image_single_ms": round(1000 * median_single / n, 1),
        "same_seed_max_pixel_diff": max(diffs),
        "runs_batched": [round(s, 3) for s in batched],
        "runs_one_at_a_time": [round(s, 3) for s in one_by_one],
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="Shrunken SDXL architecture (CPU smoke test)."
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument(
        "--guidance",
        type=float,
        default=0.0,
        help="> 1 doubles the batch (classifier-free guidance).",
    )
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run_batching(
        args.small, args.device, args.size, args.steps, args.guidance, args.n, args.repeats
    )
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
