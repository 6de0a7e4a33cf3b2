"""Reading profiles from model output: element key spellings, the tag blocks, profile text.

Split from `preferthinker.parser` (which re-exports `parse_profiles` and `normalize_element_key`):
this module finds the `<visual preference profile>` / `<visual non-preference profile>` blocks
(closed, unclosed, or plain headings), and reads each as JSON (braces optional) or as
"key: value" text with any of the key spellings models use.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from preferthinker.errors import ParseError
from preferthinker.profile import Profile, UserProfile
# ---------------------------------------------------------------------------------------------
# Element keys

# Compact spellings (lower case, no spaces/underscores/hyphens/brackets) of each element.
_KEY_ALIASES: dict[str, str] = {}
for _element, _aliases in {
    "art_style": [
        "artstyle", "artstyles", "artisticstyle", "artisticstyles", "style", "styles",
        "visualstyle", "artstyling",
    ],
    "color": [
        "color", "colors", "colour", "colours", "colorpalette", "colourpalette", "palette",
        "colorscheme", "colourscheme", "dominantcolor", "dominantcolors",
    ],
    "art_medium": [
        "artmedium", "artmediums", "artmedia", "artisticmedium", "artisticmediums",
        "artisticmedia", "medium", "mediums", "media",
    ],
    "saturation": ["saturation", "saturations", "colorsaturation", "coloursaturation",
                   "saturationlevel"],
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
    compact = re.sub(r"[^a-z]", "", key.lower().replace("(s)", "s"))
    if compact in _KEY_ALIASES:
        return _KEY_ALIASES[compact]
    trimmed = _KEY_WRAPPERS.sub("", compact)
    return _KEY_ALIASES.get(trimmed) if trimmed else None


# Words around an element name that do not change which element it is.
_KEY_WRAPPERS = re.compile(
    r"^(?:preferred|liked|disliked|favorite|favourite|visual|overall|main|dominant)|"
    r"(?:match|matching|alignment|alignments|score|scores|preference|preferences|consistency|"
    r"similarity|fit|comparison|assessment|evaluation)$"
)


# ---------------------------------------------------------------------------------------------
# Blocks (tags)

_PROFILE_TAG = re.compile(
    r"<\s*(?P<close>/)?\s*(?:visual[\s_-]*)?(?P<neg>non[\s_-]*|dis[\s_-]*)?preference[\s_-]*profile\s*>",
    re.I,
)
# Headings without angle brackets: "Visual preference profile:" / "## Non-preference profile".
_PROFILE_HEADING = re.compile(
    r"(?:^|\n)[ \t#*>-]*(?:visual[\s_-]*)?(?P<neg>non[\s_-]*|dis[\s_-]*)?preference[\s_-]*profile[ \t*]*:?",
    re.I,
)
_THINK_OPEN = re.compile(r"<\s*think\s*>", re.I)
_THINK_CLOSE = re.compile(r"<\s*/\s*think\s*>", re.I)
_ANSWER_OPEN = re.compile(r"<\s*answer\s*>", re.I)
_ANSWER_CLOSE = re.compile(r"<\s*/\s*answer\s*>", re.I)
_THINK_STOP = re.compile(r"<\s*/?\s*answer\s*>|<\s*think\s*>", re.I)
_ANY_TAG = re.compile(
    r"<\s*/?\s*(?:think|answer|(?:visual[\s_-]*)?(?:non[\s_-]*|dis[\s_-]*)?preference[\s_-]*profile)\s*>",
    re.I,
)


@dataclass
class _Block:
    start: int  # start of the opening marker
    content_start: int
    content_end: int
    end: int  # end of the closing marker (or content_end when unclosed)
    closed: bool


def _block_after(
    text: str, open_match: re.Match, close_re: Optional[re.Pattern], stop_re: re.Pattern = None
) -> _Block:
    """The block opened by `open_match`: up to its closing tag, else up to the next `stop_re` tag."""
    start = open_match.end()
    next_tag = (stop_re or _ANY_TAG).search(text, start)
    if close_re is not None:
        close = close_re.search(text, start)
        if close and (next_tag is None or close.start() <= next_tag.start()):
            return _Block(open_match.start(), start, close.start(), close.end(), True)
    end = next_tag.start() if next_tag else len(text)
    return _Block(open_match.start(), start, end, end, False)


def _find_profile_blocks(text: str) -> dict[str, _Block]:
    """Map "liked"/"disliked" to their blocks (first occurrence of each)."""
    blocks: dict[str, _Block] = {}
    for match in _PROFILE_TAG.finditer(text):
        if match.group("close"):
            continue
        side = "disliked" if match.group("neg") else "liked"
        if side in blocks:
            continue
        neg = bool(match.group("neg"))

        def _closes(m: re.Match, neg: bool = neg) -> bool:
            return bool(m.group("close")) and bool(m.group("neg")) == neg

        start = match.end()
        close = next((m for m in _PROFILE_TAG.finditer(text, start) if _closes(m)), None)
        next_tag = _ANY_TAG.search(text, start)
        if close and (next_tag is None or close.start() <= next_tag.start()):
            blocks[side] = _Block(match.start(), start, close.start(), close.end(), True)
        else:
            end = next_tag.start() if next_tag else len(text)
            blocks[side] = _Block(match.start(), start, end, end, False)
    if blocks:
        return blocks
    # No tags: "Visual preference profile:" headings (markdown or plain).
    headings = list(_PROFILE_HEADING.finditer(text))
    stops = [m.start() for m in headings] + [
        m.start() for m in _ANY_TAG.finditer(text)
    ]
    for match in headings:
        side = "disliked" if match.group("neg") else "liked"
        if side in blocks:
            continue
        later = [s for s in stops if s > match.start()]
        # A heading block also stops at a blank line followed by the assessment.
        end = min(later) if later else len(text)
        assess = _ASSESS_START.search(text, match.end(), end)
        if assess:
            end = assess.start()
        # Headings have no closing marker by nature: not reported as unclosed tags.
        blocks[side] = _Block(match.start(), match.end(), end, end, True)
    return blocks


_ASSESS_START = re.compile(r"\n\s*(?:\d+\s*[.)]\s*)?[*_]*(?:artistic|art)\s+style[*_]*\s*:[^\n]*image", re.I)


# ---------------------------------------------------------------------------------------------
# Profiles

# Values read as "no term" in a profile (a model writing "Saturation: None").
EMPTY_TERMS = {"", "none", "n/a", "na", "null", "nil", "-", "--", "unknown", "not specified",
                 "nothing", "no preference", "[]"}

# A candidate key: after start/comma/brace/newline/semicolon, optional bullets and quotes, a short
# name, then ":" or "=". Whether it is an element key is decided by normalize_element_key.
_KEY_RE = re.compile(
    r"(?:^|[,{\n;])[ \t]*(?:[-*•#_]+[ \t]*){0,2}(?:\d+[.)][ \t]*[*_]*)?[\"']?"
    r"(?P<key>[A-Za-z][A-Za-z _()/'-]{0,40}?)[\"']?[*_]*[ \t]*[:=]"
)


def _split_terms(value: Any) -> list[str]:
    """Turn a profile value (string, list, nested) into clean terms."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _split_terms(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _split_terms(item)]
    if not isinstance(value, str):
        value = str(value)
    terms = []
    for part in re.split(r"[,;\n]", value):
        term = part.strip().strip("[]{}()\"'*_`").strip().rstrip(".").strip()
        term = re.sub(r"\s+", " ", term)
        if term and term.lower() not in EMPTY_TERMS:
            terms.append(term)
    return terms


