"""The visual preference profile: five elements, each holding one or more vocabulary terms.

A `Profile` is one side (what a user likes, or what they dislike); a `UserProfile` pairs the
preference profile with the non-preference profile, as the PreferThinker model writes them.
Text forms: the authors' tag format (`to_tag_text`, parsed back by `preferthinker.parser`) and
JSON (`to_dict` / `from_dict`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

# Order follows the authors' profile lines: "Art Styles", "Color", "Artistic Medium",
# "Saturation", "Detail".
ELEMENTS: tuple[str, ...] = ("art_style", "color", "art_medium", "saturation", "detail")

# The key the authors' format uses for each element.
ELEMENT_LABELS: dict[str, str] = {
    "art_style": "Art Styles",
    "color": "Color",
    "art_medium": "Artistic Medium",
    "saturation": "Saturation",
    "detail": "Detail",
}

# Human names, used in the per-element assessment lines ("1. Artistic style: ...").
ELEMENT_NAMES: dict[str, str] = {
    "art_style": "Artistic style",
    "color": "Color",
    "art_medium": "Artistic medium",
    "saturation": "Saturation",
    "detail": "Detail",
}


# Element keys as models spell them: one place knows the variants (profiles, parser, data files).
# Compact spellings (lower case, no spaces/underscores/hyphens/brackets) of each element.
_KEY_ALIASES: dict[str, str] = {}
for _element, _aliases in {
    "art_style": [
        "artstyle",
        "artstyles",
        "artisticstyle",
        "artisticstyles",
        "style",
        "styles",
        "visualstyle",
        "artstyling",
    ],
    "color": [
        "color",
        "colors",
        "colour",
        "colours",
        "colorpalette",
        "colourpalette",
        "palette",
        "colorscheme",
        "colourscheme",
        "dominantcolor",
        "dominantcolors",
    ],
    "art_medium": [
        "artmedium",
        "artmediums",
        "artmedia",
        "artisticmedium",
        "artisticmediums",
        "artisticmedia",
        "medium",
        "mediums",
        "media",
    ],
    "saturation": [
        "saturation",
        "saturations",
        "colorsaturation",
        "coloursaturation",
        "saturationlevel",
    ],
    "detail": ["detail", "details", "detailing", "detaillevel", "levelofdetail", "detailed"],
}.items():
    for _alias in _aliases:
        _KEY_ALIASES[_alias] = _element


def normalize_element_key(key: Any) -> Optional[str]:
    """Map a profile or assessment key spelling to its element, or None when it is no element.

    Case, spaces, underscores, hyphens, quotes, markdown and a plural "(s)" are ignored, and so
    are the words models wrap around the name ("Preferred Color", "Art Style Match").

    Args:
        key: the key as written ("Art Styles", "ArtisticMedium", "colour", "art_style", ...).

    Returns:
        One of `ELEMENTS`, or None.

    Example:
        >>> normalize_element_key("Artistic Medium"), normalize_element_key("Mood")
        ('art_medium', None)
    """
    if not isinstance(key, str):
        return None
    chinese = _CHINESE_KEYS.get(re.sub(r"[^\u4e00-\u9fff]", "", key))
    if chinese:
        return chinese
    compact = re.sub(r"[^a-z]", "", key.lower().replace("(s)", "s"))
    if compact in _KEY_ALIASES:
        return _KEY_ALIASES[compact]
    trimmed = _KEY_WRAPPERS.sub("", compact)
    return _KEY_ALIASES.get(trimmed) if trimmed else None


# Element headers a bilingual model writes in Chinese ("1. 艺术风格: Image A(2) ...").
_CHINESE_KEYS = {
    "艺术风格": "art_style",
    "风格": "art_style",
    "艺术样式": "art_style",
    "颜色": "color",
    "色彩": "color",
    "配色": "color",
    "艺术媒介": "art_medium",
    "媒介": "art_medium",
    "艺术媒材": "art_medium",
    "媒材": "art_medium",
    "饱和度": "saturation",
    "色彩饱和度": "saturation",
    "细节": "detail",
    "细节程度": "detail",
}

# Words around an element name that do not change which element it is.
_KEY_WRAPPERS = re.compile(
    r"^(?:preferred|liked|disliked|favorite|favourite|visual|overall|main|dominant)|"
    r"(?:match|matching|alignment|alignments|score|scores|preference|preferences|consistency|"
    r"similarity|fit|comparison|assessment|evaluation)$"
)


def _clean_terms(value: Any, element: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"Profile.{element} must be a string or a list of strings, got {type(value).__name__}"
        )
    terms: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"Profile.{element} terms must be strings, got {item!r}")
        for part in item.split(","):
            term = part.strip().strip('"').strip()
            if term and term.lower() not in {t.lower() for t in terms}:
                terms.append(term)
    return tuple(terms)


@dataclass(frozen=True)
class Profile:
    """Terms per element. Each element is a tuple of terms (several for multi-preference users)."""

    art_style: tuple[str, ...] = ()
    color: tuple[str, ...] = ()
    art_medium: tuple[str, ...] = ()
    saturation: tuple[str, ...] = ()
    detail: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for element in ELEMENTS:
            object.__setattr__(self, element, _clean_terms(getattr(self, element), element))

    def terms(self, element: str) -> tuple[str, ...]:
        if element not in ELEMENTS:
            raise KeyError(f"unknown profile element {element!r}; valid: {', '.join(ELEMENTS)}")
        return getattr(self, element)

    def items(self) -> Iterable[tuple[str, tuple[str, ...]]]:
        return ((element, getattr(self, element)) for element in ELEMENTS)

    def is_empty(self) -> bool:
        return not any(terms for _, terms in self.items())

    def all_terms(self) -> list[str]:
        return [term for _, terms in self.items() for term in terms]

    def to_dict(self) -> dict[str, list[str]]:
        return {element: list(terms) for element, terms in self.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Profile":
        """Build from `{"color": ["Pink"], ...}`; keys may also be the authors' labels."""
        values: dict[str, Any] = {}
        for key, value in data.items():
            element = normalize_element_key(key)
            if element is None:
                raise KeyError(f"unknown profile element {key!r}; valid: {', '.join(ELEMENTS)}")
            values[element] = value
        return cls(**values)

    def to_text(self) -> str:
        """The authors' one-line form: `"Art Styles": "Pixel Art", "Color": "Pink, Teal", ...`."""
        return ", ".join(f'"{ELEMENT_LABELS[e]}": "{", ".join(t)}"' for e, t in self.items())

    def describe(self) -> str:
        """Plain prose for embedding similarity and prompts: `art style: Pixel Art; color: Pink`."""
        return "; ".join(
            f"{ELEMENT_LABELS[e].lower()}: {', '.join(t)}" for e, t in self.items() if t
        )


