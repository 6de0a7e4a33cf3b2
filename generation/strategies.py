"""Tournament strategies, one object each, and the registry that names them.

A strategy decides who meets whom. `pairings(state)` is a generator that yields the pairs of one
round at a time; `generation.rerank.rank_tournament` plays each round (one `compare_many` call)
and appends its matches to `state.matches` before asking for the next round, so a strategy can
pair by the results so far. `comparisons(n, rounds)` states how many comparisons it makes for n
candidates (progress bars and cost estimates use it, and a test holds every strategy to it).
`tiebreak(state)` may rank candidates with equal scores (knockout: the round reached).

Built in (N candidates):
- `knockout`: single elimination, N-1 comparisons in ceil(log2 N) rounds; odd fields give the
  last survivor a bye. Cheapest; finds the winner, ranks the rest coarsely.
- `round-robin`: every pair once, N(N-1)/2 comparisons in one round. Most information.
- `swiss`: `rounds` rounds (default ceil(log2 N) + 1) pairing candidates with equal points,
  avoiding rematches; N/2 comparisons per round.

Adding a strategy: a `Strategy` subclass here (or in a plugin) and one `register_strategy` line;
the CLI's `--strategy` help, the ComfyUI node's choices and `LoopConfig` read this registry.

Example:
    >>> [s.name for s in strategies()]
    ['knockout', 'round-robin', 'swiss']
    >>> get_strategy("knockout").comparisons(8)
    7
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from preferthinker.errors import InputError

Pair = tuple[int, int]


@dataclass
class TournamentState:
    """What a strategy sees while it pairs: the field and the matches played so far.

    Args:
        n: number of candidates (indices 0..n-1).
        rounds: the rounds the caller asked for (None: the strategy's default; Swiss uses it).
        tie_policy: "half" or "skip" for undecided matches (see `generation.rerank`).
        matches: `generation.rerank.Match` objects (a, b, round, winner, totals()), in play order.
        strengths: Bradley-Terry log-strengths of the matches so far (a function: fitted on demand).
    """

    n: int
    rounds: Optional[int] = None
    tie_policy: str = "half"
    matches: list[Any] = field(default_factory=list)
    strengths: Callable[[], list[float]] = lambda: []


class Strategy(ABC):
    """One way to run a tournament. Subclasses set `name` and `summary` and implement
    `pairings` and `comparisons`."""

    name: str = ""
    summary: str = ""  # one clause for help texts, e.g. "N-1 comparisons"

    @abstractmethod
    def pairings(self, state: TournamentState) -> Iterator[list[Pair]]:
        """Yield the pairs (a, b) of each round; `state.matches` holds every result before the
        next round is asked for. Candidate `a` is shown as Image A."""

    @abstractmethod
    def comparisons(self, n: int, rounds: Optional[int] = None) -> int:
        """How many comparisons this strategy makes for n candidates."""

    def tiebreak(self, state: TournamentState) -> list[float]:
        """Per candidate, higher ranks first among equal scores (default: no preference)."""
        return [0.0] * state.n


def orient(i: int, j: int) -> Pair:
    """Alternate which candidate is shown first, so position bias does not favour low indices."""
    return (i, j) if (i + j) % 2 == 0 else (j, i)


def last_round(state: TournamentState, pairs: list[Pair]) -> list[Any]:
    """The matches of the round just played (the last `len(pairs)` of `state.matches`)."""
    return state.matches[len(state.matches) - len(pairs) :]


def survivor(match: Any) -> int:
    """Who goes on from a knockout match: the winner; when undecided, the higher summed element
    score across the judged orders, and on equal totals the first shown (A)."""
    if match.winner is not None:
        return match.winner
    total_a, total_b = match.totals()
    if total_a is not None and total_b is not None and total_b > total_a:
        return match.b
    return match.a


class Knockout(Strategy):
    name = "knockout"
    summary = "N-1 comparisons"

    def pairings(self, state: TournamentState) -> Iterator[list[Pair]]:
        alive = list(range(state.n))
        while len(alive) > 1:
            pairs = [orient(alive[k], alive[k + 1]) for k in range(0, len(alive) - 1, 2)]
            bye = [alive[-1]] if len(alive) % 2 else []
            yield pairs
            alive = [survivor(m) for m in last_round(state, pairs)] + bye

    def comparisons(self, n: int, rounds: Optional[int] = None) -> int:
        return max(n - 1, 0)

    def tiebreak(self, state: TournamentState) -> list[float]:
        """The round each candidate reached: the round it lost in (champion: one past the last)."""
        reached = [0.0] * state.n
        for match in state.matches:
            went_on = survivor(match)
            for candidate in (match.a, match.b):
                reached[candidate] = match.round + (1 if candidate == went_on else 0)
        return reached


class RoundRobin(Strategy):
    name = "round-robin"
    summary = "every pair, N(N-1)/2 comparisons"

    def pairings(self, state: TournamentState) -> Iterator[list[Pair]]:
        pairs = [orient(i, j) for i in range(state.n) for j in range(i + 1, state.n)]
        if pairs:
            yield pairs

    def comparisons(self, n: int, rounds: Optional[int] = None) -> int:
        return n * (n - 1) // 2


def swiss_rounds(n: int, rounds: Optional[int] = None) -> int:
    """Swiss rounds for n candidates: `rounds` (default ceil(log2 n) + 1), at most n - 1."""
    if n < 2:
        return 0
    default = math.ceil(math.log2(n)) + 1
    return min(rounds if rounds is not None else default, n - 1)


def _swiss_pairs(standing: list[int], played: set[Pair], budget: int = 10_000) -> list[Pair]:
    """Pair neighbours in the standings without rematches (depth-first, nearest partner first);
    when no rematch-free pairing exists, pair neighbours anyway."""
    steps = 0

    def search(unpaired: list[int]) -> Optional[list[Pair]]:
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


class Swiss(Strategy):
    name = "swiss"
    summary = "pairs by points for ceil(log2 N)+1 rounds, N/2 comparisons each"

    def pairings(self, state: TournamentState) -> Iterator[list[Pair]]:
        n = state.n
        points = [0.0] * n
        played: set[Pair] = set()
        byes: set[int] = set()
        for _ in range(swiss_rounds(n, state.rounds)):
            strengths = state.strengths()
            standing = sorted(range(n), key=lambda i: (-points[i], -strengths[i], i))
            if n % 2:
                # The lowest-standing candidate without a bye sits out (a point for pairing only).
                sitter = next((i for i in reversed(standing) if i not in byes), standing[-1])
                byes.add(sitter)
                points[sitter] += 1.0
                standing.remove(sitter)
            pairs = [orient(a, b) for a, b in _swiss_pairs(standing, played)]
            played.update((min(a, b), max(a, b)) for a, b in pairs)
            yield pairs
            for match in last_round(state, pairs):
                if match.winner is not None:
                    points[match.winner] += 1.0
                elif state.tie_policy == "half":
                    points[match.a] += 0.5
                    points[match.b] += 0.5

    def comparisons(self, n: int, rounds: Optional[int] = None) -> int:
        return swiss_rounds(n, rounds) * (n // 2)


# The registry: one entry per built-in strategy; `register_strategy` adds others at run time.
_STRATEGIES: dict[str, Strategy] = {s.name: s for s in (Knockout(), RoundRobin(), Swiss())}


def register_strategy(strategy: Strategy) -> None:
    """Add a strategy under its `name` (a new name; a plugin or a test may add one at run time).

    Example:
        >>> register_strategy(Ladder())  # doctest: +SKIP
    """
    if not strategy.name:
        raise InputError(f"{type(strategy).__name__} has no name")
    if strategy.name in _STRATEGIES:
        raise InputError(f"a strategy called {strategy.name!r} is already registered")
    _STRATEGIES[strategy.name] = strategy


def unregister_strategy(name: str) -> None:
    """Remove a strategy (for tests and plugins that added one)."""
    _STRATEGIES.pop(name, None)


def strategies() -> list[Strategy]:
    """Every registered strategy, in registration order."""
    return list(_STRATEGIES.values())


def get_strategy(name: str) -> Strategy:
    """The strategy called `name`.

    Raises:
        InputError: no such strategy; the message lists the valid ones.

    Example:
        >>> get_strategy("swiss").comparisons(8)
        16
    """
    strategy = _STRATEGIES.get(name) if isinstance(name, str) else None
    if strategy is None:
        raise InputError(f"strategy must be one of {', '.join(_STRATEGIES)}, got {name!r}")
    return strategy


def describe_strategies() -> str:
    """The strategies for a help text: "knockout (N-1 comparisons), round-robin (...), ...".

    Example:
        >>> describe_strategies().startswith("knockout (N-1 comparisons)")
        True
    """
    return ", ".join(f"{s.name} ({s.summary})" if s.summary else s.name for s in strategies())


class StrategyNames(Sequence):
    """The registered strategy names as a live, read-only sequence (`"swiss" in STRATEGIES`),
    so a strategy registered later is valid everywhere the names are checked."""

    def __getitem__(self, index):  # type: ignore[override]
        return list(_STRATEGIES)[index]

    def __len__(self) -> int:
        return len(_STRATEGIES)

    def __repr__(self) -> str:
        return repr(tuple(_STRATEGIES))


STRATEGIES = StrategyNames()
