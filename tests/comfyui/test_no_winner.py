"""The Rerank Images node when no comparison is decided (issue 21, point 5), and its choices
coming from the strategy registry."""

from __future__ import annotations

import json

import pytest

from comfyui_nodes import NODE_CLASS_MAPPINGS
from comfyui_nodes import functions as f
from generation.rerank import NO_WINNER
from generation.strategies import Knockout, register_strategy, unregister_strategy
from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.engines.scripted import ScriptedEngine

from .conftest import PROFILE


@pytest.mark.parametrize("strategy", ["knockout", "round-robin", "swiss"])
def test_rerank_node_with_nothing_decided_keeps_the_batch_and_says_no_winner(red_batch, strategy):
    blank = Assessor(
        ScriptedEngine(["I cannot tell."]), AssessorConfig(assessor="scripted", max_retries=0)
    )
    best, ranked, scores, reasoning, best_index = f.rerank_images(
        blank, red_batch, strategy=strategy, profile=PROFILE
    )
    summary = json.loads(scores)
    assert summary["best"] is None and summary["decided"] is False
    assert summary["order"] == [0, 1, 2, 3, 4] and best_index == 0
    assert bool((ranked == red_batch).all()) and bool((best[0] == red_batch[0]).all())
    assert reasoning.splitlines()[0] == f"{strategy}: {NO_WINNER}"


def test_rerank_node_choices_follow_the_strategy_registry():
    cls = NODE_CLASS_MAPPINGS["PTGenRerankImages"]
    choices = cls.INPUT_TYPES()["required"]["strategy"][0]
    assert choices == ["knockout", "round-robin", "swiss"]

    class Single(Knockout):
        name = "single-test"

    register_strategy(Single())
    try:
        assert cls.INPUT_TYPES()["required"]["strategy"][0][-1] == "single-test"
    finally:
        unregister_strategy("single-test")
