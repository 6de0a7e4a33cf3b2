"""Template rewriting: subject first, strength, negatives, token budget."""

from __future__ import annotations

import pytest

from generation.rewrite import LLMRewriter, TokenCounter, estimate_tokens, rewrite_prompt
from preferthinker.engines.scripted import ScriptedEngine
from preferthinker.profile import Profile, UserProfile

PROFILE = UserProfile(
    liked=Profile(art_style=["Pixel Art"], color=["Pink", "Jungle Green"], art_medium=["Digital Painting"],
                  saturation=["Pastel"], detail=["Fine"]),
    disliked=Profile(art_style=["Romanticism"], color=["Charcoal Gray"]),
)


def test_subject_first_and_all_elements_in_priority_order():
    r = rewrite_prompt("a castle", PROFILE)
    assert r.prompt == ("a castle, Pixel Art style, Digital Painting, Pink and Jungle Green color palette, "
                        "Pastel saturation, Fine detail")
    assert r.negative_prompt == "Romanticism style, Charcoal Gray color palette"
    assert r.injected == ["art_style", "art_medium", "color", "saturation", "detail"]
    assert r.cut == [] and r.method == "template"


@pytest.mark.parametrize("strength,expected", [(0, []), (1, ["art_style"]), (3, ["art_style", "art_medium", "color"])])
def test_strength_is_the_number_of_elements(strength, expected):
    r = rewrite_prompt("a castle", PROFILE, strength=strength)
    assert r.injected == expected
    assert r.prompt.startswith("a castle")
    if strength == 0:
        assert r.prompt == "a castle" and r.negative_prompt == ""


def test_budget_cuts_low_priority_fragments_and_reports_them():
    r = rewrite_prompt("a castle", PROFILE, token_limit=12)
    assert r.prompt.startswith("a castle, Pixel Art style")
    assert r.tokens <= 12
    assert any("color palette" in c for c in r.cut)
    assert "Pink" not in r.prompt


def test_budget_with_a_real_clip_tokenizer():
    from generation.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()  # byte-level: one token per character
    r = rewrite_prompt("a castle", PROFILE, tokenizer=tokenizer)
    assert r.token_counter == "tokenizer" and r.token_limit == 75
    assert r.tokens <= 75 and r.cut
    assert len(tokenizer(r.prompt, add_special_tokens=False)["input_ids"]) == r.tokens


def test_long_user_prompt_is_kept_whole_and_noted():
    prompt = " ".join(["castle"] * 100)
    r = rewrite_prompt(prompt, PROFILE)
    assert r.prompt == prompt and r.injected == []
    assert any("over the encoder" in note for note in r.notes)


def test_no_profile_returns_prompt_unchanged():
    r = rewrite_prompt("  a castle ", None)
    assert r.prompt == "a castle" and r.negative_prompt == ""
    with pytest.raises(ValueError, match="strength"):
        rewrite_prompt("a castle", PROFILE, strength=9)
    with pytest.raises(ValueError, match="prompt"):
        rewrite_prompt("", PROFILE)


def test_word_estimate_counts_punctuation_and_long_words():
    assert estimate_tokens("a castle, Pixel Art style") == 6
    assert estimate_tokens("supercalifragilistic") == 3
    assert TokenCounter().limit == 75


def test_llm_rewriter_uses_answer_or_falls_back():
    good = ScriptedEngine(["a castle drawn as pink Pixel Art"])
    r = LLMRewriter(good).rewrite("a castle", PROFILE)
    assert r.method == "llm" and r.prompt == "a castle drawn as pink Pixel Art"
    assert r.negative_prompt.startswith("Romanticism")
    bad = ScriptedEngine(["a dragon"])
    r = LLMRewriter(bad).rewrite("a castle", PROFILE)
    assert r.method == "template" and "dropped" in r.notes[0]


def test_no_term_goes_into_both_prompts():
    """The analytic assessor once liked and disliked Neon and Simplified: neither prompt gets them."""
    contradictory = UserProfile(
        liked=Profile(color=["Scarlet"], saturation=["Neon"], detail=["Simplified"]),
        disliked=Profile(color=["Cobalt Blue"], saturation=["neon"], detail=["Simplified"]),
    )
    r = rewrite_prompt("a lighthouse", contradictory)
    assert r.prompt == "a lighthouse, Scarlet color palette"
    assert r.negative_prompt == "Cobalt Blue color palette"
    assert any("Neon" in note and "Simplified" in note for note in r.notes)


def test_the_users_own_words_win_over_the_profile():
    r = rewrite_prompt("a pink castle", PROFILE, base_negative="pixel art")
    assert "Pixel Art" not in r.prompt  # the user's negative prompt refuses it
    assert r.prompt == "a pink castle, Digital Painting, Pink and Jungle Green color palette, Pastel saturation, Fine detail"
    liked_pink = UserProfile(liked=Profile(art_style=["Pixel Art"]), disliked=Profile(color=["Pink"]))
    r = rewrite_prompt("a pink castle", liked_pink)
    assert r.negative_prompt == ""  # the prompt asks for pink: not negated
    assert any("asks for disliked Pink" in note for note in r.notes)


def test_llm_answer_naming_a_disliked_term_falls_back():
    r = LLMRewriter(ScriptedEngine(["a castle, Pixel Art, Romanticism mood"])).rewrite("a castle", PROFILE)
    assert r.method == "template" and "Romanticism" not in r.prompt
    assert r.negative_prompt.startswith("Romanticism")
