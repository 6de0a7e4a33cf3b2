"""Best-of-N by pairwise assessment: tournaments and Bradley-Terry scores.

Strategies (N candidates):
- `knockout`: single elimination, N-1 comparisons in ceil(log2 N) rounds; odd fields give the
  last survivor a bye. Cheapest; finds the winner, ranks the rest coarsely.
- `round-robin`: every pair once, N(N-1)/2 comparisons in one round. Most information.
- `swiss`: `rounds` rounds (default ceil(log2 N) + 1) pairing candidates with equal points,
  avoiding rematches; N/2 comparisons per round.

Every round's comparisons go to the assessor's `compare_many` in one call, so HTTP engines run
them concurrently and in-process engines batch them.

Scores: a Bradley-Terry model fitted to all comparisons with the MM algorithm (Hunter 2004).
A weak prior (each candidate also plays `prior` virtual wins and `prior` virtual losses against a
reference of strength 1) keeps undefeated and winless candidates finite. `score` is the log
strength: a candidate with score s beats one with score t with probability 1 / (1 + e^(t - s)).

Undecided comparisons (`Comparison.winner is None`) follow `tie_policy`:
- "half" (default): half a win to each side in the fit and in Swiss points;
- "skip": left out of the fit.
In a knockout an undecided match still needs a survivor: the candidate with the higher summed
element score across the judged orders advances, and on equal totals the first one (A).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from preferthinker.results import Comparison, Usage

STRATEGIES = ("knockout", "round-robin", "swiss")
TIE_POLICIES = ("half", "skip")
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
    `wins[i]` and `games[i]` belong to candidate i.
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
    def winner(self) -> int:
        return self.order[0]

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


def _knockout_survivor(match: Match) -> int:
    if match.winner is not None:
        return match.winner
    total_a, total_b = match.totals()
    if total_a is not None and total_b is not None and total_b > total_a:
        return match.b
    return match.a


def _orient(i: int, j: int) -> tuple[int, int]:
    """Alternate which candidate is shown first, so position bias does not favour low indices."""
    return (i, j) if (i + j) % 2 == 0 else (j, i)


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
        if len(comparisons) != len(pairs):
            raise ValueError(f"compare_many returned {len(comparisons)} comparisons for {len(pairs)} pairs")
        played = [Match(round_index, a, b, c) for (a, b), c in zip(pairs, comparisons)]
        for match in played:
            self.usage.add(match.comparison.usage)
        self.matches.extend(played)
        if self.progress:
            self.progress(len(self.matches), self.total)
        return played


def _swiss_pairs(standing: list[int], played: set[tuple[int, int]], budget: int = 10_000) -> list[tuple[int, int]]:
    """Pair neighbours in the standings without rematches (depth-first, nearest partner first);
    when no rematch-free pairing exists, pair neighbours anyway."""
    steps = 0

    def search(unpaired: list[int]) -> Optional[list[tuple[int, int]]]:
        nonlocal steps
        if not unpaired:
            return []
        first, rest = unpaired[0], unpaired[1:]
        for partner in rest:
            steps += 1
            if steps > budget:
                return None
            if (min(first, partner), max(first, partner)) in played:
                continue
            tail = search([c for c in rest if c != partner])
            if tail is not None:
                return [(first, partner)] + tail
        return None

    found = search(standing)
    if found is not None:
        return found
    return [(standing[k], standing[k + 1]) for k in range(0, len(standing) - 1, 2)]


def expected_comparisons(n: int, strategy: str, rounds: Optional[int] = None) -> int:
    """How many comparisons a strategy makes for n candidates.

    Example:
        >>> expected_comparisons(8, "knockout"), expected_comparisons(8, "round-robin")
        (7, 28)
    """
    if strategy == "knockout":
        return max(n - 1, 0)
    if strategy == "round-robin":
        return n * (n - 1) // 2
    if strategy == "swiss":
        return swiss_rounds(n, rounds) * (n // 2)
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


def swiss_rounds(n: int, rounds: Optional[int] = None) -> int:
    if n < 2:
        return 0
    default = math.ceil(math.log2(n)) + 1
    return min(rounds if rounds is not None else default, n - 1)


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
        strategy: "knockout", "round-robin" or "swiss".
        rounds: Swiss rounds (default ceil(log2 N) + 1).
        tie_policy: "half" or "skip" for undecided comparisons (see the module docstring).
        prior: Bradley-Terry prior strength.
        progress: called with (comparisons done, comparisons planned).

    Example:
        >>> ranking = rank_tournament(images, functools.partial(assessor.compare_many, profile=p))
        >>> ranking.winner, ranking.scores
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if tie_policy not in TIE_POLICIES:
        raise ValueError(f"tie_policy must be one of {', '.join(TIE_POLICIES)}, got {tie_policy!r}")
    n = len(images)
    if n < 1:
        raise ValueError("rank_tournament needs at least one candidate")
    tournament = _Tournament(images, compare_many, progress, expected_comparisons(n, strategy, rounds))
    eliminated_in = [0] * n  # knockout: the round a candidate lost in (champion: past the last)
    if strategy == "knockout":
        alive = list(range(n))
        round_index = 0
        while len(alive) > 1:
            round_index += 1
            pairs = [_orient(alive[k], alive[k + 1]) for k in range(0, len(alive) - 1, 2)]
            bye = [alive[-1]] if len(alive) % 2 else []
            survivors = [_knockout_survivor(m) for m in tournament.play(round_index, pairs)]
            for a, b in pairs:
                loser = b if (a in survivors) else a
                eliminated_in[loser] = round_index
            alive = survivors + bye
        eliminated_in[alive[0]] = round_index + 1
    elif strategy == "round-robin":
        pairs = [_orient(i, j) for i in range(n) for j in range(i + 1, n)]
        tournament.play(1, pairs)
    else:
        points = [0.0] * n
        played: set[tuple[int, int]] = set()
        byes: set[int] = set()
        for round_index in range(1, swiss_rounds(n, rounds) + 1):
            scores = bradley_terry(n, _outcomes(tournament.matches, tie_policy), prior)
            standing = sorted(range(n), key=lambda i: (-points[i], -scores[i], i))
            if n % 2:
                # The lowest-standing candidate without a bye sits out (a point for pairing only).
                sitter = next((i for i in reversed(standing) if i not in byes), standing[-1])
                byes.add(sitter)
                points[sitter] += 1.0
                standing.remove(sitter)
            pairs = [_orient(a, b) for a, b in _swiss_pairs(standing, played)]
            played.update((min(a, b), max(a, b)) for a, b in pairs)
            for match in tournament.play(round_index, pairs):
                if match.winner is None:
                    if tie_policy == "half":
                        points[match.a] += 0.5
                        points[match.b] += 0.5
                else:
                    points[match.winner] += 1.0
    return ranking_from_matches(n, tournament.matches, strategy, tie_policy, prior, eliminated_in,
                                tournament.usage)


def ranking_from_matches(
    n: int,
    matches: list[Match],
    strategy: str,
    tie_policy: str = "half",
    prior: float = 0.5,
    eliminated_in: Optional[list[int]] = None,
    usage: Optional[Usage] = None,
) -> Ranking:
    """The ranking that finished matches support: Bradley-Terry scores, wins and games.

    Also ranks a partial tournament (a run stopped midway): candidates with no game keep the
    prior's score and `games[i] == 0`, i.e. unranked.

    Example:
        >>> ranking_from_matches(3, matches_so_far, "knockout").games
        [1, 1, 0]
    """
    eliminated_in = eliminated_in or [0] * n
    scores = bradley_terry(n, _outcomes(matches, tie_policy), prior)
    wins = [0.0] * n
    games = [0] * n
    for a, b, s in _outcomes(matches, "half"):
        wins[a] += s
        wins[b] += 1.0 - s
        games[a] += 1
        games[b] += 1
    # Ties in score: a knockout ranks by the round reached, then wins, then candidate order.
    # Unplayed candidates (a partial run) go last: no comparison says where they belong.
    def standing(i: int) -> tuple:
        return (games[i] == 0, -round(scores[i], 9), -eliminated_in[i], -wins[i], i)

    order = sorted(range(n), key=standing)
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
