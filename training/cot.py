"""Chain-of-thought training targets in the predict-then-assess format, written from ground truth.

A SynthPref sample knows everything the assessor has to find out: the user's profile and the term
each candidate was drawn with per element. `build_cot` turns that into the text the model should
write: the two profiles, one scored line per element with a short rationale, the totals and the
answer (`preferthinker.parser.format_output` writes the layout, so the parser reads it back).
With `verdict="compact"` the same scores are written as a compact verdict instead
(`preferthinker.compact.format_compact`: scores and answer, no profile and no rationales), the
target of a judge trained for `--verdict compact`.

Scores follow the ground truth: a term the user likes scores 4-5, a disliked one 0-1, anything
else 2-3; ties are then broken towards the preferred candidate inside the neutral range so the
totals always agree with the answer. Rationales come from several phrasings per case, picked by a
seeded generator, so the model learns the task and not one sentence.

`check_cot` is the quality filter's test, `rewrite_cot` the optional LLM rewording (accepted only
when the result still parses to the same profile, scores and answer).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from preferthinker.errors import ParseError
from preferthinker.profile import ELEMENTS, Profile, UserProfile
from preferthinker.results import ElementScore

# Attributes of one candidate: element -> the term it was drawn with (None when unknown).
Attributes = Mapping[str, Optional[str]]

# Relation of a candidate's term to the user's profile.
LIKED, DISLIKED, NEUTRAL, UNKNOWN = "liked", "disliked", "neutral", "unknown"

# What each element is called inside a rationale (varied on purpose).
ELEMENT_NOUNS: dict[str, tuple[str, ...]] = {
    "art_style": ("art style", "style", "artistic style"),
    "color": ("color palette", "palette", "dominant color"),
    "art_medium": ("medium", "artistic medium", "technique"),
    "saturation": ("saturation", "color intensity", "saturation level"),
    "detail": ("level of detail", "detail", "treatment of detail"),
}

# Phrasings per relation. {term} is the candidate's term, {noun} the element noun.
# No semicolons or parentheses: the assessment line uses them as separators.
TEMPLATES: dict[str, tuple[str, ...]] = {
    LIKED: (
        "its {noun} is {term}, which the user prefers",
        "the {term} {noun} matches the preference profile",
        "shows {term}, in line with what this user likes",
        "{term} is exactly the {noun} this user favors",
        "uses {term}, one of the user's preferred choices",
        "the {noun} reads as {term}, a clear match with the liked images",
    ),
    DISLIKED: (
        "its {noun} is {term}, which the user dislikes",
        "{term} appears in the non-preference profile",
        "shows {term}, which this user tends to avoid",
        "the {term} {noun} goes against the user's taste",
        "relies on {term}, the {noun} the disliked images share",
        "uses {term}, a {noun} the user rejects",
    ),
    NEUTRAL: (
        "its {noun} is {term}, neither preferred nor disliked",
        "{term} is not part of either profile, so it is neutral",
        "shows {term}, which the profiles do not mention",
        "the {term} {noun} neither matches nor clashes with the profile",
        "uses {term}, an acceptable but unremarkable {noun} for this user",
    ),
    UNKNOWN: (
        "its {noun} is hard to pin down, neither clearly preferred nor disliked",
        "the {noun} gives no clear signal either way",
        "no distinct {noun} stands out, so it stays neutral",
    ),
}

# Score range per relation (inclusive); chosen inside the range by the seeded generator.
SCORE_RANGES: dict[str, tuple[int, int]] = {
    LIKED: (4, 5),
    DISLIKED: (0, 1),
    NEUTRAL: (2, 3),
    UNKNOWN: (2, 2),
}
_NEUTRAL_BOUNDS = (1, 3)  # how far tie-breaking may move a neutral score


@dataclass
class CoTTarget:
    """A written target: the text, the scores it holds, and the ground-truth margin.

    `margin` is (liked matches - disliked matches) of the preferred candidate minus the same for
    the other one: > 0 when the profile supports the answer, <= 0 when it does not.
    """

    text: str
    scores: list[ElementScore]
    answer: str
    margin: int


def relation(profile: UserProfile, element: str, term: Optional[str]) -> str:
    """How a candidate's term for `element` relates to the profile.

    One of liked, disliked, neutral, unknown.

    Example:
        >>> relation(UserProfile(liked=Profile(color=("Pink",))), "color", "pink")
        'liked'
    """
    if not term:
        return UNKNOWN
    low = term.lower()
    if low in {t.lower() for t in profile.liked.terms(element)}:
        return LIKED
    if low in {t.lower() for t in profile.disliked.terms(element)}:
        return DISLIKED
    return NEUTRAL


def ground_truth_margin(profile: UserProfile, preferred: Attributes, other: Attributes) -> int:
    """How much better the preferred candidate fits the profile than the other one, in
    (liked matches - disliked matches). > 0: the profile supports the answer.

    Example:
        >>> up = UserProfile(liked=Profile(color=("Pink",)), disliked=Profile(color=("Gray",)))
        >>> ground_truth_margin(up, {"color": "Pink"}, {"color": "Gray"})
        2
    """

    def fit(attributes: Attributes) -> int:
        value = 0
        for element in ELEMENTS:
            kind = relation(profile, element, attributes.get(element))
            value += 1 if kind == LIKED else -1 if kind == DISLIKED else 0
        return value

    return fit(preferred) - fit(other)


def _rationale(rng: random.Random, kind: str, element: str, term: Optional[str]) -> str:
    text = rng.choice(TEMPLATES[kind]).format(
        noun=rng.choice(ELEMENT_NOUNS[element]), term=term or ""
    )
    return text[0].upper() + text[1:]


def build_cot(
    profile: UserProfile,
    attributes_a: Attributes,
    attributes_b: Attributes,
    answer: str,
    seed: int = 0,
    verdict: str = "full",
) -> CoTTarget:
    """Write the predict-then-assess target for one pair from the ground truth.

    Args:
        profile: the user's true profile (written as the predicted profile).
        attributes_a / attributes_b: element -> term each candidate was drawn with.
        answer: "A" or "B", the candidate the user prefers.
        seed: picks scores inside their ranges and the phrasings; same seed, same text.
        verdict: "full" (profiles, rationales, totals, answer) or "compact" (the same scores and
            answer in the `preferthinker.compact` format; same seed, same scores as "full").

    Returns:
        A `CoTTarget`. Its totals favour `answer` whenever the scores' ranges allow it (ties are
        broken inside each score's range); check `margin` (or `check_cot`) to drop pairs whose
        profile does not support the answer.

    Example:
        >>> up = UserProfile(liked=Profile(color=("Pink",)), disliked=Profile(color=("Gray",)))
        >>> cot = build_cot(up, {"color": "Gray"}, {"color": "Pink"}, "B", seed=1)
        >>> cot.text.endswith("<answer>Image B</answer>")
        True
    """
    from preferthinker.compact import VERDICTS, format_compact
    from preferthinker.parser import format_output

    if answer not in ("A", "B"):
        raise ValueError(f"answer must be 'A' or 'B', got {answer!r}")
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    rng = random.Random(f"cot:{seed}")
    kinds = {
        letter: {e: relation(profile, e, attrs.get(e)) for e in ELEMENTS}
        for letter, attrs in (("A", attributes_a), ("B", attributes_b))
    }
    values = {
        letter: {e: rng.randint(*SCORE_RANGES[kinds[letter][e]]) for e in ELEMENTS}
        for letter in "AB"
    }
    _favour(values, kinds, answer)
    scores = [
        ElementScore(
            element=e,
            score_a=values["A"][e],
            score_b=values["B"][e],
            rationale_a=_rationale(rng, kinds["A"][e], e, attributes_a.get(e)),
            rationale_b=_rationale(rng, kinds["B"][e], e, attributes_b.get(e)),
        )
        for e in ELEMENTS
    ]
    preferred, other = (
        (attributes_a, attributes_b) if answer == "A" else (attributes_b, attributes_a)
    )
    if verdict == "compact":
        text = format_compact(scores, answer)
    else:
        text = format_output(profile, scores, answer)
    return CoTTarget(
        text=text,
        scores=scores,
        answer=answer,
        margin=ground_truth_margin(profile, preferred, other),
    )


def _favour(values: dict, kinds: dict, answer: str) -> None:
    """Nudge scores one point at a time until the preferred total is strictly higher.

    Neutral/unknown scores move first (within 1-3); then liked and disliked scores, each within
    its own range (a liked term keeps 4-5, a disliked one 0-1), so the rationales stay true. That
    settles e.g. 5+4+4+4+4 against 1+5+5+5+5, where no score is neutral.
    Stops when nothing can move (the filter then drops the pair).
    """
    other = "B" if answer == "A" else "A"

    def bounds(kind: str) -> tuple[int, int]:
        return _NEUTRAL_BOUNDS if kind in (NEUTRAL, UNKNOWN) else SCORE_RANGES[kind]

    def next_move() -> Optional[tuple[str, str, int]]:
        for neutral_first in (True, False):
            for element in ELEMENTS:
                for letter, step in ((answer, 1), (other, -1)):
                    kind = kinds[letter][element]
                    if (kind in (NEUTRAL, UNKNOWN)) != neutral_first:
                        continue
                    low, high = bounds(kind)
                    if low <= values[letter][element] + step <= high:
                        return letter, element, step
        return None

    while sum(values[answer].values()) <= sum(values[other].values()):
        move = next_move()
        if move is None:
            return
        letter, element, step = move
        values[letter][element] += step


def _same_profile(a: Profile, b: Profile) -> bool:
    return all({t.lower() for t in a.terms(e)} == {t.lower() for t in b.terms(e)} for e in ELEMENTS)


def check_cot(
    text: str,
    profile: UserProfile,
    answer: str,
    scores: Optional[Sequence[ElementScore]] = None,
    verdict: str = "full",
) -> Optional[str]:
    """The quality filter's test of one target. Returns None when the text is usable, else the
    reason it is not: "unparseable", "incomplete", "answer_mismatch",
    "totals_contradict_answer", "profile_mismatch" or "scores_changed" (`scores` given and the
    text holds others, e.g. after an LLM rewrite).

    A "compact" target is read with `preferthinker.compact.parse_compact` (the parser of
    `--verdict compact`); it holds no profile, so "profile_mismatch" does not apply.

    Example:
        >>> check_cot("no format at all", UserProfile(), "A")
        'unparseable'
    """
    from preferthinker.compact import parse_compact
    from preferthinker.parser import parse_output

    try:
        parsed = parse_compact(text) if verdict == "compact" else parse_output(text)
    except ParseError:
        return "unparseable"
    other_total, own_total = (
        (parsed.total_b, parsed.total_a) if answer == "A" else (parsed.total_a, parsed.total_b)
    )
    if own_total is not None and other_total is not None and own_total <= other_total:
        return "totals_contradict_answer"
    if parsed.stated_answer != answer or parsed.answer != answer:
        return "answer_mismatch"
    if not parsed.complete:
        return "incomplete"
    if verdict != "compact" and (
        parsed.profile is None
        or not _same_profile(parsed.profile.liked, profile.liked)
        or not _same_profile(parsed.profile.disliked, profile.disliked)
    ):
        return "profile_mismatch"
    if scores is not None:
        want = [(s.element, s.score_a, s.score_b) for s in scores]
        got = [(s.element, s.score_a, s.score_b) for s in parsed.scores]
        if want != got:
            return "scores_changed"
    return None


REWRITE_INSTRUCTION = (
    "Rewrite the reasoning below in your own words so it reads naturally and varies in wording. "
    "Keep EXACTLY: every tag (<visual preference profile>, <visual non-preference profile>, "
    "<think>, <answer> and their closing tags), both profile lines, the numbered element lines "
    "with their 'Image A(score)' and 'Image B(score)' parts and scores, the Total line, and the "
    "answer. Change only the short explanations after each score. Do not use semicolons inside an "
    "explanation. Output only the rewritten text."
)


def rewrite_cot(
    target: CoTTarget, profile: UserProfile, engine: Any, generation_config: Any = None
) -> tuple[str, Optional[str]]:
    """Ask an LLM (any preferthinker `Engine`, e.g. an OpenAI-compatible endpoint) to reword the
    rationales. Returns (text, reason): the rewrite and None when it passes `check_cot` with the
    same scores, else the original text and the reason the rewrite was rejected.

    Example:
        >>> from preferthinker.engines import create_engine
        >>> engine = create_engine(
        ...     "http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-7B-Instruct"
        ... )  # doctest: +SKIP
        >>> text, rejected = rewrite_cot(cot, profile, engine)  # doctest: +SKIP
    """
    conversation = [
        {"role": "system", "content": [{"type": "text", "text": REWRITE_INSTRUCTION}]},
        {"role": "user", "content": [{"type": "text", "text": target.text}]},
    ]
    try:
        output = engine.generate([conversation], generation_config)[0].text
    except Exception as error:  # a flaky endpoint costs the rewrite, not the sample
        return target.text, f"rewrite_failed ({type(error).__name__})"
    reason = check_cot(output, profile, target.answer, target.scores)
    if reason is not None:
        return target.text, f"rewrite_{reason}"
    return output.strip(), None


__all__ = [
    "CoTTarget",
    "ELEMENT_NOUNS",
    "TEMPLATES",
    "build_cot",
    "check_cot",
    "ground_truth_margin",
    "relation",
    "rewrite_cot",
]
