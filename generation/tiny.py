"""Tiny random-weight Stable Diffusion pipeline, built offline and saved with `save_pretrained`.

The images it draws are noise; the plumbing is real: `DiffusionPipeline.from_pretrained(dir)`
loads it through the same code as `stable-diffusion-v1-5/stable-diffusion-v1-5`, with a real
`CLIPTokenizer` (byte-level: 256 byte symbols and their end-of-word forms, no merges, so any text
round-trips), a `CLIPTextModel`, a UNet, a VAE with the usual 8x downsampling and a scheduler.
Small enough that 4 images at 64x64 with 2 steps take about a second on a laptop CPU.

Example:
    >>> from generation.tiny import make_tiny_generator
    >>> path = make_tiny_generator("/tmp/t/generator")
    >>> from diffusers import DiffusionPipeline
    >>> pipe = DiffusionPipeline.from_pretrained(path)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional, Union

# The CLIP text encoders of SD 1.x/2.x/XL read at most 77 tokens; the tiny one keeps that limit
# so prompt-budget code paths are exercised for real.
CLIP_MAX_LENGTH = 77
TINY_SAMPLE_SIZE = 64  # pixels; the UNet works on 8x8 latents


def _clip_byte_vocab() -> dict[str, int]:
    """Byte symbols, then the same symbols with CLIP's end-of-word marker, then the specials."""
    from preferthinker.tiny import _byte_vocab  # GPT-2's byte -> printable-symbol table

    symbols = list(_byte_vocab())
    vocab: dict[str, int] = {}
    for symbol in symbols:
        vocab[symbol] = len(vocab)
    for symbol in symbols:
        vocab[symbol + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def build_tiny_tokenizer():
    """A byte-level `CLIPTokenizer` built from a vocab/merges pair written to a temporary folder."""
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory(prefix="ptgen-clip-tok-") as folder:
        vocab_file = Path(folder) / "vocab.json"
        merges_file = Path(folder) / "merges.txt"
        vocab_file.write_text(json.dumps(_clip_byte_vocab()), encoding="utf-8")
        merges_file.write_text("#version: 0.2\n", encoding="utf-8")
        tokenizer = CLIPTokenizer(vocab=str(vocab_file), merges=str(merges_file))
    tokenizer.model_max_length = CLIP_MAX_LENGTH
    return tokenizer


def build_tiny_components(seed: int = 0) -> dict:
    """The components of a tiny `StableDiffusionPipeline` (random weights, seeded).

    Sizes follow diffusers' own `get_dummy_components` tests, with a 4-level VAE so that the VAE
    scale factor is 8 like the real models (64 px images -> 8x8 latents).
    """
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=TINY_SAMPLE_SIZE // 8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=TINY_SAMPLE_SIZE,
    )
    torch.manual_seed(seed)
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_LENGTH,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|startoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        projection_dim=32,
    )
    text_encoder = CLIPTextModel(text_config)
    # "trailing" spacing gives sensible timesteps for 1-4 step sampling (like turbo models).
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing",
        steps_offset=1,
    )
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": scheduler,
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
    }


def build_tiny_pipeline(seed: int = 0):
    """A tiny `StableDiffusionPipeline` in memory (see `make_tiny_generator` to save one)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(**build_tiny_components(seed), requires_safety_checker=False)


def make_tiny_generator(directory: Union[str, Path], seed: int = 0) -> Path:
    """Build the tiny Stable Diffusion pipeline and save it to `directory` (safetensors).

    Args:
        directory: target folder (created). `DiffusionPipeline.from_pretrained(directory)` loads it.
        seed: seed of the random weights (same seed, same weights).

    Returns:
        The folder, as a `Path`.

    Example:
        >>> make_tiny_generator("/tmp/t/generator")
        PosixPath('/tmp/t/generator')
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pipeline = build_tiny_pipeline(seed)
    pipeline.save_pretrained(directory, safe_serialization=True)
    # Recommended settings, read by DiffusersGenerator: 2 steps at the UNet's native 64 px.
    (directory / "ptgen_defaults.json").write_text(
        json.dumps({"steps": 2, "guidance": 5.0, "size": TINY_SAMPLE_SIZE}), encoding="utf-8"
    )
    return directory


def make_tiny_style_adapter(
    directory: Union[str, Path],
    generator: Union[str, Path],
    seed: int = 0,
    cross_attention_dim: Optional[int] = None,
) -> Path:
    """A tiny random-weight IP-Adapter for the tiny pipeline at `generator`, in h94's layout.

    Writes `directory/ip_adapter.safetensors` (`image_proj.*`: diffusers' plain `ImageProjection`,
    4 tokens; `ip_adapter.<k>.to_k_ip/to_v_ip.weight` for each cross-attention layer, k = 1, 3, 5...
    in the UNet's processor order, as `load_ip_adapter` expects) and `directory/image_encoder/`
    (a tiny `CLIPVisionModelWithProjection`, 32 px). `pipeline.load_ip_adapter(directory,
    subfolder="", weight_name="ip_adapter.safetensors")` loads it.

    Args:
        directory: target folder (created).
        generator: the tiny pipeline folder (its UNet sets the layer shapes).
        seed: seed of the random weights.
        cross_attention_dim: the text width the adapter is made for (None: the UNet's); another
            value makes an adapter for a different family (2048: SDXL), for wrong-family tests.

    Returns:
        The folder, as a `Path`.

    Example:
        >>> make_tiny_style_adapter("/tmp/t/ip_adapter", "/tmp/t/generator")
        PosixPath('/tmp/t/ip_adapter')
    """
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    unet_config = UNet2DConditionModel.load_config(Path(generator) / "unet")
    unet = UNet2DConditionModel.from_config(unet_config)
    text_dim = cross_attention_dim or int(unet.config.cross_attention_dim)
    image_dim = 16  # CLIP projection width; differs from the text width so a mix-up fails loudly
    torch.manual_seed(seed)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=4, projection_dim=image_dim,
    ))
    encoder.save_pretrained(directory / "image_encoder", safe_serialization=True)
    generator_rng = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> "torch.Tensor":
        return torch.randn(*shape, generator=generator_rng) * 0.5

    tokens = 4
    state = {
        "image_proj.proj.weight": randn(text_dim * tokens, image_dim),
        "image_proj.proj.bias": randn(text_dim * tokens),
        "image_proj.norm.weight": torch.ones(text_dim),
        "image_proj.norm.bias": torch.zeros(text_dim),
    }
    channels = list(unet.config.block_out_channels)
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name[len("up_blocks.")])]
        else:
            hidden = channels[int(name[len("down_blocks.")])]
        state[f"ip_adapter.{key_id}.to_k_ip.weight"] = randn(hidden, text_dim)
        state[f"ip_adapter.{key_id}.to_v_ip.weight"] = randn(hidden, text_dim)
        key_id += 2
    save_file(state, str(directory / "ip_adapter.safetensors"))
    return directory
