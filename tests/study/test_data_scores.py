"""The study's "fixed" score targets: one score per relation, and totals that favour the answer."""

from __future__ import annotations

import json

import pytest

from preferthinker.parser import parse_output
from preferthinker.profile import Profile, UserProfile
from training.study.data import FIXED_SCORES, StudyDataConfig, build_study_data, fixed_scores


def test_fixed_scores_follow_the_relation():
    up = UserProfile(liked=Profile(color=("Pink",), detail=("Fine",)), disliked=Profile(color=("Gray",)))
    scores = {s.element: (s.score_a, s.score_b) for s in fixed_scores(up, {"color": "Gray", "detail": "Fine"},
                                                                       {"color": "Pink", "detail": "Busy"})}
    assert scores["color"] == (FIXED_SCORES["disliked"], FIXED_SCORES["liked"])
    assert scores["detail"] == (FIXED_SCORES["liked"], FIXED_SCORES["neutral"])
    assert scores["art_style"] == (FIXED_SCORES["unknown"], FIXED_SCORES["unknown"])


def test_unknown_score_mode_is_refused():
    with pytest.raises(ValueError, match="scores"):
        StudyDataConfig(scores="noisy")


def test_unknown_describe_mode_is_refused():
    with pytest.raises(ValueError, match="describe must be one of none, profile, candidates"):
        StudyDataConfig(describe=True)  # type: ignore[arg-type]


def test_fixed_targets_are_deterministic_and_favour_the_answer(tmp_path):
    config = StudyDataConfig(seed=0, train_users=4, train_pairs=2, eval_users=1, eval_pairs=1, scores="fixed")
    build_study_data(tmp_path, config)
    lines = (tmp_path / "train" / "train.jsonl").read_text().splitlines()
    assert lines
    for line in lines:
        record = json.loads(line)
        target = record["messages"][-1]["content"][0]["text"]
        parsed = parse_output(target)
        values = {v for s in parsed.scores for v in (s.score_a, s.score_b)}
        assert values <= set(FIXED_SCORES.values())
        totals = {"A": sum(s.score_a for s in parsed.scores), "B": sum(s.score_b for s in parsed.scores)}
        other = "B" if parsed.answer == "A" else "A"
        assert totals[parsed.answer] > totals[other]


@pytest.mark.parametrize("describe", ["profile", "candidates"])
def test_described_targets_restate_the_profile_and_score_the_candidates_true_terms(tmp_path, describe):
    config = StudyDataConfig(seed=0, train_users=4, train_pairs=2, eval_users=1, eval_pairs=1, scores="fixed",
                             describe=describe)
    build_study_data(tmp_path, config)
    records = [json.loads(line) for line in (tmp_path / "train" / "train.jsonl").read_text().splitlines()]
    assert records
    for record in records:
        target = record["messages"][-1]["content"][0]["text"]
        meta = json.loads((tmp_path / "train" / "samples" / f"{record['id']}.json").read_text())["meta"]
        parsed = parse_output(target)
        assert parsed.complete and parsed.answer == record["answer"]
        for line, score in zip(target.split("<think>")[1].splitlines()[1:6], parsed.scores):
            term_a, term_b = meta["attributes_a"][score.element], meta["attributes_b"][score.element]
            up = UserProfile.from_dict(record["profile"])
            liked, disliked = (", ".join(side.terms(score.element)) for side in (up.liked, up.disliked))
            named = f"{term_a} vs {term_b}; " if describe == "candidates" else ""
            assert f": {liked} / {disliked}; {named}Image A(" in line
            # The score the named term earns against the true profile: 5 liked, 0 disliked, else 2.
            def earned(term, liked_terms=up.liked.terms(score.element),
                       disliked_terms=up.disliked.terms(score.element)):
                low = (term or "").lower()
                if low and low in {t.lower() for t in liked_terms}:
                    return 5
                return 0 if low and low in {t.lower() for t in disliked_terms} else 2

            assert (score.score_a, score.score_b) == (earned(term_a), earned(term_b))
