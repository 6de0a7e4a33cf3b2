"""Reading profiles from model output: the profile blocks and the text inside them.

`preferthinker.parser` re-exports `parse_profiles`; element key spellings live in
`preferthinker.profile` (`normalize_element_key`), the tags in `preferthinker.tags`. This module
finds the `<visual preference profile>` / `<visual non-preference profile>` blocks
(closed, unclosed, or plain headings), and reads each as JSON (braces optional) or as
"key: value" text with any of the key spellings models use.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

from preferthinker.errors import ParseError
from preferthinker.profile import (
    ELEMENT_LABELS,
    ELEMENTS,
    Profile,
    UserProfile,
    normalize_element_key,
)
from preferthinker.tags import (
    ANY_TAG,
    BROKEN_TAG,
    PROFILE_TAG,
    Block,
    normalize_text,
    squeeze_whitespace,
)

# ---------------------------------------------------------------------------------------------
# Blocks (tags)

# Headings without angle brackets: "Visual preference profile:" / "## Non-preference profile".
_PROFILE_HEADING = re.compile(
    r"(?:^|\n)[ \t#*>-]*(?:visual[\s_-]*)?(?P<neg>non[\s_-]*|dis[\s_-]*)?"
    r"preference[\s_-]*profile[ \t*]*:?",
    re.I,
)


def _find_profile_blocks(text: str) -> dict[str, Block]:
    """Map "liked"/"disliked" to their blocks (first occurrence of each)."""
    blocks: dict[str, Block] = {}
    for match in PROFILE_TAG.finditer(text):
        if match.group("close"):
            continue
        side = "disliked" if match.group("neg") else "liked"
        if side in blocks:
            continue
        neg = bool(match.group("neg"))

        def _closes(m: re.Match, neg: bool = neg) -> bool:
            return bool(m.group("close")) and bool(m.group("neg")) == neg

        start = match.end()
        close = next((m for m in PROFILE_TAG.finditer(text, start) if _closes(m)), None)
        next_tag = ANY_TAG.search(text, start)
        if close and (next_tag is None or close.start() <= next_tag.start()):
            blocks[side] = Block(match.start(), start, close.start(), close.end(), True)
        else:
            end = next_tag.start() if next_tag else len(text)
            blocks[side] = Block(match.start(), start, end, end, False)
    if blocks:
        return blocks
    # No tags: "Visual preference profile:" headings (markdown or plain).
    headings = list(_PROFILE_HEADING.finditer(text))
    stops = [m.start() for m in headings] + [m.start() for m in ANY_TAG.finditer(text)]
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
        blocks[side] = Block(match.start(), match.end(), end, end, True)
    return blocks


_ASSESS_START = re.compile(
    r"\n\s*(?:\d+\s*[.)]\s*)?[*_]*(?:artistic|art)\s+style[*_]*\s*:[^\n]*image", re.I
)


# ---------------------------------------------------------------------------------------------
# Profiles

# Values read as "no term" in a profile (a model writing "Saturation: None").
EMPTY_TERMS = {
    "",
    "none",
    "n/a",
    "na",
    "null",
    "nil",
    "-",
    "--",
    "unknown",
    "not specified",
    "nothing",
    "no preference",
    "[]",
}

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
    candidates = (
        [stripped] if stripped.startswith("{") else ["{" + stripped.rstrip(",").strip() + "}"]
    )
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(data, dict):
            return data
    return None


# Suffix of the issues that say a profile key was not read: such an output is never complete.
DROPPED_FIELD = " (profile field not read)"


def _report_missing_keys(seen: set, issues: list[str], where: str) -> None:
    missing = [ELEMENT_LABELS[e] for e in ELEMENTS if e not in seen]
    if missing:
        issues.append(f"the {where} has no readable {', '.join(missing)}{DROPPED_FIELD}")


def _parse_profile_content(content: str, issues: list[str], where: str) -> Profile:
    """One profile block: JSON (braces optional) first, else "key: value" scanning."""
    # A tag cut short ("</visual preference prof") is never a term.
    content, broken = BROKEN_TAG.subn("\n", content)
    if broken:
        issues.append(f"a broken tag inside the {where} was ignored")
    data = _try_json_object(content)
    if data is not None:
        _report_missing_keys({normalize_element_key(k) for k in data}, issues, where)
        return _profile_from_mapping(data, issues, where)
    matches = [m for m in _KEY_RE.finditer(content) if normalize_element_key(m.group("key"))]
    _report_missing_keys({normalize_element_key(m.group("key")) for m in matches}, issues, where)
    values: dict[str, list[str]] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(content)
        element = normalize_element_key(match.group("key"))
        raw = content[match.end() : end].strip().rstrip(",;}").strip()
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
    if compact in {
        "disliked",
        "dislikes",
        "dislike",
        "negative",
        "nonpreference",
        "dispreference",
        "visualnonpreferenceprofile",
        "nonpreferenceprofile",
        "dispreferenceprofile",
        "visualdispreferenceprofile",
        "nonpreferred",
        "avoid",
    }:
        return "disliked"
    if compact in {
        "liked",
        "likes",
        "like",
        "positive",
        "preference",
        "visualpreferenceprofile",
        "preferenceprofile",
        "preferred",
    }:
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


def find_profiles(text: str, issues: list[str]) -> tuple[Optional[UserProfile], list[Block]]:
    """The profiles in `text` and the blocks they were read from; every repair is appended to
    `issues`. `text` is expected normalised (`tags.normalize_text`, then `squeeze_whitespace`).

    Example:
        >>> profile, blocks = find_profiles('<visual preference profile>"Color": "Pink"', [])
        >>> profile.liked.color, blocks[0].closed
        (('Pink',), False)
    """
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
        profiles[side] = _parse_profile_content(
            text[block.content_start : block.content_end], issues, where
        )
    return UserProfile(**profiles), list(blocks.values())


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
        >>> text = '<visual preference profile>"Color": "Pink"</visual preference profile>'
        >>> parse_profiles(text).liked.color
        ('Pink',)
    """
    if not isinstance(text, str):
        raise ParseError(f"expected model output text, got {type(text).__name__}", str(text)[:200])
    profile, _ = find_profiles(squeeze_whitespace(normalize_text(text)), [])
    if profile is None or (profile.liked.is_empty() and profile.disliked.is_empty()):
        raise ParseError(
            "no visual preference profile found: expected <visual preference profile> tags or a "
            "JSON profile",
            text,
        )
    return profile


__all__ = ["DROPPED_FIELD", "EMPTY_TERMS", "find_profiles", "parse_profiles"]
