"""The analytic assessor: no liking and disliking the same thing, and colors named by their hue."""

from __future__ import annotations

import colorsys

import pytest
from PIL import Image

from preferthinker.analytic import _vocabulary_names, separating_terms
from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.measure import COLOR_HUES, DARK_COLORS, hue_distance, measure_image


def swatch(h: float, s: float = 1.0, v: float = 1.0) -> Image.Image:
    r, g, b = colorsys.hsv_to_rgb(h / 360, s, v)
    return Image.new("RGB", (48, 48), (round(r * 255), round(g * 255), round(b * 255)))


# The case: red references, disliked references as saturated (Neon) and smooth as the
# liked ones; candidates a crimson and a pure red. Before the fix the crimson won on a hair of
# saturation (the liked refs are a little darker than the disliked ones) although color is the
# only thing that tells the two sides apart.
LIKED = [swatch(0, 1, 0.9), swatch(8, 1, 0.9)]
DISLIKED = [swatch(225), swatch(120)]
CRIMSON, RED = swatch(348, 0.91, 0.86), swatch(0)


@pytest.fixture
def assessor():
    return Assessor.from_config(AssessorConfig(assessor="analytic"))


def test_pure_red_beats_crimson_for_a_red_lover_with_disliked_references(assessor):
    for a, b, red in ((CRIMSON, RED, "B"), (RED, CRIMSON, "A")):
        comparison = assessor.compare(a, b, liked=LIKED, disliked=DISLIKED)
        assert comparison.winner == red
        scores = {s.element: (s.score_a, s.score_b) for s in comparison.scores}
        # shared by both sides, so no preference: the same score for both candidates
        assert scores["saturation"][0] == scores["saturation"][1]
        assert scores["detail"][0] == scores["detail"][1]
    assert assessor.compare(CRIMSON, RED, liked=LIKED).winner == "B"


def test_predicted_profile_never_likes_and_dislikes_one_term(assessor):
    profile = assessor.predict_profile(LIKED, DISLIKED).profile
    assert profile.shared_terms() == set()
    assert profile.liked.saturation == () and profile.disliked.saturation == ()  # Neon on both sides
    assert profile.liked.color == ("Scarlet",) and profile.disliked.color  # color still separates


def test_a_clearly_stronger_side_keeps_the_term():
    assert separating_terms(["Neon"] * 5, ["Neon", "Muted", "Muted", "Muted"]) == ({"Neon"}, {"Muted"})
    assert separating_terms(["Neon", "Neon"], ["Neon"]) == (set(), set())
    # Neon: 1/2 against 3/4, not clearly either side; Muted: 1/2 against 1/4, clearly liked
    assert separating_terms(["Neon", "Muted"], ["Neon", "Neon", "Neon", "Muted"]) == ({"Muted"}, set())


def test_every_vocabulary_color_is_named_by_its_own_hue():
    """Each vocabulary color with a hue, as a pure swatch (dark shades at HSV value 0.5, as web
    maroon or navy), is named as itself or a term with the very same hue."""
    names = _vocabulary_names()["color"]
    assert len(names) > 30
    for term in names:
        value = 0.5 if term in DARK_COLORS else 1.0
        named = measure_image(swatch(COLOR_HUES[term], 1.0, value), colors=names)["color"]
        assert hue_distance(COLOR_HUES[named], COLOR_HUES[term]) == 0, (term, named)


def test_a_bright_swatch_gets_the_nearest_bright_name():
    names = _vocabulary_names()["color"]
    bright = [n for n in names if n not in DARK_COLORS]
    for term in names:
        named = measure_image(swatch(COLOR_HUES[term]), colors=names)["color"]
        nearest = min(hue_distance(COLOR_HUES[n], COLOR_HUES[term]) for n in bright)
        assert named in bright and hue_distance(COLOR_HUES[named], COLOR_HUES[term]) == nearest, (term, named)


def test_reds_are_named_as_people_name_them():
    names = _vocabulary_names()["color"]
    assert "Red" not in names  # the vocabulary's reds: Scarlet, Crimson, Burgundy, Maroon
    named = {rgb: measure_image(Image.new("RGB", (32, 32), rgb), colors=names)["color"]
             for rgb in ((255, 0, 0), (255, 36, 0), (220, 20, 60), (128, 0, 0))}
    assert named == {(255, 0, 0): "Scarlet", (255, 36, 0): "Scarlet", (220, 20, 60): "Crimson",
                     (128, 0, 0): "Maroon"}
