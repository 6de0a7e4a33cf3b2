"""Tournaments and Bradley-Terry scores, with a scripted judge (no model)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings, strategies as st

from generation.rerank import (
    STRATEGIES,
    bradley_terry,
    expected_comparisons,
    rank_tournament,
    rerank,
)
from preferthinker.results import Comparison, ParsedOutput, Usage


def judge_by_utility(utility, calls=None, undecided=frozenset(), noise=0.0, rng=None):
    """compare_many over candidate indices: the higher utility wins (optionally noisy)."""

    def compare_many(pairs, progress=None):
        if calls is not None:
            calls.append(list(pairs))
        out = []
        for k, (a, b) in enumerate(pairs):
            if (min(a, b), max(a, b)) in undecided:
                out.append(Comparison(None, usage=Usage(calls=1, images=2)))
                continue
            ua, ub = utility[a], utility[b]
            if noise and rng is not None:
                ua += rng.gauss(0, noise)
                ub += rng.gauss(0, noise)
            winner = "A" if ua > ub else "B"
            parsed = ParsedOutput(total_a=int(ua), total_b=int(ub), answer=winner)
            out.append(Comparison(winner, [parsed], usage=Usage(calls=1, images=2)))
            if progress:
                progress(k + 1, len(pairs))
        return out

    return compare_many


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_best_candidate_wins_and_every_candidate_is_ranked(strategy, n):
    utility = [random.Random(n).random() for _ in range(n)]
    utility = [random.Random(n * 10 + i).random() for i in range(n)]
    calls = []
    ranking = rank_tournament(list(range(n)), judge_by_utility(utility, calls), strategy)
    best = max(range(n), key=lambda i: utility[i])
    assert ranking.winner == best
    assert sorted(ranking.order) == list(range(n))
    assert sorted(ranking.ranks) == list(range(1, n + 1))
    assert all(math.isfinite(s) for s in ranking.scores)
    assert len(ranking.matches) == expected_comparisons(n, strategy)
    assert ranking.usage.calls == len(ranking.matches)


def test_round_robin_recovers_the_full_order_and_uses_one_call():
    utility = [3, 7, 1, 9, 4, 6]
    calls = []
    ranking = rank_tournament(list(range(6)), judge_by_utility(utility, calls), "round-robin")
    assert ranking.order == sorted(range(6), key=lambda i: -utility[i])
    assert len(calls) == 1 and len(calls[0]) == 15


def test_knockout_sends_each_round_in_one_call():
    calls = []
    rank_tournament(list(range(8)), judge_by_utility(list(range(8)), calls), "knockout")
    assert [len(c) for c in calls] == [4, 2, 1]


def test_knockout_positions_alternate_so_index_order_is_not_always_image_a():
    calls = []
    rank_tournament(list(range(8)), judge_by_utility(list(range(8)), calls), "knockout")
    matches = [pair for call in calls for pair in call]
    assert len(matches) == 7  # every knockout match, over the three rounds
    firsts = [a < b for a, b in matches]
    assert 0 < sum(firsts) < len(firsts)


def test_swiss_avoids_rematches_and_finds_winner():
    calls = []
    utility = [5, 2, 8, 1, 7, 3, 6, 4]
    ranking = rank_tournament(list(range(8)), judge_by_utility(utility, calls), "swiss")
    pairs = [(min(m.a, m.b), max(m.a, m.b)) for m in ranking.matches]
    assert len(pairs) == len(set(pairs))
    assert ranking.winner == 2
    assert len(calls) == 4  # ceil(log2 8) + 1 rounds, one call each


def test_undecided_counts_as_half_or_is_skipped():
    utility = [1, 2]
    undecided = {(0, 1)}
    half = rank_tournament([0, 1], judge_by_utility(utility, undecided=undecided), "round-robin")
    assert half.wins == [0.5, 0.5] and half.undecided == 1
    assert half.scores[0] == pytest.approx(half.scores[1])
    skip = rank_tournament([0, 1], judge_by_utility(utility, undecided=undecided), "round-robin", tie_policy="skip")
    assert skip.scores == pytest.approx([0.0, 0.0])


def test_knockout_undecided_match_still_advances_someone():
    undecided = {(0, 1)}
    ranking = rank_tournament(list(range(4)), judge_by_utility([1, 0, 3, 2], undecided=undecided), "knockout")
    assert ranking.winner == 2
    assert len(ranking.matches) == 3


def test_bradley_terry_undefeated_is_finite_and_highest():
    scores = bradley_terry(3, [(0, 1, 1.0), (0, 2, 1.0), (1, 2, 1.0)])
    assert all(math.isfinite(s) for s in scores)
    assert scores[0] > scores[1] > scores[2]
    with pytest.raises(ValueError, match="prior"):
        bradley_terry(2, [(0, 1, 1.0)], prior=0)


def test_bradley_terry_matches_known_probabilities():
    # 0 beats 1 in 75 of 100 games: the fitted win probability approaches 0.75.
    outcomes = [(0, 1, 1.0)] * 75 + [(0, 1, 0.0)] * 25
    s = bradley_terry(2, outcomes, prior=0.01)
    assert 1 / (1 + math.exp(s[1] - s[0])) == pytest.approx(0.75, abs=0.01)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=9, unique=True),
       st.sampled_from(STRATEGIES))
def test_noiseless_judge_always_crowns_the_best(utility, strategy):
    ranking = rank_tournament(list(range(len(utility))), judge_by_utility(utility), strategy)
    assert ranking.winner == max(range(len(utility)), key=lambda i: utility[i])


def test_rerank_passes_profile_or_references_to_the_assessor():
    seen = {}

    class FakeAssessor:
        def compare_many(self, pairs, *, profile=None, liked=None, disliked=None, progress=None):
            seen.update(profile=profile, liked=liked)
            return [Comparison("A") for _ in pairs]

    rerank([1, 2, 3], FakeAssessor(), profile="P")
    assert seen["profile"] == "P"
    rerank([1, 2, 3], FakeAssessor(), liked=["x"])
    assert seen["liked"] == ["x"] and seen["profile"] is None
    with pytest.raises(ValueError, match="profile or liked"):
        rerank([1, 2], FakeAssessor())


def test_bad_strategy_is_named():
    with pytest.raises(ValueError, match="strategy"):
        rank_tournament([1, 2], judge_by_utility([1, 2]), "ladder")
