"""Fixtures of the generation tests: the tiny diffusion pipeline (built once) and reference
images."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture(scope="session")
def tiny_generator_path(tmp_path_factory) -> Path:
    from generation.tiny import make_tiny_generator

    return make_tiny_generator(tmp_path_factory.mktemp("tiny") / "generator")


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


# -- a scripted assessor that prefers redder images --------------------------------------------

from preferthinker.profile import Profile, UserProfile  # noqa: E402

RED_PROFILE = UserProfile(
    liked=Profile(
        art_style=["Pixel Art"],
        color=["Crimson"],
        art_medium=["Digital Painting"],
        saturation=["Intense"],
        detail=["Fine"],
    ),
    disliked=Profile(color=["Cobalt Blue"]),
)


def _parts(conversation):
    return [
        part
        for message in conversation
        if isinstance(message["content"], list)
        for part in message["content"]
    ]


def redness_responder(conversation) -> str:
    """Answers like a PreferThinker model for a user who likes red: the redder candidate wins."""
    from preferthinker.parser import format_output
    from preferthinker.results import ElementScore

    parts = _parts(conversation)
    texts = [p.get("text", "") for p in parts if p["type"] == "text"]
    images = [p["image"] for p in parts if p["type"] == "image"]
    if "Image A" not in texts:
        return RED_PROFILE.to_tag_text()
    known_profile = any("profiles are" in t for t in texts)
    a, b = images[-2], images[-1]
    ra, rb = a.convert("RGB").getpixel((0, 0))[0], b.convert("RGB").getpixel((0, 0))[0]
    sa, sb = round(ra / 255 * 5), round(rb / 255 * 5)
    scores = [
        ElementScore("color", sa, sb, f"red {ra}", f"red {rb}"),
        ElementScore("detail", 3, 3, "same", "same"),
    ]
    return format_output(None if known_profile else RED_PROFILE, scores, "A" if ra >= rb else "B")


class SolidGenerator:
    """A Generator drawing solid images whose red channel is a fixed function of the seed."""

    name = "solid"
    batch_size = 3

    def __init__(self):
        self.calls = []

    def red(self, seed: int) -> int:
        return (seed * 97 + 31) % 256

    def generate(self, prompt, negative_prompt="", seeds=(0,)):
        from PIL import Image

        self.calls.append((prompt, negative_prompt, list(seeds)))
        return [Image.new("RGB", (16, 16), (self.red(s), 80, 80)) for s in seeds]


@pytest.fixture()
def scripted_assessor():
    from preferthinker.assessor import Assessor, AssessorConfig
    from preferthinker.engines.scripted import ScriptedEngine

    return Assessor(ScriptedEngine(redness_responder), AssessorConfig(assessor="scripted"))
