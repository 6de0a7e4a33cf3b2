"""Sequential loading (`LoopConfig.sequential`, `ptgen generate --sequential`) with the real tiny
assessor and the real tiny diffusion pipeline: only the running stage's model is held, the other
is released, and the run's outcome does not change.

On this CPU-only machine `release()` moves nothing (the models already live in CPU memory), so
these tests check which component the loop releases at each stage and that results stay the
same; the GPU memory it saves is measured by benchmarks/gpu_evidence.py (section "memory")."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from generation.generator import DiffusersGenerator, GeneratorConfig
from generation.loop import LoopConfig, PersonalizedGenerator
from preferthinker.assessor import Assessor, AssessorConfig
from ptgen.cli.main import main


@pytest.fixture(scope="module")
def models(tiny_assessor_path, tiny_generator_path):
    config = AssessorConfig(
        assessor=str(tiny_assessor_path), device="cpu", max_new_tokens=8, max_retries=0
    )
    assessor = Assessor.from_config(config)
    generator = DiffusersGenerator(
        GeneratorConfig(model=str(tiny_generator_path), device="cpu", batch_size=2)
    )
    yield assessor, generator
    assessor.close()


def _run(models, refs_dir, tmp_path, sequential):
    assessor, generator = models
    assessor.restore()
    generator.restore()  # the fixture is shared: start each run with both held
    config = LoopConfig(n=4, sequential=sequential, cache=False)
    held = {}  # stage -> which components were held when the stage began

    def record(event):
        if event.done == 0 and event.stage in ("profile", "generate", "rerank"):
            held[event.stage] = (assessor.engine.resident, generator.resident)

    result = PersonalizedGenerator(assessor, generator, config).run(
        "a castle", refs_dir / "liked", refs_dir / "disliked", callback=record
    )
    return result, held


def test_sequential_holds_only_the_running_stages_model(models, refs_dir, tmp_path):
    result, held = _run(models, refs_dir, tmp_path, sequential=True)
    assert result.status == "complete"
    #                      (assessor held, generator held)
    assert held == {"profile": (True, False), "generate": (False, True), "rerank": (True, False)}


def test_sequential_changes_nothing_in_the_outcome(models, refs_dir, tmp_path):
    together, held = _run(models, refs_dir, tmp_path, sequential=False)
    assert set(held.values()) == {(True, True)}  # the default keeps both
    one_by_one, _ = _run(models, refs_dir, tmp_path, sequential=True)
    assert [c.seed for c in one_by_one.ranked] == [c.seed for c in together.ranked]
    for a, b in zip(one_by_one.candidates, together.candidates, strict=True):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert one_by_one.usage.completion_tokens == together.usage.completion_tokens


def test_released_components_come_back_when_used(models, make_images):
    assessor, generator = models
    assessor.release()
    generator.release()
    assert not assessor.engine.resident and not generator.resident
    generator.generate("a castle", seeds=[0])
    assessor.compare(*make_images(2), liked=make_images(1))
    assert assessor.engine.resident and generator.resident


def test_generate_flag_sequential_reaches_the_run(
    tiny_assessor_path, tiny_generator_path, tmp_path
):
    refs = tmp_path / "refs"
    refs.mkdir()
    for k in range(2):
        Image.new("RGB", (32, 32), (240, 20 * k, 20)).save(refs / f"{k}.png")
    out = tmp_path / "run"
    code = main(
        [
            "generate",
            "a castle",
            "--refs",
            str(refs),
            "--assessor",
            str(tiny_assessor_path),
            "--generator",
            str(tiny_generator_path),
            "-n",
            "2",
            "--out",
            str(out),
            "--no-cache",
            "--max-new-tokens",
            "8",
            "--device",
            "cpu",
            "--sequential",
        ]
    )
    assert code == 0
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "complete" and data["config"]["sequential"] is True
