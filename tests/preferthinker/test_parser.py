"""The parser: the authors' two worked examples, malformed variants, properties (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preferthinker.errors import ParseError
from preferthinker.parser import (
    EMPTY_TERMS,
    format_output,
    normalize_element_key,
    parse_answer,
    parse_output,
    parse_profiles,
    read_answer,
)
from preferthinker.profile import ELEMENTS, Profile, UserProfile
from preferthinker.results import ElementScore

PROFILES = (
    "<visual preference profile>\n"
    '"Art Styles": "Pixel Art", "Color": "Pink, Jungle Green", '
    '"Artistic Medium": "Digital Painting", "Saturation": "Intense", "Detail": "Fine"\n'
    "</visual preference profile>\n"
    "<visual non-preference profile>\n"
    '"Art Styles": "Romanticism", "Color": "Charcoal Gray", "ArtisticMedium": "Coiling", '
    '"Saturation": "Muted", "Detail": "Smooth"\n'
    "</visual non-preference profile>"
)

THINK_B = (
    "<think> 1. Artistic style: Image A(2) - a soft romantic landscape, not pixel art; "
    "Image B(5) - crisp pixel art sprites. 2. Color: Image A(1) - dominated by charcoal gray; "
    "Image B(5) - pink and jungle green. 3. Artistic medium: "
    "Image A(2) - looks like oil on canvas; "
    "Image B(4) - digital painting. 4. Saturation: Image A(3) - rather muted; "
    "Image B(4) - intense. "
    "5. Detail: Image A(3) - smooth surfaces; Image B(4) - fine edges.\n"
    "Total: Image A: total_score=2+1+2+3+3=11  Image B: total_score=5+5+4+4+4=22 </think>"
)
# The authors' worked example: Image B wins 22 vs 11.
EXAMPLE_B = f"{PROFILES}\n{THINK_B}\n<answer>Image B</answer>"

# A second worked example in their format, where Image A wins 21 vs 7.
EXAMPLE_A = (
    "<visual preference profile>\n"
    '"Art Styles": "Oceanic Art", "Color": "Alloy Silver", "Artistic Medium": "Silkscreen", '
    '"Saturation": "Pastel", "Detail": "Selective, Realistic"\n'
    "</visual preference profile>\n"
    "<visual non-preference profile>\n"
    '"Art Styles": "Mesoamerican Art", "Color": "Pink", "Artistic Medium": "3D Modeling", '
    '"Saturation": "Intense", "Detail": "Smooth"\n'
    "</visual non-preference profile>\n"
    "<think> 1. Artistic style: Image A(4) - flat Oceanic patterns; "
    "Image B(1) - stepped Mesoamerican motifs 2. Color: Image A(4) - silvery tones; "
    "Image B(2) - hot pink dominates 3. Artistic medium: Image A(5) - visible silkscreen layers; "
    "Image B(1) - glossy 3D render 4. Saturation: Image A(4) - soft pastel tints; "
    "Image B(1) - intense hues 5. Detail: Image A(4) - sharp focus on the subject only; "
    "Image B(2) - uniformly smooth\n"
    "Total: Image A: total_score=4+4+5+4+4=21  Image B: total_score=1+2+1+1+2=7 </think>\n"
    "<answer>Image A</answer>"
)

MULTILINE_SCORES = """<think>
**1. Artistic style**
- Image A (2/5): a soft romantic landscape.
- Image B (5/5): crisp pixel art.
**2. Color**
- Image A (1/5): charcoal gray.
- Image B (5/5): pink and green.
**3. Artistic medium**
- Image A (2/5): oil.
- Image B (4/5): digital painting.
**4. Saturation**
- Image A (3/5): muted.
- Image B (4/5): intense.
**5. Detail**
- Image A (3/5): smooth.
- Image B (4/5): fine.
**Total**: Image A = 11, Image B = 22
</think>"""

COLON_SCORES = """<think>
Art style: Image A: 2, rather romantic. Image B: 5, pixel art.
Colour: Image A: 1, gray. Image B: 5, pink.
Medium: Image A: 2, oil. Image B: 4, digital.
Saturation: Image A: 3, muted. Image B: 4, intense.
Details: Image A: 3, smooth. Image B: 4, fine.
Total scores: Image A: 11, Image B: 22
</think>"""


def test_worked_example_b_wins():
    parsed = parse_output(EXAMPLE_B)
    assert parsed.complete, parsed.issues
    assert parsed.issues == []
    assert parsed.answer == parsed.stated_answer == "B"
    assert (parsed.total_a, parsed.total_b) == (11, 22)
    assert [s.element for s in parsed.scores] == list(ELEMENTS)
    assert [s.score_a for s in parsed.scores] == [2, 1, 2, 3, 3]
    assert [s.score_b for s in parsed.scores] == [5, 5, 4, 4, 4]
    assert parsed.scores[0].rationale_a == "a soft romantic landscape, not pixel art"
    assert parsed.scores[1].rationale_b == "pink and jungle green."
    assert parsed.profile.liked.color == ("Pink", "Jungle Green")
    assert parsed.profile.disliked.art_medium == ("Coiling",)  # "ArtisticMedium" key variant


def test_worked_example_a_wins():
    parsed = parse_output(EXAMPLE_A)
    assert parsed.complete, parsed.issues
    assert parsed.answer == "A"
    assert (parsed.total_a, parsed.total_b) == (21, 7)
    assert parsed.profile.liked.detail == ("Selective", "Realistic")
    assert parsed.profile.disliked.art_medium == ("3D Modeling",)
    assert parsed.scores[4].rationale_a == "sharp focus on the subject only"


def _replace(old: str, new: str, text: str = EXAMPLE_B) -> str:
    assert old in text, old
    return text.replace(old, new)


BODY_B = f"{THINK_B}\n<answer>Image B</answer>"

# (name, text, expected answer or ParseError)
VARIANTS = [
    ("no profile tags", BODY_B, "B"),
    ("unclosed think", _replace("</think>", ""), "B"),
    ("unclosed answer", _replace("</answer>", ""), "B"),
    ("no answer tag, answer line", _replace("<answer>Image B</answer>", "Answer: Image B"), "B"),
    (
        "no answer tag, final answer bold",
        _replace("<answer>Image B</answer>", "**Final answer: Image B**"),
        "B",
    ),
    ("bare letter answer", _replace("<answer>Image B</answer>", "<answer>B</answer>"), "B"),
    ("bold answer", _replace("<answer>Image B</answer>", "<answer>**Image B**</answer>"), "B"),
    (
        "sentence answer",
        _replace("<answer>Image B</answer>", "<answer>image b is better</answer>"),
        "B",
    ),
    (
        "answer with reason",
        _replace(
            "<answer>Image B</answer>",
            "<answer>The user prefers Image B because of the pixel art.</answer>",
        ),
        "B",
    ),
    ("upper-case tags", EXAMPLE_B.replace("think>", "THINK>").replace("answer>", "ANSWER>"), "B"),
    (
        "spaces in tags",
        EXAMPLE_B.replace("<answer>", "< answer >").replace("</answer>", "</ answer>"),
        "B",
    ),
    (
        "extra text around",
        "Sure! Here is my assessment.\n\n" + EXAMPLE_B + "\n\nI hope this helps.",
        "B",
    ),
    ("code fence", "```\n" + EXAMPLE_B + "\n```", "B"),
    ("multi-line (x/5) scores", MULTILINE_SCORES + "\n<answer>Image B</answer>", "B"),
    ("colon scores, no tags for answer", COLON_SCORES + "\nTherefore, Image B is better.", "B"),
    ("totals disagree with sums", _replace("=2+1+2+3+3=11", "=2+1+2+3+3=15"), "B"),
    (
        "answer contradicts totals",
        _replace("<answer>Image B</answer>", "<answer>Image A</answer>"),
        "A",
    ),
    ("no answer at all", _replace("<answer>Image B</answer>", ""), "B"),
    ("empty answer block", _replace("<answer>Image B</answer>", "<answer></answer>"), "B"),
    (
        "no totals line",
        _replace("Total: Image A: total_score=2+1+2+3+3=11  Image B: total_score=5+5+4+4+4=22", ""),
        "B",
    ),
    (
        "totals as A = x, B = y",
        _replace(
            "Total: Image A: total_score=2+1+2+3+3=11  Image B: total_score=5+5+4+4+4=22",
            "Total: A = 11, B = 22",
        ),
        "B",
    ),
    (
        "JSON profile with braces",
        EXAMPLE_B.replace(
            '"Art Styles": "Pixel Art", "Color": "Pink, Jungle Green"',
            '{"Art Styles": ["Pixel Art"], "Color": ["Pink", "Jungle Green"]',
        ).replace('"Detail": "Fine"', '"Detail": "Fine"}'),
        "B",
    ),
    (
        "JSON profile outside tags",
        json.dumps({"liked": {"art_style": ["Pixel Art"]}, "disliked": {"color": "Gray"}})
        + "\n"
        + BODY_B,
        "B",
    ),
    (
        "key variants",
        EXAMPLE_B.replace('"Art Styles"', '"Art Style"')
        .replace('"Color"', '"Colour"')
        .replace('"Detail"', '"Details"'),
        "B",
    ),
    (
        "markdown profile lines",
        "Visual preference profile:\n- **Art Style:** Pixel Art\n- **Color:** Pink\n\n"
        "Visual non-preference profile:\n- Art Style: Romanticism\n" + BODY_B,
        "B",
    ),
    ("score out of range", _replace("Image B(5) - crisp", "Image B(7) - crisp"), "B"),
    ("fractional score", _replace("Image A(2) - a soft", "Image A(2.5) - a soft"), "B"),
    ("score out of 10", _replace("Image B(5) - crisp", "Image B(10/10) - crisp"), "B"),
    (
        "missing element",
        _replace("4. Saturation: Image A(3) - rather muted; Image B(4) - intense. ", ""),
        "B",
    ),
    (
        "swapped order in a line",
        _replace(
            "Image A(2) - a soft romantic landscape, not pixel art; "
            "Image B(5) - crisp pixel art sprites.",
            "Image B(5) - crisp pixel art sprites; Image A(2) - a soft romantic landscape.",
        ),
        "B",
    ),
    (
        "rationale mentions the other image",
        _replace(
            "a soft romantic landscape, not pixel art",
            "less blocky than Image B, more like Image B's opposite",
        ),
        "B",
    ),
    ("truncated mid-reasoning", EXAMPLE_B[: EXAMPLE_B.index("4. Saturation")], "B"),
    (
        "profile inside think",
        "<think>" + PROFILES + THINK_B[len("<think>") :] + "<answer>Image B</answer>",
        "B",
    ),
    ("answer only", "<answer>Image A</answer>", "A"),
    ("bare B", "B", "B"),
    ("Image B sentence", "Image B is better.", "B"),
    ("Answer: A line", "Answer: A", "A"),
    (
        "repeated answer tag, last wins",
        "<answer>Image A</answer> and later <answer>Image B</answer>",
        "B",
    ),
    ("empty", "", ParseError),
    ("whitespace", "  \n\t ", ParseError),
    ("gibberish", "lorem ipsum dolor sit amet", ParseError),
    (
        "undecidable prose",
        "<think>Both images are nice.</think><answer>Both are equally good</answer>",
        ParseError,
    ),
    ("only closing tags", "</think></answer></visual preference profile>", ParseError),
    (
        "tags without content",
        "<visual preference profile></visual preference profile><think></think><answer></answer>",
        ParseError,
    ),
]


# What each variant must still yield besides the answer. Default: the worked example's full
# profile and its five scores (A 2,1,2,3,3 vs B 5,5,4,4,4); the names say what differs.
FULL_PROFILE = UserProfile(
    Profile(
        art_style="Pixel Art",
        color=["Pink", "Jungle Green"],
        art_medium="Digital Painting",
        saturation="Intense",
        detail="Fine",
    ),
    Profile(
        art_style="Romanticism",
        color="Charcoal Gray",
        art_medium="Coiling",
        saturation="Muted",
        detail="Smooth",
    ),
)
FULL_SCORES = [(e, a, b) for e, a, b in zip(ELEMENTS, [2, 1, 2, 3, 3], [5, 5, 4, 4, 4])]
NOTHING_ELSE = {"profile": None, "scores": []}
VARIANT_FIELDS = {
    "no profile tags": {"profile": None},
    "multi-line (x/5) scores": {"profile": None},
    "colon scores, no tags for answer": {"profile": None},
    "JSON profile outside tags": {
        "profile": UserProfile(Profile(art_style="Pixel Art"), Profile(color="Gray"))
    },
    "markdown profile lines": {
        "profile": UserProfile(
            Profile(art_style="Pixel Art", color="Pink"), Profile(art_style="Romanticism")
        )
    },
    "missing element": {"scores": [s for s in FULL_SCORES if s[0] != "saturation"]},
    "truncated mid-reasoning": {"scores": FULL_SCORES[:3]},
    "answer only": NOTHING_ELSE,
    "bare B": NOTHING_ELSE,
    "Image B sentence": NOTHING_ELSE,
    "Answer: A line": NOTHING_ELSE,
    "repeated answer tag, last wins": NOTHING_ELSE,
}


def _fields(name: str) -> dict:
    return {"profile": FULL_PROFILE, "scores": FULL_SCORES, **VARIANT_FIELDS.get(name, {})}


def _check_variant(name: str, parsed) -> None:
    """The profile and scores the variant is named after, read in full."""
    fields = _fields(name)
    assert parsed.profile == fields["profile"], (name, parsed.profile)
    assert [(s.element, s.score_a, s.score_b) for s in parsed.scores] == fields["scores"], name
    if fields["scores"] == FULL_SCORES:
        assert (parsed.total_a, parsed.total_b) == (11, 22), name


@pytest.mark.parametrize("name,text,expected", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_malformed_variants(name, text, expected):
    if expected is ParseError:
        with pytest.raises(ParseError) as info:
            parse_output(text)
        assert info.value.reason
        return
    parsed = parse_output(text)
    assert parsed.answer == expected, (name, parsed.issues)
    _check_variant(name, parsed)


def _variants_reading(part: str) -> list:
    """The variants whose expected fields include a non-empty `part` ("profile" or "scores")."""
    return [v for v in VARIANTS if v[2] is not ParseError and _fields(v[0])[part]]


@pytest.mark.parametrize("part", ["profile", "scores"])
def test_variant_checks_fail_without_that_part_of_the_parser(part, monkeypatch):
    """Each variant's field check depends on the parser reading that field: with profile (or
    score) reading turned off, every variant that names a profile (scores) fails its check."""
    import preferthinker.parser as parser_module

    if part == "profile":
        monkeypatch.setattr(parser_module, "find_profiles", lambda text, issues: (None, []))
    else:
        monkeypatch.setattr(parser_module, "_parse_assessment", lambda region, issues: ([], {}))
    cases = _variants_reading(part)
    assert len(cases) >= 25
    for name, text, _ in cases:
        with pytest.raises((AssertionError, ParseError)):
            _check_variant(name, parse_output(text))


def test_at_least_30_malformed_variants():
    assert len(VARIANTS) >= 30


@pytest.mark.parametrize("bad", [None, 42, b"<answer>Image A</answer>", ["B"]])
def test_non_text_is_a_parse_error(bad):
    with pytest.raises(ParseError):
        parse_output(bad)


def test_totals_disagreeing_use_sums_and_record_it():
    parsed = parse_output(_replace("=2+1+2+3+3=11", "=2+1+2+3+3=15"))
    assert parsed.total_a == 11
    assert not parsed.complete
    assert any("disagrees with the per-element sum" in issue for issue in parsed.issues)


def test_stated_answer_wins_over_totals_and_is_recorded():
    parsed = parse_output(_replace("<answer>Image B</answer>", "<answer>Image A</answer>"))
    assert parsed.answer == parsed.stated_answer == "A"
    assert (parsed.total_a, parsed.total_b) == (11, 22)
    assert not parsed.complete
    assert any("contradicts the totals" in issue for issue in parsed.issues)


def test_answer_from_totals_when_none_is_given():
    parsed = parse_output(_replace("<answer>Image B</answer>", ""))
    assert parsed.answer == "B" and parsed.stated_answer is None
    assert not parsed.complete


def test_tied_totals_without_answer_are_undecided():
    tied = format_output(None, [ElementScore(e, 3, 3) for e in ELEMENTS], "A")
    parsed = parse_output(tied.replace("<answer>Image A</answer>", ""), expect_profile=False)
    assert parsed.answer is None
    assert (parsed.total_a, parsed.total_b) == (15, 15)
    assert any("tie" in issue for issue in parsed.issues)


def test_multiline_and_colon_scores():
    for text in (MULTILINE_SCORES, COLON_SCORES):
        parsed = parse_output(text + "<answer>Image B</answer>", expect_profile=False)
        assert [s.score_a for s in parsed.scores] == [2, 1, 2, 3, 3]
        assert [s.score_b for s in parsed.scores] == [5, 5, 4, 4, 4]
        assert (parsed.total_a, parsed.total_b) == (11, 22)
        assert parsed.complete, parsed.issues
    assert parse_output(MULTILINE_SCORES).scores[0].rationale_a == "a soft romantic landscape."


# Layouts other models write: all must give the worked example's scores.
OTHER_LAYOUTS = {
    "paren header": """<think>
