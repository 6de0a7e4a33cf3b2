"""The in-process engine on the tiny random Qwen2.5-VL, loaded the real way (from_pretrained)."""

from __future__ import annotations

import pytest

from preferthinker.engines import GenerationConfig, create_engine
from preferthinker.engines.transformers_engine import TransformersEngine, resolve_dtype
from preferthinker.errors import InputError, ModelNotFoundError


@pytest.fixture(scope="module")
def engine(tiny_assessor_path):
    engine = TransformersEngine(str(tiny_assessor_path), device="cpu", batch_size=2)
    yield engine
    engine.close()


def conversation(text, images):
    content = [{"type": "text", "text": text}]
    for label, image in zip("ABCDEFG", images):
        content += [{"type": "text", "text": f"Image {label}"}, {"type": "image", "image": image}]
    return [
        {"role": "system", "content": [{"type": "text", "text": "You judge images."}]},
        {"role": "user", "content": content},
    ]


def test_batched_generate_returns_one_output_per_conversation(engine, make_images):
    images = make_images(4, size=(60, 44))
    conversations = [
        conversation("which do you prefer?", images[:2]),
        conversation("a longer prompt with three images to force padding", images[:3]),
        conversation("one image", [images[3].convert("L")]),  # non-RGB images are converted
        [{"role": "user", "content": "text only, as a plain string"}],
        conversation("odd batch out", images[1:3]),
    ]
    outputs = engine.generate(conversations, GenerationConfig(max_new_tokens=6))
    assert len(outputs) == 5
    for output in outputs:
        assert isinstance(output.text, str)
        assert (
            output.prompt_tokens > 0 and 1 <= output.completion_tokens <= 6 and output.seconds > 0
        )
    # More images and more text mean a longer prompt: counts come from the real inputs, not padding.
    assert outputs[1].prompt_tokens > outputs[0].prompt_tokens > outputs[3].prompt_tokens


def test_greedy_is_deterministic_and_independent_of_batching(engine, make_images):
    images = make_images(2, pattern="stripes")
    conv = conversation("compare", images)
    config = GenerationConfig(max_new_tokens=8, repetition_penalty=1.0)
    first = engine.generate([conv], config)[0]
    second = engine.generate(
        [conv, conversation("another, longer conversation in the batch", images[::-1])], config
    )[0]
    assert first.text == second.text
    assert first.completion_tokens == second.completion_tokens


def test_sampling_with_a_seed_repeats(engine, make_images):
    conv = conversation("sample", make_images(1))
    config = GenerationConfig(max_new_tokens=8, temperature=1.0, top_p=0.95, seed=7)
    assert engine.generate([conv], config)[0].text == engine.generate([conv], config)[0].text


def test_create_engine_picks_backends(tiny_assessor_path):
    engine = create_engine(str(tiny_assessor_path), device="cpu")
    assert isinstance(engine, TransformersEngine) and engine.name == str(tiny_assessor_path)
    assert not engine.concurrent
    from preferthinker.engines.openai_engine import OpenAIEngine

    http = create_engine("http://127.0.0.1:9/v1", model="m", max_retries=0)
    assert isinstance(http, OpenAIEngine) and http.concurrent and http.name == "m"
    from preferthinker.engines import backend_for, get_engine_class

    assert backend_for("https://example.org/v1") == "openai"
    assert backend_for("analytic") == "analytic"
    assert backend_for("Qwen/Qwen2.5-VL-7B-Instruct") == "transformers"
    assert backend_for("/models/assessor") == "transformers"
    with pytest.raises(InputError, match="valid engines"):
        get_engine_class("nope")


def test_missing_model_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        TransformersEngine("nobody-ptgen/no-such-model-xyz", device="cpu")
    message = str(info.value)
    assert "\n" not in message
    assert (
        "no-such-model-xyz" in message
        and "could not be found locally" in message
        and "--assessor" in message
    )
    with pytest.raises(ModelNotFoundError, match="not found"):
        TransformersEngine(str(tmp_path / "missing" / "model"), device="cpu")
    with pytest.raises(ModelNotFoundError, match="config.json"):
        TransformersEngine(str(tmp_path), device="cpu")
    # a folder that is there but is not a whole saved model: said so, not "not found locally"
    (tmp_path / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    with pytest.raises(ModelNotFoundError) as info:
        TransformersEngine(str(tmp_path), device="cpu")
    message = str(info.value)
    assert "\n" not in message and "could not be found locally" not in message
    assert f"model folder {str(tmp_path)!r} could not be loaded" in message
    assert "save_pretrained" in message


def test_dtype_names():
    import torch

    assert resolve_dtype("bf16", "cpu") is torch.bfloat16
    assert resolve_dtype("float16", "cpu") is torch.float16
    assert resolve_dtype(None, "cpu") is torch.float32
    assert resolve_dtype("auto", "cpu") is torch.float32
    with pytest.raises(InputError, match="dtype"):
        resolve_dtype("int3", "cpu")


def test_pickle_only_weights_are_refused(tiny_assessor_path, tmp_path):
    """Safetensors only: a folder with just pytorch_model.bin is not loaded (pickles run code)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "bin_only"
    shutil.copytree(tiny_assessor_path, folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="safetensors") as info:
        TransformersEngine(str(folder), device="cpu")
    assert "\n" not in str(info.value)


def test_hub_probe_is_fast_and_honest(monkeypatch):
    import socket
    import time

    from preferthinker.engines.transformers_engine import hub_reachable

    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
        assert hub_reachable(timeout=2)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    assert not hub_reachable(timeout=2)
    assert time.monotonic() - started < 2.5


def test_model_without_chat_template_is_refused(tiny_assessor_path, tmp_path):
    import shutil

    folder = tmp_path / "no_template"
    shutil.copytree(tiny_assessor_path, folder)
    (folder / "chat_template.jinja").unlink()
    with pytest.raises(ModelNotFoundError, match="no chat template"):
        TransformersEngine(str(folder), device="cpu")


def test_closed_engine_and_bad_parts(tiny_assessor_path, make_images):
    from preferthinker.errors import EngineError

    engine = TransformersEngine(str(tiny_assessor_path), device="cpu")
    with pytest.raises(InputError, match="video"):
        engine.generate([[{"role": "user", "content": [{"type": "video", "video": None}]}]])
    with pytest.raises(InputError, match="no 'image'"):
        engine.generate([[{"role": "user", "content": [{"type": "image"}]}]])
    engine.close()
    engine.close()  # twice is fine
    with pytest.raises(EngineError, match="closed"):
        engine.generate([conversation("hi", make_images(1))])


@pytest.mark.gpu
def test_real_checkpoint_on_gpu(make_images):
    """Tier 3: the paper's base model on a CUDA GPU (needs the weights in the local HF cache,
    or PTGEN_ASSESSOR pointing at a local copy). Run with: pytest -m gpu tests/preferthinker"""
    import os

    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    engine = TransformersEngine(
        os.environ.get("PTGEN_ASSESSOR", "Qwen/Qwen2.5-VL-7B-Instruct"), batch_size=2
    )
    assert engine.device == "cuda" and engine.dtype in (torch.bfloat16, torch.float16)
    red, _, blue = make_images(3, size=(224, 224))
    question = "What colour is this image? Answer with one word."
    outputs = engine.generate(
        [conversation(question, [red]), conversation(question, [blue])],
        GenerationConfig(max_new_tokens=8),
    )
    assert "red" in outputs[0].text.lower() and "blue" in outputs[1].text.lower()
    engine.close()
