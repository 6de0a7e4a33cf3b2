"""`add_vision_id` on the tiny Qwen2.5-VL: the template writes "Picture N:" before each image,
the in-process engine passes the option to `apply_chat_template`, and the assessor turns it on
by default for Qwen2.5-VL models (the authors render their prompts with it)."""

from __future__ import annotations

import pytest

from preferthinker.engines import GenerationConfig
from preferthinker.engines.transformers_engine import TransformersEngine


@pytest.fixture(scope="module")
def engine(tiny_assessor_path):
    engine = TransformersEngine(str(tiny_assessor_path), device="cpu", batch_size=2)
    yield engine
    engine.close()


def _conversation(images):
    content = [{"type": "text", "text": "Which one?"}]
    for label, image in zip("AB", images, strict=True):
        content += [{"type": "text", "text": f"Image {label}"}, {"type": "image", "image": image}]
    return [{"role": "user", "content": content}]


def test_tiny_template_renders_picture_numbers(tiny_assessor_path):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(tiny_assessor_path))
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "text", "text": "and"},
                {"type": "image"},
                {"type": "image"},
            ],
        }
    ]
    with_ids = processor.apply_chat_template(messages, tokenize=False, add_vision_id=True)
    plain = processor.apply_chat_template(messages, tokenize=False)
    assert "Picture 1: <|vision_start|>" in with_ids and "Picture 3: <|vision_start|>" in with_ids
    assert "Picture" not in plain


def test_engine_passes_chat_template_kwargs(engine, make_images):
    conversation = _conversation(make_images(2, size=(56, 56)))
    plain = engine.generate([conversation], GenerationConfig(max_new_tokens=1))[0]
    with_ids = engine.generate(
        [conversation],
        GenerationConfig(max_new_tokens=1, chat_template_kwargs={"add_vision_id": True}),
    )[0]
    # "Picture 1: " and "Picture 2: " are 11 byte-level tokens each.
    assert with_ids.prompt_tokens - plain.prompt_tokens == 22


def test_assessor_default_is_on_for_qwen25_vl_and_can_be_turned_off(engine):
    from preferthinker.assessor import Assessor, AssessorConfig
    from preferthinker.engines import create_engine

    assert Assessor(engine).chat_template_kwargs() == {"add_vision_id": True}
    assert Assessor(engine, AssessorConfig(add_vision_id=False)).chat_template_kwargs() == {}
    assert Assessor(create_engine("analytic")).chat_template_kwargs() == {}


def test_sampling_turns_off_the_checkpoint_top_k(engine):
    engine.model.generation_config.top_k = 1  # what Qwen2.5-VL's generation_config.json ships
    kwargs = engine._generation_kwargs(GenerationConfig(temperature=0.7))
    assert kwargs["do_sample"] and kwargs["top_k"] == 0 and kwargs["top_p"] == 1.0
    assert engine._generation_kwargs(GenerationConfig(temperature=0.7, top_k=5))["top_k"] == 5
