"""CoT targets: consistent with the ground truth, varied in wording, checked by the filter, and
LLM rewrites accepted only when they keep the profile, scores and answer."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from preferthinker.engines.scripted import ScriptedEngine
from preferthinker.parser import parse_output
from preferthinker.profile import ELEMENTS, Profile, UserProfile
from training.cot import build_cot, check_cot, ground_truth_margin, rewrite_cot

USER = UserProfile(
    liked=Profile(art_style="Pixel Art", color=("Pink", "Teal"), art_medium="Digital Painting",
                  saturation="Pastel", detail="Fine"),
    disliked=Profile(art_style="Romanticism", color="Charcoal Gray", art_medium="Silkscreen",
                     saturation="Intense", detail="Smooth"),
)
LIKED = {"art_style": "Pixel Art", "color": "Teal", "art_medium": "Digital Painting", "saturation": "Pastel",
         "detail": "Fine"}
DISLIKED = {"art_style": "Romanticism", "color": "Charcoal Gray", "art_medium": "Silkscreen",
            "saturation": "Intense", "detail": "Smooth"}


def test_scores_follow_the_ground_truth_and_parse_back():
    cot = build_cot(USER, LIKED, DISLIKED, "A", seed=0)
    parsed = parse_output(cot.text)
    assert parsed.complete and parsed.answer == "A" and parsed.stated_answer == "A"
    assert parsed.profile.liked.color == ("Pink", "Teal")
    for score in parsed.scores:
        assert score.score_a >= 4 and score.score_b <= 1  # liked terms vs disliked terms
    assert parsed.total_a > parsed.total_b
    assert check_cot(cot.text, USER, "A", cot.scores) is None


# Which elements of the non-preferred candidate carry a disliked term (the rest stay liked).
flips = st.lists(st.sampled_from(ELEMENTS), min_size=1, max_size=5, unique=True)


@settings(max_examples=40, deadline=None)
@given(flipped=flips, answer=st.sampled_from("AB"), seed=st.integers(0, 10_000))
@example(flipped=["art_style"], answer="A", seed=969)  # drew 5+4+4+4+4 against 1+5+5+5+5, no neutral to move
def test_totals_always_agree_with_the_answer(flipped, answer, seed):
    bad = dict(LIKED) | {e: DISLIKED[e] for e in flipped}
    a, b = (LIKED, bad) if answer == "A" else (bad, LIKED)
    cot = build_cot(USER, a, b, answer, seed=seed)
    assert cot.margin == 2 * len(flipped)
    assert check_cot(cot.text, USER, answer, cot.scores) is None


def test_wording_varies_with_the_seed_but_not_the_scores_direction():
    texts = {build_cot(USER, LIKED, DISLIKED, "A", seed=s).text for s in range(12)}
    assert len(texts) >= 10
    first_lines = {t.split("<think>")[1].splitlines()[1].split(" - ", 1)[1] for t in texts}
    assert len(first_lines) >= 4  # several phrasings of the same element line
    assert build_cot(USER, LIKED, DISLIKED, "A", seed=3).text == build_cot(USER, LIKED, DISLIKED, "A", seed=3).text


def test_neutral_ties_are_broken_towards_the_answer():
    neutral = {"art_style": "Oceanic Art"}
    cot = build_cot(USER, neutral, neutral, "B", seed=5)
    parsed = parse_output(cot.text)
    assert parsed.total_b > parsed.total_a and cot.margin == 0


def test_margin_detects_a_profile_that_contradicts_the_answer():
    assert ground_truth_margin(USER, DISLIKED, LIKED) < 0
    cot = build_cot(USER, DISLIKED, LIKED, "A", seed=0)  # answer A although A has the disliked terms
    assert check_cot(cot.text, USER, "A") == "totals_contradict_answer"


def test_check_cot_reasons():
    good = build_cot(USER, LIKED, DISLIKED, "A", seed=0)
    assert check_cot("no format at all", USER, "A") == "unparseable"
    assert check_cot("Answer: Image A", USER, "A") == "incomplete"  # an answer, nothing else
    assert check_cot(good.text.replace("<answer>Image A</answer>", "<answer>Image B</answer>"), USER, "B") \
        == "totals_contradict_answer"
    other_user = UserProfile(liked=Profile(color="Red"), disliked=USER.disliked)
    assert check_cot(good.text, other_user, "A") == "profile_mismatch"
    truncated = good.text.split("Total:")[0]
    assert check_cot(truncated, USER, "A") is not None


def test_rewrite_accepted_when_it_keeps_everything():
    target = build_cot(USER, LIKED, DISLIKED, "A", seed=0)
    reworded = target.text.replace("which the user prefers", "a favourite of this user")
    reworded = reworded.replace("in line with what this user likes", "just what this viewer enjoys")
    engine = ScriptedEngine([reworded])
    text, rejected = rewrite_cot(target, USER, engine)
    assert rejected is None and text == reworded.strip()
    assert "Rewrite the reasoning" in engine.calls[0][0]["content"][0]["text"]


def test_rewrite_rejected_when_scores_or_answer_change():
    target = build_cot(USER, LIKED, DISLIKED, "A", seed=0)
    changed_scores = target.text.replace("Image B(0)", "Image B(1)").replace("Image B(1)", "Image B(2)", 1)
    for bad, reason in [("Sure! Here it is.", "rewrite_unparseable"),
                        (changed_scores, None)]:
        text, rejected = rewrite_cot(target, USER, ScriptedEngine([bad]))
        assert text == target.text
        assert rejected is not None and (reason is None or rejected == reason)


def test_rewrite_endpoint_failure_keeps_template():
    class Broken(ScriptedEngine):
        def generate(self, conversations, config=None):
            raise ConnectionError("endpoint down")

    target = build_cot(USER, LIKED, DISLIKED, "A", seed=0)
    text, rejected = rewrite_cot(target, USER, Broken())
    assert text == target.text and rejected.startswith("rewrite_failed")
