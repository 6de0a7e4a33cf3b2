"""DiffusersGenerator: the tiny pipeline loaded for real, seeds, batching, OOM, errors, families."""

from __future__ import annotations

import numpy as np
import pytest

from generation.generator import (
    DiffusersGenerator,
    Generator,
    GeneratorConfig,
    detect_family,
)
from preferthinker.errors import EngineError, ModelNotFoundError


@pytest.fixture(scope="module")
def generator(tiny_generator_path):
    return DiffusersGenerator(
        GeneratorConfig(model=str(tiny_generator_path), batch_size=4, device="cpu")
    )


def _diff(a, b):
    return int(np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max())


def test_tiny_pipeline_generates_with_its_recommended_settings(generator):
    assert isinstance(generator, Generator)
    settings = generator.settings()
    assert settings["steps"] == 2 and settings["width"] == 64 and settings["device"] == "cpu"
    images = generator.generate("a castle", "blurry", seeds=[0, 1, 2, 3])
    assert len(images) == 4 and images[0].size == (64, 64) and images[0].mode == "RGB"
    assert generator.prompt_token_limit == 75 and generator.supports_negative_prompt


def test_same_seed_same_image_regardless_of_batch(generator):
    batch = generator.generate("a castle", seeds=[5, 6, 7])
    alone = generator.generate("a castle", seeds=[6])
    assert _diff(batch[1], alone[0]) <= 2  # float rounding of batched kernels only
    assert _diff(batch[0], batch[1]) > 10  # different seeds differ


class OOMPipeline:
    """Behaves like a pipeline that runs out of memory above `limit` images per call."""

    def __init__(self, limit):
        self.limit = limit
        self.batches = []

    def __call__(
        self,
        prompt,
        generator=None,
        output_type="pil",
        num_inference_steps=None,
        negative_prompt=None,
    ):
        import torch
        from PIL import Image

        if len(prompt) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        self.batches.append(len(prompt))
        return type("Out", (), {"images": [Image.new("RGB", (8, 8)) for _ in prompt]})()


def test_out_of_memory_halves_the_batch_and_keeps_going():
    pipe = OOMPipeline(limit=2)
    gen = DiffusersGenerator(
        GeneratorConfig(model="fake", batch_size=8, device="cpu"), pipeline=pipe
    )
    images = gen.generate("x", seeds=range(7))
    assert len(images) == 7
    assert pipe.batches == [2, 2, 2, 1] and gen.batch_size == 2
    stuck = DiffusersGenerator(
        GeneratorConfig(model="fake", batch_size=2, device="cpu"), pipeline=OOMPipeline(0)
    )
    with pytest.raises(EngineError, match="out of GPU memory.*cpu-offload"):
        stuck.generate("x", seeds=[1])


def test_missing_models_give_one_line_fixes(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        DiffusersGenerator(GeneratorConfig(model=str(tmp_path / "nope"), device="cpu"))
    with pytest.raises(ModelNotFoundError, match="no model_index.json"):
        DiffusersGenerator(GeneratorConfig(model=str(tmp_path), device="cpu"))


@pytest.mark.parametrize(
    "cls,ident,family",
    [
        ("StableDiffusionPipeline", "stable-diffusion-v1-5/stable-diffusion-v1-5", "sd15"),
        ("StableDiffusionPipeline", "stabilityai/sd-turbo", "sd-turbo"),
        ("StableDiffusionXLPipeline", "stabilityai/stable-diffusion-xl-base-1.0", "sdxl"),
        ("StableDiffusionXLPipeline", "stabilityai/sdxl-turbo", "sdxl-turbo"),
        ("StableDiffusionXLPipeline", "ByteDance/SDXL-Lightning", "sdxl-lightning"),
        ("StableDiffusion3Pipeline", "stabilityai/stable-diffusion-3.5-large-turbo", "sd3-turbo"),
        ("StableDiffusion3Pipeline", "stabilityai/stable-diffusion-3-medium-diffusers", "sd3"),
        ("FluxPipeline", "black-forest-labs/FLUX.1-schnell", "flux-schnell"),
        ("FluxPipeline", "black-forest-labs/FLUX.1-dev", "flux"),
        ("LatentConsistencyModelPipeline", "SimianLuo/LCM_Dreamshaper_v7", "lcm"),
        ("KandinskyPipeline", "x/y", "unknown"),
    ],
)
def test_family_detection(cls, ident, family):
    assert detect_family(cls, ident) == family


@pytest.mark.parametrize(
    "field,value",
    [
        ("steps", 0),
        ("width", 30),
        ("batch_size", 0),
        ("dtype", "int8"),
        ("device", "tpu"),
        ("guidance", -1.0),
    ],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        GeneratorConfig(**{field: value})


class RecordingPipeline:
    """Records the keyword arguments of each call."""

    def __init__(self):
        self.kwargs = []

    def __call__(
        self,
        prompt,
        negative_prompt=None,
        num_inference_steps=50,
        guidance_scale=7.5,
        width=None,
        height=None,
        generator=None,
        output_type="pil",
        max_sequence_length=512,
    ):
        from PIL import Image

        self.kwargs.append(
            dict(
                prompt=prompt,
                negative_prompt=negative_prompt,
                steps=num_inference_steps,
                guidance=guidance_scale,
                width=width,
                generator=generator,
                max_sequence_length=max_sequence_length,
            )
        )
        return type("Out", (), {"images": [Image.new("RGB", (8, 8)) for _ in prompt]})()


class FluxPipeline(RecordingPipeline):
    pass


def test_family_defaults_reach_the_pipeline_and_flags_win():
    pipe = FluxPipeline()
    gen = DiffusersGenerator(
        GeneratorConfig(model="black-forest-labs/FLUX.1-schnell", device="cpu"), pipeline=pipe
    )
    gen.generate("a castle", "blurry", seeds=[4, 5])
    call = pipe.kwargs[0]
    assert (call["steps"], call["guidance"], call["width"], call["max_sequence_length"]) == (
        4,
        0.0,
        1024,
        256,
    )
    assert call["negative_prompt"] is None and not gen.supports_negative_prompt  # Flux ignores it
    assert [g.initial_seed() for g in call["generator"]] == [4, 5]
    assert gen.prompt_token_limit == 255
    plain = RecordingPipeline()
    gen = DiffusersGenerator(
        GeneratorConfig(model="x/y", device="cpu", steps=9, guidance=2.0, width=256, height=256),
        pipeline=plain,
    )
    gen.generate("a castle", "blurry", seeds=[1])
    call = plain.kwargs[0]
    assert (call["steps"], call["guidance"], call["width"]) == (9, 2.0, 256)
    assert call["negative_prompt"] == ["blurry"]


def test_dtype_aliases():
    assert GeneratorConfig(dtype="bf16").dtype == "bfloat16"
    assert GeneratorConfig(dtype="auto").dtype is None
