"""The study model config: checked fields, and a saved model that loads the real way."""

from __future__ import annotations

import json

import pytest

from training.study.model import StudyModelConfig, make_study_model
from training.study.tokenizer import train_study_tokenizer


@pytest.mark.parametrize("field,value", [("image_size", 50), ("heads", 3), ("layers", 0), ("rope_theta", 1.0)])
def test_bad_sizes_are_refused(field, value):
    with pytest.raises(ValueError, match=field if field != "heads" else "hidden_size / heads"):
        StudyModelConfig(**{field: value})


def test_visual_tokens():
    assert StudyModelConfig(image_size=56).visual_tokens == 4
    assert StudyModelConfig(image_size=112).visual_tokens == 16


def test_saved_model_loads_with_from_pretrained(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    tokenizer = train_study_tokenizer(["<answer>Image A</answer>"] * 3, terms=["Pink", "Teal"])
    folder = make_study_model(tmp_path / "m", StudyModelConfig(hidden_size=32, layers=1, heads=2, vision_depth=1,
                                                               rope_theta=500.0), tokenizer)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    assert model.config.text_config.rope_parameters["rope_theta"] == 500.0
    assert model.config.text_config.vocab_size == len(processor.tokenizer)
    assert processor.tokenizer("Teal", add_special_tokens=False)["input_ids"] == [processor.tokenizer.convert_tokens_to_ids("Teal")]
    note = json.loads((folder / "study_model.json").read_text())
    assert note["parameters"] > 0 and note["rope_theta"] == 500.0