def _profile_from_mapping(data: dict, issues: list[str], where: str) -> Profile:
    values: dict[str, list[str]] = {}
    for key, value in data.items():
        element = normalize_element_key(key)
        if element is None:
            issues.append(f"unknown key {str(key)[:40]!r} in the {where} ignored")
            continue
        values.setdefault(element, []).extend(_split_terms(value))
    return Profile(**values)


def _try_json_object(content: str) -> Optional[dict]:
    """Decode `content` as a JSON object, with or without its braces; None when it is not one."""
    stripped = content.strip().strip("`").strip()
    if stripped.lower().startswith("json"):
        stripped = stripped[4:].strip()
    candidates = [stripped] if stripped.startswith("{") else [
        "{" + stripped.rstrip(",").strip() + "}"
    ]
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(data, dict):
            return data
    return None


def _parse_profile_content(content: str, issues: list[str], where: str) -> Profile:
    """One profile block: JSON (braces optional) first, else "key: value" scanning."""
    data = _try_json_object(content)
    if data is not None:
        return _profile_from_mapping(data, issues, where)
    matches = [m for m in _KEY_RE.finditer(content) if normalize_element_key(m.group("key"))]
    values: dict[str, list[str]] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(content)
        element = normalize_element_key(match.group("key"))
        raw = content[match.end():end].strip().rstrip(",;}").strip()
        values.setdefault(element, []).extend(_split_terms(raw))
    return Profile(**values)


