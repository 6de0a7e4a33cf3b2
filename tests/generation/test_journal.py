"""The run journal: partial runs keep what finished, and --resume computes nothing twice.

A scripted assessor (deterministic: the redder image wins) and a fake generator stand in for
the models; the journal, the loop, the tournament and the report are the real ones.
"""

from __future__ import annotations

import json

import pytest

from generation.journal import Journal, read_records
from generation.loop import LoopConfig, PersonalizedGenerator, RunInterrupted
from generation.report import write_run
from preferthinker.errors import EngineError, InputError

from .conftest import SolidGenerator, redness_responder


class CountingResponder:
    """`redness_responder`, counting profile and comparison calls; fails at comparison `fail_at`."""

    def __init__(self, fail_at=None, error=KeyboardInterrupt):
        self.profiles = 0
        self.comparisons = 0
        self.fail_at = fail_at
        self.error = error

    def __call__(self, conversation):
        texts = [
            p.get("text", "")
            for m in conversation
            if isinstance(m["content"], list)
            for p in m["content"]
        ]
        if "Image A" not in texts:
            self.profiles += 1
        else:
            if self.fail_at is not None and self.comparisons + 1 == self.fail_at:
                raise (
                    self.error("the server went away")
                    if self.error is EngineError
                    else self.error()
                )
            self.comparisons += 1
        return redness_responder(conversation)


def assessor_with(responder):
    from preferthinker.assessor import Assessor, AssessorConfig
    from preferthinker.engines.scripted import ScriptedEngine

    # batch_size 1: each comparison is its own engine call, so a failure loses none of the others.
    return Assessor(ScriptedEngine(responder), AssessorConfig(assessor="scripted", batch_size=1))


def loop_with(responder, strategy, n=7, generator=None):
    config = LoopConfig(n=n, strategy=strategy, cache=False)
    return PersonalizedGenerator(assessor_with(responder), generator or SolidGenerator(), config)


def run_in(folder, loop, refs_dir):
    folder.mkdir(exist_ok=True)
    journal = Journal.open(folder)
    try:
        return loop.run("a castle", refs_dir / "liked", refs_dir / "disliked", journal=journal)
    finally:
        journal.close()


@pytest.mark.parametrize("strategy", ["knockout", "round-robin", "swiss"])
@pytest.mark.parametrize("error", [KeyboardInterrupt, EngineError])
def test_resume_after_a_failed_comparison_reaches_the_uninterrupted_ranking(
    strategy, error, refs_dir, tmp_path
):
    whole = CountingResponder()
    reference = run_in(tmp_path / "whole", loop_with(whole, strategy), refs_dir)
    assert reference.status == "complete"

    first = CountingResponder(fail_at=4, error=error)
    folder = tmp_path / "run"
    expected = RunInterrupted if error is KeyboardInterrupt else EngineError
    with pytest.raises(expected) as caught:
        run_in(folder, loop_with(first, strategy), refs_dir)
    partial = caught.value.result if error is KeyboardInterrupt else caught.value.partial_result
    assert partial.status == "partial" and first.comparisons == 3
    assert len(partial.ranking.matches) == 3 and sum(partial.ranking.games) == 6
    assert set(partial.unranked) == {i for i in range(7) if partial.ranking.games[i] == 0}
    records = read_records(folder / "journal.jsonl")
    assert [r["kind"] for r in records].count("comparison") == 3
    assert records[-1]["kind"] == "stop" and records[-1]["status"] == "partial"

    second = CountingResponder()
    generator = SolidGenerator()
    resumed = run_in(folder, loop_with(second, strategy, generator=generator), refs_dir)
    assert resumed.status == "complete"
    # Nothing finished is computed again: no profile, no candidate, no finished comparison.
    assert second.profiles == 0 and generator.calls == []
    assert second.comparisons == whole.comparisons - 3
    assert resumed.ranking.order == reference.ranking.order
    assert resumed.ranking.scores == pytest.approx(reference.ranking.scores)
    assert resumed.profile.profile == reference.profile.profile


