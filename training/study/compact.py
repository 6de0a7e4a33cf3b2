"""The compact chain-of-thought the study model learns: the predict-then-assess format, minus prose.

A 1M-parameter model trained from random weights cannot learn sentences of rationale in a few
minutes of CPU time, and it does not need to: what carries the decision is the two profiles, one
pair of scores per element and the answer. The compact text keeps exactly those, in the
canonical layout `preferthinker.parser` reads, so everything downstream is unchanged (the
`ptgen eval` harness, the assessor, and the rewards of `training.rewards`, which parse the
completions themselves):

    <visual preference profile>
    "Art Styles": "Cubism", "Color": "Teal", "Artistic Medium": "Mosaic", "Saturation": "Muted", ...
    </visual preference profile>
    <visual non-preference profile>
    "Art Styles": "Op Art", ...
    </visual non-preference profile>
    <think>
    1. Artistic style: Image A(2); Image B(5)
    ...
    5. Detail: Image A(1); Image B(4)
    Total: Image A: 2+1+3+0+1  Image B: 5+4+3+5+4
    </think>
    <answer>Image B</answer>

With `described` candidates each element line restates the element's liked / disliked terms,
names the term each candidate shows, then gives the scores:

    1. Artistic style: Cubism / Op Art; Op Art vs Cubism; Image A(0); Image B(5)

With `inline` as well, each candidate's term comes right before its own score, so each score
follows a term the model has just read off that image:

    1. Artistic style: Cubism / Op Art; Op Art: Image A(0); Cubism: Image B(5)

With `restate` alone the line keeps the profile's terms and leaves the candidates' out, so each
score is the decision itself (does this candidate show the liked term?):

    1. Artistic style: Cubism / Op Art; Image A(0); Image B(5)

The decision is then split into steps a small model learns separately: name the candidate's term
from its pixels (as it names the profile's from the references), then compare two tokens a few
positions apart (the restated profile term and the candidate's term) instead of searching the
profile tags 50-90 tokens back; the score is a function of those tokens (with `data.scores:
fixed`). How fast a 1.9M-parameter model learns that lookup, and what it took, is in
docs/results.md (learning study). The parser reads the terms as text between the header and the
scores, so the output stays valid predict-then-assess text.

Two differences from `preferthinker.parser.format_output`: no rationales, and the totals are
written as the sums themselves ("2+1+3+0+1", which the parser adds up) instead of
"total_score=2+1+3+0+1=7": the model copies five digits it has just written instead of doing
arithmetic, which a tiny model learns slowly and which the task does not need. With the study
tokenizer (`training.study.tokenizer`) every term and every fixed piece of this text is one token,
so a single-preference target is about 70 tokens (about 115 described).
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from preferthinker.profile import ELEMENT_NAMES, ELEMENTS, UserProfile
from preferthinker.results import ElementScore, ParsedOutput

MIN_SCORE, MAX_SCORE = 0, 5


def write_compact(
    profile: Optional[UserProfile],
    scores: Sequence[ElementScore],
    answer: str,
    described: Optional[tuple[Mapping[str, str], Mapping[str, str]]] = None,
    restate: bool = False,
    inline: bool = False,
) -> str:
    """The compact predict-then-assess text.

    Args:
        profile: the (predicted or true) user profile; None writes the assessment only.
        scores: one `ElementScore` per element with both scores (0-5); rationales are ignored.
        answer: "A" or "B".
        described: the candidates' terms (attributes of Image A, of Image B; element -> term);
            when given, each element line names them before the scores, after the element's
            liked / disliked terms from `profile` ("-" for none).
        restate: each element line restates the element's liked / disliked terms from `profile`
            (implied by `described`), so the scores follow the two terms they are judged against.
        inline: with `described`, each candidate's term comes right before its own score
            ("Neon: Image A(0); Pastel: Image B(5)") instead of both before the scores.

    Returns:
        Text that `preferthinker.parser.parse_output` reads back as complete (same profile,
        scores, answer) whenever the answer agrees with the totals.

    Raises:
        ValueError: a bad answer, an unknown element, a score outside 0-5 or a described
            candidate without a term for a scored element.

    Example:
        >>> s = [ElementScore(e, 1, 4) for e in ELEMENTS]
        >>> write_compact(None, s, "B").splitlines()[-1]
        '<answer>Image B</answer>'
    """
    if answer not in ("A", "B"):
        raise ValueError(f"answer must be 'A' or 'B', got {answer!r}")
    lines: list[str] = []
    if profile is not None:
        lines.append(profile.to_tag_text())
    steps = ["<think>"]
    values_a: list[int] = []
    values_b: list[int] = []
    for number, score in enumerate(scores, start=1):
        if score.element not in ELEMENTS:
            raise ValueError(
                f"score element must be one of {', '.join(ELEMENTS)}, got {score.element!r}"
            )
        for letter, value in (("a", score.score_a), ("b", score.score_b)):
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not MIN_SCORE <= value <= MAX_SCORE
            ):
                raise ValueError(
                    f"score_{letter} of {score.element} must be an int in 0-5, got {value!r}"
                )
        values_a.append(score.score_a)  # type: ignore[arg-type]
        values_b.append(score.score_b)  # type: ignore[arg-type]
        terms = ""
        if profile is not None and (restate or described is not None):
            sides = [
                ", ".join(side.terms(score.element)) or "-"
                for side in (profile.liked, profile.disliked)
            ]
            terms = f"{sides[0]} / {sides[1]}; "
        if described is not None:
            named = [attributes.get(score.element) for attributes in described]
            if not all(named):
                raise ValueError(
                    f"described candidates need a term for {score.element}, got {named}"
                )
            if not inline:
                terms += f"{named[0]} vs {named[1]}; "
        if described is not None and inline:
            judged = f"{named[0]}: Image A({score.score_a}); {named[1]}: Image B({score.score_b})"
        else:
            judged = f"Image A({score.score_a}); Image B({score.score_b})"
        steps.append(f"{number}. {ELEMENT_NAMES[score.element]}: {terms}{judged}")
    if values_a:
        steps.append(
            f"Total: Image A: {'+'.join(map(str, values_a))}  "
            f"Image B: {'+'.join(map(str, values_b))}"
        )
    steps.append("</think>")
    lines.append("\n".join(steps))
    lines.append(f"<answer>Image {answer}</answer>")
    return "\n".join(lines)


def compact_from_parsed(parsed: ParsedOutput) -> str:
    """The compact form of any parsed predict-then-assess output (e.g. a `training.cot` target).

    Example:
        >>> from preferthinker.parser import parse_output
        >>> compact_from_parsed(parse_output(canonical_text))  # doctest: +SKIP
    """
    if parsed.answer is None:
        raise ValueError("the parsed output has no answer; nothing to write")
    return write_compact(parsed.profile, parsed.scores, parsed.answer)


def compact_from_text(text: str) -> str:
    """Parse canonical (or any readable) predict-then-assess text and write it compactly.

    Example:
        >>> from training.cot import build_cot  # doctest: +SKIP
        >>> compact_from_text(build_cot(profile, attrs_a, attrs_b, "A").text)  # doctest: +SKIP
    """
    from preferthinker.parser import parse_output

    return compact_from_parsed(parse_output(text))


def read_compact(text: str) -> ParsedOutput:
    """Read a compact (or canonical) output: `preferthinker.parser.parse_output`, named here so
    the study's round trip is explicit. Raises `ParseError` when nothing usable is present.

    Example:
        >>> read_compact(write_compact(None, [ElementScore(e, 1, 4) for e in ELEMENTS], "B")).answer
        'B'
    """
    from preferthinker.parser import parse_output

    return parse_output(text)


__all__ = ["compact_from_parsed", "compact_from_text", "read_compact", "write_compact"]