1. Artistic style (preferred: Pixel Art): Image A (2) - painterly; Image B (5) - pixel art.
2. Color (Pink): Image A (1) - gray; Image B (5) - pink.
3. Artistic Medium (Digital Painting): Image A (2); Image B (4).
4. Saturation (Intense): Image A (3); Image B (4).
5. Detail (Fine): Image A (3); Image B (4).
Total: Image A = 11, Image B = 22
</think><answer>Image B</answer>""",
    "table": """<think>
| Element | Image A | Image B |
|---|---|---|
| Art style | 2 | 5 |
| Color | 1 | 5 |
| Artistic medium | 2 | 4 |
| Saturation | 3 | 4 |
| Detail | 3 | 4 |
| **Total** | **11** | **22** |
</think><answer>Image B</answer>""",
    "scores words": """<think>
Artistic style: Image A scores 2 because it is painterly. Image B scores 5 because it is pixel art.
Color: Image A gets a 1; Image B gets a 5.
Artistic medium: Image A is rated 2, Image B is rated 4.
Saturation: Image A: 3/5. Image B: 4/5.
Detail: Image A - 3, Image B - 4.
Image A total: 11
Image B total: 22
</think>
<answer>Image B</answer>""",
    "one line words": (
        "<think>1. Artistic style: Image A gets a 2. Image B gets a 5. "
        "2. Color: Image A gets a 1. Image B gets a 5. "
        "3. Artistic medium: Image A gets a 2. Image B gets a 4. "
        "4. Saturation: Image A gets a 3. Image B gets a 4. "
        "5. Detail: Image A gets a 3. Image B gets a 4. "
        "Total: Image A: 11, Image B: 22</think><answer>Image B</answer>"
    ),
}


@pytest.mark.parametrize("name", list(OTHER_LAYOUTS))
def test_other_score_layouts(name):
    parsed = parse_output(OTHER_LAYOUTS[name], expect_profile=False)
    assert [s.score_a for s in parsed.scores] == [2, 1, 2, 3, 3]
    assert [s.score_b for s in parsed.scores] == [5, 5, 4, 4, 4]
    assert (parsed.total_a, parsed.total_b, parsed.answer) == (11, 22, "B")
    assert parsed.complete, parsed.issues


def test_swapped_order_assigns_scores_to_the_right_image():
    text = _replace(
        "Image A(2) - a soft romantic landscape, not pixel art; "
        "Image B(5) - crisp pixel art sprites.",
        "Image B(5) - crisp pixel art sprites; Image A(2) - a soft romantic landscape.",
    )
    first = parse_output(text).scores[0]
    assert (first.score_a, first.score_b) == (2, 5)
    assert first.rationale_b == "crisp pixel art sprites"
    assert first.rationale_a == "a soft romantic landscape."


def test_scores_are_clamped_rounded_and_rescaled_with_issues():
    parsed = parse_output(_replace("Image B(5) - crisp", "Image B(7) - crisp"))
    assert parsed.scores[0].score_b == 5
    assert any("clamped" in issue for issue in parsed.issues)
    assert not parsed.complete
    parsed = parse_output(_replace("Image A(2) - a soft", "Image A(-1) - a soft"))
    assert parsed.scores[0].score_a == 0
    parsed = parse_output(_replace("Image B(5) - crisp", "Image B(6/10) - crisp"))
    assert parsed.scores[0].score_b == 3
    assert any("rescaled" in issue for issue in parsed.issues)
    parsed = parse_output(_replace("Image A(2) - a soft", "Image A(2.6) - a soft"))
    assert parsed.scores[0].score_a == 3
    assert any("rounded" in issue for issue in parsed.issues)


def test_missing_totals_line_is_recorded():
    parsed = parse_output(
        _replace("Total: Image A: total_score=2+1+2+3+3=11  Image B: total_score=5+5+4+4+4=22", "")
    )
    assert (parsed.total_a, parsed.total_b) == (11, 22)
    assert not parsed.complete
    assert any("no stated totals" in issue for issue in parsed.issues)


def test_truncated_output_is_partial():
    parsed = parse_output(EXAMPLE_B[: EXAMPLE_B.index("4. Saturation")])
    assert len(parsed.scores) == 3
    assert not parsed.complete
    assert any("no scores for" in issue for issue in parsed.issues)
    assert any("not closed" in issue for issue in parsed.issues)


def test_profile_only_output():
    parsed = parse_output(PROFILES)
    assert parsed.answer is None and parsed.scores == []
    assert parsed.profile.liked.art_style == ("Pixel Art",)
    assert not parsed.complete


def test_known_profile_output_is_complete_without_profiles():
    assert parse_output(BODY_B, expect_profile=False).complete
    assert not parse_output(BODY_B).complete


def test_profile_inside_think_is_read_and_not_taken_for_scores():
    text = "<think>" + PROFILES + THINK_B[len("<think>") :] + "<answer>Image B</answer>"
    parsed = parse_output(text)
    assert parsed.profile.liked.art_style == ("Pixel Art",)
    assert parsed.complete, parsed.issues


def test_json_profiles():
    parsed = parse_output(
        json.dumps(
            {
                "liked": {"Art Styles": "Pixel Art", "colour": ["Pink", "Teal"]},
                "disliked": {"Medium": "Coiling"},
            }
        )
        + "\n"
        + BODY_B
    )
    assert parsed.profile.liked.color == ("Pink", "Teal")
    assert parsed.profile.disliked.art_medium == ("Coiling",)
    tagged = parse_profiles(
        '<visual preference profile>{"ArtStyle": "Cubism", "Details": ["Fine"]}'
        "</visual preference profile>"
    )
    assert tagged.liked.art_style == ("Cubism",) and tagged.liked.detail == ("Fine",)


def test_parse_profiles_needs_a_profile():
    with pytest.raises(ParseError, match="no visual preference profile"):
        parse_profiles("<answer>Image A</answer>")
    with pytest.raises(ParseError):
        parse_profiles(None)


def test_markdown_headings_profile():
    profile = parse_profiles(
        "## Visual preference profile\n- **Art Style:** Pixel Art\n- Color: Pink, Teal\n\n"
        "## Visual non-preference profile\n- Saturation: None\n- Detail: Smooth\n"
    )
    assert profile.liked.art_style == ("Pixel Art",)
    assert profile.liked.color == ("Pink", "Teal")
    assert profile.disliked.saturation == ()
    assert profile.disliked.detail == ("Smooth",)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("B", "B"),
        ("b", "B"),
        ("Image B", "B"),
        ("image b is better", "B"),
        ("**Image B**", "B"),
        ("Answer: B", "B"),
        ("Answer: Image A.", "A"),
        ("The answer is Image A", "A"),
        ("(A)", "A"),
        ("I prefer Image B over Image A.", "B"),
        ("Image A is clearly better than Image B", "A"),
        ("Final answer: **Image A**", "A"),
        ("<answer>Image B</answer>", "B"),
        ("ImageB", "B"),
        ("Image A is worse than Image B", None),
        ("neither", None),
        ("", None),
        (None, None),
        ("Both Image A and Image B are fine", None),
    ],
)
def test_parse_answer(text, expected):
    assert parse_answer(text) == expected


@pytest.mark.parametrize(
    "key,element",
    [
        ("Art Styles", "art_style"),
        ("Art Style", "art_style"),
        ("ArtStyle", "art_style"),
        ("art_style", "art_style"),
        ("Artistic style", "art_style"),
        ("Style", "art_style"),
        ("Color(s)", "color"),
        ("Colour", "color"),
        ("colors", "color"),
        ("Artistic Medium", "art_medium"),
        ("ArtisticMedium", "art_medium"),
        ("Art Medium", "art_medium"),
        ("medium", "art_medium"),
        ("art-medium", "art_medium"),
        ("SATURATION", "saturation"),
        ("Detail", "detail"),
        ("Details", "detail"),
        ("  detail ", "detail"),
        ("**Detail**", "detail"),
        ("Preferred Color", "color"),
        ("Art Style Match", "art_style"),
        ("Detail alignment", "detail"),
        ("Mood", None),
        ("", None),
        (None, None),
        ("Total", None),
        ("Match", None),
        ("Score", None),
    ],
)
def test_normalize_element_key(key, element):
    assert normalize_element_key(key) == element


def test_format_output_validates():
    with pytest.raises(ValueError, match="score_b"):
        format_output(None, [ElementScore("color", 1, 6)], "A")
    with pytest.raises(ValueError, match="element"):
        format_output(None, [ElementScore("mood", 1, 2)], "A")
    with pytest.raises(ValueError, match="answer"):
        format_output(None, [ElementScore("color", 1, 2)], "C")
    with pytest.raises(ValueError, match="tie"):
        format_output(None, [ElementScore("color", 2, 2)], None)
    assert format_output(None, [ElementScore("color", 1, 2)], None).endswith(
        "<answer>Image B</answer>"
    )


# ---------------------------------------------------------------------------------------------
# Properties


def _check_answer_rule(text, parsed):
    """The module docstring's rule: the stated answer wins, else the higher total, else None."""
    if parsed.stated_answer is not None:
        assert parsed.stated_answer in ("A", "B") and parsed.stated_answer.lower() in text.lower()
        expected = parsed.stated_answer
    elif None not in (parsed.total_a, parsed.total_b) and parsed.total_a != parsed.total_b:
        expected = "A" if parsed.total_a > parsed.total_b else "B"
    else:
        expected = None
    assert parsed.answer == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_never_raises_anything_but_parse_error(text):
    try:
        parsed = parse_output(text)
    except ParseError:
        return
    _check_answer_rule(text, parsed)
    for score in parsed.scores:
        assert score.score_a is None or 0 <= score.score_a <= 5
        assert score.score_b is None or 0 <= score.score_b <= 5


