"""Assessor logic with a scripted engine: retries, undecided results, debiasing, prompt choice.

The scripted engine stands in for a model here (tier 1); the real engines are tested with the
tiny model in test_transformers_engine.py / test_openai_engine.py and end to end in test_cli.py.
"""

from __future__ import annotations

import pytest
from PIL import Image

from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.engines import count_images
from preferthinker.engines.scripted import ScriptedEngine
from preferthinker.errors import InputError
from preferthinker.profile import Profile, UserProfile

PROFILE_TEXT = (
    "<visual preference profile>\n"
    '"Art Styles": "Pixel Art", "Color": "Pink", "Artistic Medium": "Digital Painting", '
    '"Saturation": "Pastel", "Detail": "Fine"\n'
    "</visual preference profile>\n"
    "<visual non-preference profile>\n"
    '"Art Styles": "Romanticism", "Color": "Charcoal Gray", "Artistic Medium": "Silkscreen", '
    '"Saturation": "Muted", "Detail": "Smooth"\n'
    "</visual non-preference profile>\n"
)


def assessment(score_a: int, score_b: int, answer: str) -> str:
    lines = [
        f"1. Artistic style: Image A({score_a}) - a; Image B({score_b}) - b",
        f"2. Color: Image A({score_a}) - a; Image B({score_b}) - b",
        f"3. Artistic medium: Image A({score_a}) - a; Image B({score_b}) - b",
        f"4. Saturation: Image A({score_a}) - a; Image B({score_b}) - b",
        f"5. Detail: Image A({score_a}) - a; Image B({score_b}) - b",
        f"Total: Image A: total_score={'+'.join([str(score_a)] * 5)}={5 * score_a}  "
        f"Image B: total_score={'+'.join([str(score_b)] * 5)}={5 * score_b}",
    ]
    return "<think>\n" + "\n".join(lines) + f"\n</think>\n<answer>Image {answer}</answer>"


PINK = UserProfile(liked=Profile(color=["Pink"]))


@pytest.fixture
def images():
    return [Image.new("RGB", (32, 32), color) for color in ("red", "green", "blue", "white")]


def make(responses, **config) -> tuple[Assessor, ScriptedEngine]:
    engine = ScriptedEngine(responses)
    return Assessor(engine, AssessorConfig(assessor="scripted", **config)), engine


def test_predict_profile_ok(images):
    assessor, engine = make([PROFILE_TEXT])
    prediction = assessor.predict_profile(images[:2], images[2:])
    assert prediction.status == "ok"
    assert prediction.profile.liked.color == ("Pink",)
    assert prediction.profile.disliked.art_style == ("Romanticism",)
    assert count_images(engine.calls[0]) == 4


def test_predict_profile_retries_then_fails(images):
    assessor, engine = make(["I cannot tell.", "still nothing"], max_retries=1)
    prediction = assessor.predict_profile(images[:1])
    assert prediction.status == "failed"
    assert prediction.attempts == 2
    assert prediction.profile.liked.is_empty()
    assert len(engine.calls) == 2


def test_predict_profile_recovers_on_retry(images):
    assessor, _ = make(["garbage", PROFILE_TEXT], max_retries=1)
    prediction = assessor.predict_profile(images[:1])
    assert prediction.status == "ok"
    assert prediction.attempts == 2
    assert prediction.usage.calls == 2


def test_predict_profile_partial(images):
    text = PROFILE_TEXT.replace('"Detail": "Fine"', '"Detail": ""')
    assessor, _ = make([text])
    prediction = assessor.predict_profile(images[:1])
    assert prediction.status == "partial"
    assert any("detail" in issue for issue in prediction.issues)


def test_compare_with_known_profile_sends_two_images(images):
    assessor, engine = make([assessment(1, 4, "B")])
    profile = UserProfile(liked=Profile(color=["Pink"]))
    comparison = assessor.compare(images[0], images[1], profile=profile)
    assert comparison.winner == "B"
    assert count_images(engine.calls[0]) == 2
    assert comparison.profile == profile


