"""The IP-Adapter style adapter on the tiny pipeline: a tiny random-weight adapter and CLIP image
encoder saved in h94's layout and loaded through diffusers' own `load_ip_adapter`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generation.generator import DiffusersGenerator, GeneratorConfig
from generation.style import StyleAdapterConfig, StyleAdapterError

RED = [Image.new("RGB", (40, 40), (250, 10, 10)), Image.new("RGB", (40, 40), (200, 40, 0))]
BLUE = [Image.new("RGB", (40, 40), (10, 10, 250))]
GREEN = [Image.new("RGB", (40, 40), (10, 230, 10))]


@pytest.fixture(scope="module")
def tiny_adapter(tiny_generator_path, tmp_path_factory) -> Path:
    from generation.tiny import make_tiny_style_adapter

    return make_tiny_style_adapter(
        tmp_path_factory.mktemp("ipa") / "ip_adapter", tiny_generator_path
    )


def make_gen(path, adapter, tmp_path, **style) -> DiffusersGenerator:
    style.setdefault("scale", 1.0)
    style.setdefault("cache_dir", str(tmp_path / "embeds"))
    config = GeneratorConfig(model=str(path), device="cpu", batch_size=2)
    return DiffusersGenerator(config, style=StyleAdapterConfig(str(adapter), **style))


def pixels(image) -> np.ndarray:
    return np.asarray(image).astype(int)


def encode_directly(gen, images) -> torch.Tensor:
    """The CLIP image embedding of each image, straight from the encoder (not through ptgen)."""
    with torch.no_grad():
        batch = gen.pipeline.feature_extractor(images, return_tensors="pt").pixel_values
        return gen.pipeline.image_encoder(batch).image_embeds


def test_liked_mean_and_disliked_reach_the_adapter_layers(
    tiny_generator_path, tiny_adapter, tmp_path
):
    gen = make_gen(tiny_generator_path, tiny_adapter, tmp_path)
    gen.set_style_references(RED, BLUE)
    seen = []
    projection = gen.pipeline.unet.encoder_hid_proj
    handle = projection.register_forward_pre_hook(
        lambda module, args: seen.append(args[0][0].clone())
    )
    with_style = gen.generate("a castle", seeds=[3])[0]
    handle.remove()
    # Under CFG each call gets [negative; positive], one image each: [2, 1, 16].
    assert seen and seen[0].shape == (2, 1, 16)
    expected_positive = encode_directly(gen, RED).mean(dim=0)
    expected_negative = encode_directly(gen, BLUE)[0]
    assert torch.allclose(seen[0][1, 0], expected_positive, atol=1e-5)
    assert torch.allclose(seen[0][0, 0], expected_negative, atol=1e-5)
    # The attention processors use them: scale 0 (adapter skipped) draws another image.
    with gen.style.disabled():
        without = gen.generate("a castle", seeds=[3])[0]
    assert np.abs(pixels(with_style) - pixels(without)).mean() > 1.0
    # ...and other liked images draw another image again.
    gen.set_style_references(GREEN, BLUE)
    assert np.abs(pixels(gen.generate("a castle", seeds=[3])[0]) - pixels(with_style)).mean() > 1.0


def test_disliked_images_change_the_image_only_under_cfg(
    tiny_generator_path, tiny_adapter, tmp_path
):
    gen = make_gen(tiny_generator_path, tiny_adapter, tmp_path)
    assert gen.uses_cfg  # the tiny pipeline's guidance is 5
    gen.set_style_references(RED, BLUE)
    away_from_blue = gen.generate("a castle", seeds=[5])[0]
    gen.set_style_references(RED, GREEN)
    away_from_green = gen.generate("a castle", seeds=[5])[0]
    assert np.abs(pixels(away_from_blue) - pixels(away_from_green)).mean() > 1.0
    # Without CFG there is no negative branch: the disliked images cannot matter, and it is said.
    plain = make_gen(tiny_generator_path, tiny_adapter, tmp_path)
    plain.config.guidance = 1.0
    assert not plain.uses_cfg
    plain.set_style_references(RED, BLUE)
    first = plain.generate("a castle", seeds=[5])[0]
    plain.set_style_references(RED, GREEN)
    assert np.array_equal(pixels(first), pixels(plain.generate("a castle", seeds=[5])[0]))
    assert "not used" in plain.style_info()["note"]


def test_the_seed_still_fixes_the_image(tiny_generator_path, tiny_adapter, tmp_path):
    gen = make_gen(tiny_generator_path, tiny_adapter, tmp_path)
    gen.set_style_references(RED, BLUE)
    batch = gen.generate("a castle", seeds=[7, 8])
    again = gen.generate("a castle", seeds=[8])
    assert np.abs(pixels(batch[1]) - pixels(again[0])).max() <= 2  # batched kernels: float rounding
    assert np.abs(pixels(batch[0]) - pixels(batch[1])).mean() > 1.0


def test_cache_avoids_a_second_encode(tiny_generator_path, tiny_adapter, tmp_path):
    gen = make_gen(tiny_generator_path, tiny_adapter, tmp_path)
    calls = []
    gen.pipeline.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    first = gen.set_style_references(RED, BLUE)
    assert len(calls) == 3 and first.encoded == 3
    # A new generator (new process, same cache folder): nothing is encoded again.
    other = make_gen(tiny_generator_path, tiny_adapter, tmp_path)
    other_calls = []
    other.pipeline.image_encoder.register_forward_hook(lambda *args: other_calls.append(1))
    second = other.set_style_references(RED, BLUE)
    assert other_calls == [] and second.cached == 3
    assert torch.equal(first.positive, second.positive) and torch.equal(
        first.negative, second.negative
    )
    # One changed pixel is a new image: exactly that one is encoded.
    changed = RED[0].copy()
    changed.putpixel((0, 0), (0, 0, 0))
    other.set_style_references([changed, RED[1]], BLUE)
    assert other_calls == [1]


def test_top_k_drops_the_odd_reference(tiny_generator_path, tiny_adapter, tmp_path):
    gen = make_gen(tiny_generator_path, tiny_adapter, tmp_path, top_k=3)
    liked = [RED[0], GREEN[0], RED[0], RED[0]]
    refs = gen.set_style_references(liked, None)
    assert sorted(refs.liked_used) == [0, 2, 3]
    assert torch.allclose(refs.positive[0], encode_directly(gen, [RED[0]])[0], atol=1e-5)
    assert gen.style_info()["rule"] == "mean of the 3 most typical liked"


def test_style_only_blocks_scale_only_those_layers(tiny_generator_path, tiny_adapter, tmp_path):
    gen = make_gen(
        tiny_generator_path,
        tiny_adapter,
        tmp_path,
        scale=0.8,
        blocks={"up": {"block_0": [0.0, 1.0]}},
    )
    scales = {
        name: proc.scale[0]
        for name, proc in gen.pipeline.unet.attn_processors.items()
        if hasattr(proc, "scale") and isinstance(proc.scale, list)
    }
    assert scales["up_blocks.0.attentions.1.transformer_blocks.0.attn2.processor"] == pytest.approx(
        0.8
    )
    others = [
        value for name, value in scales.items() if not name.startswith("up_blocks.0.attentions.1")
    ]
    assert others and all(value == 0.0 for value in others)


def test_wrong_family_adapter_is_a_one_line_error_naming_both(tiny_generator_path, tmp_path):
    from generation.tiny import make_tiny_style_adapter

    sdxl_adapter = make_tiny_style_adapter(
        tmp_path / "sdxl_ipa", tiny_generator_path, cross_attention_dim=2048
    )
    with pytest.raises(StyleAdapterError) as error:
        make_gen(tiny_generator_path, sdxl_adapter / "ip_adapter.safetensors", tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert "sdxl (cross-attention 2048)" in message and "sd15 (cross-attention 32)" in message


def test_missing_adapter_and_no_references_are_clear_errors(
    tiny_generator_path, tiny_adapter, tmp_path
):
    with pytest.raises(StyleAdapterError, match="does not exist"):
        make_gen(tiny_generator_path, tmp_path / "nope.safetensors", tmp_path)
    gen = make_gen(tiny_generator_path, tiny_adapter, tmp_path)
    with pytest.raises(Exception, match="no references set"):
        gen.generate("a castle", seeds=[0])


@pytest.mark.parametrize("scale", [-1.0, float("nan"), float("inf")])
def test_a_scale_that_is_no_finite_number_is_refused(scale):
    with pytest.raises(ValueError, match="style scale must be a finite number >= 0"):
        StyleAdapterConfig("auto", scale=scale)


def test_adapter_specs_resolve_to_load_ip_adapter_arguments(tmp_path):
    from generation.style import resolve_adapter

    auto = resolve_adapter(StyleAdapterConfig(), "sdxl-turbo")  # distilled SDXL: SDXL's adapter
    assert (auto.source, auto.subfolder, auto.weight_name, auto.image_encoder_folder) == (
        "h94/IP-Adapter",
        "sdxl_models",
        "ip-adapter_sdxl.safetensors",
        "image_encoder",
    )
    assert resolve_adapter(StyleAdapterConfig(), "sd15").subfolder == "models"
    hub = resolve_adapter(
        StyleAdapterConfig("h94/IP-Adapter/models/ip-adapter-plus_sd15.bin"), "sd15"
    )
    assert (hub.source, hub.subfolder, hub.weight_name) == (
        "h94/IP-Adapter",
        "models",
        "ip-adapter-plus_sd15.bin",
    )
    with pytest.raises(
        StyleAdapterError, match="no default style adapter for generator family sd2"
    ):
        resolve_adapter(StyleAdapterConfig(), "sd2")
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "a.safetensors").write_bytes(b"")
    (folder / "b.bin").write_bytes(b"")
    with pytest.raises(StyleAdapterError, match="exactly one .*found a.safetensors, b.bin"):
        resolve_adapter(StyleAdapterConfig(str(folder)), "sd15")


def test_flux_is_refused_with_a_clear_error(tiny_generator_path, tiny_adapter):
    from generation.style import StyleAdapter

    pipeline = type("FluxPipeline", (), {})()  # only the family decides; nothing is loaded
    with pytest.raises(
        StyleAdapterError, match="flux-schnell: ptgen wires IP-Adapters for SD 1.5/SDXL"
    ):
        StyleAdapter(pipeline, "flux-schnell", StyleAdapterConfig(str(tiny_adapter)), "flux")


@pytest.fixture(scope="module")
def tiny_sdxl_path(tmp_path_factory) -> Path:
    """A tiny random SDXL pipeline (two text encoders, text_time embedding; sizes after diffusers'
    own SDXL tests) with up_blocks.0 holding 3 attentions, like the real SDXL UNet."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from generation.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=2,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,
        cross_attention_dim=64,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=64,
    )
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|startoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    )
    pipeline = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(config),
        text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer,
        tokenizer_2=build_tiny_tokenizer(),
        unet=unet,
        scheduler=EulerDiscreteScheduler(timestep_spacing="trailing"),
        image_encoder=None,
        feature_extractor=None,
    )
    folder = tmp_path_factory.mktemp("tiny-sdxl") / "generator"
    pipeline.save_pretrained(folder, safe_serialization=True)
    (folder / "ptgen_defaults.json").write_text('{"steps": 2, "guidance": 5.0, "size": 64}')
    return folder


