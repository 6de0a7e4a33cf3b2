"""Simulated users: determinism, SP/MP shape, disliked != liked, seen/unseen splits without
leakage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preferthinker.errors import InputError
from preferthinker.profile import ELEMENTS, Profile
from synthpref.users import (
    SimulatedUser,
    profile_matches,
    sample_users,
    split_terms,
    term_table,
)

VOCAB = {
    "art_style": ["Cubism", "Minimalism", "Art Nouveau", "Pop Art", "Bauhaus", "Impressionism"],
    "color": ["Red", "Blue", "Green", "Pink", "Teal", "Orange", "Purple", "Yellow"],
    "art_medium": ["Watercolor", "Pencil", "Mosaic", "Silkscreen", "Oil Painting"],
    "saturation": ["Muted", "Pastel", "Mid-tone", "Intense"],
    "detail": ["Fine", "Smooth", "Selective", "Realistic", "Intricate"],
}


def test_deterministic_from_seed():
    a = sample_users(20, VOCAB, seed=3, multi_fraction=0.5)
    b = sample_users(20, VOCAB, seed=3, multi_fraction=0.5)
    c = sample_users(20, VOCAB, seed=4, multi_fraction=0.5)
    assert [u.to_dict() for u in a] == [u.to_dict() for u in b]
    assert [u.to_dict() for u in a] != [u.to_dict() for u in c]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), frac=st.sampled_from([0.0, 0.5, 1.0]))
def test_sp_mp_shape_and_disliked_differs(seed, frac):
    users = sample_users(12, VOCAB, seed=seed, multi_fraction=frac)
    assert sum(u.kind == "MP" for u in users) == round(12 * frac)
    for user in users:
        liked, disliked = user.profile.liked, user.profile.disliked
        for element in ELEMENTS:
            assert liked.terms(element), element
            assert set(liked.terms(element)).isdisjoint(disliked.terms(element))
            assert len(disliked.terms(element)) == 1
        multi = [e for e in ELEMENTS if len(liked.terms(e)) > 1]
        if user.kind == "SP":
            assert not multi
        else:
            assert len(multi) >= 2


def test_split_no_leakage_and_unseen_use_held_out():
    split = split_terms(VOCAB, held_out_fraction=0.3, seed=1)
    for element in ELEMENTS:
        assert split.unseen[element], element
        assert split.seen[element], element
        assert set(split.seen[element]).isdisjoint(split.unseen[element])
        assert sorted(split.seen[element] + split.unseen[element]) == sorted(VOCAB[element])
    held = {t for ts in split.unseen.values() for t in ts}
    seen_users = sample_users(50, VOCAB, seed=2, multi_fraction=0.5, split=split)
    for user in seen_users:
        used = set(user.profile.liked.all_terms()) | set(user.profile.disliked.all_terms())
        assert used.isdisjoint(held), user.user_id
    unseen_users = sample_users(50, VOCAB, seed=2, multi_fraction=0.5, split=split, unseen=True)
    for user in unseen_users:
        assert set(user.profile.liked.all_terms()) & held, user.user_id


def test_split_deterministic_and_seed_dependent():
    assert split_terms(VOCAB, 0.25, seed=5) == split_terms(VOCAB, 0.25, seed=5)
    assert any(
        split_terms(VOCAB, 0.25, seed=s) != split_terms(VOCAB, 0.25, seed=5) for s in range(6, 12)
    )


def test_terms_restriction_and_spelling_check():
    subset = {"color": ["red", "Blue"], "saturation": ["Muted", "Intense"]}
    table = term_table(VOCAB, subset)
    assert table["color"] == ["Blue", "Red"]  # vocabulary spellings win
    assert table["art_style"] == []
    users = sample_users(5, VOCAB, seed=0, terms=subset)
    for user in users:
        assert set(user.profile.liked.color) <= {"Red", "Blue"}
        assert not user.profile.liked.art_style
    with pytest.raises(InputError, match="Crimson"):
        term_table(VOCAB, {"color": ["Crimson"]})


def test_compatible_is_respected():
    def far(element, liked, disliked):
        return not (element == "color" and {liked, disliked} == {"Red", "Pink"})

    for user in sample_users(40, VOCAB, seed=9, compatible=far):
        pair = {user.profile.liked.color[0], user.profile.disliked.color[0]}
        assert pair != {"Red", "Pink"}


def test_user_round_trip_and_matches():
    user = sample_users(1, VOCAB, seed=0, multi_fraction=1.0)[0]
    assert SimulatedUser.from_dict(user.to_dict()) == user
    attrs = {e: user.profile.liked.terms(e)[0] for e in ELEMENTS}
    assert all(profile_matches(user.profile.liked, attrs).values())
    attrs["color"] = user.profile.disliked.color[0]
    assert profile_matches(user.profile.liked, attrs)["color"] is False
    assert profile_matches(Profile(color=("Pink",)), {}) == {"color": False}


def test_unseen_needs_split():
    with pytest.raises(ValueError, match="split"):
        sample_users(2, VOCAB, unseen=True)
    with pytest.raises(ValueError, match="multi_fraction"):
        sample_users(2, VOCAB, multi_fraction=2)
