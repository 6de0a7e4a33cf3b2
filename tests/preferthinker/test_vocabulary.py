"""The curated vocabulary: size, the paper's terms, lookups, validation errors."""

from __future__ import annotations

import pytest

from preferthinker.errors import ConfigError
from preferthinker.profile import ELEMENTS
from preferthinker.vocabulary import Vocabulary, load_vocabulary

PAPER_TERMS = {
    "art_style": ["Mesoamerican Art", "Pixel Art", "Oceanic Art", "Romanticism"],
    "color": ["Pink", "Jungle Green", "Alloy Silver", "Charcoal Gray"],
    "art_medium": ["Coiling", "Digital Painting", "Silkscreen", "3D Modeling"],
    "saturation": ["Muted", "Mid-tone", "Pastel", "Intense"],
    "detail": ["Realistic", "Selective", "Smooth", "Fine"],
}


def test_bundled_vocabulary_size_and_shape():
    vocab = load_vocabulary()
    assert len(vocab) >= 288
    assert vocab.elements == ELEMENTS
    assert len(vocab.all_terms()) == len(vocab)
    for element in ("art_style", "color", "art_medium"):
        assert len(vocab.terms(element)) >= 60
    for element in ("saturation", "detail"):
        assert 12 <= len(vocab.terms(element)) <= 20


@pytest.mark.parametrize("element,terms", PAPER_TERMS.items())
def test_paper_terms_present_under_their_element(element, terms):
    vocab = load_vocabulary()
    for term in terms:
        assert term in vocab.terms(element)
        assert vocab.element_of(term) == element


def test_lookups_are_case_and_space_insensitive():
    vocab = load_vocabulary()
    assert vocab.element_of("pixel art") == "art_style"
    assert vocab.element_of("  JUNGLE   green ") == "color"
    assert vocab.canonical("3d modeling") == "3D Modeling"
    assert vocab.element_of("not a term") is None and vocab.canonical("nope") is None
    assert "silkscreen" in vocab and "nope" not in vocab and 3 not in vocab


def test_terms_returns_a_copy_and_unknown_element_is_named():
    vocab = load_vocabulary()
    vocab.terms("color").append("X")
    assert "X" not in vocab.terms("color")
    with pytest.raises(KeyError, match="valid"):
        vocab.terms("mood")


def test_load_is_cached_per_path(tmp_path):
    assert load_vocabulary() is load_vocabulary()
    path = tmp_path / "v.yaml"
    path.write_text("\n".join(f"{e}: [t{e}]" for e in ELEMENTS))
    small = load_vocabulary(path)
    assert small is load_vocabulary(str(path)) and len(small) == 5


def _valid():
    return {e: [f"term {e}"] for e in ELEMENTS}


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d.update(mood=["Calm"]), "unknown element"),
        (lambda d: d.pop("detail"), "no terms for element"),
        (lambda d: d.update(color=["Pink", "pink"]), "duplicate term"),
        (lambda d: d.update(color=["Pink"], saturation=["PINK"]), "already in color"),
        (lambda d: d.update(detail=["Fine", ""]), "non-empty string"),
        (lambda d: d.update(detail=["Fine", 3]), "non-empty string"),
        (lambda d: d.update(detail="Fine"), "must be a list"),
    ],
)
def test_validation_errors(change, message):
    data = _valid()
    change(data)
    with pytest.raises(ConfigError, match=message):
        Vocabulary(data, source="test.yaml")


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_vocabulary(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("color: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_vocabulary(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="no terms"):
        load_vocabulary(empty)
