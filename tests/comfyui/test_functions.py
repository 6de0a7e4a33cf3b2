"""Each node's function, called the way ComfyUI calls it: real tensors in, real outputs back."""

from __future__ import annotations

import json

import pytest
import torch

from comfyui_nodes import NODE_CLASS_MAPPINGS
from comfyui_nodes import functions as f
from comfyui_nodes.engine_cache import ENGINES, EngineCache
from preferthinker.assessor import Assessor
from preferthinker.engines import find_backend
from preferthinker.engines.scripted import ScriptedEngine
from preferthinker.errors import InputError
from preferthinker.profile import UserProfile

from .conftest import PROFILE


def run_node(key: str, **inputs):
    """Call a node the way ComfyUI's V1 executor does: instance, FUNCTION, keyword inputs."""
    cls = NODE_CLASS_MAPPINGS[key]
    return getattr(cls(), cls.FUNCTION)(**inputs)


def test_predict_profile_from_liked_and_disliked_batches(scripted_assessor, red_batch):
    profile, text, status = run_node(
        "PTGenPredictProfile",
        assessor=scripted_assessor,
        liked=red_batch[:3],
        disliked=red_batch[3:],
    )
    assert profile == PROFILE and status == "ok"
    assert text.startswith("<visual preference profile>") and "Pixel Art" in text
    (conversation,) = scripted_assessor.engine.calls
    images = [
        p["image"]
        for m in conversation
        if isinstance(m["content"], list)
        for p in m["content"]
        if p["type"] == "image"
    ]
    assert len(images) == 5 and images[0].size == (32, 24)  # 3 liked + 2 disliked, each converted


def test_predict_profile_liked_only(scripted_assessor, red_batch):
    profile, _, _ = run_node("PTGenPredictProfile", assessor=scripted_assessor, liked=red_batch[:2])
    assert isinstance(profile, UserProfile)


def test_rerank_with_profile_returns_best_sorted_batch_scores_reasoning(
    scripted_assessor, red_batch
):
    best, ranked, scores, reasoning, best_index = run_node(
        "PTGenRerankImages",
        assessor=scripted_assessor,
        images=red_batch,
        strategy="round-robin",
        top_k=0,
        profile=PROFILE,
    )
    assert best_index == 3
    assert best.shape == (1, 24, 32, 3) and torch.equal(best[0], red_batch[3])
    reds = [round(float(ranked[i, 0, 0, 0]), 2) for i in range(ranked.shape[0])]
    assert reds == [0.9, 0.7, 0.5, 0.2, 0.1]  # the whole batch, best first
    data = json.loads(scores)
    assert data["order"] == [3, 4, 1, 0, 2] and data["best"] == 3
    assert len(data["comparisons"]) == 10  # round-robin over 5
    assert "best is image 3" in reasoning and "Artistic style" in reasoning
    # every comparison used the known-profile prompt: two images each
    assert len(scripted_assessor.engine.calls) == 10


def test_rerank_knockout_top_k_from_references(scripted_assessor, red_batch):
    liked = red_batch[3:4]
    best, ranked, scores, _, best_index = run_node(
        "PTGenRerankImages",
        assessor=scripted_assessor,
        images=red_batch,
        strategy="knockout",
        top_k=2,
        liked=liked,
    )
    assert best_index == 3 and ranked.shape[0] == 2
    assert torch.equal(ranked[0], red_batch[3])
    assert len(json.loads(scores)["comparisons"]) == 4  # N-1
    # no profile: the full prompt carries the liked reference plus both candidates
    first = scripted_assessor.engine.calls[0]
    n_images = sum(
        1
        for m in first
        if isinstance(m["content"], list)
        for p in m["content"]
        if p["type"] == "image"
    )
    assert n_images == 3


def test_rerank_needs_profile_or_references(scripted_assessor, red_batch):
    with pytest.raises(InputError, match="profile or liked"):
        f.rerank_images(scripted_assessor, red_batch)
    with pytest.raises(InputError, match="strategy"):
        f.rerank_images(scripted_assessor, red_batch, strategy="best", profile=PROFILE)


def test_empty_profile_falls_back_to_references_or_explains(scripted_assessor, red_batch):
    empty = UserProfile()
    *_, best_index = f.rerank_images(
        scripted_assessor, red_batch, strategy="knockout", profile=empty, liked=red_batch[3:4]
    )
    assert best_index == 3
    first = scripted_assessor.engine.calls[0]
    n_images = sum(
        1
        for m in first
        if isinstance(m["content"], list)
        for p in m["content"]
        if p["type"] == "image"
    )
    assert n_images == 3  # judged from the liked reference, not from the empty profile
    with pytest.raises(InputError, match="profile is empty"):
        f.rerank_images(scripted_assessor, red_batch, profile=empty)
    with pytest.raises(InputError, match="profile is empty"):
        f.compare_pair(scripted_assessor, red_batch[0], red_batch[1], profile=empty)


