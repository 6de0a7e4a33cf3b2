"""Fixtures of the generation tests: the tiny diffusion pipeline (built once) and reference images."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture(scope="session")
def tiny_generator_path(tmp_path_factory) -> Path:
    from generation.tiny import make_tiny_generator

    return make_tiny_generator(tmp_path_factory.mktemp("tiny") / "generator")


@pytest.fixture(scope="session")
def tiny_assessor_dir(tmp_path_factory) -> Path:
    from preferthinker.tiny import make_tiny_assessor

    return make_tiny_assessor(tmp_path_factory.mktemp("tiny") / "assessor")


def solid(color, size=(32, 32)) -> Image.Image:
    return Image.new("RGB", size, color)


@pytest.fixture()
def refs_dir(tmp_path) -> Path:
    """Three liked and two disliked PNGs in `liked/` and `disliked/`."""
    liked = tmp_path / "liked"
    disliked = tmp_path / "disliked"
    liked.mkdir()
    disliked.mkdir()
    for k, color in enumerate([(250, 20, 20), (230, 40, 30), (240, 60, 10)]):
        solid(color).save(liked / f"l{k}.png")
    for k, color in enumerate([(20, 20, 250), (30, 60, 220)]):
        solid(color).save(disliked / f"d{k}.png")
    return tmp_path