def test_compare_full_mode_sends_references(images):
    assessor, engine = make([PROFILE_TEXT + assessment(5, 2, "A")])
    comparison = assessor.compare(images[0], images[1], liked=images[2:], disliked=images[:1])
    assert comparison.winner == "A"
    assert count_images(engine.calls[0]) == 2 + 2 + 1
    assert comparison.profile is not None and comparison.profile.liked.color == ("Pink",)


def test_compare_needs_profile_or_refs(images):
    assessor, _ = make([assessment(1, 2, "B")])
    with pytest.raises(InputError, match="profile or liked"):
        assessor.compare(images[0], images[1])


def test_compare_undecided_after_retries(images):
    assessor, engine = make(["no idea"], max_retries=2)
    comparison = assessor.compare(images[0], images[1], profile=PINK)
    assert comparison.undecided
    assert len(engine.calls) == 3
    assert comparison.usage.calls == 3


def test_debias_agreeing_orders(images):
    # Order AB says A; order BA (A shown second) says B: both mean the caller's A.
    assessor, engine = make([assessment(5, 1, "A"), assessment(1, 5, "B")], debias=True)
    comparison = assessor.compare(images[0], images[1], profile=PINK)
    assert comparison.winner == "A"
    assert comparison.swap_agrees is True
    assert len(engine.calls) == 2
    # The swapped judgement was mapped back: A's scores are A's in both entries.
    assert comparison.parsed[1].total_a == 25 and comparison.parsed[1].total_b == 5


def test_debias_position_bias_is_reported(images):
    # Both orders pick the first image shown: pure position bias, equal totals -> undecided.
    assessor, _ = make([assessment(4, 2, "A"), assessment(4, 2, "A")], debias=True)
    comparison = assessor.compare(images[0], images[1], profile=PINK)
    assert comparison.swap_agrees is False
    assert comparison.winner is None
    assert any("position bias" in issue for issue in comparison.issues)


def test_debias_disagreement_decided_by_totals(images):
    assessor, _ = make([assessment(5, 1, "A"), assessment(3, 2, "A")], debias=True)
    comparison = assessor.compare(images[0], images[1], profile=PINK)
    # AB: A=25, B=5. BA mapped back: A=10, B=15. Sums: A 35 > B 20.
    assert comparison.swap_agrees is False
    assert comparison.winner == "A"


def test_compare_many_keeps_order_and_reports_progress(images):
    def respond(conversation):
        # Answer "A" when the first candidate shown is red.
        first = [
            p["image"] for m in conversation for p in m["content"] if p.get("type") == "image"
        ][0]
        return (
            assessment(4, 1, "A")
            if first.getpixel((0, 0)) == (255, 0, 0)
            else assessment(1, 4, "B")
        )

    assessor, _ = make(respond)
    seen = []
    pairs = [(images[0], images[1]), (images[1], images[0]), (images[2], images[3])]
    results = assessor.compare_many(pairs, profile=PINK, progress=lambda d, t: seen.append((d, t)))
    assert [r.winner for r in results] == ["A", "B", "B"]
    assert seen[-1] == (3, 3)


def test_bad_pair_is_input_error(images):
    assessor, _ = make([assessment(1, 2, "B")])
    with pytest.raises(InputError, match="pair 0"):
        assessor.compare_many([(images[0],)], profile=PINK)  # type: ignore[list-item]


def test_config_validation_names_field():
    with pytest.raises(ValueError, match="max_retries"):
        AssessorConfig(max_retries=-1)
    with pytest.raises(ValueError, match="temperature"):
        AssessorConfig(temperature=-0.5)


def test_remote_code_only_when_asked():
    assert AssessorConfig(assessor="/models/x").engine_options()["trust_remote_code"] is False
    assert (
        AssessorConfig(assessor="/models/x", trust_remote_code=True).engine_options()[
            "trust_remote_code"
        ]
        is True
    )
    # HTTP engines run no model code here: the option does not reach them.
    assert (
        "trust_remote_code"
        not in AssessorConfig(assessor="http://127.0.0.1:8000/v1").engine_options()
    )