def test_sdxl_default_puts_the_image_in_the_style_block_only(tiny_sdxl_path, tmp_path):
    from generation.tiny import make_tiny_style_adapter

    adapter = make_tiny_style_adapter(tmp_path / "ipa_xl", tiny_sdxl_path)
    config = GeneratorConfig(model=str(tiny_sdxl_path), device="cpu", batch_size=2)
    gen = DiffusersGenerator(config, style=StyleAdapterConfig(str(adapter), scale=0.9, cache=False))
    assert gen.family == "sdxl"
    scales = {
        name: proc.scale[0]
        for name, proc in gen.pipeline.unet.attn_processors.items()
        if isinstance(getattr(proc, "scale", None), list)
    }
    style_block = [n for n in scales if n.startswith("up_blocks.0.attentions.1.")]
    assert style_block and all(scales[n] == pytest.approx(0.9) for n in style_block)
    assert all(value == 0.0 for n, value in scales.items() if n not in style_block)
    assert gen.style_info()["blocks"] == {"up": {"block_0": [0.0, 0.9, 0.0]}}
    gen.set_style_references(RED, BLUE)
    with_style = gen.generate("a castle", seeds=[1, 2])
    with gen.style.disabled():
        without = gen.generate("a castle", seeds=[1, 2])
    assert np.abs(pixels(with_style[0]) - pixels(without[0])).mean() > 0.5
