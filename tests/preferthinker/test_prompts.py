"""Prompt builders: image counts and order, caps, liked-only, profile-only, known profile."""

from __future__ import annotations

import pytest
from PIL import Image

from preferthinker.errors import InputError
from preferthinker.parser import parse_output
from preferthinker.profile import Profile, UserProfile
from preferthinker.prompts import (
    MAX_REFERENCES,
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    build_assess_messages,
    build_known_profile_messages,
    build_liked_only_messages,
    build_profile_messages,
)


def _images(n, start=0):
    # Distinct sizes identify each image by identity-free means too.
    return [Image.new("RGB", (8 + start + i, 8), (10 * i, 0, 0)) for i in range(n)]


def _layout(conversation):
    """The user turn as a list: image objects, or text snippets."""
    assert [m["role"] for m in conversation] == ["system", "user"]
    assert conversation[0]["content"] == [{"type": "text", "text": SYSTEM_PROMPT}]
    return [p["image"] if p["type"] == "image" else p["text"] for p in conversation[1]["content"]]


def _images_in(layout):
    return [x for x in layout if isinstance(x, Image.Image)]


def test_full_prompt_order_matches_the_authors_layout():
    liked, disliked = _images(3), _images(2, start=100)
    a, b = Image.new("RGB", (50, 50)), Image.new("RGB", (60, 60))
    layout = _layout(build_assess_messages(liked, disliked, a, b))
    images = _images_in(layout)
    assert len(images) == 7
    assert all(x is y for x, y in zip(images, liked + disliked + [a, b]))
    # instruction, liked..., instruction, disliked..., "Image A", A, "Image B", B,
    # format instruction
    assert "likes" in layout[0]
    assert "dislikes" in layout[4]
    assert layout[layout.index(a) - 1] == "Image A"
    assert layout[layout.index(b) - 1] == "Image B"
    assert layout.index(a) < layout.index(b)
    assert isinstance(layout[-1], str) and "<answer>" in layout[-1]


def test_references_are_capped_at_five_per_side_keeping_the_first():
    liked, disliked = _images(8), _images(7, start=100)
    a, b = _images(2, start=200)
    images = _images_in(_layout(build_assess_messages(liked, disliked, a, b)))
    assert MAX_REFERENCES == 5
    assert len(images) == 12
    assert all(x is y for x, y in zip(images, liked[:5] + disliked[:5] + [a, b]))
    smaller = _images_in(_layout(build_assess_messages(liked, disliked, a, b, max_references=2)))
    assert len(smaller) == 6
    with pytest.raises(ValueError, match="max_references"):
        build_assess_messages(liked, disliked, a, b, max_references=0)


@pytest.mark.parametrize("disliked", [None, []])
def test_liked_only(disliked):
    liked = _images(2)
    a, b = _images(2, start=200)
    layout = _layout(build_assess_messages(liked, disliked, a, b))
    assert len(_images_in(layout)) == 4
    assert not any(isinstance(x, str) and "this user dislikes" in x for x in layout)
    assert any(isinstance(x, str) and "No disliked images" in x for x in layout)
    assert _layout(build_liked_only_messages(liked, a, b)) == layout


def test_profile_only_prompt_has_references_only():
    liked, disliked = _images(6), _images(1, start=100)
    layout = _layout(build_profile_messages(liked, disliked))
    images = _images_in(layout)
    assert len(images) == 6 and images[-1] is disliked[0]
    assert "Image A" not in layout
    assert "profile" in layout[-1] and "<think>" not in layout[-1]
    assert len(_images_in(_layout(build_profile_messages(liked)))) == 5


def test_known_profile_prompt_carries_the_profile_as_text():
    profile = UserProfile(Profile(art_style="Pixel Art", color="Pink"), Profile(saturation="Muted"))
    a, b = _images(2, start=200)
    layout = _layout(build_known_profile_messages(profile, a, b))
    images = _images_in(layout)
    assert len(images) == 2 and images[0] is a and images[1] is b
    assert profile.to_tag_text() in layout
    assert "<think>" in layout[-1] and "Do not repeat the profiles" in layout[-1]
    assert UserProfile.from_tag_text(profile.to_tag_text()) == profile


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda img: build_assess_messages([], None, img, img), "liked"),
        (lambda img: build_assess_messages([img], None, "a.png", img), "image_a"),
        (lambda img: build_assess_messages([img, "x.png"], None, img, img), "liked images"),
        (lambda img: build_assess_messages(img, None, img, img), "list"),
        (lambda img: build_profile_messages([]), "liked"),
        (lambda img: build_known_profile_messages(UserProfile(), img, img), "empty"),
        (lambda img: build_known_profile_messages({"liked": {}}, img, img), "UserProfile"),
        (
            lambda img: build_known_profile_messages(UserProfile(Profile(color="Pink")), img, None),
            "image_b",
        ),
    ],
)
def test_bad_inputs_are_input_errors(call, message):
    with pytest.raises(InputError, match=message):
        call(Image.new("RGB", (8, 8)))


def test_system_prompt_examples_parse_and_cover_both_answers():
    examples = SYSTEM_PROMPT.split("Example 1:")[1].split("Example 2:")
    assert len(examples) == 2
    answers = []
    for example in examples:
        parsed = parse_output(example)
        assert parsed.complete, parsed.issues
        answers.append(parsed.answer)
    assert sorted(answers) == ["A", "B"]
    for key in ("Art Styles", "Color", "Artistic Medium", "Saturation", "Detail"):
        assert f'"{key}"' in SYSTEM_PROMPT


def test_prompt_version_is_a_stable_short_string():
    import preferthinker.prompts as prompts

    assert PROMPT_VERSION.startswith("p1-") and len(PROMPT_VERSION) == 13
    assert prompts._prompt_version() == PROMPT_VERSION