_FRAGMENTS = st.sampled_from(
    [
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        "<visual preference profile>",
        "</visual preference profile>",
        "<visual non-preference profile>",
        "Image A(",
        "Image B(",
        ")",
        " - ",
        "; ",
        "1. Artistic style: ",
        "2. Color: ",
        "Total: ",
        "total_score=",
        "=",
        "+",
        "3",
        "5",
        "12",
        "-1",
        "2.5",
        "/5",
        '"Color": "Pink"',
        '{"Art Styles": ["Cubism"]}',
        "\n",
        "Image B is better",
        "Answer: ",
        "A",
        "B",
        "{",
        "}",
        "[",
        '"',
        "Detail:",
        "7/10",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=40).map("".join))
def test_format_fragments_never_raise_anything_but_parse_error(text):
    try:
        parsed = parse_output(text)
    except ParseError:
        return
    _check_answer_rule(text, parsed)


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
# Words the parser reads as "no term" ("None", "N/A", ...) are not vocabulary terms.
_TERM = (
    st.lists(_WORD, min_size=1, max_size=3)
    .map(lambda ws: " ".join(ws).title())
    .filter(lambda t: t and t.lower() not in EMPTY_TERMS)
)
_TERMS = st.lists(_TERM, max_size=3, unique_by=str.lower)
_PROFILE = st.builds(
    Profile, art_style=_TERMS, color=_TERMS, art_medium=_TERMS, saturation=_TERMS, detail=_TERMS
)
_RATIONALE = st.lists(_WORD, max_size=8).map(" ".join)