def test_compare_pair(scripted_assessor, red_batch):
    winner, winner_image, scores, reasoning = run_node(
        "PTGenComparePair",
        assessor=scripted_assessor,
        image_a=red_batch[0:1],
        image_b=red_batch[3:4],
        profile=PROFILE,
    )
    assert winner == "B"
    assert torch.equal(winner_image, red_batch[3:4])
    data = json.loads(scores)
    assert data["color"] == {"a": 1, "b": 4} and data["total"] == {"a": 5, "b": 20}
    assert "Preferred: B" in reasoning and "Color: A 1" in reasoning


def test_compare_pair_undecided_returns_image_a(red_batch):
    assessor = Assessor(ScriptedEngine(["no idea"]))
    assessor.config.max_retries = 0
    winner, winner_image, scores, reasoning = f.compare_pair(
        assessor, red_batch[0], red_batch[1], profile=PROFILE
    )
    assert winner == "undecided" and torch.equal(winner_image[0], red_batch[0])
    assert "no idea" in reasoning and json.loads(scores) == {}


def test_profile_to_text_formats():
    (tags,) = run_node("PTGenProfileToText", profile=PROFILE, format="tags")
    assert UserProfile.from_tag_text(tags) == PROFILE
    (as_json,) = run_node("PTGenProfileToText", profile=PROFILE, format="json")
    assert UserProfile.from_json(as_json) == PROFILE
    (prose,) = run_node("PTGenProfileToText", profile=PROFILE, format="prose")
    assert prose.splitlines()[0].startswith("likes: art styles: Pixel Art")
    with pytest.raises(InputError, match="Predict Profile"):
        f.profile_text("not a profile")


def test_personalize_prompt_positive_and_negative():
    positive, negative = run_node(
        "PTGenPersonalizePrompt",
        profile=PROFILE,
        prompt="a lighthouse",
        strength=2,
        negative="blurry",
    )
    assert (
        positive.startswith("a lighthouse")
        and "Pixel Art" in positive
        and "Digital Painting" in positive
    )
    assert "Crimson" not in positive  # strength 2: style and medium only
    assert negative.startswith("blurry") and "Romanticism" in negative
    with pytest.raises(InputError, match="prompt"):
        f.personalize_prompt(PROFILE, "  ")


def test_load_image_folder_batches_and_resizes(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 30), "red").save(tmp_path / "b.png")
    Image.new("RGB", (20, 20), "blue").save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.warns(Warning):
        images, count = run_node(
            "PTGenLoadImageFolder", folder=str(tmp_path), max_images=0, width=0, height=0
        )
    assert count == 2 and images.shape == (2, 20, 20, 3)  # first by name (a.png) sets the size
    assert float(images[0, 0, 0, 2]) == 1.0 and float(images[1, 0, 0, 0]) == 1.0
    with pytest.warns(Warning):
        images, count = f.load_image_folder(str(tmp_path), max_images=1, width=16, height=8)
    assert count == 1 and images.shape == (1, 8, 16, 3)
    with pytest.raises(InputError):
        f.load_image_folder(str(tmp_path / "missing"))


def test_engine_cache_shares_by_settings_and_evicts():
    made = []

    def factory(backend, spec, model=None, **options):
        engine = ScriptedEngine(["x"])
        engine.closed = False
        engine.close = lambda e=engine: setattr(e, "closed", True)
        made.append(engine)
        return engine

    cache = EngineCache(max_engines=2, factory=factory)
    backend = find_backend("owner/m1")
    a = cache.get(backend, "owner/m1", device="cpu")
    assert cache.get(backend, "owner/m1", device="cpu") is a and cache.loads == 1
    b = cache.get(backend, "owner/m1", device="cuda")
    assert b is not a
    cache.get(backend, "owner/m2")
    assert a.closed and not b.closed and len(cache) == 2  # least recently used went first


def test_assessor_nodes_share_one_engine_across_decoding_settings():
    ENGINES.clear()
    (first,) = run_node(
        "PTGenAssessor",
        assessor="http://127.0.0.1:9/v1",
        model_name="m",
        device="auto",
        dtype="auto",
        debias=False,
        max_retries=1,
        max_new_tokens=4096,
        timeout=5.0,
    )
    (second,) = run_node(
        "PTGenAssessor",
        assessor="http://127.0.0.1:9/v1",
        model_name="m",
        device="auto",
        dtype="auto",
        debias=True,
        max_retries=0,
        max_new_tokens=512,
        timeout=5.0,
    )
    assert first.engine is second.engine  # one loaded engine
    assert second.config.debias and second.config.max_new_tokens == 512
    (third,) = run_node(
        "PTGenAssessor",
        assessor="http://127.0.0.1:9/v1",
        model_name="other",
        device="auto",
        dtype="auto",
        debias=False,
        max_retries=1,
        max_new_tokens=4096,
        timeout=5.0,
    )
    assert third.engine is not first.engine
    ENGINES.clear()
    with pytest.raises(InputError):
        f.load_assessor("  ")


