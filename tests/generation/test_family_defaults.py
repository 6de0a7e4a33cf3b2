"""Family defaults on tiny real pipelines of the classes they are for: LCM (guidance embedded
in the UNet) vs LCM-LoRA on a base pipeline, SDXL-Lightning's trailing timesteps and step count
from the checkpoint id, and Hyper-SD kept apart from Lightning. The pipelines are built from
configs with random weights (as diffusers' own tests do), saved, and loaded by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from generation.generator import (
    FAMILIES,
    DiffusersGenerator,
    GeneratorConfig,
    detect_family,
    families_help,
    steps_from_id,
)
from generation.tiny import build_tiny_components, build_tiny_tokenizer


def _save(pipeline, folder: Path) -> str:
    pipeline.save_pretrained(folder)
    return str(folder)


def _lcm_pipeline():
    """A tiny LatentConsistencyModelPipeline: its UNet embeds the guidance (time_cond_proj_dim)."""
    import torch
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler, UNet2DConditionModel

    parts = build_tiny_components()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        time_cond_proj_dim=32,
    )
    scheduler = LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    return LatentConsistencyModelPipeline(
        unet=unet,
        vae=parts["vae"],
        text_encoder=parts["text_encoder"],
        tokenizer=parts["tokenizer"],
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _sd_pipeline(scheduler=None):
    from diffusers import StableDiffusionPipeline

    parts = build_tiny_components()
    if scheduler is not None:
        parts["scheduler"] = scheduler
    return StableDiffusionPipeline(**parts, requires_safety_checker=False)


def _sdxl_pipeline():
    """A tiny StableDiffusionXLPipeline (two text encoders), with the base model's "leading"
    Euler scheduler, as a Lightning UNet dropped into the base pipeline would have."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    parts = build_tiny_components()
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=4,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=80,
        cross_attention_dim=64,
    )
    config = parts["text_encoder"].config
    torch.manual_seed(0)
    text_encoder_2 = CLIPTextModelWithProjection(
        CLIPTextConfig(**{**config.to_dict(), "projection_dim": 32})
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
        steps_offset=1,
    )
    return StableDiffusionXLPipeline(
        unet=unet,
        vae=parts["vae"],
        text_encoder=CLIPTextModel(config),
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=scheduler,
    )


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from diffusers import LCMScheduler

    root = tmp_path_factory.mktemp("families")
    sdxl = _sdxl_pipeline()
    return {
        "lcm": _save(_lcm_pipeline(), root / "lcm-dreamshaper-tiny"),
        # A base SD pipeline with a fused LCM-LoRA, saved with its LCM scheduler.
        "lcm-lora-fused": _save(
            _sd_pipeline(
                LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
            ),
            root / "sd15-fused",
        ),
        "lcm-lora-id": _save(_sd_pipeline(), root / "sd15-lcm-lora"),
        "lightning-2": _save(sdxl, root / "sdxl_lightning_2step"),
        "lightning": _save(sdxl, root / "sdxl-lightning"),
        "hyper-4": _save(sdxl, root / "Hyper-SDXL-4steps"),
    }


def _generate(model: str, **config):
    generator = DiffusersGenerator(GeneratorConfig(model=model, device="cpu", **config))
    generator.generate("a castle", seeds=[0])
    return generator


def test_lcm_pipeline_uses_the_cards_guidance(folders):
    generator = _generate(folders["lcm"])
    assert (
        generator.family == "lcm"
        and type(generator.pipeline).__name__ == "LatentConsistencyModelPipeline"
    )
    settings = generator.settings()
    assert (settings["steps"], settings["guidance"]) == (4, 8.0)
    # What the pipeline ran with: w = guidance - 1 goes into the UNet's guidance embedding.
    assert generator.pipeline.guidance_scale == 8.0
    assert len(generator.pipeline.scheduler.timesteps) == 4


