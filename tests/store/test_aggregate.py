"""Profiles from many stored images: subsets, the recency-weighted vote, certainty, caching.

The assessor is a scripted engine (a stand-in for a VLM: no model can run here) that names the
liked colour by the majority colour of the liked images it is shown.
"""

from __future__ import annotations

import pytest
from PIL import Image

from generation.aggregate import choose_subsets, predict_user_profile, recency_weight, vote
from generation.cache import ProfileCache
from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.engines.scripted import ScriptedEngine
from preferthinker.errors import InputError
from preferthinker.profile import Profile, UserProfile
from preferthinker.results import ProfilePrediction

RED, BLUE = (220, 20, 20), (20, 20, 220)


def majority_colour(conversation) -> str:
    parts = [p for m in conversation if isinstance(m["content"], list) for p in m["content"]]
    images = [p["image"] for p in parts if p["type"] == "image"]
    reds = sum(1 for image in images if image.convert("RGB").getpixel((0, 0))[0] > 128)
    colour = "Red" if reds * 2 >= len(images) else "Blue"  # the tests give liked images only
    return UserProfile(Profile(color=[colour], detail=["Fine"])).to_tag_text()


@pytest.fixture
def assessor():
    return Assessor(
        ScriptedEngine(majority_colour), AssessorConfig(assessor="scripted", max_retries=0)
    )


def like_colours(user, tmp_path, colours, start=0):
    for k, colour in enumerate(colours, start=start):
        path = tmp_path / "in" / f"{k:03d}.png"
        path.parent.mkdir(exist_ok=True)
        # Distinct content per image (the store keeps each content once).
        image = Image.new("RGB", (16, 16), colour)
        image.putpixel((15, 15), (k, k, k))
        image.save(path)
        user.label([path], "liked")


def test_recency_half_life():
    assert recency_weight(0) == 1.0
    assert recency_weight(10) == 0.5
    assert recency_weight(20) == 0.25


def test_subsets_newest_first_then_spread():
    assert choose_subsets(list(range(3)), []) == [([0, 1, 2], [])]
    assert choose_subsets(list(range(12)), [0]) == [
        ([0, 1, 2, 3, 4], [0]),
        ([5, 7, 9, 11], [0]),
        ([6, 8, 10], [0]),
    ]
    assert len(choose_subsets(list(range(100)), [], max_subsets=4)) == 4


def test_vote_keeps_majority_and_reports_certainty():
    def prediction(colour, status="ok"):
        return ProfilePrediction(UserProfile(Profile(color=[colour])), status, "")

    profile, certainty = vote(
        [prediction("Red"), prediction("Red"), prediction("Blue")], [1.0, 1.0, 0.5]
    )
    assert profile.liked.color == ("Red",)  # Blue has 0.5 < half of Red's 2.0
    assert certainty["liked"]["color"] == pytest.approx(2.0 / 2.5)
    assert certainty["liked"]["art_style"] == 0.0
    # A failed prediction casts no vote, however recent.
    profile, certainty = vote([prediction("Blue", "failed"), prediction("Red")], [1.0, 0.1])
    assert profile.liked.color == ("Red",) and certainty["liked"]["color"] == 1.0


def test_many_images_vote_with_recency(store, tmp_path, assessor):
    user = store.create("ana")
    # Oldest 7 red, newest 5 blue: the newest subset says Blue, the two older ones Red.
    like_colours(user, tmp_path, [RED] * 7 + [BLUE] * 5)
    aggregated = predict_user_profile(user, assessor)
    assert len(aggregated.subsets) == 3
    assert [p.profile.liked.color for p in aggregated.predictions] == [
        ("Blue",),
        ("Red",),
        ("Red",),
    ]
    weights = [
        sum(recency_weight(a) for a in ages) / len(ages)
        for ages in ([0, 1, 2, 3, 4], [5, 7, 9, 11], [6, 8, 10])
    ]
    red, blue = weights[1] + weights[2], weights[0]
    assert aggregated.prediction.profile.liked.color == ("Red", "Blue")  # Blue >= half of Red
    assert aggregated.certainty["liked"]["color"] == pytest.approx(red / (red + blue), abs=1e-3)
    assert aggregated.certainty["liked"]["detail"] == 1.0
    first_only = predict_user_profile(user, assessor, aggregate=False)
    assert first_only.prediction.profile.liked.color == ("Blue",)


def test_unchanged_store_costs_no_model_call(store, tmp_path, assessor):
    user = store.create("ana")
    like_colours(user, tmp_path, [RED] * 12)
    cache = ProfileCache(tmp_path / "cache")
    predict_user_profile(user, assessor, cache)
    calls = len(assessor.engine.calls)
    again = predict_user_profile(user, assessor, cache)
    assert len(assessor.engine.calls) == calls and again.from_cache == 3
    like_colours(user, tmp_path, [RED], start=50)  # a new like changes the subsets it enters
    grown = predict_user_profile(user, assessor, cache)
    assert 0 < len(assessor.engine.calls) - calls <= 3 and grown.from_cache < 3


def test_user_without_likes_is_an_input_error(store, assessor):
    with pytest.raises(InputError, match="has no liked image yet"):
        predict_user_profile(store.create("ana"), assessor)
