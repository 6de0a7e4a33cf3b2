"""The assessor's `quantization` option (none / 8bit / 4bit through bitsandbytes): bad values and
machines that cannot run it get one clear line, before any weights are read. Loading quantized
weights needs CUDA; benchmarks/gpu_evidence.py measures it on a GPU."""

from __future__ import annotations

import pytest

from preferthinker.assessor import AssessorConfig
from preferthinker.engines.transformers_engine import TransformersEngine, quantization_config
from preferthinker.errors import InputError
from ptgen.cli.main import main


def test_unknown_quantization_names_the_choices():
    with pytest.raises(ValueError, match="quantization must be none, 8bit or 4bit, got '2bit'"):
        AssessorConfig(assessor="x", quantization="2bit")
    with pytest.raises(InputError, match="unknown quantization '3bit'"):
        quantization_config("3bit", "cuda", None)


def test_no_cuda_is_refused_before_loading(tmp_path):
    missing = tmp_path / "no-such-model"  # never read: the quantization check comes first
    with pytest.raises(InputError, match="quantization '4bit' needs a CUDA GPU"):
        TransformersEngine(str(missing), device="cpu", quantization="4bit")


def test_missing_bitsandbytes_is_one_line(monkeypatch):
    # A CUDA machine cannot exist here: pretend CUDA is available to reach the package check.
    import importlib.util

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "bitsandbytes" else real_find_spec(name, *a),
    )
    with pytest.raises(
        InputError, match="needs the bitsandbytes package: pip install bitsandbytes"
    ):
        quantization_config("8bit", "cuda", None)


def test_none_passes_nothing_and_the_engine_loads(tiny_assessor_path):
    assert quantization_config("none", "cpu", None) is None
    engine = TransformersEngine(str(tiny_assessor_path), device="cpu", quantization="none")
    assert engine.quantization == "none" and engine.model is not None
    engine.close()


def test_generate_flag_gives_an_error_line(tiny_assessor_path, tmp_path, capsys):
    refs = tmp_path / "refs"
    refs.mkdir()
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 20, 20)).save(refs / "a.png")
    # The assessor is built before the generator, so the generator folder only has to pass the
    # cheap check that comes before any model loads (a pipeline folder has model_index.json).
    generator = tmp_path / "generator"
    generator.mkdir()
    (generator / "model_index.json").write_text("{}")
    code = main(
        [
            "generate",
            "a castle",
            "--refs",
            str(refs),
            "--assessor",
            str(tiny_assessor_path),
            "--generator",
            str(generator),
            "--out",
            str(tmp_path / "run"),
            "--device",
            "cpu",
            "--quantization",
            "4bit",
        ]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert "quantization '4bit' needs a CUDA GPU" in err and "Traceback" not in err