def test_resume_after_an_interrupted_generate_stage_generates_only_the_rest(refs_dir, tmp_path):
    generator = SolidGenerator()
    original = generator.generate

    def stop_on_second_batch(prompt, negative_prompt="", seeds=(0,)):
        if generator.calls:
            raise KeyboardInterrupt
        return original(prompt, negative_prompt, seeds)

    generator.generate = stop_on_second_batch
    first = CountingResponder()
    folder = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        run_in(folder, loop_with(first, "knockout", generator=generator), refs_dir)
    assert sorted(p.name for p in folder.glob("candidate-*.png")) == [
        "candidate-00-seed0.png",
        "candidate-01-seed1.png",
        "candidate-02-seed2.png",
    ]

    second = CountingResponder()
    rest = SolidGenerator()
    resumed = run_in(folder, loop_with(second, "knockout", generator=rest), refs_dir)
    assert [seeds for _, _, seeds in rest.calls] == [[3, 4, 5], [6]]
    assert second.profiles == 0 and second.comparisons == 6
    reds = [SolidGenerator().red(seed) for seed in range(7)]
    assert resumed.best.index == max(range(7), key=lambda i: reds[i])


def test_resume_with_other_settings_is_refused_and_changes_nothing(refs_dir, tmp_path):
    folder = tmp_path / "run"
    run_in(folder, loop_with(CountingResponder(), "knockout"), refs_dir)
    before = (folder / "journal.jsonl").read_bytes()
    with pytest.raises(InputError, match="strategy = 'knockout', this command gives 'swiss'"):
        run_in(folder, loop_with(CountingResponder(), "swiss"), refs_dir)
    with pytest.raises(InputError, match="n = 7, this command gives 5"):
        run_in(folder, loop_with(CountingResponder(), "knockout", n=5), refs_dir)
    assert (folder / "journal.jsonl").read_bytes() == before


def test_partial_report_names_no_winner_and_lists_the_unranked(refs_dir, tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(EngineError) as caught:
        run_in(
            folder, loop_with(CountingResponder(fail_at=3, error=EngineError), "knockout"), refs_dir
        )
    partial = caught.value.partial_result
    data = write_run(partial, folder)
    assert data["status"] == "partial" and "the server went away" in data["reason"]
    assert (
        data["best"] is None
        and data["ranking"]["winner"] is None
        and data["ranking"]["partial"] is True
    )
    # Knockout round 1 pairs (0,1), (2,3), (4,5): two finished, so 4, 5 and the bye 6 are unranked.
    assert data["unranked"] == [4, 5, 6] and data["ranking"]["planned_comparisons"] == 6
    ranks = {c["index"]: c["rank"] for c in data["candidates"]}
    assert [ranks[i] for i in (4, 5, 6)] == [None, None, None]
    assert sorted(ranks[i] for i in range(4)) == [1, 2, 3, 4]
    page = (folder / "report.html").read_text()
    assert page.index("Partial run") < page.index('<table id="summary">')
    assert "2 of 6 comparisons finished; no winner is claimed" in page
    assert "class='card best'" not in page and "best first" not in page
    assert json.loads((folder / "result.json").read_text())["status"] == "partial"


def test_a_torn_last_line_is_ignored(tmp_path):
    journal = Journal.open(tmp_path)
    journal.append("candidate", index=0)
    journal.close()
    with open(tmp_path / "journal.jsonl", "a") as file:
        file.write('{"kind": "comparison", "a": 0, "b"')  # the process died mid-write
    assert [r["kind"] for r in read_records(tmp_path / "journal.jsonl")] == ["candidate"]


def test_damaged_records_are_skipped_and_nested_damage_is_an_input_error(tmp_path):
    from generation.journal import comparison_from_record, profile_from_record

    path = tmp_path / "journal.jsonl"
    good = {"kind": "candidate", "index": 0}
    lines = [
        b"\xff\xfe\x00not text",
        b'{"kind": "comparison"}',  # no a, b, comparison
        b'{"kind": "start", "settings": {}, "options": [1, 2]}',
        b'{"kind": "profile", "prediction": 3}',
        json.dumps(good).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert read_records(path) == [good]
    with pytest.raises(InputError, match="damaged profile record"):
        profile_from_record({"status": "ok"})
    with pytest.raises(InputError, match="damaged comparison record"):
        comparison_from_record({"parsed": 3})
