"""Best-of-N by pairwise assessment: tournaments and Bradley-Terry scores.

Who meets whom is the strategy's business (`generation.strategies`: knockout, round-robin,
swiss, and any registered later); `rank_tournament` drives any of them the same way. Every
round's comparisons go to the assessor's `compare_many` in one call, so HTTP engines run them
concurrently and in-process engines batch them.

Scores: a Bradley-Terry model fitted to all comparisons with the MM algorithm (Hunter 2004).
A weak prior (each candidate also plays `prior` virtual wins and `prior` virtual losses against a
reference of strength 1) keeps undefeated and winless candidates finite. `score` is the log
strength: a candidate with score s beats one with score t with probability 1 / (1 + e^(t - s)).

Undecided comparisons (`Comparison.winner is None`) follow `tie_policy`:
- "half" (default): half a win to each side in the fit and in Swiss points;
- "skip": left out of the fit.
In a knockout an undecided match still needs a survivor: the candidate with the higher summed
element score across the judged orders advances, and on equal totals the first one (A).

When no comparison at all was decided there is no winner: `Ranking.decided` is False,
`Ranking.winner` is None, and the order is the input order, whatever the strategy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from generation.strategies import (  # noqa: F401 - STRATEGIES and swiss_rounds stay importable here
    STRATEGIES,
    TournamentState,
    get_strategy,
    swiss_rounds,
)
from preferthinker.errors import EngineContractError
from preferthinker.results import Comparison, Usage

TIE_POLICIES = ("half", "skip")
NO_WINNER = "no comparison was decided: no winner (the input order is kept)"
Progress = Callable[[int, int], None]


@dataclass
class Match:
    """One comparison in a tournament: candidate indices `a` (shown as Image A) and `b`."""

    round: int
    a: int
    b: int
    comparison: Comparison

    @property
    def winner(self) -> Optional[int]:
        if self.comparison.winner == "A":
            return self.a
        if self.comparison.winner == "B":
            return self.b
        return None

    def totals(self) -> tuple[Optional[int], Optional[int]]:
        """Summed element scores of a and b over the judged orders (None when not parsed)."""
        parsed = [p for p in self.comparison.parsed if p.total_a is not None and p.total_b is not None]
        if not parsed:
            return None, None
        return sum(p.total_a for p in parsed), sum(p.total_b for p in parsed)  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        total_a, total_b = self.totals()
        return {
            "round": self.round,
            "a": self.a,
            "b": self.b,
            "winner": self.winner,
            "total_a": total_a,
            "total_b": total_b,
            "comparison": self.comparison.to_dict(),
        }


@dataclass
class Ranking:
    """The outcome of a tournament: a score and a rank for every candidate, and every match.

    `order` lists candidate indices best first; `scores[i]`, `ranks[i]` (1 = best),
    `wins[i]` and `games[i]` belong to candidate i. When no comparison was decided, `decided`
    is False, `winner` is None and `order` is the input order.
    """

    strategy: str
    order: list[int]
    scores: list[float]
    ranks: list[int]
    wins: list[float]
    games: list[int]
    matches: list[Match] = field(default_factory=list)
    tie_policy: str = "half"
    usage: Usage = field(default_factory=Usage)

    @property
    def decided(self) -> bool:
        """Whether at least one comparison was decided (a lone candidate needs none)."""
        return len(self.order) == 1 or any(m.winner is not None for m in self.matches)

    @property
    def winner(self) -> Optional[int]:
        """The best candidate's index; None when no comparison was decided."""
        return self.order[0] if self.decided else None

    @property
    def undecided(self) -> int:
        return sum(1 for m in self.matches if m.winner is None)

    def top(self, k: int) -> list[int]:
        return self.order[:k]

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "strategy": self.strategy,
            "tie_policy": self.tie_policy,
            "winner": self.winner,
            "decided": self.decided,
            "order": list(self.order),
            "candidates": [
                {"index": i, "rank": self.ranks[i], "score": round(self.scores[i], 4),
                 "wins": self.wins[i], "games": self.games[i]}
                for i in range(len(self.scores))
            ],
            "comparisons": [m.to_dict() for m in self.matches],
            "undecided": self.undecided,
            "usage": asdict(self.usage),
        }


