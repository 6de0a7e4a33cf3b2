"""The engine registry: which backend a spec names, option validation, the random backend, the
one contract error, and the device/dtype/local-path helper shared with the generator."""

from __future__ import annotations

import inspect

import pytest

from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.devices import (
    check_device,
    dtype_name,
    looks_like_local_path,
    resolve_device,
    resolve_dtype,
)
from preferthinker.engines import (
    EngineOutput,
    backends,
    create_engine,
    describe_specs,
    find_backend,
    get_engine_class,
    list_engines,
    register_backend,
)
from preferthinker.engines.random_engine import RandomEngine
from preferthinker.engines.scripted import ScriptedEngine
from preferthinker.errors import EngineContractError, InputError, ModelNotFoundError


@pytest.mark.parametrize(
    "spec,backend",
    [
        ("http://127.0.0.1:8000/v1", "openai"),
        ("https://example.org/v1", "openai"),
        ("HTTP://HOST:9/v1", "openai"),
        ("analytic", "analytic"),
        ("random", "random"),
        ("scripted", "scripted"),
        ("similarity:efficientnet-lite0", "similarity"),
        ("Qwen/Qwen2.5-VL-7B-Instruct", "transformers"),
        ("./assessor", "transformers"),
        ("/models/assessor", "transformers"),
        ("~/models/x", "transformers"),
        ("runs/sft/final", "transformers"),
        ("C:\\models\\x", "transformers"),
    ],
)
def test_each_spec_names_one_backend(spec, backend):
    assert find_backend(spec).name == backend
    accepting = [b.name for b in backends() if b.accepts(spec)]
    # Only the broad in-process pattern may also accept what a specific backend claims first.
    assert accepting[0] == backend and set(accepting) <= {backend, "transformers"}


@pytest.mark.parametrize("spec", ["analytc", "randm", "gpt2", "", "   ", "ftp://host/v1"])
def test_unknown_spec_is_one_line_listing_every_backend(spec):
    with pytest.raises(InputError) as error:
        find_backend(spec)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"unknown assessor {spec!r}")
    for backend in backends():
        assert backend.spec in message
    with pytest.raises(InputError):
        Assessor.from_config(AssessorConfig(assessor=spec or "x"))


def test_backends_and_their_classes():
    assert list_engines() == [
        "analytic",
        "openai",
        "random",
        "scripted",
        "similarity",
        "transformers",
    ]
    assert get_engine_class("random") is RandomEngine
    assert get_engine_class("scripted") is ScriptedEngine
    assert backends()[-1].name == "transformers"  # the broad pattern is tried last
    valid = "valid engines: analytic, openai, random, scripted, similarity, transformers"
    with pytest.raises(InputError, match=valid):
        get_engine_class("nope")
    help_text = describe_specs()
    for words in ("http(s)://HOST:PORT/v1", "'random'", "'analytic'", "local folder"):
        assert words in help_text
    with pytest.raises(InputError, match="already registered"):
        register_backend(find_backend("random"))


@pytest.mark.parametrize(
    "spec,options,words",
    [
        (
            "analytic",
            {"device": "cpu"},
            ["no option device", "valid: colors, saturations, details"],
        ),
        ("random", {"temperature": 1}, ["no option temperature", "valid: seed"]),
        ("random", {"seed": "x"}, ["seed", "'x'"]),
        ("http://127.0.0.1:9/v1", {"timeout": 0}, ["timeout", "0"]),
        ("http://127.0.0.1:9/v1", {"max_concurrency": 0}, ["max_concurrency", "0"]),
        ("http://127.0.0.1:9/v1", {"backoff": -1}, ["backoff", "-1"]),
        ("/models/none", {"batch_size": 0}, ["batch_size", "0"]),
        ("/models/none", {"device": "tpu"}, ["device", "'tpu'"]),
        ("/models/none", {"dtype": "int3"}, ["dtype", "'int3'"]),
        ("analytic", {"colors": ("Plaid",)}, ["colors", "Plaid"]),
        ("scripted", {"responses": 5}, ["responses", "5"]),
        ("similarity:stats", {"batch_size": 0}, ["batch_size", "0"]),
        ("similarity:stats", {"dtype": "bf16"}, ["no option dtype", "valid: device, batch_size"]),
    ],
)
def test_options_are_checked_before_anything_loads(spec, options, words):
    with pytest.raises(InputError) as error:
        create_engine(spec, **options)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{find_backend(spec).name} engine")
    for word in words:
        assert word in message


def test_assessor_config_passes_each_backend_its_own_fields():
    assert AssessorConfig(assessor="http://127.0.0.1:9/v1", timeout=5).engine_options() == {
        "timeout": 5,
        "max_concurrency": 8,
    }
    assert AssessorConfig(assessor="/models/x", device="cpu", batch_size=2).engine_options() == {
        "device": "cpu",
        "dtype": None,
        "batch_size": 2,
        "trust_remote_code": False,
        "quantization": "none",
    }
    assert AssessorConfig(assessor="analytic", device="cpu").engine_options() == {}
    # AssessorConfig.max_retries (unparseable answers) is not the HTTP engine's max_retries
    config = AssessorConfig(assessor="http://127.0.0.1:9/v1", max_retries=0)
    engine = Assessor.from_config(config).engine
    assert engine.max_retries == 3 and engine.timeout == 300


