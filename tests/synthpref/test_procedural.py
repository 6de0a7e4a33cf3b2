"""The procedural renderer: every element it claims to draw is measured back from the pixels."""

from __future__ import annotations

import time

import numpy as np
import pytest

from preferthinker.measure import COLOR_HUES, edge_density, hue_distance, measure_image, rgb_to_hsv
from preferthinker.profile import ELEMENTS
from synthpref.renderer import (
    SUPPORTED_TERMS,
    ProceduralGenerator,
    ProceduralRenderer,
    image_attributes,
    layout_for,
    parse_prompt_terms,
    subject_of,
    terms_distinct,
)

R = ProceduralRenderer()
SEEDS = range(6)
MEDIA = SUPPORTED_TERMS["art_medium"]


def arr(img):
    return np.asarray(img, dtype=np.float32) / 255.0


def mean_saturation(img):
    _, s, v = rgb_to_hsv(arr(img))
    return float(s[v > 0.12].mean())


def test_at_least_eight_terms_per_element_and_drawable():
    for element in ELEMENTS:
        assert len(SUPPORTED_TERMS[element]) >= 8, element
        for term in SUPPORTED_TERMS[element]:
            out = R.render("a cat", {element: term}, seed=1)
            assert out.attributes[element] == term


def test_supported_terms_use_vocabulary_spellings():
    vocabulary = pytest.importorskip("preferthinker.vocabulary").load_vocabulary()
    for element in ELEMENTS:
        for term in SUPPORTED_TERMS[element]:
            assert vocabulary.element_of(term) == element, (element, term)


@pytest.mark.parametrize("medium", MEDIA)
def test_intense_more_saturated_than_muted_every_seed(medium):
    for seed in SEEDS:
        base = {"art_medium": medium, "color": "Teal", "detail": "Selective"}
        intense = R.render("a harbour", {**base, "saturation": "Intense"}, seed=seed).image
        muted = R.render("a harbour", {**base, "saturation": "Muted"}, seed=seed).image
        pastel = R.render("a harbour", {**base, "saturation": "Pastel"}, seed=seed).image
        assert mean_saturation(intense) > mean_saturation(muted) + 0.1, (medium, seed)
        # pastel is light, muted is darker, at similar low saturation
        assert arr(pastel).mean() > arr(muted).mean(), (medium, seed)


@pytest.mark.parametrize("color", SUPPORTED_TERMS["color"])
def test_dominant_hue_matches_color_term(color):
    for seed in SEEDS:
        img = R.render("a street", {"color": color, "saturation": "Mid-tone"}, seed=seed).image
        hue = measure_image(img)["hue"]
        assert hue is not None and hue_distance(hue, COLOR_HUES[color]) <= 15, (color, seed, hue)


@pytest.mark.parametrize("medium", MEDIA)
def test_detail_terms_ordered_by_edge_density(medium):
    order = ["Smooth", "Simplified", "Realistic", "Fine", "Intricate"]
    for seed in range(3):
        densities = [
            edge_density(
                arr(R.render("a forest", {"art_medium": medium, "detail": d}, seed=seed).image)
            )
            for d in order
        ]
        assert densities == sorted(densities), (medium, seed, densities)


def test_pixel_art_is_blocky_and_others_are_not():
    for seed in SEEDS:
        px = arr(R.render("a bird", {"art_style": "Pixel Art"}, seed=seed).image)
        blocks = px.reshape(32, 8, 32, 8, 3)
        assert blocks.std(axis=(1, 3)).max() < 1e-6  # every 8x8 block is one color
        wc = arr(
            R.render("a bird", {"art_style": "Cubism", "art_medium": "Watercolor"}, seed=seed).image
        )
        assert wc.reshape(32, 8, 32, 8, 3).std(axis=(1, 3)).mean() > 0.005


def test_media_and_styles_differ_visibly():
    scene = {
        "color": "Orange",
        "saturation": "Intense",
        "detail": "Realistic",
        "art_style": "Cubism",
    }
    images = {m: arr(R.render("a dog", {**scene, "art_medium": m}, seed=2).image) for m in MEDIA}
    for a in MEDIA:
        for b in MEDIA:
            if a < b:
                assert np.abs(images[a] - images[b]).mean() > 0.02, (a, b)
    styles = SUPPORTED_TERMS["art_style"]
    shots = {
        s: arr(
            R.render("a dog", {**scene, "art_medium": "Silkscreen", "art_style": s}, seed=2).image
        )
        for s in styles
    }
    for a in styles:
        for b in styles:
            if a < b:
                assert np.abs(shots[a] - shots[b]).mean() > 0.02, (a, b)


def test_deterministic_and_seed_varies_unspecified_elements():
    a = R.render("a cat", {"color": "Pink"}, seed=4)
    b = R.render("a cat", {"color": "Pink"}, seed=4)
    assert np.array_equal(arr(a.image), arr(b.image)) and a.attributes == b.attributes
    drawn = {
        tuple(sorted(R.render("a cat", {"color": "Pink"}, seed=s).attributes.items()))
        for s in range(10)
    }
    assert len(drawn) >= 8
    assert all(dict(d)["color"] == "Pink" for d in drawn)


def test_subject_words_change_layout():
    assert layout_for("a mountain landscape at dusk") == "horizon"
    assert layout_for("a city skyline") == "towers"
    assert layout_for("portrait of a cat") == "center"
    terms = {
        "color": "Teal",
        "saturation": "Intense",
        "art_medium": "Silkscreen",
        "art_style": "Bauhaus",
        "detail": "Realistic",
    }
    a = arr(R.render("a mountain landscape", terms, seed=0).image)
    b = arr(R.render("a city street", terms, seed=0).image)
    assert np.abs(a - b).mean() > 0.03


def test_prompt_parsing_and_generator_honours_negative_prompt():
    found = parse_prompt_terms("a cat, Pop Art, teal and pink, intense colors, Stained Glass")
    assert found["art_style"] == ["Pop Art"] and found["color"] == ["Teal", "Pink"]
    assert found["saturation"] == ["Intense"] and found["art_medium"] == ["Stained Glass"]
    assert subject_of("a teal fox in the snow, Watercolor, Pastel") == "a fox in the snow"
    gen = ProceduralGenerator()
    images = gen.generate(
        "a fox, Watercolor", negative_prompt="Scarlet, Orange, Muted", seeds=range(12)
    )
    assert len(images) == 12
    for img in images:
        attrs = image_attributes(img)
        assert attrs["art_medium"] == "Watercolor"
        assert attrs["color"] not in ("Scarlet", "Orange") and attrs["saturation"] != "Muted"
        # and visibly unlike them (no hue within the distinctness gap)
        assert all(terms_distinct("color", attrs["color"], c) for c in ("Scarlet", "Orange"))


def test_fast_enough():
    start = time.perf_counter()
    for seed in range(20):
        R.render("a cat", {}, seed=seed)
    assert (time.perf_counter() - start) / 20 < 0.05
