"""The study tokenizer: every vocabulary term is one token, the compact target is short, text round-trips."""

from __future__ import annotations

import random

import pytest

from synthpref.renderer import SUPPORTED_TERMS
from preferthinker.profile import ELEMENTS, Profile, UserProfile
from preferthinker.results import ElementScore
from training.study.compact import write_compact
from training.study.tokenizer import all_terms, multi_token_terms, term_pattern, train_study_tokenizer


def _targets(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        side = lambda: Profile(**{e: (rng.choice(SUPPORTED_TERMS[e]),) for e in ELEMENTS})  # noqa: E731
        scores = [ElementScore(e, rng.randint(0, 5), rng.randint(0, 5)) for e in ELEMENTS]
        texts.append(write_compact(UserProfile(liked=side(), disliked=side()), scores, rng.choice("AB")))
    return texts


@pytest.fixture(scope="module")
def tokenizer():
    return train_study_tokenizer(_targets(80) + ["Here are images that this user likes:"] * 20)


def test_every_vocabulary_term_is_one_token(tokenizer):
    terms = all_terms()
    assert len(terms) >= 288
    assert multi_token_terms(tokenizer, terms) == []


def test_terms_never_merge_with_their_neighbours(tokenizer):
    tokens = tokenizer.tokenize('"Color": "Teal", "Artistic Medium": "Pastel Drawing"')
    decoded = [tokenizer.convert_tokens_to_string([t]) for t in tokens]
    assert "Teal" in decoded and "Pastel Drawing" in decoded


def test_compact_target_is_short_and_round_trips(tokenizer):
    text = _targets(1, seed=7)[0]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) <= 80  # ~70 for a single-preference target (byte-level: ~500)
    assert tokenizer.decode(ids) == text
    # each digit (the scores) is a token of its own, never merged with a neighbour
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert sum(text.count(d) for d in "0123456789") >= 10  # 5 elements x 2 scores at least
    assert [tokens.count(d) for d in "0123456789"] == [text.count(d) for d in "0123456789"]


def test_unknown_text_still_encodes(tokenizer):
    text = "völlig neue Wörter ✓"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_special_tokens_and_template(tokenizer):
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert len(tokenizer.tokenize("<|image_pad|>")) == 1
    messages = [{"role": "system", "content": [{"type": "text", "text": "LONG SYSTEM PROMPT"}]},
                {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image"}]}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert "LONG SYSTEM PROMPT" not in rendered
    assert rendered.endswith("<|im_start|>assistant\n") and "<|image_pad|>" in rendered


def test_pattern_prefers_the_longest_term():
    import re

    assert re.findall(term_pattern(["Pastel", "Pastel Drawing"]), "Pastel Drawing 3") == ["Pastel Drawing", "3"]
