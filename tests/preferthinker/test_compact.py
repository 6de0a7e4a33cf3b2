"""Compact verdicts: the format, its parser, the assessor's compact path with its stop sequence,
and the stop sequence reaching a real (tiny) transformers model."""

from __future__ import annotations

import pytest

from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.compact import (
    COMPACT_STOP,
    COMPACT_SYSTEM_PROMPT,
    format_compact,
    parse_compact,
)
from preferthinker.engines.scripted import ScriptedEngine
from preferthinker.errors import ParseError
from preferthinker.profile import ELEMENTS, Profile, UserProfile
from preferthinker.results import ElementScore

PROFILE = UserProfile(Profile(color="Pink", art_style="Pixel Art"), Profile(color="Charcoal Gray"))


def test_format_and_parse_round_trip():
    scores = [
        ElementScore(e, a, b)
        for e, a, b in zip(ELEMENTS, [2, 1, 2, 3, 3], [5, 5, 4, 4, 4], strict=True)
    ]
    text = format_compact(scores, "B")
    assert text == "<scores>A: 2,1,2,3,3; B: 5,5,4,4,4</scores><answer>Image B</answer>"
    parsed = parse_compact(text)
    assert (parsed.answer, parsed.total_a, parsed.total_b, parsed.complete) == ("B", 11, 22, True)
    assert [s.score_b for s in parsed.scores] == [5, 5, 4, 4, 4]
    assert parsed.scores[1].element == "color"


def test_output_cut_by_the_stop_sequence_still_parses():
    parsed = parse_compact(" <scores> A:4, 4,4,4,4 ;B: 1,1,1,1,1 </scores>\n<answer>Image A")
    assert parsed.answer == "A" and parsed.total_a == 20 and not parsed.issues


def test_contradiction_and_missing_answer_are_recorded():
    contradicting = parse_compact(
        "<scores>A: 5,5,5,5,5; B: 0,0,0,0,0</scores><answer>Image B</answer>"
    )
    assert contradicting.answer == "B" and "contradicts the totals" in contradicting.issues[0]
    from_totals = parse_compact("<scores>A: 5,5,5,5,5; B: 0,0,0,0,0</scores>")
    assert from_totals.answer == "A" and "taken from the totals" in from_totals.issues[0]


def test_malformed_scores_and_garbage():
    short = parse_compact("<scores>A: 5,5; B: 0,0,0,0,0</scores><answer>Image A</answer>")
    assert short.scores == [] and short.answer == "A" and not short.complete
    with pytest.raises(ParseError):
        parse_compact("I think the first one is nicer.")


def test_assessor_compact_path_uses_its_prompt_parser_and_stop():
    seen = []

    class Recording(ScriptedEngine):
        def generate(self, conversations, config=None):
            seen.append(config)
            return super().generate(conversations, config)

    engine = Recording(
        lambda conversation: "<scores>A: 1,1,1,1,1; B: 4,4,4,4,4</scores><answer>Image B"
    )
    assessor = Assessor(
        engine, AssessorConfig(assessor="scripted", verdict="compact", max_retries=0)
    )
    from PIL import Image

    a, b = Image.new("RGB", (16, 16), "grey"), Image.new("RGB", (16, 16), "pink")
    comparison = assessor.compare(a, b, profile=PROFILE)
    assert comparison.winner == "B" and comparison.parsed[0].total_b == 20
    assert seen[0].stop == (COMPACT_STOP,)
    conversation = engine.calls[0]
    assert conversation[0]["content"][0]["text"] == COMPACT_SYSTEM_PROMPT
    assert "Pink" in conversation[1]["content"][1]["text"]  # the profile is still given


def test_compact_is_not_used_without_a_profile():
    engine = ScriptedEngine(lambda conversation: "<answer>Image A</answer>")
    assessor = Assessor(
        engine, AssessorConfig(assessor="scripted", verdict="compact", max_retries=0)
    )
    from PIL import Image

    image = Image.new("RGB", (16, 16))
    assessor.compare(image, image, liked=[image])
    assert engine.calls[0][0]["content"][0]["text"] != COMPACT_SYSTEM_PROMPT


def test_bad_verdict_value():
    with pytest.raises(ValueError, match="verdict must be full or compact"):
        AssessorConfig(verdict="short")


def test_stop_sequence_reaches_a_real_transformers_model(tiny_assessor_path):
    # Greedy decoding of the tiny model is deterministic: take a piece of its own output as the
    # stop string and check that generation stops there.
    from preferthinker.engines.base import GenerationConfig
    from preferthinker.engines.transformers_engine import TransformersEngine

    engine = TransformersEngine(str(tiny_assessor_path), device="cpu")
    conversation = [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]
    free = engine.generate([conversation], GenerationConfig(max_new_tokens=24))[0].text
    stop = free[2:5] if len(free) >= 8 else None
    if not stop:
        pytest.skip("the tiny model wrote too little to cut")
    cut = engine.generate([conversation], GenerationConfig(max_new_tokens=24, stop=(stop,)))[0]
    assert len(cut.text) < len(free) and cut.completion_tokens < 24
    engine.close()


def _responder(conversation):
    """Prefers the redder candidate; answers compact prompts compactly, others in full."""
    from preferthinker.parser import format_output

    parts = [p for m in conversation if isinstance(m["content"], list) for p in m["content"]]
    if not any(p.get("text") == "Image A" for p in parts):
        return PROFILE.to_tag_text()
    images = [p["image"] for p in parts if p["type"] == "image"]
    a_wins = images[-2].getpixel((0, 0))[0] >= images[-1].getpixel((0, 0))[0]
    scores = [
        ElementScore(e, 4 if a_wins else 1, 1 if a_wins else 4, "red, as liked", "less red")
        for e in ELEMENTS
    ]
    if conversation[0]["content"][0]["text"] == COMPACT_SYSTEM_PROMPT:
        return format_compact(scores, "A" if a_wins else "B")
    return format_output(None, scores, "A" if a_wins else "B")


def test_explain_judges_the_winners_last_match_in_full(tmp_path):
    from PIL import Image

    from generation.loop import LoopConfig, PersonalizedGenerator
    from generation.report import write_run

    engine = ScriptedEngine(_responder)
    assessor = Assessor(
        engine, AssessorConfig(assessor="scripted", verdict="compact", max_retries=0)
    )
    images = [Image.new("RGB", (16, 16), (red, 40, 40)) for red in (50, 200, 120, 90)]
    loop = PersonalizedGenerator(assessor, None, LoopConfig(cache=False, explain=True))
    result = loop.rerank(images, [Image.new("RGB", (16, 16), (250, 30, 30))])
    assert result.best.index == 1
    systems = [call[0]["content"][0]["text"] for call in engine.calls[1:]]  # [0]: the profile
    assert systems[:3] == [COMPACT_SYSTEM_PROMPT] * 3 and systems[3] != COMPACT_SYSTEM_PROMPT
    explanation = result.explanation
    assert 1 in (explanation.a, explanation.b) and explanation.winner == 1
    assert explanation.comparison.scores[0].rationale_a  # rationales, unlike the compact verdicts
    data = write_run(result, tmp_path)
    assert data["explanation"]["winner"] == 1
    assert "Why the winner won" in (tmp_path / "report.html").read_text()
