"""The strategy registry, each strategy's stated cost, and tournaments where nothing is decided."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from generation.rerank import NO_WINNER, STRATEGIES, rank_tournament
from generation.strategies import (
    Strategy,
    describe_strategies,
    get_strategy,
    register_strategy,
    strategies,
    unregister_strategy,
)
from preferthinker.errors import EngineContractError, InputError
from preferthinker.results import Comparison, ParsedOutput, Usage
from ptgen.cli.main import main


def undecided(totals=None):
    """compare_many that decides nothing; `totals(a, b)` may give element totals (knockout uses
    them to pick who goes on, so they must not pick a winner)."""

    def compare_many(pairs, progress=None):
        out = []
        for a, b in pairs:
            total_a, total_b = totals(a, b) if totals else (None, None)
            parsed = [ParsedOutput(total_a=total_a, total_b=total_b)] if totals else []
            out.append(Comparison(None, parsed, usage=Usage(calls=1)))
        return out

    return compare_many


def test_registry_lists_the_builtins_and_rejects_unknown_names_in_one_line():
    assert [s.name for s in strategies()] == ["knockout", "round-robin", "swiss"]
    assert list(STRATEGIES) == ["knockout", "round-robin", "swiss"]
    assert describe_strategies().startswith("knockout (N-1 comparisons), round-robin (")
    with pytest.raises(InputError) as error:
        get_strategy("best-of-three")
    message = str(error.value)
    assert "\n" not in message and "best-of-three" in message
    assert "knockout, round-robin, swiss" in message
    with pytest.raises(InputError, match="strategy must be one of"):
        rank_tournament([0, 1], undecided(), "best-of-three")
    with pytest.raises(InputError, match="already registered"):
        register_strategy(get_strategy("swiss"))


@pytest.mark.parametrize("name", ["knockout", "round-robin", "swiss"])
@pytest.mark.parametrize("n", range(1, 13))
def test_each_strategy_makes_the_comparisons_it_states(name, n):
    def decided(pairs, progress=None):
        return [Comparison("A" if (a * 7 + b) % 3 else "B", usage=Usage(calls=1)) for a, b in pairs]

    ranking = rank_tournament(list(range(n)), decided, name)
    assert len(ranking.matches) == get_strategy(name).comparisons(n)
    assert all(m.a != m.b for m in ranking.matches)


@pytest.mark.parametrize("tie_policy", ["half", "skip"])
@pytest.mark.parametrize("name", ["knockout", "round-robin", "swiss"])
def test_nothing_decided_means_no_winner_and_the_input_order(name, tie_policy):
    # Totals favour the later candidate, which would reorder a knockout's survivors (and used
    # to make candidate 4 "best"): with nothing decided, no strategy may rank anyone first.
    judge = undecided(lambda a, b: (a, b))
    ranking = rank_tournament(list(range(5)), judge, name, tie_policy=tie_policy)
    assert ranking.matches and ranking.undecided == len(ranking.matches)
    assert ranking.decided is False and ranking.winner is None
    assert ranking.order == [0, 1, 2, 3, 4] and ranking.ranks == [1, 2, 3, 4, 5]
    data = ranking.to_dict()
    assert data["winner"] is None and data["decided"] is False and data["order"] == [0, 1, 2, 3, 4]


def test_one_decided_match_is_enough_for_a_winner():
    def one_decided(pairs, progress=None):  # only 4 against 3 is decided: 4 wins
        winner = {(4, 3): "A", (3, 4): "B"}
        return [Comparison(winner.get((a, b)), usage=Usage(calls=1)) for a, b in pairs]

    ranking = rank_tournament(list(range(5)), one_decided, "round-robin")
    assert ranking.decided is True and ranking.undecided == 9
    assert ranking.winner == ranking.order[0] == 4
    # a lone candidate wins unopposed
    assert rank_tournament([0], undecided(), "knockout").winner == 0


def _solid(folder, colors):
    folder.mkdir()
    for k, color in enumerate(colors):
        Image.new("RGB", (24, 24), color).save(folder / f"{k}.png")
    return folder


@pytest.mark.parametrize("name", ["knockout", "round-robin", "swiss"])
def test_cli_says_no_winner_when_nothing_is_decided(tmp_path, capsys, name):
    """`--assessor scripted` answers nothing usable, so every match is undecided."""
    shots = _solid(tmp_path / "shots", [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)])
    refs = _solid(tmp_path / "refs", [(240, 10, 10)])
    out = tmp_path / "run"
    code = main(
        [
            "rerank",
            str(shots),
            "--refs",
            str(refs),
            "--assessor",
            "scripted",
            "--strategy",
            name,
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "no comparison was decided: no winner" in captured.err + captured.out
    assert "best first" not in captured.out
    data = json.loads((out / "result.json").read_text())
    assert data["best"] is None and data["ranking"]["winner"] is None
    assert data["ranking"]["order"] == [0, 1, 2, 3]
    assert [c["source"] for c in data["candidates"]] == [str(shots / f"{k}.png") for k in range(4)]
    assert NO_WINNER in data["issues"]
    assert NO_WINNER in (out / "report.html").read_text()


def test_compare_many_returning_the_wrong_count_is_a_contract_error():
    def short(pairs, progress=None):
        return [Comparison("A")] * (len(pairs) - 1)

    message = "compare_many returned 1 comparisons for 2 pairs"
    with pytest.raises(EngineContractError, match=message):
        rank_tournament(list(range(4)), short, "knockout")


def test_a_strategy_that_pairs_a_candidate_with_itself_is_refused():
    class Mirror(Strategy):
        name = "mirror-test"

        def pairings(self, state):
            yield [(0, 0)]

        def comparisons(self, n, rounds=None):
            return 1

    register_strategy(Mirror())
    try:
        with pytest.raises(ValueError, match="strategy 'mirror-test' paired"):
            rank_tournament([0, 1], undecided(), "mirror-test")
    finally:
        unregister_strategy("mirror-test")
    assert "mirror-test" not in STRATEGIES
