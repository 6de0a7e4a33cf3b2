"""The study tokenizer: a small BPE trained offline (`tokenizers`) on the vocabulary and CoT text.

A byte-level tokenizer spells "Abstract Expressionism" in 22 tokens and a compact target in
~500; a model trained from scratch then spends its capacity on spelling. This BPE is trained on
the study's own text (every vocabulary term, the compact targets, the prompt phrases) with a
pre-tokenizer that cuts the text at every vocabulary term and every digit before BPE sees it:

- each vocabulary term is one pre-token, so BPE merges it into exactly one token and never glues
  it to its neighbours: the model picks a term with a single choice, and a term held out of
  training still has its own token;
- each digit is its own token (scores 0-5, element numbers), so a score is one choice too;
- the fixed pieces between them (`", "Color": "`, `); Image B(`, the prompt's instructions) are
  frequent whole pre-tokens and become single tokens as well.

Bytes are the initial alphabet, so any text still encodes (unknown words fall back to pieces).
The tokenizer is wrapped as a transformers `PreTrainedTokenizerFast` with Qwen's special tokens
and a chat template, and saved inside the model's processor like any checkpoint's.

Example:
    >>> tok = train_study_tokenizer(["<think>\\n1. Color: Image A(4); Image B(1)\\n</think>"])
    >>> tok.convert_ids_to_tokens(tok("Abstract Expressionism")["input_ids"])  # doctest: +SKIP
    ['AbstractĠExpressionism']
"""

from __future__ import annotations

import re
from typing import Iterable, Optional, Sequence

# Qwen's special tokens (the chat template and the processor use them by name), as the tiny
# assessor has them.
from preferthinker.tiny import SPECIAL_TOKENS

# Qwen2.5-VL's chat template reduced to what ptgen sends, WITHOUT the system message: the
# system prompt carries worked examples for a pretrained 7B model; a model trained from scratch
# on the task has no use for it and would pay ~1000 tokens per sample for it.
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

DEFAULT_VOCAB_SIZE = 4096


def all_terms(vocabulary: Optional[object] = None) -> list[str]:
    """Every vocabulary term (all elements), deduplicated, in a stable order.

    Example:
        >>> "Pixel Art" in all_terms()
        True
    """
    from preferthinker.vocabulary import load_vocabulary

    vocab = vocabulary or load_vocabulary()
    terms: list[str] = []
    for element in vocab.elements:  # type: ignore[attr-defined]
        terms.extend(vocab.terms(element))  # type: ignore[attr-defined]
    return list(dict.fromkeys(terms))


def term_pattern(terms: Sequence[str]) -> str:
    """The pre-tokenizer's regex: any vocabulary term (longest first, so "Pastel Drawing" wins over
    "Pastel") or one digit.

    Example:
        >>> re.findall(term_pattern(["Pastel", "Pastel Drawing"]), "a Pastel Drawing, 5 Pastel")
        ['Pastel Drawing', '5', 'Pastel']
    """
    ordered = sorted(set(terms), key=lambda t: (-len(t), t))
    return "|".join([re.escape(t) for t in ordered] + [r"\d"])


def build_backend(terms: Sequence[str]):
    """An untrained `tokenizers.Tokenizer`: BPE over bytes, terms and digits isolated first."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(term_pattern(terms)), behavior="isolated"),
            # use_regex=False: no further word splitting; BPE may merge across spaces.
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_study_tokenizer(
    texts: Iterable[str],
    terms: Optional[Sequence[str]] = None,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    term_repeats: int = 4,
):
    """Train the study BPE on `texts` plus every vocabulary term, and wrap it for transformers.

    Args:
        texts: training text: compact CoT targets and the prompt's text parts.
        terms: the terms that must be single tokens (default: the whole vocabulary, so terms
            held out of training data are single tokens too).
        vocab_size: the most tokens; the study's text needs far fewer, so BPE stops when every
            pre-token is whole.
        term_repeats: times each term is added to the corpus (so it outranks rare pairs).

    Returns:
        A `transformers.PreTrainedTokenizerFast` with Qwen's special tokens (eos `<|im_end|>`,
        pad `<|endoftext|>`) and the study chat template.

    Example:
        >>> tok = train_study_tokenizer(["<answer>Image A</answer>"], terms=["Pink"])
        >>> len(tok("Pink")["input_ids"])
        1
    """
    from tokenizers import pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    terms = list(terms) if terms is not None else all_terms()
    backend = build_backend(terms)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = list(texts) + [term for term in terms for _ in range(term_repeats)]
    backend.train_from_iterator(corpus, trainer=trainer, length=len(corpus))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def multi_token_terms(tokenizer, terms: Optional[Sequence[str]] = None) -> list[str]:
    """The terms that the tokenizer does NOT encode as exactly one token (should be empty).

    Example:
        >>> multi_token_terms(tok)  # doctest: +SKIP
        []
    """
    terms = list(terms) if terms is not None else all_terms()
    return [t for t in terms if len(tokenizer(t, add_special_tokens=False)["input_ids"]) != 1]


__all__ = [
    "CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "all_terms",
    "build_backend",
    "multi_token_terms",
    "term_pattern",
    "train_study_tokenizer",
]
