"""The GPU path: bf16 SFT and GRPO on CUDA with multi-image batches (tiny model, a few steps).

Skipped by default; run on a GPU machine with `pytest -m gpu tests/training -q` and record the
figures in docs/training.md.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch


def test_bf16_sft_and_grpo_on_cuda(cuda, tiny_assessor_path, tmp_path):
    import time

    from training.data import DataConfig, build_dataset
    from training.grpo import GRPOTrainingConfig, train_grpo
    from training.sft import SFTTrainingConfig, train_sft

    data = tmp_path / "data"
    build_dataset(DataConfig(output_dir=str(data), train_users=4, pairs=2, refs=3, size=128))
    common = dict(
        dataset_path=str(data),
        bf16=True,
        max_steps=3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        gradient_checkpointing=True,
        max_pixels=112 * 112,
    )
    start = time.perf_counter()
    cuda.cuda.reset_peak_memory_stats()
    sft_final = train_sft(
        SFTTrainingConfig(
            output_dir=str(tmp_path / "sft"),
            model_name_or_path=str(tiny_assessor_path),
            per_device_train_batch_size=4,
            eos_token="<|im_end|>",
            **common,
        )
    )
    sft_seconds = time.perf_counter() - start
    start = time.perf_counter()
    grpo_final = train_grpo(
        GRPOTrainingConfig(
            output_dir=str(tmp_path / "grpo"),
            model_name_or_path=str(sft_final),
            per_device_train_batch_size=4,
            num_generations=2,
            max_completion_length=64,
            use_lora=True,
            reward_image_generator="procedural",
            reward_generator_options={"size": 64},
            reward_image_similarity="fallback",
            **common,
        )
    )
    grpo_seconds = time.perf_counter() - start
    assert json.loads((grpo_final / "ptgen_training.json").read_text())["layout"] == "merged"
    print(
        f"GPU {cuda.cuda.get_device_name(0)}: SFT 3 steps {sft_seconds:.1f}s, "
        f"GRPO 3 steps {grpo_seconds:.1f}s, "
        f"peak {cuda.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    )
