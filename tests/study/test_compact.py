"""The compact CoT: it round-trips through the project's parser, complete, for any profile and
scores."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preferthinker.parser import parse_output
from preferthinker.profile import ELEMENTS, Profile, UserProfile
from preferthinker.results import ElementScore
from synthpref.renderer import SUPPORTED_TERMS
from training.study.compact import compact_from_text, read_compact, write_compact

score = st.integers(min_value=0, max_value=5)


@st.composite
def profiles(draw):
    def side():
        return Profile(
            **{
                e: tuple(
                    draw(
                        st.lists(
                            st.sampled_from(SUPPORTED_TERMS[e]), min_size=1, max_size=3, unique=True
                        )
                    )
                )
                for e in ELEMENTS
            }
        )

    return UserProfile(liked=side(), disliked=side())


@settings(max_examples=60, deadline=None)
@given(profile=profiles(), values=st.lists(st.tuples(score, score), min_size=5, max_size=5))
def test_round_trip_is_complete_and_exact(profile, values):
    scores = [ElementScore(e, a, b) for e, (a, b) in zip(ELEMENTS, values)]
    total_a, total_b = sum(a for a, _ in values), sum(b for _, b in values)
    answer = "A" if total_a > total_b else "B"
    parsed = read_compact(write_compact(profile, scores, answer))
    assert [(s.element, s.score_a, s.score_b) for s in parsed.scores] == [
        (e, a, b) for e, (a, b) in zip(ELEMENTS, values)
    ]
    assert (parsed.total_a, parsed.total_b) == (total_a, total_b)
    assert parsed.stated_answer == answer
    for element in ELEMENTS:
        assert set(parsed.profile.liked.terms(element)) == set(profile.liked.terms(element))
        assert set(parsed.profile.disliked.terms(element)) == set(profile.disliked.terms(element))
    # the answer never contradicts the totals here (ties are not a contradiction)
    assert parsed.complete and not parsed.issues


@settings(max_examples=60, deadline=None)
@given(
    profile=profiles(),
    values=st.lists(st.tuples(score, score), min_size=5, max_size=5),
    data=st.data(),
)
def test_described_round_trip_keeps_scores_and_names_the_terms(profile, values, data):
    # Every renderer term, digits and hyphens included ("3D Modeling", "Mid-tone"), must leave the
    # scores and the answer as written.
    def candidate():
        return {e: data.draw(st.sampled_from(SUPPORTED_TERMS[e])) for e in ELEMENTS}

    attrs_a, attrs_b = candidate(), candidate()
    scores = [ElementScore(e, a, b) for e, (a, b) in zip(ELEMENTS, values)]
    answer = "A" if sum(a for a, _ in values) > sum(b for _, b in values) else "B"
    text = write_compact(profile, scores, answer, (attrs_a, attrs_b))
    parsed = read_compact(text)
    assert [(s.score_a, s.score_b) for s in parsed.scores] == list(values)
    assert parsed.complete and not parsed.issues and parsed.stated_answer == answer
    lines = text.split("<think>")[1].splitlines()[1:6]
    for line, element in zip(lines, ELEMENTS):
        liked, disliked = (
            ", ".join(side.terms(element)) for side in (profile.liked, profile.disliked)
        )
        assert f": {liked} / {disliked}; {attrs_a[element]} vs {attrs_b[element]}; Image A(" in line


@settings(max_examples=60, deadline=None)
@given(
    profile=profiles(),
    values=st.lists(st.tuples(score, score), min_size=5, max_size=5),
    data=st.data(),
)
def test_inline_round_trip_puts_each_term_before_its_score(profile, values, data):
    def candidate():
        return {e: data.draw(st.sampled_from(SUPPORTED_TERMS[e])) for e in ELEMENTS}

    attrs_a, attrs_b = candidate(), candidate()
    scores = [ElementScore(e, a, b) for e, (a, b) in zip(ELEMENTS, values)]
    answer = "A" if sum(a for a, _ in values) > sum(b for _, b in values) else "B"
    text = write_compact(profile, scores, answer, (attrs_a, attrs_b), inline=True)
    parsed = read_compact(text)
    assert [(s.score_a, s.score_b) for s in parsed.scores] == list(values)
    assert parsed.complete and not parsed.issues and parsed.stated_answer == answer
    lines = text.split("<think>")[1].splitlines()[1:6]
    for line, element, (a, b) in zip(lines, ELEMENTS, values):
        liked, disliked = (
            ", ".join(side.terms(element)) for side in (profile.liked, profile.disliked)
        )
        assert line.endswith(
            f": {liked} / {disliked}; {attrs_a[element]}: Image A({a}); "
            f"{attrs_b[element]}: Image B({b})"
        )


@settings(max_examples=30, deadline=None)
@given(profile=profiles(), values=st.lists(st.tuples(score, score), min_size=5, max_size=5))
def test_restated_profile_round_trip_keeps_scores(profile, values):
    scores = [ElementScore(e, a, b) for e, (a, b) in zip(ELEMENTS, values)]
    answer = "A" if sum(a for a, _ in values) > sum(b for _, b in values) else "B"
    text = write_compact(profile, scores, answer, restate=True)
    parsed = read_compact(text)
    assert [(s.score_a, s.score_b) for s in parsed.scores] == list(values)
    assert parsed.complete and not parsed.issues and parsed.stated_answer == answer
    for line, element, (a, b) in zip(text.split("<think>")[1].splitlines()[1:6], ELEMENTS, values):
        liked, disliked = (
            ", ".join(side.terms(element)) for side in (profile.liked, profile.disliked)
        )
        assert line.endswith(f": {liked} / {disliked}; Image A({a}); Image B({b})")


def test_described_candidate_without_a_term_is_refused():
    scores = [ElementScore(e, 1, 4) for e in ELEMENTS]
    full = {e: SUPPORTED_TERMS[e][0] for e in ELEMENTS}
    with pytest.raises(ValueError, match="described candidates need a term for detail"):
        write_compact(None, scores, "B", (full, {**full, "detail": ""}))


def test_totals_are_sums_not_arithmetic():
    scores = [ElementScore(e, 1, 4) for e in ELEMENTS]
    text = write_compact(None, scores, "B")
    assert "Total: Image A: 1+1+1+1+1  Image B: 4+4+4+4+4" in text
    assert "=" not in text
    parsed = parse_output(text, expect_profile=False)
    assert parsed.complete and (parsed.total_a, parsed.total_b) == (5, 20)


def test_wrong_answer_is_incomplete():
    scores = [ElementScore(e, 1, 4) for e in ELEMENTS]
    parsed = read_compact(write_compact(UserProfile(liked=Profile(color=("Teal",))), scores, "A"))
    assert not parsed.complete and parsed.stated_answer == "A"


def test_compact_from_canonical_cot_keeps_the_decision():
    from training.cot import build_cot

    profile = UserProfile(
        liked=Profile(color=("Teal",), saturation=("Muted",)),
        disliked=Profile(color=("Scarlet",), saturation=("Intense",)),
    )
    cot = build_cot(
        profile,
        {"color": "Scarlet", "saturation": "Intense"},
        {"color": "Teal", "saturation": "Muted"},
        "B",
    )
    compact = compact_from_text(cot.text)
    assert len(compact) < len(cot.text)
    original, short = parse_output(cot.text), parse_output(compact)
    assert short.complete and short.answer == original.answer == "B"
    assert [(s.score_a, s.score_b) for s in short.scores] == [
        (s.score_a, s.score_b) for s in original.scores
    ]


@pytest.mark.parametrize("bad", [{"answer": "C"}, {"score": 6}, {"element": "mood"}])
def test_invalid_input_is_refused(bad):
    scores = [ElementScore(bad.get("element", e), bad.get("score", 2), 3) for e in ELEMENTS]
    with pytest.raises(ValueError):
        write_compact(None, scores, bad.get("answer", "B"))
