"""Chat messages for the assessor: predict-then-assess, liked-only, profile-only, known-profile.

The user turn follows the authors' layout: an instruction, up to 5 preferred images, an
instruction, up to 5 non-preferred images, "Image A" + image, "Image B" + image, and a format
instruction. The references come as a `preferthinker.references.References` (loaded once, at most
`MAX_REFERENCES` per side) or as lists of PIL images, which are wrapped into one here (the first
`MAX_REFERENCES` per side are kept, and a `ReferencesCutWarning` names the ones left out).

The known-profile prompt carries the profile as text (`UserProfile.to_tag_text()`) and only the
two candidates as images, so a profile predicted once can be reused across many comparisons;
its answer holds the assessment part only (parse it with
`parse_output(text, expect_profile=False)`).

Conversations are lists of `{"role", "content": [parts]}` with parts `{"type": "text", "text"}`
and `{"type": "image", "image": <PIL.Image>}` (see `preferthinker.engines.base`).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from preferthinker.errors import InputError
from preferthinker.parser import format_output
from preferthinker.profile import Profile, UserProfile
from preferthinker.references import MAX_REFERENCES, References
from preferthinker.results import ElementScore

Conversation = list[dict[str, Any]]


def _example_one() -> str:
    profile = UserProfile(
        liked=Profile(
            art_style="Pixel Art",
            color=["Pink", "Jungle Green"],
            art_medium="Digital Painting",
            saturation="Intense",
            detail="Fine",
        ),
        disliked=Profile(
            art_style="Romanticism",
            color="Charcoal Gray",
            art_medium="Coiling",
            saturation="Muted",
            detail="Smooth",
        ),
    )
    scores = [
        ElementScore(
            "art_style",
            2,
            5,
            "soft romantic landscape, far from pixel art",
            "blocky pixel-art sprites on a grid",
        ),
        ElementScore(
            "color",
            1,
            5,
            "mostly charcoal gray, a disliked color",
            "pink sky over jungle green foliage",
        ),
        ElementScore(
            "art_medium",
            2,
            4,
            "looks like a traditional oil painting",
            "clearly digital, close to digital painting",
        ),
        ElementScore("saturation", 3, 4, "moderate, leaning muted", "vivid and intense"),
        ElementScore(
            "detail",
            3,
            4,
            "smooth gradients, few fine details",
            "fine, crisp edges on every sprite",
        ),
    ]
    return format_output(profile, scores, "B")


def _example_two() -> str:
    profile = UserProfile(
        liked=Profile(
            art_style="Oceanic Art",
            color="Alloy Silver",
            art_medium="Silkscreen",
            saturation="Pastel",
            detail=["Selective", "Realistic"],
        ),
        disliked=Profile(
            art_style="Mesoamerican Art",
            color="Pink",
            art_medium="3D Modeling",
            saturation="Intense",
            detail="Smooth",
        ),
    )
    scores = [
        ElementScore("art_style", 4, 1, "flat Oceanic patterns", "stepped Mesoamerican motifs"),
        ElementScore("color", 4, 2, "silvery metallic tones", "hot pink dominates"),
        ElementScore("art_medium", 5, 1, "visible silkscreen layers", "glossy 3D render"),
        ElementScore("saturation", 4, 1, "soft pastel tints", "intense, saturated hues"),
        ElementScore(
            "detail", 4, 2, "sharp focus on the subject only", "uniformly smooth surfaces"
        ),
    ]
    return format_output(profile, scores, "A")


SYSTEM_PROMPT = f"""You are an expert in personalized image preference assessment.
A user has shown you images they like and, when available, images they dislike. \
You reason in two steps.

Step 1, predict the user's visual preference profile (what they like) and visual \
non-preference profile (what they dislike) over five elements:
- Art Styles (e.g. Pixel Art, Romanticism, Oceanic Art)
- Color (e.g. Pink, Jungle Green, Alloy Silver, Charcoal Gray)
- Artistic Medium (e.g. Digital Painting, Silkscreen, Coiling, 3D Modeling)
- Saturation (e.g. Muted, Mid-tone, Pastel, Intense)
- Detail (e.g. Realistic, Selective, Smooth, Fine)
An element may hold several terms, separated by commas.

Step 2, assess the two candidate images, Image A and Image B, against the profiles: for each \
element give each image a whole-number score from 0 (opposite of the preference) to 5 (matches \
it perfectly) with a short rationale, add the scores up, and answer with the image the user \
prefers (the higher total).