def test_lcm_lora_on_a_base_pipeline_runs_without_guidance(folders):
    fused = _generate(folders["lcm-lora-fused"])
    assert fused.family == "lcm-lora" and fused.settings()["guidance"] == 1.0
    assert fused.pipeline.guidance_scale == 1.0 and not fused.pipeline.do_classifier_free_guidance
    # Named by its id, with the base model's scheduler: the card's LCMScheduler is put in.
    named = _generate(folders["lcm-lora-id"])
    assert named.family == "lcm-lora" and type(named.pipeline.scheduler).__name__ == "LCMScheduler"
    assert named.scheduler_change.startswith("LCMScheduler")


@pytest.mark.parametrize(
    "key,steps,timesteps", [("lightning-2", 2, [999, 499]), ("lightning", 4, [999, 749, 499, 249])]
)
def test_sdxl_lightning_gets_trailing_timesteps_and_the_checkpoints_steps(
    folders, key, steps, timesteps
):
    generator = _generate(folders[key], width=64, height=64)
    assert generator.family == "sdxl-lightning"
    scheduler = generator.pipeline.scheduler
    assert type(scheduler).__name__ == "EulerDiscreteScheduler"
    assert scheduler.config.timestep_spacing == "trailing"
    assert generator.settings()["steps"] == steps and generator.settings()["guidance"] == 0.0
    # The timesteps it actually ran: "leading" would start at 1 + 500 = 501 for 2 steps.
    assert [round(float(t)) for t in scheduler.timesteps] == timesteps


def test_hyper_sd_is_not_lightning(folders):
    generator = _generate(folders["hyper-4"], width=64, height=64)
    assert generator.family == "hyper-sd"
    assert generator.settings()["steps"] == 4 and generator.settings()["guidance"] == 0.0
    assert type(generator.pipeline.scheduler).__name__ == "DDIMScheduler"
    assert generator.pipeline.scheduler.config.timestep_spacing == "trailing"


def test_flags_still_win_over_family_defaults(folders):
    generator = _generate(folders["lightning-2"], width=64, height=64, steps=3, guidance=1.5)
    assert (generator.settings()["steps"], generator.settings()["guidance"]) == (3, 1.5)
    assert len(generator.pipeline.scheduler.timesteps) == 3


@pytest.mark.parametrize(
    "ident,steps",
    [
        ("ByteDance/SDXL-Lightning/sdxl_lightning_8step_unet.safetensors", 8),
        ("x/sdxl-lightning-1step", 1),
        ("ByteDance/Hyper-SD/Hyper-SDXL-12steps-CFG-lora", 12),
        ("stabilityai/sdxl-turbo", None),
    ],
)
def test_steps_from_the_id(ident, steps):
    assert steps_from_id(ident) == steps


@pytest.mark.parametrize(
    "cls,ident,family",
    [
        ("StableDiffusionXLPipeline", "ByteDance/Hyper-SD", "hyper-sd"),
        ("StableDiffusionPipeline", "ByteDance/Hyper-SD/Hyper-SD15-8steps-lora", "hyper-sd"),
        ("StableDiffusionXLPipeline", "latent-consistency/lcm-lora-sdxl", "lcm-lora"),
        ("StableDiffusionXLPipeline", "latent-consistency/lcm-sdxl", "lcm"),
        ("StableDiffusion3Pipeline", "stabilityai/stable-diffusion-3.5-large", "sd3.5"),
        ("StableDiffusion3Pipeline", "stabilityai/stable-diffusion-3.5-medium", "sd3.5-medium"),
    ],
)
def test_more_family_ids(cls, ident, family):
    assert detect_family(cls, ident) == family


def test_every_family_cites_its_source_and_help_names_them():
    text = families_help()
    for name, family in FAMILIES.items():
        assert family.source, name
        if name != "unknown":
            assert f"{name}: {family.steps} steps" in text
    assert "lcm: 4 steps, guidance 8" in text and "lcm-lora: 4 steps, guidance 1" in text


def test_generate_help_names_the_families(capsys):
    from ptgen.cli.main import main

    assert main(["generate", "--help"]) == 0
    # Without the table's borders and line breaks (rich wraps the help to the terminal).
    text = "".join(capsys.readouterr().out.replace("│", "").split())
    for name, family in FAMILIES.items():
        if name != "unknown":
            assert f"{name}:{family.steps}steps" in text, name