@dataclass(frozen=True)
class UserProfile:
    """What a user likes (`liked`) and what they dislike (`disliked`)."""

    liked: Profile = field(default_factory=Profile)
    disliked: Profile = field(default_factory=Profile)

    def to_tag_text(self) -> str:
        return (
            "<visual preference profile>\n"
            f"{self.liked.to_text()}\n"
            "</visual preference profile>\n"
            "<visual non-preference profile>\n"
            f"{self.disliked.to_text()}\n"
            "</visual non-preference profile>"
        )

    @classmethod
    def from_tag_text(cls, text: str) -> "UserProfile":
        """Parse the tag format (tolerantly). Raises `ParseError` when no profile is present."""
        # The reader sits above this module (it builds Profiles): imported on call, one way.
        from preferthinker.profile_parser import parse_profiles

        return parse_profiles(text)

    def to_dict(self) -> dict[str, dict[str, list[str]]]:
        return {"liked": self.liked.to_dict(), "disliked": self.disliked.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "UserProfile":
        return cls(
            liked=Profile.from_dict(data.get("liked") or {}),
            disliked=Profile.from_dict(data.get("disliked") or {}),
        )

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> "UserProfile":
        return cls.from_dict(json.loads(text))

    def shared_terms(self) -> set[str]:
        """Terms (lower-cased) listed as both liked and disliked, in any element."""
        liked = {t.lower() for t in self.liked.all_terms()}
        return liked & {t.lower() for t in self.disliked.all_terms()}

    def without_shared_terms(self) -> "UserProfile":
        """This profile without the terms it both likes and dislikes: such a term is no preference.

        Example:
            >>> p = UserProfile(liked=Profile(saturation=["Neon"], color=["Red"]),
            ...                 disliked=Profile(saturation=["neon"], color=["Blue"]))
            >>> p.without_shared_terms().liked.saturation, p.without_shared_terms().disliked.color
            ((), ('Blue',))
        """
        shared = self.shared_terms()
        if not shared:
            return self

        def keep(side: Profile) -> Profile:
            kept = {e: tuple(t for t in ts if t.lower() not in shared) for e, ts in side.items()}
            return Profile(**kept)

        return UserProfile(liked=keep(self.liked), disliked=keep(self.disliked))