Write exactly this format:
<visual preference profile>
"Art Styles": "...", "Color": "...", "Artistic Medium": "...", "Saturation": "...", "Detail": "..."
</visual preference profile>
<visual non-preference profile>
"Art Styles": "...", "Color": "...", "Artistic Medium": "...", "Saturation": "...", "Detail": "..."
</visual non-preference profile>
<think>
1. Artistic style: Image A(score) - rationale; Image B(score) - rationale
2. Color: ...
3. Artistic medium: ...
4. Saturation: ...
5. Detail: ...
Total: Image A: total_score=a1+a2+a3+a4+a5=sum  Image B: total_score=b1+b2+b3+b4+b5=sum
</think>
<answer>Image A or Image B</answer>

Example 1:
{_example_one()}

Example 2:
{_example_two()}"""

_LIKED_INSTRUCTION = "Here are images that this user likes:"
_DISLIKED_INSTRUCTION = "Here are images that this user dislikes:"
_NO_DISLIKED = (
    "No disliked images are given: infer the non-preference profile from what the liked images "
    "consistently avoid."
)
_CANDIDATES_INSTRUCTION = "Here are the two candidate images:"
_FULL_FORMAT = (
    "Predict the user's visual preference profile and visual non-preference profile, then "
    "assess Image A and Image B on each element (scores 0-5), add up the totals and answer "
    "which image the user prefers. Use the format: <visual preference profile>...</visual "
    "preference profile> <visual non-preference profile>...</visual non-preference profile> "
    "<think>...</think> <answer>Image A or Image B</answer>."
)
_PROFILE_FORMAT = (
    "Predict the user's visual preference profile and visual non-preference profile. Write only "
    "the two profile blocks: <visual preference profile>...</visual preference profile> "
    "<visual non-preference profile>...</visual non-preference profile>, with the keys "
    '"Art Styles", "Color", "Artistic Medium", "Saturation", "Detail".'
)
_KNOWN_PROFILE_INTRO = "This user's visual preference and non-preference profiles are:"
_KNOWN_PROFILE_FORMAT = (
    "Using these profiles, assess Image A and Image B on each element (scores 0-5), add up the "
    "totals and answer which image the user prefers. Do not repeat the profiles; write only "
    "<think>...</think> <answer>Image A or Image B</answer>."
)


def _prompt_version() -> str:
    import hashlib

    texts = [
        SYSTEM_PROMPT,
        _LIKED_INSTRUCTION,
        _DISLIKED_INSTRUCTION,
        _NO_DISLIKED,
        _CANDIDATES_INSTRUCTION,
        _FULL_FORMAT,
        _PROFILE_FORMAT,
        _KNOWN_PROFILE_INTRO,
        _KNOWN_PROFILE_FORMAT,
        str(MAX_REFERENCES),
    ]
    return "p1-" + hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()[:10]


# Changes whenever any prompt text changes: caches of predicted profiles key on it.
PROMPT_VERSION = _prompt_version()


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _image(image: Any) -> dict[str, Any]:
    return {"type": "image", "image": image}


def _check_image(image: Any, what: str) -> Any:
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise InputError(
            f"{what} must be a PIL image, got {type(image).__name__}; load files with "
            "preferthinker.images.load_image"
        )
    return image


def _references(liked: Any, disliked: Any, max_references: int) -> References:
    """A `References` handed down as it is; lists of PIL images wrapped into one (capped)."""
    if isinstance(liked, References):
        if disliked is not None:
            raise InputError("give the disliked images inside the References, not next to it")
        return liked
    _check_max(max_references)
    return References.from_images(liked, disliked, max_per_side=max_references)


def _check_max(max_references: int) -> None:
    if not isinstance(max_references, int) or max_references < 1:
        raise ValueError(f"max_references must be an int >= 1, got {max_references!r}")


def _reference_parts(liked: list[Any], disliked: list[Any]) -> list[dict[str, Any]]:
    parts = [_text(_LIKED_INSTRUCTION)] + [_image(img) for img in liked]
    if disliked:
        parts += [_text(_DISLIKED_INSTRUCTION)] + [_image(img) for img in disliked]
    else:
        parts.append(_text(_NO_DISLIKED))
    return parts


def _candidate_parts(image_a: Any, image_b: Any) -> list[dict[str, Any]]:
    return [
        _text(_CANDIDATES_INSTRUCTION),
        _text("Image A"),
        _image(_check_image(image_a, "image_a")),
        _text("Image B"),
        _image(_check_image(image_b, "image_b")),
    ]


def _conversation(user_parts: list[dict[str, Any]]) -> Conversation:
    return [
        {"role": "system", "content": [_text(SYSTEM_PROMPT)]},
        {"role": "user", "content": user_parts},
    ]


def build_assess_messages(
    liked: Sequence[Any],
    disliked: Optional[Sequence[Any]],
    image_a: Any,
    image_b: Any,
    max_references: int = MAX_REFERENCES,
) -> Conversation:
    """The full predict-then-assess conversation (liked-only when `disliked` is None or empty).

    Args:
        liked: a `References`, or PIL images the user likes (at least one; the first
            `max_references` are used).
        disliked: PIL images the user dislikes, or None/[] for a liked-only prompt (None when
            `liked` is a `References`).
        image_a, image_b: the two candidates (PIL images).
        max_references: cap per side (default `MAX_REFERENCES` = 5).

    Returns:
        [system message, user message] with images in the order liked, disliked, A, B.

    Raises:
        InputError: no liked image, or something that is not a PIL image.

    Example:
        >>> from PIL import Image
        >>> img = Image.new("RGB", (8, 8))
        >>> conv = build_assess_messages([img], None, img, img)
        >>> sum(p["type"] == "image" for p in conv[1]["content"])
        3
    """
    refs = _references(liked, disliked, max_references)
    if not refs.liked:
        raise InputError("at least one liked reference image is needed to assess a pair")
    parts = _reference_parts(refs.liked, refs.disliked)
    parts += _candidate_parts(image_a, image_b)
    parts.append(_text(_FULL_FORMAT))
    return _conversation(parts)


def build_no_reference_messages(image_a: Any, image_b: Any) -> Conversation:
    """The predict-then-assess conversation without the reference block: the two candidates and
    the format instruction only. The authors evaluate items this way when they lack liked or
    disliked images (their reference block needs both).

    Example:
        >>> from PIL import Image
        >>> img = Image.new("RGB", (8, 8))
        >>> sum(p["type"] == "image" for p in build_no_reference_messages(img, img)[1]["content"])
        2
    """
    return _conversation(_candidate_parts(image_a, image_b) + [_text(_FULL_FORMAT)])


def build_liked_only_messages(
    liked: Sequence[Any], image_a: Any, image_b: Any, max_references: int = MAX_REFERENCES
) -> Conversation:
    """Predict-then-assess from liked images only: `build_assess_messages(liked, None, a, b)`.

    Example:
        >>> from PIL import Image
        >>> img = Image.new("RGB", (8, 8))
        >>> len(build_liked_only_messages([img, img], img, img)[1]["content"])
        10
    """
    return build_assess_messages(liked, None, image_a, image_b, max_references=max_references)


def build_profile_messages(
    liked: Sequence[Any],
    disliked: Optional[Sequence[Any]] = None,
    max_references: int = MAX_REFERENCES,
) -> Conversation:
    """The profile-only conversation: references in, the two profile blocks out.

    Args:
        liked: a `References`, or PIL images the user likes (at least one; the first
            `max_references` are used).
        disliked: PIL images the user dislikes, or None/[] (None when `liked` is a `References`).
        max_references: cap per side (default 5).

    Raises:
        InputError: no liked image, or something that is not a PIL image.

    Example:
        >>> from PIL import Image
        >>> img = Image.new("RGB", (8, 8))
        >>> conv = build_profile_messages([img], [img])
        >>> sum(p["type"] == "image" for p in conv[1]["content"])
        2
    """
    refs = _references(liked, disliked, max_references)
    if not refs.liked:
        raise InputError("at least one liked reference image is needed to predict a profile")
    parts = _reference_parts(refs.liked, refs.disliked)
    parts.append(_text(_PROFILE_FORMAT))
    return _conversation(parts)


def build_known_profile_messages(profile: UserProfile, image_a: Any, image_b: Any) -> Conversation:
    """Assess two candidates against a profile given as text; only the candidates are images.

    The answer holds `<think>...</think><answer>...</answer>` only; parse it with
    `parse_output(text, expect_profile=False)`.

    Args:
        profile: the user's profile (e.g. from `Assessor.predict_profile`).
        image_a, image_b: the two candidates (PIL images).

    Raises:
        InputError: `profile` is not a UserProfile or is empty, or an image is not a PIL image.

    Example:
        >>> from PIL import Image
        >>> img = Image.new("RGB", (8, 8))
        >>> conv = build_known_profile_messages(UserProfile(Profile(color="Pink")), img, img)
        >>> "Pink" in conv[1]["content"][1]["text"]
        True
    """
    if not isinstance(profile, UserProfile):
        raise InputError(f"profile must be a UserProfile, got {type(profile).__name__}")
    if profile.liked.is_empty() and profile.disliked.is_empty():
        raise InputError("the profile is empty: predict one first or give reference images")
    parts = [_text(_KNOWN_PROFILE_INTRO), _text(profile.to_tag_text())]
    parts += _candidate_parts(image_a, image_b)
    parts.append(_text(_KNOWN_PROFILE_FORMAT))
    return _conversation(parts)


__all__ = [
    "MAX_REFERENCES",
    "PROMPT_VERSION",
    "SYSTEM_PROMPT",
    "build_assess_messages",
    "build_known_profile_messages",
    "build_liked_only_messages",
    "build_no_reference_messages",
    "build_profile_messages",
]