@st.composite
def _scores(draw):
    elements = list(ELEMENTS)
    return [
        ElementScore(
            e, draw(st.integers(0, 5)), draw(st.integers(0, 5)), draw(_RATIONALE), draw(_RATIONALE)
        )
        for e in elements
    ]


@settings(max_examples=150, deadline=None)
@given(
    liked=_PROFILE,
    disliked=_PROFILE,
    scores=_scores(),
    answer=st.sampled_from(["A", "B", None]),
    with_profile=st.booleans(),
)
def test_round_trip(liked, disliked, scores, answer, with_profile):
    total_a = sum(s.score_a for s in scores)
    total_b = sum(s.score_b for s in scores)
    if answer is None and total_a == total_b:
        answer = "A"
    profile = UserProfile(liked, disliked) if with_profile else None
    text = format_output(profile, scores, answer)
    parsed = parse_output(text, expect_profile=with_profile and not liked.is_empty())
    assert parsed.scores == scores
    assert (parsed.total_a, parsed.total_b) == (total_a, total_b)
    expected = answer or ("A" if total_a > total_b else "B")
    assert parsed.answer == parsed.stated_answer == expected
    consistent = total_a == total_b or (expected == "A") == (total_a > total_b)
    assert parsed.complete == consistent
    if with_profile and not (liked.is_empty() and disliked.is_empty()):
        assert parsed.profile == profile