def test_tiny_model_runs_through_the_nodes(tiny_assessor_path, red_batch):
    """The real in-process path: tiny random Qwen2.5-VL loaded with from_pretrained."""
    ENGINES.clear()
    (assessor,) = run_node(
        "PTGenAssessor",
        assessor=str(tiny_assessor_path),
        model_name="",
        device="cpu",
        dtype="float32",
        debias=False,
        max_retries=0,
        max_new_tokens=8,
        timeout=60.0,
    )
    profile, text, status = run_node("PTGenPredictProfile", assessor=assessor, liked=red_batch[:2])
    # 8 tokens of noise hold no profile: the node says "failed" and passes an empty profile on
    assert status == "failed" and profile == UserProfile()
    best, ranked, scores, reasoning, best_index = run_node(
        "PTGenRerankImages",
        assessor=assessor,
        images=red_batch[:3],
        strategy="knockout",
        top_k=0,
        liked=red_batch[3:5],
    )
    # random weights cannot judge: every match is undecided, yet a full ranking comes back
    data = json.loads(scores)
    assert len(data["comparisons"]) == 2 and all(m["winner"] is None for m in data["comparisons"])
    assert data["undecided"] == 2 and data["decided"] is False
    assert best.shape == (1, 24, 32, 3) and ranked.shape == (3, 24, 32, 3)
    assert data["order"] == [0, 1, 2] and best_index == 0  # no winner: the input order is kept
    assert "undecided" in reasoning
    ENGINES.clear()


def test_folder_loader_reruns_when_the_folder_changes(tmp_path):
    from PIL import Image

    cls = NODE_CLASS_MAPPINGS["PTGenLoadImageFolder"]
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.png")
    first = cls.IS_CHANGED(folder=str(tmp_path), max_images=0, width=0, height=0)
    assert cls.IS_CHANGED(folder=str(tmp_path), max_images=0, width=0, height=0) == first
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "b.png")
    assert cls.IS_CHANGED(folder=str(tmp_path), max_images=0, width=0, height=0) != first
    assert (
        cls.IS_CHANGED(folder=str(tmp_path / "nope"), max_images=0, width=0, height=0) == "missing"
    )


def test_rerank_drives_comfyui_progress_bar(monkeypatch, scripted_assessor, red_batch):
    """Inside ComfyUI, comfy.utils.ProgressBar(total).update_absolute(value, total) is the API."""
    import sys
    import types

    updates = []

    class ProgressBar:
        def __init__(self, total):
            self.total = total

        def update_absolute(self, value, total=None, preview=None):
            updates.append((value, total))

    comfy = types.ModuleType("comfy")
    comfy.utils = types.ModuleType("comfy.utils")
    comfy.utils.ProgressBar = ProgressBar
    monkeypatch.setitem(sys.modules, "comfy", comfy)
    monkeypatch.setitem(sys.modules, "comfy.utils", comfy.utils)
    f.rerank_images(scripted_assessor, red_batch, strategy="knockout", profile=PROFILE)
    assert updates and updates[-1] == (4, 4)  # knockout over 5: 4 comparisons
    assert [u[0] for u in updates] == sorted(u[0] for u in updates)


def test_rerank_prefilter_ranks_only_the_kept(scripted_assessor, red_batch):
    # Liked: the reddest image itself; the colour-statistics pre-filter keeps the 3 most like it.
    _, ranked, scores, _, best_index = run_node(
        "PTGenRerankImages",
        assessor=scripted_assessor,
        images=red_batch,
        strategy="knockout",
        top_k=0,
        liked=red_batch[3:4],
        prefilter="similarity:stats",
        keep=3,
    )
    data = json.loads(scores)
    assert data["prefilter"]["kept"][0] == 3 and len(data["prefilter"]["kept"]) == 3
    assert len(data["prefilter"]["scores"]) == 5
    assert len(data["comparisons"]) == 2  # knockout of the 3 kept
    assert best_index == 3 and ranked.shape[0] == 5
    with pytest.raises(InputError, match="liked reference"):
        f.rerank_images(scripted_assessor, red_batch, profile=PROFILE, prefilter="similarity:stats")
