"""Fixtures for the training tests: a hand-made CoT dataset folder and the real SBERT model."""

from __future__ import annotations

from pathlib import Path

import pytest

from preferthinker.profile import ELEMENTS, Profile, UserProfile

# Two hand-made users whose liked and disliked terms differ on every element.
USERS = [
    UserProfile(
        liked=Profile(
            art_style="Pixel Art",
            color="Pink",
            art_medium="Digital Painting",
            saturation="Pastel",
            detail="Fine",
        ),
        disliked=Profile(
            art_style="Romanticism",
            color="Charcoal Gray",
            art_medium="Silkscreen",
            saturation="Intense",
            detail="Smooth",
        ),
    ),
    UserProfile(
        liked=Profile(
            art_style="Oceanic Art",
            color="Jungle Green",
            art_medium="Coiling",
            saturation="Muted",
            detail="Realistic",
        ),
        disliked=Profile(
            art_style="Pixel Art",
            color="Pink",
            art_medium="3D Modeling",
            saturation="Intense",
            detail="Selective",
        ),
    ),
]
COLORS = {"Pink": (240, 150, 190), "Charcoal Gray": (60, 60, 64), "Jungle Green": (40, 120, 80)}


def attributes(profile: Profile) -> dict[str, str]:
    return {e: profile.terms(e)[0] for e in ELEMENTS}


def make_sample(index: int, split: str = "train"):
    """A TrainingSample whose images are flat colours of the liked / disliked colour."""
    from PIL import Image

    from training.cot import build_cot
    from training.dataset import TrainingSample

    user = USERS[index % len(USERS)]
    liked_img = Image.new("RGB", (56, 56), COLORS[user.liked.color[0]])
    disliked_img = Image.new("RGB", (56, 56), COLORS[user.disliked.color[0]])
    answer = "A" if index % 2 == 0 else "B"
    good, bad = attributes(user.liked), attributes(user.disliked)
    attrs_a, attrs_b = (good, bad) if answer == "A" else (bad, good)
    image_a, image_b = (liked_img, disliked_img) if answer == "A" else (disliked_img, liked_img)
    cot = build_cot(user, attrs_a, attrs_b, answer, seed=index)
    return TrainingSample(
        sample_id=f"{split}-{index:04d}",
        split=split,
        user_id=f"user-{index % len(USERS)}",
        kind="SP",
        profile=user,
        prompt_subject="a lighthouse",
        liked=[liked_img],
        disliked=[disliked_img],
        image_a=image_a,
        image_b=image_b,
        answer=answer,
        cot=cot.text,
        meta={"attributes_a": attrs_a, "attributes_b": attrs_b},
    )


@pytest.fixture(scope="session")
def handmade():
    """The hand-made users and helpers (test modules cannot import conftest by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(USERS=USERS, attributes=attributes, make_sample=make_sample)


@pytest.fixture(scope="session")
def handmade_dataset(tmp_path_factory) -> Path:
    """A dataset folder in the `ptgen data build` layout: 4 train samples, 2 test samples."""
    from training.dataset import finalize_dataset, write_sample

    root = tmp_path_factory.mktemp("handmade") / "data"
    for i in range(4):
        write_sample(make_sample(i, "train"), root)
    for i in range(2):
        write_sample(make_sample(i, "seen-SP"), root)
    finalize_dataset(root)
    return root


@pytest.fixture(scope="session")
def sbert():
    """The real all-MiniLM-L6-v2 through ProfileSimilarity, loaded once."""
    similarity = pytest.importorskip("preferthinker.similarity")
    return similarity.ProfileSimilarity()


@pytest.fixture
def sft_trainer(tiny_assessor_path, tmp_path):
    """Factory: our SFT trainer (`training.sft`'s SFTTrainer subclass) for the tiny assessor on two
    hand-made samples, `tiny-cpu-sft.yaml` with `fields` on top."""
    from transformers import AutoProcessor

    from preferthinker.config import load_config
    from training import modeling
    from training.dataset import finalize_dataset, load_training_split, write_sample
    from training.sft import SFTTrainingConfig, _score_weighted_trainer

    configs = Path(__file__).resolve().parents[2] / "training" / "configs"

    def build(name: str = "run", **fields):
        data = tmp_path / name / "data"
        for index in range(2):
            write_sample(make_sample(index), data)
        finalize_dataset(data)
        cfg = load_config(
            SFTTrainingConfig,
            configs / "tiny-cpu-sft.yaml",
            {
                "model_name_or_path": str(tiny_assessor_path),
                "dataset_path": str(data),
                "output_dir": str(tmp_path / name / "out"),
                **fields,
            },
        )
        return _score_weighted_trainer()(
            model=modeling.load_model(cfg),
            args=cfg,
            processing_class=AutoProcessor.from_pretrained(tiny_assessor_path),
            train_dataset=load_training_split(
                cfg.dataset_path, "train", mode="sft", max_pixels=cfg.max_pixels
            ),
        )

    return build