def bradley_terry(
    n: int,
    outcomes: Sequence[tuple[int, int, float]],
    prior: float = 0.5,
    iterations: int = 1000,
    tolerance: float = 1e-9,
) -> list[float]:
    """Fit Bradley-Terry log-strengths with the MM algorithm.

    Args:
        n: number of candidates.
        outcomes: (i, j, s): i met j and scored s (1 win, 0 loss, 0.5 tie) against j.
        prior: virtual wins and virtual losses each candidate gets against a reference of
            strength 1; > 0 keeps every score finite.
        iterations, tolerance: MM stopping rule.

    Returns:
        log-strength per candidate (0 = the reference strength).

    Example:
        >>> s = bradley_terry(3, [(0, 1, 1.0), (1, 2, 1.0)])
        >>> s[0] > s[1] > s[2]
        True
    """
    if prior <= 0:
        raise ValueError(f"prior must be > 0 (finite scores), got {prior}")
    wins = [prior] * n
    pairs: dict[tuple[int, int], float] = {}
    for i, j, s in outcomes:
        if i == j or not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"bad outcome ({i}, {j}) for {n} candidates")
        wins[i] += s
        wins[j] += 1.0 - s
        key = (min(i, j), max(i, j))
        pairs[key] = pairs.get(key, 0.0) + 1.0
    strength = [1.0] * n
    for _ in range(iterations):
        denominators = [2.0 * prior / (strength[i] + 1.0) for i in range(n)]
        for (i, j), games in pairs.items():
            shared = games / (strength[i] + strength[j])
            denominators[i] += shared
            denominators[j] += shared
        updated = [wins[i] / denominators[i] for i in range(n)]
        change = max((abs(math.log(u) - math.log(s)) for u, s in zip(updated, strength)), default=0.0)
        strength = updated
        if change < tolerance:
            break
    return [math.log(s) for s in strength]


def _outcomes(matches: Sequence[Match], tie_policy: str) -> list[tuple[int, int, float]]:
    outcomes = []
    for match in matches:
        if match.winner is None:
            if tie_policy == "half":
                outcomes.append((match.a, match.b, 0.5))
            continue
        outcomes.append((match.a, match.b, 1.0 if match.winner == match.a else 0.0))
    return outcomes


class _Tournament:
    """Runs rounds of pairs through `compare_many` and keeps the matches and costs."""

    def __init__(self, images: Sequence[Any], compare_many: Callable[..., list[Comparison]],
                 progress: Optional[Progress], total: int):
        self.images = images
        self.compare_many = compare_many
        self.progress = progress
        self.total = total
        self.matches: list[Match] = []
        self.usage = Usage()

    def play(self, round_index: int, pairs: list[tuple[int, int]]) -> list[Match]:
        if not pairs:
            return []
        done_before = len(self.matches)

        def report(done: int, _total: int) -> None:
            if self.progress:
                self.progress(done_before + done, self.total)

        comparisons = self.compare_many([(self.images[a], self.images[b]) for a, b in pairs], progress=report)
        EngineContractError.check(
            "compare_many", len(comparisons), len(pairs), "comparisons", "pairs"
        )
        played = [Match(round_index, a, b, c) for (a, b), c in zip(pairs, comparisons)]
        for match in played:
            self.usage.add(match.comparison.usage)
        self.matches.extend(played)
        if self.progress:
            self.progress(len(self.matches), self.total)
        return played


def expected_comparisons(n: int, strategy: str, rounds: Optional[int] = None) -> int:
    """How many comparisons a strategy makes for n candidates.

    Example:
        >>> expected_comparisons(8, "knockout"), expected_comparisons(8, "round-robin")
        (7, 28)
    """
    return get_strategy(strategy).comparisons(n, rounds)


