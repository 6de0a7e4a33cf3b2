"""Profile / UserProfile round trips through tag text and JSON, and key variants."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preferthinker.errors import ParseError
from preferthinker.parser import EMPTY_TERMS
from preferthinker.profile import ELEMENTS, Profile, UserProfile

USER = UserProfile(
    liked=Profile(
        art_style="Pixel Art",
        color=["Pink", "Jungle Green"],
        art_medium="3D Modeling",
        saturation="Mid-tone",
        detail=["Fine", "Selective"],
    ),
    disliked=Profile(art_style="Romanticism", color="Charcoal Gray", saturation="Muted"),
)


def test_tag_text_round_trip():
    text = USER.to_tag_text()
    assert text.startswith("<visual preference profile>\n")
    assert '"Artistic Medium": "3D Modeling"' in text
    assert UserProfile.from_tag_text(text) == USER


def test_json_round_trip():
    data = json.loads(USER.to_json())
    assert data["liked"]["color"] == ["Pink", "Jungle Green"]
    assert data["disliked"]["art_medium"] == []
    assert UserProfile.from_json(USER.to_json()) == USER
    assert UserProfile.from_dict(USER.to_dict()) == USER


@pytest.mark.parametrize("key", ["Art Styles", "ArtStyle", "art style", "Artistic style", "Style"])
def test_from_dict_key_variants(key):
    assert Profile.from_dict({key: "Cubism"}).art_style == ("Cubism",)


def test_from_dict_more_variants_and_unknown_key():
    profile = Profile.from_dict(
        {
            "ArtisticMedium": ["Silkscreen"],
            "Colour": "Pink, Teal",
            "Details": "Fine",
            "SATURATION": "Pastel",
        }
    )
    assert profile.art_medium == ("Silkscreen",)
    assert profile.color == ("Pink", "Teal")
    assert profile.detail == ("Fine",) and profile.saturation == ("Pastel",)
    with pytest.raises(KeyError, match="valid"):
        Profile.from_dict({"Mood": "calm"})


def test_tag_text_with_authors_key_variants():
    text = (
        USER.to_tag_text()
        .replace('"Artistic Medium"', '"ArtisticMedium"')
        .replace('"Art Styles"', '"Art Style"')
    )
    assert UserProfile.from_tag_text(text) == USER


def test_from_tag_text_without_profile_raises():
    with pytest.raises(ParseError):
        UserProfile.from_tag_text("no profile here")


_TERM = (
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz -", min_size=1, max_size=16)
    .map(lambda s: " ".join(s.replace("-", " - ").split()).strip(" -").title())
    .filter(lambda t: t and t.lower() not in EMPTY_TERMS)
)
_SIDE = st.builds(
    Profile, **{e: st.lists(_TERM, max_size=3, unique_by=str.lower) for e in ELEMENTS}
)


@settings(max_examples=100, deadline=None)
@given(liked=_SIDE, disliked=_SIDE)
def test_round_trips_property(liked, disliked):
    user = UserProfile(liked, disliked)
    assert UserProfile.from_json(user.to_json()) == user
    if liked.is_empty() and disliked.is_empty():
        with pytest.raises(ParseError):
            UserProfile.from_tag_text(user.to_tag_text())
    else:
        assert UserProfile.from_tag_text(user.to_tag_text()) == user
