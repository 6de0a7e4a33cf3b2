"""Compact verdicts: per-element scores and the answer, no prose (`--verdict compact`).

With a known profile, what a comparison needs is the five scores of each image and the answer;
the rationales are most of what a full verdict costs to write (a 7B assessor decodes about
48 tokens/s in-process on an H100). The compact format:

    <scores>A: 2,1,2,3,3; B: 5,5,4,4,4</scores><answer>Image B</answer>

The five numbers of each image are its 0-5 scores in the element order art style, color, art
medium, saturation, detail (`preferthinker.profile.ELEMENTS`). Generation stops at `</answer>`
(`COMPACT_STOP`, passed to the engine as a stop sequence), so a model that would go on talking
does not. The answer is the stated one; when it is missing, the higher total; a stated answer
that contradicts the totals is kept and recorded in `issues`, as in the full parser.

When each fits: `full` (the authors' format, the default) for base models, for reading why, and
for predicting a profile; `compact` for reranking with a known profile once a model follows the
format (an assessor fine-tuned on `ptgen data build --verdict compact` data, or a strong
instruction-following VLM; `ptgen eval --mode profile --verdict compact` measures it), where its
cost per comparison is about 25 completion tokens instead of several hundred. Comparisons with
the references (`--mode full`, no profile) always use the full format: the profile prediction is
part of that answer.
`--explain` (`LoopConfig.explain`) judges the winner's last match again with a full verdict.

Example:
    >>> parse_compact("<scores>A: 2,1,2,3,3; B: 5,5,4,4,4</scores><answer>Image B</answer>").answer
    'B'
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from preferthinker.errors import ParseError
from preferthinker.profile import ELEMENTS, UserProfile
from preferthinker.results import ElementScore, ParsedOutput

VERDICTS = ("full", "compact")
COMPACT_STOP = "</answer>"

COMPACT_SYSTEM_PROMPT = (
    "You are an expert in personalized image preference assessment. You are given a user's "
    "visual preference profile (what they like) and non-preference profile (what they dislike) "
    "over five elements: art style, color, art medium, saturation, detail. Score how well each "
    "of two images fits the user on each element, 0-5 (5: shows the liked terms, 0: shows the "
    "disliked ones), and answer which image the user prefers. Write only the scores and the "
    "answer, no explanation, exactly like this:\n"
    "<scores>A: 2,1,2,3,3; B: 5,5,4,4,4</scores><answer>Image B</answer>"
)
COMPACT_FORMAT = (
    "Score Image A and Image B on art style, color, art medium, saturation and detail (0-5 each, "
    "in that order) and answer. Write only: <scores>A: s,s,s,s,s; B: s,s,s,s,s</scores>"
    "<answer>Image A or Image B</answer>"
)

_SCORES = re.compile(r"<scores>(.*?)(?:</scores>|<answer>|$)", re.IGNORECASE | re.DOTALL)
_SIDE = re.compile(r"\b([AB])\s*[:=]\s*([0-9][0-9\s,]*)", re.IGNORECASE)
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.IGNORECASE | re.DOTALL)


def format_compact(scores: Sequence[ElementScore], answer: str) -> str:
    """Write a compact verdict (scores in `ELEMENTS` order; rationales are not written).

    Args:
        scores: one `ElementScore` per element, any order, both scores 0-5.
        answer: "A" or "B".

    Example:
        >>> format_compact([ElementScore(e, 2, 4) for e in ELEMENTS], "B")
        '<scores>A: 2,2,2,2,2; B: 4,4,4,4,4</scores><answer>Image B</answer>'
    """
    by_element = {score.element: score for score in scores}
    missing = [e for e in ELEMENTS if e not in by_element]
    if missing or answer not in ("A", "B"):
        raise ValueError(
            f"a compact verdict needs all five elements and answer A or B "
            f"(missing: {', '.join(missing) or 'none'}, answer: {answer!r})"
        )
    a = ",".join(str(by_element[e].score_a) for e in ELEMENTS)
    b = ",".join(str(by_element[e].score_b) for e in ELEMENTS)
    return f"<scores>A: {a}; B: {b}</scores><answer>Image {answer}</answer>"


def parse_compact(text: str) -> ParsedOutput:
    """Read a compact verdict; tolerant of spacing, a missing `</answer>` (cut by the stop
    sequence) and a missing `</scores>`.

    Raises:
        ParseError: neither scores nor an answer could be read.

    Example:
        >>> parse_compact("<scores>A: 1,1,1,1,1; B: 3,3,3,3,3</scores><answer>Image B").total_b
        15
    """
    from preferthinker.parser import parse_answer

    issues: list[str] = []
    values: dict[str, list[int]] = {}
    block = _SCORES.search(text)
    if block:
        for letter, numbers in _SIDE.findall(block.group(1)):
            found = [int(n) for n in re.findall(r"\d+", numbers)]
            if len(found) != len(ELEMENTS) or any(n > 5 for n in found):
                issues.append(
                    f"Image {letter.upper()}: expected five scores 0-5, got {numbers.strip()!r}"
                )
                continue
            values[letter.upper()] = found
    scores = []
    if set(values) == {"A", "B"}:
        scores = [ElementScore(e, values["A"][i], values["B"][i]) for i, e in enumerate(ELEMENTS)]
    elif block:
        issues.append("the <scores> block does not hold five scores for both images")
    total_a = sum(values["A"]) if "A" in values and "B" in values else None
    total_b = sum(values["B"]) if total_a is not None else None
    match = _ANSWER.search(text)
    stated = parse_answer(match.group(1)) if match else None
    by_totals = (
        None if total_a is None or total_a == total_b else ("A" if total_a > total_b else "B")
    )
    answer = stated
    if stated is not None and by_totals is not None and stated != by_totals:
        issues.append(
            f"the stated answer Image {stated} contradicts the totals "
            f"(A {total_a} vs B {total_b}); the stated answer is kept"
        )
    if stated is None and by_totals is not None:
        answer = by_totals
        issues.append(f"no readable answer; Image {by_totals} taken from the totals")
    if answer is None and not scores:
        raise ParseError(
            "no compact verdict found (expected <scores>A: s,s,s,s,s; B: s,s,s,s,s"
            "</scores><answer>Image A|B</answer>)",
            text,
        )
    return ParsedOutput(
        scores=scores,
        total_a=total_a,
        total_b=total_b,
        answer=answer,
        stated_answer=stated,
        issues=issues,
        complete=bool(scores) and stated is not None and not issues,
    )


def build_compact_messages(profile: UserProfile, image_a: Any, image_b: Any) -> list:
    """The known-profile comparison asking for a compact verdict (its own short system prompt).

    Example:
        >>> from PIL import Image
        >>> from preferthinker.profile import Profile
        >>> img = Image.new("RGB", (8, 8))
        >>> conv = build_compact_messages(UserProfile(Profile(color="Pink")), img, img)
        >>> conv[-1]["content"][-1]["text"].startswith("Score Image A")
        True
    """
    from preferthinker.prompts import build_known_profile_messages

    conversation = build_known_profile_messages(profile, image_a, image_b)
    conversation[0] = {
        "role": "system",
        "content": [{"type": "text", "text": COMPACT_SYSTEM_PROMPT}],
    }
    user = conversation[-1]["content"]
    user[-1] = {"type": "text", "text": COMPACT_FORMAT}  # the format instruction comes last
    return conversation


__all__ = ["COMPACT_STOP", "VERDICTS", "build_compact_messages", "format_compact", "parse_compact"]
