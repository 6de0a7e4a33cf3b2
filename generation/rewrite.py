"""Prompt rewriting: the user's prompt plus the profile's terms; a negative prompt from dislikes.

Template rewriting (the default) is deterministic: the user's prompt stays first and unchanged,
then one fragment per profile element, in the order that changes an image most (art style,
medium, color, saturation, detail). `strength` says how many elements are injected (0-5).
The negative prompt is built the same way from the non-preference profile. No term goes into
both prompts, whatever the assessor wrote: a term the profile both likes and dislikes is no
preference and is left out of both; a disliked term the user's prompt names is not negated, and
a liked term the user's own negative prompt names is not added (the user's words win).

Text encoders read a bounded number of tokens (CLIP: 77 including the start/end tokens, so 75 of
text). Fragments are added in priority order while they fit; a fragment that does not fit is cut
(and later, shorter ones may still fit), and every cut is reported. Tokens are counted with the
pipeline's own tokenizer when one is given, else estimated from the words.

An optional LLM rewriter (`LLMRewriter`) asks any preferthinker `Engine` to merge the prompt and
the profile into fluent text, then applies the same budget; it falls back to the template when the
model's answer is unusable.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from preferthinker.profile import Profile, UserProfile

# Which elements to inject first: style and medium change an image the most.
ELEMENT_PRIORITY: tuple[str, ...] = ("art_style", "art_medium", "color", "saturation", "detail")
DEFAULT_TOKEN_LIMIT = 75  # CLIP's 77 minus the start and end tokens


def _join(terms: tuple[str, ...]) -> str:
    if len(terms) <= 2:
        return " and ".join(terms)
    return ", ".join(terms[:-1]) + " and " + terms[-1]


# How each element reads inside a prompt ("Pixel Art style", "Pink and Teal color palette").
FRAGMENTS: dict[str, Callable[[tuple[str, ...]], str]] = {
    "art_style": lambda terms: f"{_join(terms)} style",
    "art_medium": lambda terms: _join(terms),
    "color": lambda terms: f"{_join(terms)} color palette",
    "saturation": lambda terms: f"{_join(terms)} saturation",
    "detail": lambda terms: f"{_join(terms)} detail",
}


def estimate_tokens(text: str) -> int:
    """A word-based estimate of CLIP tokens: 1 per punctuation mark, 1 per word plus 1 per
    further 7 characters (long or rare words split into several BPE pieces). Errs high.

    Example:
        >>> estimate_tokens("a castle, Pixel Art style")
        6
    """
    count = 0
    for piece in re.findall(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]", text):
        count += 1 + (len(piece) - 1) // 7 if piece[0].isalnum() else 1
    return count


class TokenCounter:
    """Counts prompt tokens with a tokenizer (exact) or `estimate_tokens` (no tokenizer).

    Args:
        tokenizer: a Hugging Face tokenizer (the pipeline's), or None.
        limit: tokens of text the encoder reads; None: the tokenizer's `model_max_length` - 2,
            else 75.
    """

    def __init__(self, tokenizer: Any = None, limit: Optional[int] = None):
        self.tokenizer = tokenizer
        self.method = "tokenizer" if tokenizer is not None else "words"
        if limit is None:
            max_length = getattr(tokenizer, "model_max_length", None)
            limit = (
                max_length - 2
                if isinstance(max_length, int) and 2 < max_length < 100_000
                else DEFAULT_TOKEN_LIMIT
            )
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self.tokenizer is None:
            return estimate_tokens(text)
        ids = self.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
        return len(ids)


@dataclass
class RewrittenPrompt:
    """The result of a rewrite, with what was added, what was cut and the token counts."""

    prompt: str
    negative_prompt: str
    original: str
    method: str  # "template", "llm", or "none"
    injected: list[str] = field(default_factory=list)  # elements whose terms went into the prompt
    negative_injected: list[str] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)  # fragments dropped for the token budget
    tokens: int = 0
    negative_tokens: int = 0
    token_limit: int = DEFAULT_TOKEN_LIMIT
    token_counter: str = "words"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mentions(text: str, term: str) -> bool:
    """Whether `text` contains `term` as whole words, ignoring case."""
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) is not None


def _without_conflicts(
    profile: UserProfile, prompt: str, base_negative: str
) -> tuple[UserProfile, list[str]]:
    """`profile` without the terms that would put one term in both prompts, and notes saying so."""
    notes = []
    shared = profile.shared_terms()
    if shared:
        named = [t for t in profile.liked.all_terms() if t.lower() in shared]
        notes.append(f"liked and disliked both list {', '.join(named)}: left out of both prompts")
        profile = profile.without_shared_terms()
    asked = {t for t in profile.disliked.all_terms() if _mentions(prompt, t)}
    refused = {t for t in profile.liked.all_terms() if _mentions(base_negative, t)}
    if asked:
        notes.append(
            f"the prompt asks for disliked {', '.join(sorted(asked))}: not in the negative prompt"
        )
    if refused:
        notes.append(
            f"your negative prompt names liked {', '.join(sorted(refused))}: "
            "not added to the prompt"
        )
    if asked or refused:

        def drop(side: Profile, terms: set[str]) -> Profile:
            return Profile(**{e: tuple(t for t in ts if t not in terms) for e, ts in side.items()})

        profile = UserProfile(
            liked=drop(profile.liked, refused), disliked=drop(profile.disliked, asked)
        )
    return profile, notes


def _fragments(profile: Profile, strength: int) -> list[tuple[str, str]]:
    """(element, fragment) for the first `strength` elements of the priority order with terms."""
    chosen: list[tuple[str, str]] = []
    for element in ELEMENT_PRIORITY[:strength]:
        terms = profile.terms(element)
        if terms:
            chosen.append((element, FRAGMENTS[element](terms)))
    return chosen


def _fit(head: str, fragments: list[tuple[str, str]], counter: TokenCounter, label: str):
    """Append fragments to `head` (", "-separated) while the text stays within the budget."""
    text = head
    kept: list[str] = []
    cut: list[str] = []
    for element, fragment in fragments:
        candidate = f"{text}, {fragment}" if text else fragment
        if counter.count(candidate) <= counter.limit:
            text = candidate
            kept.append(element)
        else:
            cut.append(f"{label}: {fragment}")
    return text, kept, cut


def rewrite_prompt(
    prompt: str,
    profile: Optional[UserProfile],
    *,
    strength: int = 5,
    tokenizer: Any = None,
    token_limit: Optional[int] = None,
    base_negative: str = "",
) -> RewrittenPrompt:
    """Rewrite `prompt` for a user with the template: subject first, then the profile's terms.

    Args:
        prompt: the user's prompt; kept first and unchanged.
        profile: the user's profile (None or empty: the prompt is returned as is).
        strength: how many elements to inject, 0-5, in the order art style, medium, color,
            saturation, detail.
        tokenizer: the pipeline's prompt tokenizer, for exact counts (None: word estimate).
        token_limit: tokens of text the encoder reads (None: from the tokenizer, else 75).
        base_negative: a negative prompt of your own, kept first in the negative prompt.

    Returns:
        A `RewrittenPrompt` (prompt, negative_prompt, injected elements, cut fragments, counts).

    Example:
        >>> p = UserProfile(liked=Profile(art_style=["Pixel Art"], color=["Pink"]),
        ...                 disliked=Profile(art_style=["Romanticism"]))
        >>> r = rewrite_prompt("a castle", p)
        >>> r.prompt, r.negative_prompt
        ('a castle, Pixel Art style, Pink color palette', 'Romanticism style')
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt must be a non-empty string, got {prompt!r}")
    if not 0 <= strength <= len(ELEMENT_PRIORITY):
        raise ValueError(f"strength must be between 0 and {len(ELEMENT_PRIORITY)}, got {strength}")
    prompt = prompt.strip()
    counter = TokenCounter(tokenizer, token_limit)
    result = RewrittenPrompt(
        prompt=prompt,
        negative_prompt=base_negative.strip(),
        original=prompt,
        method="template",
        token_limit=counter.limit,
        token_counter=counter.method,
    )
    prompt_tokens = counter.count(prompt)
    if prompt_tokens > counter.limit:
        # The user's own words are never altered; the encoder will ignore the tail.
        result.notes.append(
            f"the prompt alone is {prompt_tokens} tokens, over the encoder's {counter.limit}; "
            "its end will be ignored by the text encoder and no profile terms fit"
        )
    if profile is not None and strength > 0:
        profile, conflicts = _without_conflicts(profile, prompt, result.negative_prompt)
        result.notes.extend(conflicts)
        liked = _fragments(profile.liked, strength)
        disliked = _fragments(profile.disliked, strength)
        result.prompt, result.injected, cut = _fit(prompt, liked, counter, "prompt")
        result.negative_prompt, result.negative_injected, negative_cut = _fit(
            result.negative_prompt, disliked, counter, "negative"
        )
        result.cut = cut + negative_cut
        if not liked and not disliked:
            result.notes.append("the profile is empty: nothing to inject")
    result.tokens = counter.count(result.prompt)
    result.negative_tokens = counter.count(result.negative_prompt)
    return result


LLM_INSTRUCTION = (
    "Rewrite a text-to-image prompt for a user with known visual tastes. Keep the user's subject "
    "first and do not change what is depicted. Work in the liked style terms naturally. Answer "
    "with the rewritten prompt only, on one line, at most {words} words.\n\n"
    "User prompt: {prompt}\nLiked: {liked}\n"
)


class LLMRewriter:
    """Rewrites prompts with a language model through any preferthinker `Engine`.

    The model writes the positive prompt; the negative prompt, the token budget and the fallback
    come from the template rewriter, so the result is always usable.

    Args:
        engine: e.g.
            `create_engine("http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct")`.
        max_new_tokens: cap on the model's answer.

    Example:
        >>> LLMRewriter(engine).rewrite("a castle", profile, tokenizer=pipe.tokenizer).prompt
    """

    def __init__(self, engine: Any, max_new_tokens: int = 120):
        self.engine = engine
        self.max_new_tokens = max_new_tokens

    def rewrite(
        self,
        prompt: str,
        profile: Optional[UserProfile],
        *,
        strength: int = 5,
        tokenizer: Any = None,
        token_limit: Optional[int] = None,
        base_negative: str = "",
    ) -> RewrittenPrompt:
        from preferthinker.engines import GenerationConfig

        template = rewrite_prompt(
            prompt,
            profile,
            strength=strength,
            tokenizer=tokenizer,
            token_limit=token_limit,
            base_negative=base_negative,
        )
        if profile is None or not template.injected:
            return template
        profile, _ = _without_conflicts(profile, template.original, base_negative)
        liked = "; ".join(fragment for _, fragment in _fragments(profile.liked, strength))
        words = max(8, math.floor(template.token_limit * 0.7))
        text = LLM_INSTRUCTION.format(words=words, prompt=template.original, liked=liked)
        conversation = [{"role": "user", "content": [{"type": "text", "text": text}]}]
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens, temperature=0.0, repetition_penalty=1.05
        )
        try:
            answer = self.engine.generate([conversation], config)[0].text
        except Exception as error:  # noqa: BLE001 - any engine failure falls back to the template
            template.notes.append(
                f"LLM rewriter failed ({type(error).__name__}: {error}); used the template"
            )
            return template
        line = next((a.strip().strip('"') for a in answer.splitlines() if a.strip()), "")
        counter = TokenCounter(tokenizer, token_limit)
        subject = template.original.lower()
        if not line or subject not in line.lower():
            template.notes.append("LLM answer dropped the user's prompt; used the template")
            return template
        # The model may work a disliked term in; it would then be in both prompts.
        negated = [
            t
            for t in profile.disliked.all_terms()
            if _mentions(line, t) and _mentions(template.negative_prompt, t)
        ]
        if negated:
            template.notes.append(
                f"LLM answer names disliked {', '.join(negated)}; used the template"
            )
            return template
        if counter.count(line) > counter.limit:
            template.notes.append(
                f"LLM answer is {counter.count(line)} tokens, over {counter.limit}; "
                "used the template"
            )
            return template
        template.prompt = line
        template.method = "llm"
        template.tokens = counter.count(line)
        return template