def rank_tournament(
    images: Sequence[Any],
    compare_many: Callable[..., list[Comparison]],
    strategy: str = "knockout",
    *,
    rounds: Optional[int] = None,
    tie_policy: str = "half",
    prior: float = 0.5,
    progress: Optional[Progress] = None,
) -> Ranking:
    """Rank candidates with a tournament of pairwise comparisons.

    Args:
        images: the candidates (whatever `compare_many` accepts; PIL images for an assessor).
        compare_many: `f(pairs, progress=...) -> list[Comparison]`, e.g. a bound
            `Assessor.compare_many` with the profile filled in (see `rerank`).
        strategy: a registered strategy name ("knockout", "round-robin", "swiss", ...).
        rounds: Swiss rounds (default ceil(log2 N) + 1).
        tie_policy: "half" or "skip" for undecided comparisons (see the module docstring).
        prior: Bradley-Terry prior strength.
        progress: called with (comparisons done, comparisons planned).

    Example:
        >>> ranking = rank_tournament(images, functools.partial(assessor.compare_many, profile=p))
        >>> ranking.winner, ranking.scores  # winner None: no comparison was decided
    """
    plan = get_strategy(strategy)
    if tie_policy not in TIE_POLICIES:
        raise ValueError(f"tie_policy must be one of {', '.join(TIE_POLICIES)}, got {tie_policy!r}")
    n = len(images)
    if n < 1:
        raise ValueError("rank_tournament needs at least one candidate")
    tournament = _Tournament(images, compare_many, progress, plan.comparisons(n, rounds))
    state = TournamentState(
        n, rounds, tie_policy, tournament.matches,
        strengths=lambda: bradley_terry(n, _outcomes(tournament.matches, tie_policy), prior),
    )
    for round_index, pairs in enumerate(plan.pairings(state), start=1):
        bad = [pair for pair in pairs if pair[0] == pair[1] or not all(0 <= c < n for c in pair)]
        if bad:
            raise ValueError(f"strategy {plan.name!r} paired {bad[0]} among {n} candidates")
        tournament.play(round_index, pairs)
    return ranking_from_matches(n, tournament.matches, plan.name, tie_policy, prior,
                                tournament.usage)


def ranking_from_matches(
    n: int,
    matches: list[Match],
    strategy: str,
    tie_policy: str = "half",
    prior: float = 0.5,
    usage: Optional[Usage] = None,
) -> Ranking:
    """The ranking that finished matches support: Bradley-Terry scores, wins and games.

    Also ranks a partial tournament (a run stopped midway): candidates with no game keep the
    prior's score and `games[i] == 0`, i.e. unranked, and come last.

    Example:
        >>> ranking_from_matches(3, matches_so_far, "knockout").games
        [1, 1, 0]
    """
    plan = get_strategy(strategy)
    scores = bradley_terry(n, _outcomes(matches, tie_policy), prior)
    wins = [0.0] * n
    games = [0] * n
    for a, b, s in _outcomes(matches, "half"):
        wins[a] += s
        wins[b] += 1.0 - s
        games[a] += 1
        games[b] += 1
    if any(m.winner is not None for m in matches):
        # Equal scores: the strategy's tiebreak (knockout: the round reached), wins, input order.
        # Unplayed candidates (a partial run) go last: no comparison says where they belong.
        tiebreak = plan.tiebreak(TournamentState(n, None, tie_policy, list(matches)))
        order = sorted(range(n), key=lambda i: (games[i] == 0, -round(scores[i], 9), -tiebreak[i],
                                                -wins[i], i))
    else:
        order = list(range(n))  # nothing decided: no candidate is better than another
    ranks = [0] * n
    for position, index in enumerate(order, start=1):
        ranks[index] = position
    if usage is None:
        usage = Usage()
        for match in matches:
            usage.add(match.comparison.usage)
    return Ranking(strategy, order, scores, ranks, wins, games, list(matches), tie_policy, usage)


def rerank(
    images: Sequence[Any],
    assessor: Any,
    *,
    strategy: str = "knockout",
    profile: Any = None,
    liked: Optional[Sequence[Any]] = None,
    disliked: Optional[Sequence[Any]] = None,
    rounds: Optional[int] = None,
    tie_policy: str = "half",
    progress: Optional[Progress] = None,
) -> Ranking:
    """Rank images for a user with an assessor (anything with `compare_many`).

    With `profile`, each comparison uses the assess-with-a-known-profile prompt (two images);
    without it, the authors' full prompt with `liked`/`disliked` references in every comparison.

    Example:
        >>> ranking = rerank(images, assessor, profile=prediction.profile, strategy="swiss")
        >>> images[ranking.winner]
    """
    if profile is None and not liked:
        raise ValueError("rerank needs a profile or liked reference images")

    def compare_many(pairs, progress=None):
        return assessor.compare_many(pairs, profile=profile, liked=liked, disliked=disliked, progress=progress)

    return rank_tournament(images, compare_many, strategy, rounds=rounds, tie_policy=tie_policy, progress=progress)
