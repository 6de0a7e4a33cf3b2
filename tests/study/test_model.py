"""The study model config: checked fields, and a saved model that loads the real way."""

from __future__ import annotations

import json

import pytest

from training.study.model import StudyModelConfig, make_study_model
from training.study.tokenizer import train_study_tokenizer


@pytest.mark.parametrize(
    "field,value",
    [
        ("image_size", 50),
        ("patch_size", 0),
        ("heads", 3),
        ("layers", 0),
        ("rope_theta", 1.0),
        ("image_mean", [0.5, 0.5]),
        ("image_mean", 0.5),
        ("image_std", [1.0, 0.0, 1.0]),
    ],
)
def test_bad_sizes_are_refused(field, value):
    with pytest.raises(ValueError, match=field if field != "heads" else "hidden_size / heads"):
        StudyModelConfig(**{field: value})


def test_visual_tokens():
    assert StudyModelConfig(image_size=56).visual_tokens == 4
    assert StudyModelConfig(image_size=112).visual_tokens == 16
    assert StudyModelConfig(image_size=56, patch_size=7).visual_tokens == 16


def test_image_size_must_hold_whole_merged_patches():
    with pytest.raises(ValueError, match="multiple of 14"):
        StudyModelConfig(image_size=63, patch_size=7)


def test_smaller_patches_give_the_model_more_visual_tokens(tmp_path):
    # 7 px patches: 8x8 patches per 56 px image, 16 merged tokens that the model reads
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    tokenizer = train_study_tokenizer(["<answer>Image A</answer>"] * 3, terms=["Pink"])
    config = StudyModelConfig(
        hidden_size=32, layers=1, heads=2, vision_depth=1, image_size=56, patch_size=7
    )
    folder = make_study_model(tmp_path / "m", config, tokenizer)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    assert model.config.vision_config.patch_size == 7
    encoded = processor.image_processor(
        images=[Image.new("RGB", (64, 64), "red")], return_tensors="pt"
    )
    assert encoded["image_grid_thw"].tolist() == [[1, 8, 8]]
    with torch.no_grad():
        features = model.model.get_image_features(
            encoded["pixel_values"], encoded["image_grid_thw"]
        )
    tokens = features.pooler_output if hasattr(features, "pooler_output") else features
    tokens = torch.cat(list(tokens)) if isinstance(tokens, (list, tuple)) else tokens
    assert tokens.shape == (config.visual_tokens, 32)


def test_saved_model_loads_with_from_pretrained(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    tokenizer = train_study_tokenizer(["<answer>Image A</answer>"] * 3, terms=["Pink", "Teal"])
    config = StudyModelConfig(
        hidden_size=32,
        layers=1,
        heads=2,
        vision_depth=1,
        rope_theta=500.0,
        image_mean=[0.0, 0.0, 0.0],
        image_std=[1.0, 1.0, 1.0],
    )
    folder = make_study_model(tmp_path / "m", config, tokenizer)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    assert model.config.text_config.rope_parameters["rope_theta"] == 500.0
    assert model.config.text_config.vocab_size == len(processor.tokenizer)
    assert processor.tokenizer("Teal", add_special_tokens=False)["input_ids"] == [
        processor.tokenizer.convert_tokens_to_ids("Teal")
    ]
    # The normalisation travels in the saved processor, so training and `ptgen eval` both use it.
    assert list(processor.image_processor.image_mean) == [0.0, 0.0, 0.0]
    assert list(processor.image_processor.image_std) == [1.0, 1.0, 1.0]
    note = json.loads((folder / "study_model.json").read_text())
    assert note["parameters"] > 0 and note["rope_theta"] == 500.0


def test_default_normalisation_is_qwens():
    from training.study.model import build_processor

    tokenizer = train_study_tokenizer(["<answer>Image A</answer>"] * 3, terms=["Pink"])
    processor = build_processor(tokenizer, 56)
    assert list(processor.image_processor.image_mean) == pytest.approx(
        [0.48145466, 0.4578275, 0.40821073]
    )