# Where a JSON object with keys can start. Failed decodes cost O(position) each (the error
# message counts lines), so only these spots are tried, and at most _MAX_JSON_TRIES of them.
_JSON_START = re.compile(r'\{\s*"')
_MAX_JSON_TRIES = 64


def _find_json_objects(text: str) -> list[Any]:
    """The top-level JSON objects embedded in `text` (in order, non-overlapping)."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    index, tries = 0, 0
    while tries < _MAX_JSON_TRIES:
        match = _JSON_START.search(text, index)
        if match is None:
            break
        tries += 1
        try:
            obj, end = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            index = match.start() + 1
            continue
        if isinstance(obj, dict):
            found.append(obj)
        index = end
    return found


def _side_of_key(key: Any) -> Optional[str]:
    if not isinstance(key, str):
        return None
    compact = re.sub(r"[^a-z]", "", key.lower())
    if compact in {"disliked", "dislikes", "dislike", "negative", "nonpreference", "dispreference",
                   "visualnonpreferenceprofile", "nonpreferenceprofile", "dispreferenceprofile",
                   "visualdispreferenceprofile", "nonpreferred", "avoid"}:
        return "disliked"
    if compact in {"liked", "likes", "like", "positive", "preference", "visualpreferenceprofile",
                   "preferenceprofile", "preferred"}:
        return "liked"
    return None


def _profiles_from_json(text: str, issues: list[str]) -> Optional[UserProfile]:
    """A profile given as a JSON object outside any tag ({"liked": {...}, "disliked": {...}})."""
    for obj in _find_json_objects(text):
        sides = {_side_of_key(k): v for k, v in obj.items() if _side_of_key(k)}
        if sides and all(isinstance(v, dict) for v in sides.values()):
            return UserProfile(
                liked=_profile_from_mapping(sides.get("liked") or {}, issues, "preference profile"),
                disliked=_profile_from_mapping(
                    sides.get("disliked") or {}, issues, "non-preference profile"
                ),
            )
        if any(normalize_element_key(k) for k in obj):
            issues.append("a bare JSON profile was read as the preference profile")
            return UserProfile(liked=_profile_from_mapping(obj, issues, "preference profile"))
    return None


def _extract_profiles(text: str, issues: list[str]) -> tuple[Optional[UserProfile], list[_Block]]:
    blocks = _find_profile_blocks(text)
    if not blocks:
        return _profiles_from_json(text, issues), []
    profiles = {}
    for side, where in (("liked", "preference profile"), ("disliked", "non-preference profile")):
        block = blocks.get(side)
        if block is None:
            issues.append(f"no {where} block")
            profiles[side] = Profile()
            continue
        if not block.closed:
            issues.append(f"the {where} block is not closed")
        profiles[side] = _parse_profile_content(text[block.content_start:block.content_end], issues, where)
    return UserProfile(**profiles), list(blocks.values())


def _squeeze_whitespace(text: str) -> str:
    """Each whitespace run becomes one space, or one newline when it holds a newline.

    Nothing below depends on how much whitespace there is, and with single whitespace characters
    the patterns' adjacent `\\s*` cannot backtrack polynomially on degenerate output (a model
    repeating spaces for thousands of tokens).
    """
    return _WHITESPACE_RUN.sub(lambda m: "\n" if "\n" in m.group() else " ", text)


_WHITESPACE_RUN = re.compile(r"\s{2,}|[\t\r\f\v]")


def parse_profiles(text: str) -> UserProfile:
    """Read the preference and non-preference profiles from model output or tag text.

    Accepts the tag format (`UserProfile.to_tag_text`), headings without tags, and JSON
    (`{"liked": {...}, "disliked": {...}}` or the profile keys directly).

    Args:
        text: model output or a stored profile text.

    Returns:
        The `UserProfile` (a missing side is an empty `Profile`).

    Raises:
        ParseError: when no profile is present.

    Example:
        >>> parse_profiles('<visual preference profile>"Color": "Pink"</visual preference profile>').liked.color
        ('Pink',)
    """
    if not isinstance(text, str):
        raise ParseError(f"expected model output text, got {type(text).__name__}", str(text)[:200])
    profile, _ = _extract_profiles(_squeeze_whitespace(text), [])
    if profile is None or (profile.liked.is_empty() and profile.disliked.is_empty()):
        raise ParseError(
            "no visual preference profile found: expected <visual preference profile> tags or a "
            "JSON profile", text
        )
    return profile


__all__ = ["EMPTY_TERMS", "normalize_element_key", "parse_profiles"]