def test_served_model_name_only_reaches_backends_that_use_it():
    assert create_engine("http://127.0.0.1:9/v1", model="served").model == "served"
    assert isinstance(create_engine("random", model="ignored"), RandomEngine)


def test_random_backend_is_seeded_and_answers_a_or_b():
    def answers(engine, k=40):
        return [o.text for o in engine.generate([[{"role": "user", "content": "?"}]] * k)]

    first = answers(create_engine("random"))
    assert first == answers(create_engine("random", seed=0))
    assert set(first) == {"<answer>Image A</answer>", "<answer>Image B</answer>"}
    assert answers(create_engine("random", seed=1)) != first


def test_random_assessor_compares_through_the_parser(make_images):
    a, b = make_images(2)
    assessor = Assessor.from_config(AssessorConfig(assessor="random"))
    comparisons = assessor.compare_many([(a, b)] * 30, liked=[a])
    assert {c.winner for c in comparisons} == {"A", "B"}
    assert assessor.name == "random"
    assert assessor.predict_profile([a]).status == "failed"  # it predicts no profile


class _ShortEngine(ScriptedEngine):
    def generate(self, conversations, config=None):
        return [EngineOutput("<answer>Image A</answer>")] * (len(conversations) - 1)


def test_an_engine_returning_too_few_outputs_is_a_contract_error(make_images):
    a, b = make_images(2)
    with pytest.raises(EngineContractError, match="returned 1 outputs for 2 conversations"):
        Assessor(_ShortEngine()).compare_many([(a, b), (b, a)], liked=[a])


def test_generator_count_mismatch_is_the_same_contract_error():
    from generation.generator import DiffusersGenerator, GeneratorConfig

    class OneImagePipeline:
        def __call__(self, prompt, generator=None, num_images_per_prompt=1, **kwargs):
            from PIL import Image

            class Out:
                images = [Image.new("RGB", (8, 8))]

            return Out()

    config = GeneratorConfig(model="fake", device="cpu")
    generator = DiffusersGenerator(config, pipeline=OneImagePipeline())
    with pytest.raises(EngineContractError, match="returned 1 images for 3 seeds"):
        generator.generate("x", seeds=[0, 1, 2])


# -- devices, dtypes, local paths: one helper for the engine and the generator -------------------


def test_device_and_dtype_names():
    assert check_device("auto") is None and check_device(None) is None
    assert check_device("cuda:1") == "cuda:1"
    with pytest.raises(InputError, match="device must be one of auto, cpu, cuda, mps"):
        check_device("tpu")
    spellings = ("bf16", "fp16", "half", "FP32", "torch.bfloat16", "auto", None)
    assert [dtype_name(x) for x in spellings] == [
        "bfloat16",
        "float16",
        "float16",
        "float32",
        "bfloat16",
        None,
        None,
    ]
    with pytest.raises(InputError, match="unknown dtype 'int3'"):
        dtype_name("int3")
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_dtype(None, "cpu") is torch.float32  # half precision on CPU is slow and poor
    assert resolve_dtype(None, "mps") is torch.float16
    assert resolve_dtype("fp16", "cpu") is torch.float16
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")
    else:  # on a GPU machine: bf16 where supported, the generator family's own half type
        bf16 = torch.cuda.is_bf16_supported()
        assert resolve_dtype(None, "cuda") is (torch.bfloat16 if bf16 else torch.float16)
        assert resolve_dtype(None, "cuda", gpu_default="float16") is torch.float16


@pytest.mark.parametrize(
    "name,local",
    [
        ("Qwen/Qwen2.5-VL-7B-Instruct", False),
        ("stabilityai/sd-turbo", False),
        ("./x", True),
        ("/x", True),
        ("~/x", True),
        ("a/b/c", True),
        ("C:\\x", True),
        ("\\\\server\\x", True),
        ("http://host/a/b", False),
    ],
)
def test_local_path_rule(name, local):
    assert looks_like_local_path(name) is local


@pytest.mark.parametrize("name", ["a/b/c-missing", "./missing-model", "C:\\missing"])
def test_engine_and_generator_agree_that_a_path_is_missing(name):
    """Both say "not found/does not exist" for a path-like name, instead of asking the hub."""
    from generation.generator import DiffusersGenerator, GeneratorConfig
    from preferthinker.engines.transformers_engine import TransformersEngine

    with pytest.raises(ModelNotFoundError, match="not found"):
        TransformersEngine(name, device="cpu")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        DiffusersGenerator(GeneratorConfig(model=name, device="cpu"))
    with pytest.raises(InputError, match="device"):
        GeneratorConfig(model="x/y", device="tpu")
    assert GeneratorConfig(model="x/y", dtype="half").dtype == "float16"


def test_cli_help_lists_the_registered_backends_and_strategies():
    from generation.strategies import strategies
    from ptgen.cli import eval_cmds, generate_cmds
    from ptgen.cli.options import AssessorOption, StrategyOption

    assert describe_specs() in AssessorOption.help
    assert all(f"{s.name} ({s.summary})" in StrategyOption.help for s in strategies())
    # every command's --assessor is the shared option (eval's `random` is no special case)
    for command in (eval_cmds.eval_command, generate_cmds.rerank, generate_cmds.generate):
        assert inspect.signature(command).parameters["assessor"].default is AssessorOption
