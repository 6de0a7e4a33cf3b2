"""A scripted assessor that prefers redder images, and ComfyUI-style IMAGE batches."""

from __future__ import annotations

import pytest

from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.engines.scripted import ScriptedEngine
from preferthinker.parser import format_output
from preferthinker.profile import ELEMENTS, Profile, UserProfile
from preferthinker.results import ElementScore

PROFILE = UserProfile(
    liked=Profile(
        art_style=["Pixel Art"],
        color=["Crimson"],
        art_medium=["Digital Painting"],
        saturation=["Intense"],
        detail=["Fine"],
    ),
    disliked=Profile(art_style=["Romanticism"], color=["Charcoal Gray"]),
)


def redness(image) -> float:
    r, g, b = image.convert("RGB").resize((8, 8)).split()
    return sum(r.getdata()) / 64 - (sum(g.getdata()) + sum(b.getdata())) / 128


def red_lover(conversation) -> str:
    """Answers profile prompts with PROFILE and comparisons with the redder candidate."""
    parts = [p for m in conversation if isinstance(m["content"], list) for p in m["content"]]
    images = [p["image"] for p in parts if p["type"] == "image"]
    is_comparison = any(p["type"] == "text" and p["text"].strip() == "Image B" for p in parts)
    if not is_comparison:
        return PROFILE.to_tag_text()
    a, b = images[-2], images[-1]
    score_a, score_b = (4, 1) if redness(a) >= redness(b) else (1, 4)
    scores = [ElementScore(e, score_a, score_b, f"A looks {e}", f"B looks {e}") for e in ELEMENTS]
    with_profile = not any("profiles are" in p.get("text", "") for p in parts)
    return format_output(PROFILE if with_profile else None, scores)


@pytest.fixture
def scripted_assessor():
    engine = ScriptedEngine(red_lover)
    return Assessor(engine, AssessorConfig(assessor="scripted", max_retries=0))


@pytest.fixture
def red_batch():
    """A (5, 24, 32, 3) IMAGE batch; item i has red level REDS[i]; the reddest is index 3."""
    import torch

    reds = [0.2, 0.5, 0.1, 0.9, 0.7]
    batch = torch.zeros(len(reds), 24, 32, 3)
    for i, red in enumerate(reds):
        batch[i, ..., 0] = red
        batch[i, ..., 2] = 0.3
    return batch
