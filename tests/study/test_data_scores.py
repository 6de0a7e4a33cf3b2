"""The study's "fixed" score targets: one score per relation, and totals that favour the answer."""

from __future__ import annotations

import json

import pytest

from preferthinker.parser import parse_output
from preferthinker.profile import Profile, UserProfile
from training.study.data import FIXED_SCORES, StudyDataConfig, build_study_data, fixed_scores


def test_fixed_scores_follow_the_relation():
    up = UserProfile(
        liked=Profile(color=("Pink",), detail=("Fine",)), disliked=Profile(color=("Gray",))
    )
    scores = {
        s.element: (s.score_a, s.score_b)
        for s in fixed_scores(
            up, {"color": "Gray", "detail": "Fine"}, {"color": "Pink", "detail": "Busy"}
        )
    }
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
    config = StudyDataConfig(
        seed=0, train_users=4, train_pairs=2, eval_users=1, eval_pairs=1, scores="fixed"
    )
    build_study_data(tmp_path, config)
    lines = (tmp_path / "train" / "train.jsonl").read_text().splitlines()
    assert lines
    for line in lines:
        record = json.loads(line)
        target = record["messages"][-1]["content"][0]["text"]
        parsed = parse_output(target)
        values = {v for s in parsed.scores for v in (s.score_a, s.score_b)}
        assert values <= set(FIXED_SCORES.values())
        totals = {
            "A": sum(s.score_a for s in parsed.scores),
            "B": sum(s.score_b for s in parsed.scores),
        }
        other = "B" if parsed.answer == "A" else "A"
        assert totals[parsed.answer] > totals[other]


@pytest.mark.parametrize("describe", ["profile", "candidates", "observed"])
def test_described_targets_restate_the_profile_and_score_the_candidates_true_terms(
    tmp_path, describe
):
    config = StudyDataConfig(
        seed=0,
        train_users=4,
        train_pairs=2,
        eval_users=1,
        eval_pairs=1,
        scores="fixed",
        describe=describe,
    )
    build_study_data(tmp_path, config)
    records = [
        json.loads(line) for line in (tmp_path / "train" / "train.jsonl").read_text().splitlines()
    ]
    assert records
    for record in records:
        target = record["messages"][-1]["content"][0]["text"]
        meta = json.loads((tmp_path / "train" / "samples" / f"{record['id']}.json").read_text())[
            "meta"
        ]
        parsed = parse_output(target)
        assert parsed.complete and parsed.answer == record["answer"]
        for line, score in zip(target.split("<think>")[1].splitlines()[1:6], parsed.scores):
            term_a, term_b = (
                meta["attributes_a"][score.element],
                meta["attributes_b"][score.element],
            )
            up = UserProfile.from_dict(record["profile"])
            liked, disliked = (
                ", ".join(side.terms(score.element)) for side in (up.liked, up.disliked)
            )
            if describe == "observed":  # each candidate's term right before its own score
                assert f": {liked} / {disliked}; {term_a}: Image A(" in line
                assert f"); {term_b}: Image B(" in line
            else:
                named = f"{term_a} vs {term_b}; " if describe == "candidates" else ""
                assert f": {liked} / {disliked}; {named}Image A(" in line

            # The score the named term earns against the true profile: 5 liked, 0 disliked, else 2.
            def earned(
                term,
                liked_terms=up.liked.terms(score.element),
                disliked_terms=up.disliked.terms(score.element),
            ):
                low = (term or "").lower()
                if low and low in {t.lower() for t in liked_terms}:
                    return 5
                return 0 if low and low in {t.lower() for t in disliked_terms} else 2

            assert (score.score_a, score.score_b) == (earned(term_a), earned(term_b))


def _train_records(root):
    records = []
    for line in (root / "train" / "train.jsonl").read_text().splitlines():
        record = json.loads(line)
        meta = json.loads((root / "train" / "samples" / f"{record['id']}.json").read_text())
        records.append((record, meta["meta"]))
    return records


def test_same_colour_share_makes_colour_undecidable_for_that_share_of_users(tmp_path):
    config = StudyDataConfig(
        seed=0,
        train_users=40,
        train_pairs=2,
        eval_users=1,
        eval_pairs=1,
        scores="fixed",
        describe="profile",
        same_colour_share=0.5,
    )
    build_study_data(tmp_path / "half", config)
    records = _train_records(tmp_path / "half")
    shared_users = {r["user_id"] for r, meta in records if meta["shared"] == ["color"]}
    users = {r["user_id"] for r, _ in records}
    assert 0.25 < len(shared_users) / len(users) < 0.75  # 50 % of users, drawn per user
    for record, meta in records:
        if record["user_id"] in shared_users:
            # one colour on both sides: the other elements decide, and the target says so
            assert meta["attributes_a"]["color"] == meta["attributes_b"]["color"]
            assert "color" not in meta["mismatched"] and meta["mismatched"]
            color = parse_output(record["messages"][-1]["content"][0]["text"]).scores[1]
            assert color.element == "color" and color.score_a == color.score_b
    # Without the option the training pairs are SynthPref's own, where colour often decides.
    build_study_data(
        tmp_path / "none", config.__class__(**{**config.__dict__, "same_colour_share": 0})
    )
    plain = _train_records(tmp_path / "none")
    assert all(meta["shared"] == [] for _, meta in plain)
    assert sum("color" in meta["mismatched"] for _, meta in plain) > len(plain) / 3


def test_same_colour_share_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="same_colour_share"):
        StudyDataConfig(same_colour_share=1.5)