@pytest.mark.parametrize(
    "text",
    [
        "Image A" + " " * 20000 + "x",
        "Image A" + "_" * 20000,
        "*" * 20000,
        "{" * 20000,
        "\n- " + "*" * 20000,
        "<think>1. Color:" + "<" * 20000,
        "<think>" + "1. Artistic style: Image A(2) - good; " * 500,
    ],
    ids=["spaces", "underscores", "stars", "braces", "bullet-stars", "angles", "repetition"],
)
def test_degenerate_output_parses_fast(text):
    import time

    start = time.perf_counter()
    for parse in (parse_output, parse_profiles, parse_answer):
        try:
            parse(text)
        except ParseError:
            pass
    # Each of these took tens of seconds to minutes before the patterns were made linear.
    assert time.perf_counter() - start < 3.0


def test_parser_modules_import_one_way():
    """tags <- profile <- profile_parser <- parser: no module-level import runs back up, and the
    parser uses no private name of the profile reader."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "preferthinker"
    order = ["tags", "profile", "profile_parser", "parser"]
    for rank, name in enumerate(order):
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        for node in tree.body:  # module level only; a call-time import is one-way by design
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("preferthinker.")
            ):
                imported = node.module.split(".", 1)[1]
                if imported in order:
                    assert order.index(imported) < rank, f"{name} imports {imported}"
                    assert not any(a.name.startswith("_") for a in node.names), (name, imported)


# ---------------------------------------------------------------------------------------------
# What real 7B models write (issue 16, section 2): each case read correctly or undecided, never
# a wrong winner. docs/assessor-format.md lists which forms are read.

CHINESE_THINK = """<think>
1. 艺术风格：Image A(2) - 浪漫主义风景；Image B(5) - 像素艺术
2. 颜色：Image A(1) - 炭灰色；Image B(5) - 粉色和丛林绿
3. 艺术媒介：Image A(2) - 油画；Image B(4) - 数字绘画
4. 饱和度：Image A(3) - 偏柔和；Image B(4) - 强烈
5. 细节：Image A(3) - 平滑；Image B(4) - 精细
Total: Image A: total_score=2+1+2+3+3=11  Image B: total_score=5+5+4+4+4=22
</think>"""


def _undecided(text: str) -> bool:
    try:
        return parse_output(text).answer is None
    except ParseError:
        return True


NEGATED_PROSE = [
    ("not prefer A, B preferred", "The user would not prefer Image A. Image B is preferred.", "B"),
    ("A does not fit", "Image A does not fit the profile at all.", None),
    (
        "in the answer block",
        "<answer>The user would not prefer Image A. Image B is preferred.</answer>",
        "B",
    ),
    (
        "A does not fit, in the block",
        "<answer>Image A does not fit the profile at all.</answer>",
        None,
    ),
    ("never choose A", "I would never choose Image A for this user.", None),
    ("rather than A", "Rather than Image A, the user would pick Image B.", "B"),
    ("A isn't the winner", "Image A isn't the winner here.", None),
    ("no, B", "No, Image A is not better; the user prefers Image B.", "B"),
    ("reject A, in the block", "<answer>I would reject Image A.</answer>", None),
    ("answer A is not preferred", "Final answer: Image A is not preferred; Image B.", None),
    ("choice A isn't right", "<answer>My choice: Image A isn't the one, Image B is</answer>", None),
    ("A, not B", "Answer: Image A, not Image B", "A"),
    ("A has disliked colours", "<answer>Image A shows the disliked colours</answer>", None),
    ("A is worse", "<answer>Image A is worse for this user</answer>", None),
    ("A lacks the style", "<answer>Image A lacks the pixel-art style</answer>", None),
]


@pytest.mark.parametrize("name,text,expected", NEGATED_PROSE, ids=[c[0] for c in NEGATED_PROSE])
def test_negated_prose_is_never_a_wrong_winner(name, text, expected):
    if expected is None:
        assert _undecided(text), name
    else:
        assert parse_output(text).answer == expected, name


# Each of these was read as the losing image (review R1): the reading may be undecided, never the
# other image.
AGAINST_PROSE = [
    ("retracted with No", "Image B is better? No, Image A is better.", "A"),
    ("actually no", "Image B is better than Image A? Actually no, Image A is better.", "A"),
    ("answer A is worse", "Answer: Image A is worse than Image B", "B"),
    ("A loses", "<answer>Image A loses</answer>", "B"),
    ("A has lower scores", "<answer>Image A has lower scores</answer>", "B"),
    ("A's score is lower", "<answer>Image A\u2019s score is lower</answer>", "B"),
    ("A is the loser", "<answer>Image A is the loser.</answer>", "B"),
    ("unlikely to prefer A", "It is unlikely the user prefers Image A.", "B"),
    ("A aligned with disliked", "Image A is more aligned with the disliked profile.", "B"),
    ("A non-preference", "<answer>Image A matches the non-preference profile</answer>", "B"),
    ("A by disliked", "<answer>Image A is preferred by the disliked profile</answer>", "B"),
    ("A? No.", "<answer>Image A? No.</answer>", "B"),
    ("format line echoed", "`<answer>Image A</answer>` or `<answer>Image B</answer>`", None),
    ("dispreferred", "Dispreferred: Image A", "B"),
    ("A is too dark", "<answer>Image A is too dark</answer>", "B"),
    ("A is ruled out", "<answer>Image A is ruled out</answer>", "B"),
    ("A is the least preferred", "<answer>Image A is the least preferred</answer>", "B"),
    ("least preferred is A", "The least preferred is Image A.", "B"),
    ("a question answered No", "The user prefers Image A? No, Image A is a poorer match.", "B"),
    ("A preferred? No", "<answer>Image A is preferred? No</answer>", "B"),
    ("conditional", "Answer: Image A would be preferred if the user liked grey.", "B"),
    ("what the user hates", "Image A is better at showing what the user hates.", "B"),
    ("the other profile", "<answer>Image A is preferred by the other profile</answer>", "B"),
    ("better... not", "Answer: Image A is better... not.", "B"),
]


@pytest.mark.parametrize(
    "text",
    [
        "<answer>Image B because it is pink</answer>",
        "<answer>Image B - it matches the pixel-art style</answer>",
        "<answer>The preferred image is Image B</answer>",
        "<answer>Image B (pixel art)</answer>",
    ],
)
def test_a_block_that_names_b_and_says_why_is_b(text):
    assert read_answer(text) == "B"


@pytest.mark.parametrize("name,text,truth", AGAINST_PROSE, ids=[c[0] for c in AGAINST_PROSE])
def test_prose_against_an_image_is_never_read_as_that_image(name, text, truth):
    try:
        parsed = parse_output(text, expect_profile=False).answer
    except ParseError:
        parsed = None
    for reading in (parsed, read_answer(text), parse_answer(text), parse_answer(text, False)):
        assert reading in (None, truth), name


@settings(max_examples=200, deadline=None)
@given(
    letter=st.sampled_from("AB"),
    negation=st.sampled_from(
        [
            "would not prefer",
            "does not prefer",
            "wouldn't choose",
            "would never pick",
            "is not going to select",
        ]
    ),
    subject=st.sampled_from(["The user", "This user", "They", "The person"]),
    tail=st.sampled_from(["", " at all", " for this profile"]),
    tagged=st.booleans(),
)
def test_a_negated_choice_is_never_read_as_that_choice(letter, negation, subject, tail, tagged):
    text = f"{subject} {negation} Image {letter}{tail}."
    if tagged:
        text = f"<answer>{text}</answer>"
    try:
        answer = parse_output(text).answer
    except ParseError:
        return
    assert answer != letter, text


def test_curly_quotes_entities_and_full_width_punctuation_are_read():
    curly = EXAMPLE_B.replace('"', "“").replace("“,", "”,").replace("“\n", "”\n")
    full_width = (
        EXAMPLE_B.replace('": "', "”：“")
        .replace('", "', "”，“")
        .replace("Image B(5)", "Image B（5）")
    )
    entities = (
        EXAMPLE_B.replace('"', "&quot;")
        .replace("<answer>", "&lt;answer&gt;")
        .replace("</answer>", "&lt;/answer&gt;")
    )
    for text in (curly, full_width, entities):
        parsed = parse_output(text)
        assert parsed.profile == FULL_PROFILE
        assert [(s.element, s.score_a, s.score_b) for s in parsed.scores] == FULL_SCORES
        assert parsed.answer == "B" and parsed.complete, parsed.issues


def test_a_profile_with_an_unread_key_is_never_complete():
    # A key the reader cannot recognise is a dropped field: the output is not complete.
    dropped = EXAMPLE_B.replace('"Saturation": "Intense"', '"Satur@tion": "Intense"', 1)
    parsed = parse_output(dropped)
    assert parsed.profile.liked.saturation == ()
    assert not parsed.complete
    assert any("Saturation" in issue for issue in parsed.issues)


@pytest.mark.parametrize(
    "lead",
    [
        "<think></think>\n",
        "<think>\n\n</think>",
        "<think>Let me look at the references. Image A is dark, Image B is bright.</think>\n",
    ],
)
def test_a_leading_think_block_keeps_scores_and_totals(lead):
    inner = THINK_B[len("<think>") : -len("</think>")]
    for body in (THINK_B, inner):  # the scores in a second <think>, or in no tag at all
        parsed = parse_output(lead + PROFILES + "\n" + body + "\n<answer>Image B</answer>")
        assert [(s.element, s.score_a, s.score_b) for s in parsed.scores] == FULL_SCORES
        assert (parsed.total_a, parsed.total_b, parsed.answer) == (11, 22, "B")
        assert parsed.profile == FULL_PROFILE


@pytest.mark.parametrize("cut", ["</visual preference prof", "</visual pref", "</visual"])
def test_a_truncated_closing_tag_is_never_a_term(cut):
    text = EXAMPLE_B.replace("</visual preference profile>", cut)
    parsed = parse_output(text)
    assert parsed.profile.liked == FULL_PROFILE.liked
    assert not any(
        "<" in term or "visual" in term.lower() for term in parsed.profile.liked.all_terms()
    )
    assert parse_profiles(text).liked == FULL_PROFILE.liked


def test_chinese_element_headers_with_english_totals():
    parsed = parse_output(CHINESE_THINK + "<answer>Image B</answer>", expect_profile=False)
    assert [(s.element, s.score_a, s.score_b) for s in parsed.scores] == FULL_SCORES
    assert (parsed.total_a, parsed.total_b, parsed.answer) == (11, 22, "B")
    assert parsed.scores[0].rationale_a == "浪漫主义风景"
    assert parse_output(CHINESE_THINK, expect_profile=False).answer == "B"  # from the totals


# (name, text, expected): None = undecided is the documented reading.
OTHER_ANSWER_FORMS = [
    ("Image 2 in the block", "<answer>Image 2</answer>", None),
    ("Image 1 sentence", "Image 1 is better.", None),
    ("second image", "The second image is better.", None),
    ("first image in the block", "<answer>the first image</answer>", None),
    ("boxed", "<answer>\\boxed{B}</answer>", "B"),
    (
        "boxed after reasoning",
        THINK_B.replace("22 </think>", "11 </think>") + "\n$\\boxed{A}$",
        "A",
    ),
    ("boxed text", "\\boxed{\\text{Image B}}", "B"),
    ("JSON winner", '{"winner": "B"}', "B"),
    ("JSON answer", '{"answer": "A"}', "A"),
    ("JSON answer Image", '```json\n{"answer": "Image B", "reason": "pixel art"}\n```', "B"),
    ("JSON in the block", '<answer>{"winner": "Image A"}</answer>', "A"),
]


@pytest.mark.parametrize(
    "name,text,expected", OTHER_ANSWER_FORMS, ids=[c[0] for c in OTHER_ANSWER_FORMS]
)
def test_other_answer_forms_are_read_or_undecided(name, text, expected):
    if expected is None:
        assert _undecided(text), name
    else:
        assert parse_output(text).answer == expected, name


def test_image_numbers_leave_the_totals_to_decide():
    # "Image 2" is not read as B (with vision ids every image is numbered, references too).
    parsed = parse_output(THINK_B + "<answer>Image 1</answer>", expect_profile=False)
    assert parsed.stated_answer is None and parsed.answer == "B"


def test_read_answer_is_the_last_block_for_both_protocols():

    text = "<answer>Image A</answer> on reflection <answer>Image B</answer>"
    assert (
        read_answer(text) == read_answer(text, "authors") == parse_output(text).stated_answer == "B"
    )
    assert (
        read_answer("<answer> Image B </answer>", "authors"),
        read_answer("<answer>B</answer>", "authors"),
        read_answer("<answer>image b</answer>", "authors"),
        read_answer("Image B", "authors"),
    ) == ("B", None, None, None)
    assert (
        read_answer("<answer>Image A</answer><answer>Image B", "authors") == "A"
    )  # closed blocks only
    assert read_answer("<answer>Image A</answer><answer>Image B") == "B"
    with pytest.raises(ValueError, match="protocol"):
        read_answer("x", "paper")


def test_rationale_keeps_balanced_brackets():
    text = format_output(
        None,
        [ElementScore("color", 2, 4, "dominant hue 282 deg (Purple)", "a [muted] pink (Rose)")],
        "B",
    )
    score = parse_output(text, expect_profile=False).scores[0]
    assert score.rationale_a == "dominant hue 282 deg (Purple)"
    assert score.rationale_b == "a [muted] pink (Rose)"
    # A bracket the rationale did not open is still dropped.
    parsed = parse_output(
        "<think>1. Color: (Image A(2) - grey); Image B(4) - pink)</think>", expect_profile=False
    )
    assert parsed.scores[0].rationale_b == "pink"
