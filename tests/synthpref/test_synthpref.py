"""SynthPref builder: deterministic, splits right, candidates match the hidden profile as
claimed."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from preferthinker.benchmark import load_benchmark
from preferthinker.errors import OutputExistsError
from synthpref.bench import DEFAULT_SUBJECTS, SynthPrefConfig, build_synthpref, make_user_items
from synthpref.renderer import (
    SUPPORTED_TERMS,
    ProceduralGenerator,
    ProceduralRenderer,
    image_attributes,
)
from synthpref.users import profile_matches, sample_users


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("sp") / "set"
    calls = []
    summary = build_synthpref(
        out,
        SynthPrefConfig(seed=3, users=2, train_users=2, refs=2, pairs=2, size=64),
        progress=lambda d, t: calls.append((d, t)),
    )
    return out, summary, calls


def test_build_writes_loadable_splits(built):
    out, summary, calls = built
    items = load_benchmark(out / "benchmark.json", check_files=True)
    assert [i.split for i in items].count("seen-SP") == 4
    assert {i.split for i in items} == {"seen-SP", "seen-MP", "unseen-SP", "unseen-MP"}
    train = load_benchmark(out / "train.json", check_files=True)
    assert {i.split for i in train} == {"train"} and len(train) == 4
    assert calls[-1] == (10, 10)
    assert summary["counts"]["unseen-MP"] == 4
    held = {t for ts in summary["term_split"]["unseen"].values() for t in ts}
    for item in items + train:
        used = set(item.profile.liked.all_terms()) | set(item.profile.disliked.all_terms())
        if item.split.startswith("unseen"):
            assert set(item.profile.liked.all_terms()) & held
        else:
            assert not used & held, item.item_id
        # the preferred candidate matches the liked profile on every element; the other does not
        good = item.meta["attributes_a" if item.answer == "A" else "attributes_b"]
        bad = item.meta["attributes_b" if item.answer == "A" else "attributes_a"]
        assert all(profile_matches(item.profile.liked, good).values())
        assert not all(profile_matches(item.profile.liked, bad).values())
        assert Image.open(item.image_a).size == (64, 64)
    assert {i.answer for i in items} == {"A", "B"}


def test_build_is_deterministic_and_refuses_non_empty(built, tmp_path):
    out, _, _ = built
    again = tmp_path / "again"
    build_synthpref(
        again, SynthPrefConfig(seed=3, users=2, train_users=2, refs=2, pairs=2, size=64)
    )
    assert (again / "benchmark.json").read_text() == (out / "benchmark.json").read_text()
    a = np.asarray(Image.open(out / "images" / "seen-SP-0000" / "liked_0.png"))
    b = np.asarray(Image.open(again / "images" / "seen-SP-0000" / "liked_0.png"))
    assert np.array_equal(a, b)
    with pytest.raises(OutputExistsError, match="overwrite"):
        build_synthpref(again, SynthPrefConfig(users=1, size=64))


def test_make_user_items_in_memory_and_with_a_generator():
    user = sample_users(1, SUPPORTED_TERMS, seed=0, multi_fraction=1.0)[0]
    items = make_user_items(
        user, ProceduralRenderer(size=64), DEFAULT_SUBJECTS, 2, 3, random.Random(1), mismatch=2
    )
    assert len(items) == 3 and all(isinstance(i.image_a, Image.Image) for i in items)
    assert all(len(i.meta["mismatched"]) == 2 for i in items)
    assert items[0].preferred[0] is items[1].preferred[0]  # references shared across a user's pairs
    # Through the text-prompted Generator interface the requested terms are honoured too.
    gen_items = make_user_items(user, _TextOnly(), DEFAULT_SUBJECTS, 1, 2, random.Random(1))
    for item in gen_items:
        good = item.image_a if item.answer == "A" else item.image_b
        assert all(profile_matches(user.profile.liked, image_attributes(good)).values())


class _TextOnly:
    """A Generator that is not the renderer: only the prompt reaches it."""

    name = "text-only"

    def __init__(self):
        self.inner = ProceduralGenerator(size=64)

    def generate(self, prompt, negative_prompt="", seeds=(0,)):
        return self.inner.generate(prompt, negative_prompt, seeds)


def test_config_validation():
    with pytest.raises(ValueError, match="mismatch"):
        SynthPrefConfig(mismatch=9)
    with pytest.raises(ValueError, match="splits"):
        SynthPrefConfig(splits=["seen-XX"])
    with pytest.raises(ValueError, match="size"):
        SynthPrefConfig(size=100)
