"""Simulated users: hidden preference profiles drawn from the vocabulary, with known ground truth.

A simulated user likes one term per element (single preference, "SP") or several terms for some
elements (multi preference, "MP"), and dislikes other terms (never one it likes). SynthPref
renders their references and candidates from these profiles, so the right answer is known by
construction.

`split_terms` holds a fraction of each element's terms out of training: "seen" users use only the
seen terms, "unseen" users use at least one held-out term (the paper's in-domain / out-of-domain
split). Everything is deterministic from the seeds.

Example:
    >>> from preferthinker.vocabulary import load_vocabulary
    >>> vocab = load_vocabulary()
    >>> split = split_terms(vocab, held_out_fraction=0.25, seed=0)
    >>> users = sample_users(10, vocab, seed=1, multi_fraction=0.5, split=split, unseen=True)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Optional, Sequence

from preferthinker.benchmark import user_profile_from_dict
from preferthinker.errors import InputError
from preferthinker.profile import ELEMENTS, Profile, UserProfile

UserKind = Literal["SP", "MP"]
# A Vocabulary object (`.terms(element)`) or a plain mapping element -> terms.
VocabularyLike = Any
# compatible(element, liked_term, disliked_term) -> may these two be liked and disliked together?
Compatible = Callable[[str, str, str], bool]


@dataclass(frozen=True)
class SimulatedUser:
    """A user with a hidden profile. `kind` is "SP" (one liked term per element) or "MP"."""

    user_id: str
    profile: UserProfile
    kind: UserKind = "SP"

    def __post_init__(self) -> None:
        if self.kind not in ("SP", "MP"):
            raise ValueError(f"SimulatedUser.kind must be 'SP' or 'MP', got {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "kind": self.kind, "profile": self.profile.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SimulatedUser":
        return cls(
            user_id=str(data["user_id"]),
            profile=user_profile_from_dict(data["profile"]),
            kind=data.get("kind", "SP"),
        )


@dataclass(frozen=True)
class TermSplit:
    """Per element, the terms users of the seen split may use and the held-out ones."""

    seen: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unseen: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def is_unseen(self, term: str) -> bool:
        low = term.lower()
        return any(low == t.lower() for terms in self.unseen.values() for t in terms)

    def to_dict(self) -> dict[str, dict[str, list[str]]]:
        return {
            "seen": {e: list(t) for e, t in self.seen.items()},
            "unseen": {e: list(t) for e, t in self.unseen.items()},
        }


def term_table(
    vocabulary: VocabularyLike, terms: Optional[Mapping[str, Sequence[str]]] = None
) -> dict[str, list[str]]:
    """The terms per element of `vocabulary`, restricted to `terms` (e.g. a renderer's supported
    subset) when given. Terms of `terms` missing from the vocabulary are an error, since the
    simulation must speak the vocabulary's exact spellings.

    Example:
        >>> term_table({"color": ["Pink", "Teal"]}, terms={"color": ["Teal"]})["color"]
        ['Teal']
    """
    table: dict[str, list[str]] = {}
    for element in ELEMENTS:
        if isinstance(vocabulary, Mapping):
            available = list(vocabulary.get(element, ()))
        else:
            available = list(vocabulary.terms(element))
        if terms is not None:
            wanted = list(terms.get(element, ()))
            by_lower = {t.lower(): t for t in available}
            missing = [t for t in wanted if t.lower() not in by_lower]
            if missing and available:
                raise InputError(
                    f"terms for {element} not in the vocabulary: {', '.join(missing)}; "
                    "use the vocabulary's exact spellings"
                )
            available = [by_lower[t.lower()] for t in wanted] if available else wanted
        # Sorted, deduplicated: the sampling must not depend on file order.
        table[element] = sorted(dict.fromkeys(available))
    return table


def split_terms(
    vocabulary: VocabularyLike,
    held_out_fraction: float = 0.25,
    seed: int = 0,
    terms: Optional[Mapping[str, Sequence[str]]] = None,
) -> TermSplit:
    """Hold out about `held_out_fraction` of each element's terms (at least one where the element
    has two or more terms and the fraction is > 0; at least one term always stays seen).

    Args:
        vocabulary: a `Vocabulary` or a mapping element -> terms.
        held_out_fraction: share of terms per element held out, in [0, 1).
        seed: random seed; the same seed gives the same split.
        terms: optional restriction (e.g. the renderer's `SUPPORTED_TERMS`).

    Example:
        >>> s = split_terms({"color": ["Red", "Blue", "Green", "Pink"]}, 0.25, seed=0)
        >>> len(s.unseen["color"]), len(s.seen["color"])
        (1, 3)
    """
    if not 0 <= held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must be in [0, 1), got {held_out_fraction}")
    table = term_table(vocabulary, terms)
    rng = random.Random(f"split:{seed}")
    seen: dict[str, tuple[str, ...]] = {}
    unseen: dict[str, tuple[str, ...]] = {}
    for element in ELEMENTS:
        pool = list(table[element])
        rng.shuffle(pool)
        k = int(round(held_out_fraction * len(pool)))
        if held_out_fraction > 0 and len(pool) >= 2:
            k = min(max(k, 1), len(pool) - 1)
        else:
            k = 0
        unseen[element] = tuple(sorted(pool[:k]))
        seen[element] = tuple(sorted(pool[k:]))
    return TermSplit(seen=seen, unseen=unseen)


def _pick_liked(rng: random.Random, pool: list[str], count: int) -> list[str]:
    return rng.sample(pool, min(count, len(pool)))


def _pick_disliked(
    rng: random.Random,
    element: str,
    pool: list[str],
    liked: Sequence[str],
    compatible: Optional[Compatible],
) -> Optional[str]:
    liked_low = {t.lower() for t in liked}
    options = [t for t in pool if t.lower() not in liked_low]
    if compatible is not None:
        options = [t for t in options if all(compatible(element, like, t) for like in liked)]
    return rng.choice(options) if options else None


def sample_user(
    user_id: str,
    table: Mapping[str, Sequence[str]],
    rng: random.Random,
    kind: UserKind = "SP",
    required: Optional[Mapping[str, Sequence[str]]] = None,
    max_terms: int = 3,
    compatible: Optional[Compatible] = None,
) -> SimulatedUser:
    """Draw one user from `table` (element -> allowed terms) with `rng`.

    `required`, when given, maps elements to terms of which the user must like at least one in
    total (used for unseen users: one element is chosen and gets a held-out term).
    MP users like 2..`max_terms` terms for 2 or 3 randomly chosen elements.

    Example:
        >>> u = sample_user("u0", {"color": ["Red", "Blue"]}, random.Random(0))
        >>> u.profile.liked.color != u.profile.disliked.color
        True
    """
    if kind not in ("SP", "MP"):
        raise ValueError(f"kind must be 'SP' or 'MP', got {kind!r}")
    elements = [e for e in ELEMENTS if len(table.get(e, ())) >= 1]
    if not elements:
        raise InputError(
            "no terms to sample users from; check the vocabulary and the terms restriction"
        )
    counts = {e: 1 for e in elements}
    if kind == "MP":
        multi = [e for e in elements if len(table[e]) >= 3]
        if not multi:
            raise InputError("multi-preference users need an element with at least 3 terms")
        for element in rng.sample(multi, min(len(multi), rng.choice((2, 3)))):
            counts[element] = rng.randint(2, max(2, min(max_terms, len(table[element]) - 1)))
    forced_element: Optional[str] = None
    if required:
        candidates = [e for e in elements if required.get(e)]
        if not candidates:
            raise InputError(
                "no held-out terms available for unseen users; raise held_out_fraction"
            )
        forced_element = rng.choice(candidates)
    liked: dict[str, list[str]] = {}
    disliked: dict[str, list[str]] = {}
    for element in elements:
        pool = sorted(table[element])
        if element == forced_element:
            first = rng.choice(sorted(required[element]))  # type: ignore[index]
            rest = [t for t in pool if t != first]
            chosen = [first] + _pick_liked(rng, rest, counts[element] - 1)
        else:
            chosen = _pick_liked(rng, pool, counts[element])
        liked[element] = chosen
        other = _pick_disliked(rng, element, pool, chosen, compatible)
        disliked[element] = [other] if other else []
    profile = UserProfile(liked=Profile(**liked), disliked=Profile(**disliked))
    return SimulatedUser(user_id=user_id, profile=profile, kind=kind)


def sample_users(
    n: int,
    vocabulary: VocabularyLike,
    seed: int = 0,
    multi_fraction: float = 0.0,
    terms: Optional[Mapping[str, Sequence[str]]] = None,
    split: Optional[TermSplit] = None,
    unseen: bool = False,
    id_prefix: str = "user",
    compatible: Optional[Compatible] = None,
    max_terms: int = 3,
) -> list[SimulatedUser]:
    """Draw `n` simulated users, deterministically from `seed`.

    Args:
        n: number of users.
        vocabulary: a `Vocabulary` or a mapping element -> terms.
        seed: random seed.
        multi_fraction: share of multi-preference (MP) users; the rest are SP. The first
            `round(n * multi_fraction)` users (after a seeded shuffle) are MP.
        terms: restrict to these terms per element (e.g. the renderer's `SUPPORTED_TERMS`).
        split: a `TermSplit`; without it every term may be used.
        unseen: with `split`, draw unseen-term users (at least one liked held-out term);
            otherwise seen-term users (no held-out term anywhere, liked or disliked).
        id_prefix: user ids are `f"{id_prefix}-{i:04d}"`.
        compatible: optional check `compatible(element, liked, disliked) -> bool` so that a
            disliked term is visibly different from the liked ones (the renderer provides one).
        max_terms: the most liked terms per element for MP users.

    Example:
        >>> users = sample_users(4, {"color": ["Red", "Blue", "Green"]}, seed=0, multi_fraction=0.5)
        >>> [u.kind for u in users].count("MP")
        2
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 <= multi_fraction <= 1:
        raise ValueError(f"multi_fraction must be in [0, 1], got {multi_fraction}")
    if unseen and split is None:
        raise ValueError("unseen=True needs a split (see split_terms)")
    full = term_table(vocabulary, terms)
    required: Optional[dict[str, list[str]]] = None
    if split is None:
        table = full
    else:
        allowed = {t.lower() for ts in split.seen.values() for t in ts}
        if unseen:
            allowed |= {t.lower() for ts in split.unseen.values() for t in ts}
            required = {
                e: [t for t in full[e] if t.lower() in {u.lower() for u in split.unseen.get(e, ())}]
                for e in ELEMENTS
            }
        table = {e: [t for t in full[e] if t.lower() in allowed] for e in ELEMENTS}
    rng = random.Random(f"users:{seed}:{unseen}")
    kinds: list[UserKind] = ["MP"] * int(round(n * multi_fraction)) + ["SP"] * (
        n - int(round(n * multi_fraction))
    )
    rng.shuffle(kinds)
    return [
        sample_user(
            f"{id_prefix}-{i:04d}",
            table,
            rng,
            kind=kinds[i],
            required=required,
            max_terms=max_terms,
            compatible=compatible,
        )
        for i in range(n)
    ]


def profile_matches(profile: Profile, attributes: Mapping[str, Optional[str]]) -> dict[str, bool]:
    """Per element of `profile` that has terms: does the attribute (the term an image was drawn
    with) equal one of the profile's terms (case-insensitive)?

    Example:
        >>> profile_matches(Profile(color=("Pink",)), {"color": "pink"})
        {'color': True}
    """
    result: dict[str, bool] = {}
    for element, liked in profile.items():
        if not liked:
            continue
        value = attributes.get(element)
        result[element] = value is not None and value.lower() in {t.lower() for t in liked}
    return result


__all__ = [
    "SimulatedUser",
    "TermSplit",
    "UserKind",
    "profile_matches",
    "sample_user",
    "sample_users",
    "split_terms",
    "term_table",
]
