"""The GRPO rewards on hand-made completions: right beats wrong, malformed scores 0, closer
profiles score more with the real SBERT model, failing generators give 0 without a crash, and
the render cache keeps each profile from being rendered twice."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from preferthinker.profile import ELEMENTS, Profile, UserProfile
from training.cot import build_cot
from training.image_similarity import (
    FallbackImageSimilarity,
    ImageCache,
    create_image_similarity,
    fallback_image_similarity,
    render_key,
)
from training.rewards import (
    PredictionReward,
    RewardConfig,
    accuracy_reward,
    completion_text,
    create_reward_funcs,
    format_reward,
    prediction_reward,
)

from .conftest import USERS

TRUE = USERS[0]  # the first hand-made user
TRUE_JSON = json.dumps(TRUE.to_dict())
# One element off (the colour), everything else right.
CLOSE = UserProfile(
    liked=Profile(
        art_style="Pixel Art",
        color="Teal",
        art_medium="Digital Painting",
        saturation="Pastel",
        detail="Fine",
    ),
    disliked=TRUE.disliked,
)
# A different user altogether.
FAR = UserProfile(
    liked=Profile(
        art_style="Oceanic Art",
        color="Jungle Green",
        art_medium="Coiling",
        saturation="Muted",
        detail="Realistic",
    ),
    disliked=Profile(
        art_style="Pixel Art",
        color="Pink",
        art_medium="3D Modeling",
        saturation="Intense",
        detail="Selective",
    ),
)


def attributes(profile: Profile) -> dict[str, str]:
    return {e: profile.terms(e)[0] for e in ELEMENTS}


def cot_for(profile: UserProfile, answer: str = "A", seed: int = 0) -> str:
    good, bad = attributes(TRUE.liked), attributes(TRUE.disliked)
    attrs = (good, bad) if answer == "A" else (bad, good)
    return build_cot(profile, attrs[0], attrs[1], answer, seed=seed).text


def conversational(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_accuracy_right_beats_wrong_in_both_completion_forms():
    right, wrong = cot_for(TRUE, "A"), cot_for(TRUE, "B")
    assert accuracy_reward([right, wrong], answer=["A", "A"]) == [1.0, 0.0]
    assert accuracy_reward(
        [conversational(right), conversational(wrong)], answer=["Image A", "A"]
    ) == [1.0, 0.0]


def test_accuracy_bad_answer_column_scores_zero_without_raising():
    assert accuracy_reward([cot_for(TRUE)], answer=["C"]) == [0.0]


def test_format_reward_complete_vs_malformed():
    good = cot_for(TRUE)
    truncated = good[: len(good) // 2]
    scores = format_reward([good, conversational(good), "Image A is nicer.", "", truncated, None])
    assert scores[:2] == [1.0, 1.0]
    assert scores[2:] == [0.0, 0.0, 0.0, 0.0]


def test_format_reward_needs_a_well_formed_answer_tag():
    """A complete CoT whose answer is a sentence, a bare letter or an unclosed tag earns no
    format credit (a sentence used to get full credit)."""
    good = cot_for(TRUE)
    assert good.rstrip().endswith("<answer>Image A</answer>")
    body = good[: good.rindex("<answer>")]
    variants = [
        body + "Answer: Image A",  # sentence, no tag
        body + "<answer>A</answer>",  # tag, but not the authors' form
        body + "<answer>Image A",  # unclosed
        body + "<answer>**Image A**</answer>",
    ]
    assert format_reward([good] + variants) == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_accuracy_reads_the_last_answer_block_like_the_parser():
    from preferthinker.parser import parse_output, read_answer

    text = cot_for(TRUE, "A") + " Correction: <answer>Image B</answer>"
    assert accuracy_reward([text], answer=["B"]) == [1.0]
    assert parse_output(text).stated_answer == read_answer(text) == "B"


def test_completion_text_reads_content_parts():
    message = [
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "<answer>"}, {"type": "text", "text": "x"}],
        }
    ]
    assert completion_text(message) == "<answer>x"


def test_prediction_text_term_closer_profile_scores_more(sbert):
    reward = PredictionReward(RewardConfig(), similarity=sbert)
    texts = [cot_for(TRUE), cot_for(CLOSE), cot_for(FAR), "no profile here"]
    scores = reward(texts, profile=[TRUE_JSON] * 4)
    assert scores[0] == pytest.approx(1.0, abs=1e-4)
    assert scores[0] > scores[1] > scores[2] > 0.0
    assert scores[3] == 0.0


def test_module_level_prediction_reward_accepts_dict_profiles():
    scores = prediction_reward(
        [cot_for(TRUE), cot_for(FAR)], profile=[TRUE.to_dict(), TRUE.to_dict()]
    )
    assert scores[0] > scores[1]


class CountingGenerator:
    """Renders a flat image whose colour is derived from the prompt text; counts calls."""

    name = "counting"

    def __init__(self):
        self.calls = 0

    def generate(self, prompt, negative_prompt="", seeds=(0,)):
        self.calls += 1
        value = sum(map(ord, prompt))
        return [
            Image.new("RGB", (32, 32), (value % 256, (value * 7) % 256, (value * 13) % 256))
            for _ in seeds
        ]


class FailingGenerator:
    name = "failing"

    def generate(self, prompt, negative_prompt="", seeds=(0,)):
        raise RuntimeError("CUDA out of memory (simulated)")


def test_prediction_image_term_and_cache_prevents_rerendering(sbert):
    generator = CountingGenerator()
    reward = PredictionReward(
        RewardConfig(text_weight=0.0, image_weight=1.0),
        generator=generator,
        similarity=sbert,
        image_similarity=FallbackImageSimilarity(),
    )
    texts = [cot_for(TRUE), cot_for(TRUE, seed=1), cot_for(FAR)]
    subjects = ["a lighthouse"] * 3
    scores = reward(texts, profile=[TRUE_JSON] * 3, prompt_subject=subjects)
    # Same profile -> identical renderings -> similarity 1; a different profile renders differently.
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(1.0)
    assert scores[2] < 1.0
    # Two distinct profiles were rendered (TRUE and FAR), once each, despite 6 lookups.
    assert generator.calls == 2
    reward(texts, profile=[TRUE_JSON] * 3, prompt_subject=subjects)
    assert generator.calls == 2


def test_failing_generator_gives_zero_image_term_and_no_crash(sbert, caplog):
    reward = PredictionReward(
        RewardConfig(text_weight=0.5, image_weight=0.5),
        generator=FailingGenerator(),
        similarity=sbert,
        image_similarity=FallbackImageSimilarity(),
    )
    with caplog.at_level("WARNING"):
        scores = reward([cot_for(TRUE)], profile=[TRUE_JSON], prompt_subject=["a cat"])
    # Text term (similarity 1.0) at weight 0.5, image term 0.
    assert scores == [pytest.approx(0.5, abs=1e-4)]
    assert reward.generation_failures == 1
    assert "image term failed" in caplog.text


def test_prediction_logs_its_parts(sbert):
    logged = {}
    reward = PredictionReward(RewardConfig(), similarity=sbert)
    reward(
        [cot_for(TRUE)],
        profile=[TRUE_JSON],
        log_metric=lambda name, value: logged.setdefault(name, value),
    )
    assert logged["prediction/s_text"] == pytest.approx(1.0, abs=1e-4)


def test_create_reward_funcs_order_names_and_paper_weights():
    funcs, weights = create_reward_funcs(RewardConfig())
    assert [f.__name__ for f in funcs] == [
        "accuracy_reward",
        "format_reward",
        "prediction_reward",
    ]
    assert weights == [1.0, 0.3, 0.7]


@pytest.mark.parametrize(
    "field,value", [("format_weight", -1), ("image_similarity", "clip"), ("image_seeds", [])]
)
def test_reward_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        RewardConfig(**{field: value})


def test_fallback_similarity_orders_colours():
    pink = Image.new("RGB", (40, 40), (240, 150, 190))
    rose = Image.new("RGB", (40, 40), (230, 140, 180))
    green = Image.new("RGB", (40, 40), (40, 120, 80))
    assert fallback_image_similarity(pink, pink) == pytest.approx(1.0)
    assert fallback_image_similarity(pink, rose) > fallback_image_similarity(pink, green)
    assert 0.0 <= fallback_image_similarity(pink, green) <= 1.0


def test_auto_similarity_falls_back_when_dreamsim_is_missing():
    pytest.importorskip("numpy")
    try:
        import dreamsim  # noqa: F401

        pytest.skip("dreamsim installed")
    except ImportError:
        pass
    assert create_image_similarity("auto").name == "fallback_image_similarity"


def test_image_cache_lru_and_disk(tmp_path):
    cache = ImageCache(max_items=1, directory=tmp_path)
    image = Image.new("RGB", (8, 8), "red")
    key = render_key("gen", "a cat", "", [0])
    cache.put(key, [image])
    cache.put(render_key("gen", "a dog", "", [0]), [image])  # evicts the first from memory
    fresh = ImageCache(max_items=4, directory=tmp_path)  # a restarted run
    again = fresh.get(key)
    assert again is not None and again[0].getpixel((0, 0)) == (255, 0, 0)
    assert fresh.get(render_key("gen", "a cat", "", [1])) is None
