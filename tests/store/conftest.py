"""Fixtures of the user-store tests: small real PNG files and a store in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


def write_png(path: Path, value: int, size: int = 16) -> Path:
    """A PNG of one flat colour; different `value`s give different contents (and hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = (value % 256, (value * 7) % 256, (value // 256) % 256)
    Image.new("RGB", (size, size), colour).save(path)
    return path


@pytest.fixture
def pngs(tmp_path):
    def make(folder: str, values) -> list[Path]:
        return [write_png(tmp_path / folder / f"{v:03d}.png", v) for v in values]

    return make


@pytest.fixture
def store(tmp_path):
    from generation.store import UserStore

    return UserStore(tmp_path / "store")


@pytest.fixture(scope="session")
def tiny_generator_path(tmp_path_factory) -> Path:
    """The tiny random-weight diffusion pipeline (as in tests/generation), built once."""
    from generation.tiny import make_tiny_generator

    return make_tiny_generator(tmp_path_factory.mktemp("tiny") / "generator")
