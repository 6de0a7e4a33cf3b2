"""Batch generation (`generation.batch`, `ptgen generate --prompts`): the prompts file, one
profile for the whole batch (counted), one run folder per prompt, resume, the summary that
links every run, and a real 2-process `torchrun` launch of the CLI on the tiny diffusers pipeline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from generation.batch import load_batch_prompts, parse_batch_prompts, run_batch
from generation.loop import LoopConfig
from preferthinker.errors import ConfigError, InputError, OutputExistsError

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = (
    'a castle\n\n# my comment\n{"prompt": "a cat", "seed": 7, "n": 2}\n{"prompt": "a lighthouse", '
    '"negative_prompt": "fog"}\n'
)


# -- the prompts file ---------------------------------------------------------------------------


def test_prompts_file_plain_and_json_lines():
    items = parse_batch_prompts(PROMPTS, "p.txt")
    assert [(p.prompt, p.line, p.index, p.options) for p in items] == [
        ("a castle", 1, 0, {}),
        ("a cat", 4, 1, {"seed": 7, "n": 2}),
        ("a lighthouse", 5, 2, {"negative_prompt": "fog"}),
    ]
    names = [p.folder_name for p in items]
    assert re.fullmatch(r"0001-a-castle-[0-9a-f]{8}", names[0]) and len(set(names)) == 3
    # The same prompt with other options is another run (another folder).
    again = parse_batch_prompts('{"prompt": "a castle", "seed": 1}')
    assert again[0].folder_name != names[0]


@pytest.mark.parametrize(
    "text,message",
    [
        ('a castle\n{"prompt": "a cat", "seed": 7,}\n', r"p.txt line 2: not valid JSON"),
        (
            'a castle\n\n{"prompt": "a cat", "sed": 7}\n',
            r"p.txt line 3: unknown option\(s\) sed; valid: prompt",
        ),
        ('{"prompt": "a cat", "seed": "7"}\n', r"p.txt line 1: seed must be an integer, got '7'"),
        ('{"prompt": "a cat", "n": 0}\n', r"p.txt line 1: n must be >= 1, got 0"),
        ('{"prompt": "a cat", "n": true}\n', r"p.txt line 1: n must be an integer, got True"),
        ('# only\n{"seed": 3}\n', r"p.txt line 2: \"prompt\" is missing or empty"),
        ('{"prompt": "a cat", "seed": -1}\n', r"p.txt line 1: seed must be >= 0"),
        (
            '["a cat"]\n',
            None,
        ),  # a JSON array is a plain prompt line, not an object: accepted as text
        ("# nothing\n\n", r"p.txt holds no prompts"),
    ],
)
def test_bad_prompt_lines_name_the_line(text, message):
    if message is None:
        assert parse_batch_prompts(text, "p.txt")[0].prompt == '["a cat"]'
        return
    with pytest.raises(InputError, match=message):
        parse_batch_prompts(text, "p.txt")


def test_cli_bad_line_fails_before_loading_models(tmp_path, capsys):
    from ptgen.cli.main import main

    prompts = tmp_path / "p.txt"
    prompts.write_text('a castle\n{"prompt": "a cat", "n": "two"}\n')
    code = main(
        [
            "generate",
            "--prompts",
            str(prompts),
            "--refs",
            str(tmp_path),
            "--out",
            str(tmp_path / "b"),
            "--generator",
            str(tmp_path / "no-such-model"),
        ]
    )  # never loaded: the file is read first
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: {prompts} line 2: n must be an integer, got 'two'"]
    assert main(["generate", "a cat", "--prompts", str(prompts), "--out", str(tmp_path / "b")]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["generate", "--prompts", str(prompts)]) == 2
    assert "--prompts needs --out" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


# -- a batch on the procedural renderer with the analytic assessor ------------------------------


class CountingAssessor:
    """The real analytic assessor, with its profile predictions counted."""

    def __init__(self):
        from preferthinker.analytic import AnalyticEngine
        from preferthinker.assessor import Assessor, AssessorConfig

        self.inner = Assessor(AnalyticEngine(), AssessorConfig(assessor="analytic"))
        self.predictions = 0

    def predict_profile(self, *args, **kwargs):
        self.predictions += 1
        return self.inner.predict_profile(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture()
def user(tmp_path):
    """Liked and disliked references drawn by the procedural renderer for a simulated user."""
    import random

    from synthpref.bench import DEFAULT_SUBJECTS, make_user_items
    from synthpref.renderer import SUPPORTED_TERMS, ProceduralGenerator, terms_distinct
    from synthpref.users import sample_users

    (simulated,) = sample_users(1, SUPPORTED_TERMS, seed=5, compatible=terms_distinct)
    (item,) = make_user_items(
        simulated, ProceduralGenerator(size=64), DEFAULT_SUBJECTS, 3, 1, random.Random(5)
    )
    for side, images in (("liked", item.preferred), ("disliked", item.non_preferred)):
        (tmp_path / side).mkdir()
        for k, image in enumerate(images):
            image.save(tmp_path / side / f"{k}.png")
    return tmp_path


def batch_args(user, out, **config):
    from synthpref.renderer import ProceduralGenerator

    return dict(
        liked=user / "liked",
        disliked=user / "disliked",
        generator=ProceduralGenerator(size=64),
        config=LoopConfig(n=3, seed=100, cache=False, **config),
        out=out,
    )


def test_batch_predicts_the_profile_once_and_links_every_run(user, tmp_path):
    prompts = parse_batch_prompts(PROMPTS)
    assessor = CountingAssessor()
    summary = run_batch(prompts, assessor=assessor, **batch_args(user, tmp_path / "batch"))
    out = tmp_path / "batch"
    assert assessor.predictions == 1
    assert summary["complete"] == 3 and summary["failed"] == 0 and summary["merged"]
    rows = summary["runs"]
    assert [r["prompt"] for r in rows] == ["a castle", "a cat", "a lighthouse"]
    page = (out / "index.html").read_text()
    for row, item in zip(rows, prompts, strict=True):
        data = json.loads((out / item.folder_name / "result.json").read_text())
        assert data["status"] == "complete" and data["prompt"] == item.prompt
        assert (
            data["profile"]["profile"] == summary["profile"]["profile"]
        )  # the batch's one profile
        assert (
            row["report"] == f"{item.folder_name}/report.html" and (out / row["report"]).is_file()
        )
        assert f"href='{row['report']}'" in page and f"src='{row['best']}'" in page
        assert (out / row["best"]).is_file()
    # Per-prompt options over the batch's config.
    seeds = {
        r["prompt"]: sorted(
            c["seed"]
            for c in json.loads((out / r["folder"] / "result.json").read_text())["candidates"]
        )
        for r in rows
    }
    assert seeds == {"a castle": [100, 101, 102], "a cat": [7, 8], "a lighthouse": [100, 101, 102]}
    lighthouse = json.loads((out / rows[2]["folder"] / "result.json").read_text())
    assert lighthouse["negative_prompt"].startswith("fog")
    assert json.loads((out / "summary.json").read_text()) == summary


def test_interrupted_batch_resumes_where_it_stopped(user, tmp_path):
    prompts = parse_batch_prompts(PROMPTS)
    out = tmp_path / "batch"

    def stop_after_first(done, total, prompt):
        raise KeyboardInterrupt

    first = CountingAssessor()
    with pytest.raises(KeyboardInterrupt):
        run_batch(prompts, assessor=first, progress=stop_after_first, **batch_args(user, out))
    finished = out / prompts[0].folder_name / "result.json"
    stamp = finished.stat().st_mtime_ns
    assert not (out / prompts[1].folder_name).exists() and not (out / "summary.json").exists()
    # A run cut short leaves a partial folder; the resumed batch redoes it.
    (out / prompts[1].folder_name).mkdir()
    (out / prompts[1].folder_name / "result.json").write_text('{"status": "partial"}')
    again = CountingAssessor()
    summary = run_batch(prompts, assessor=again, **batch_args(user, out))
    assert first.predictions == 1 and again.predictions == 0  # the batch's profile is kept
    assert summary["complete"] == 3 and summary["resumed"] == 1
    assert finished.stat().st_mtime_ns == stamp  # the finished run was not redone
    assert (
        json.loads((out / prompts[1].folder_name / "result.json").read_text())["status"]
        == "complete"
    )


def test_other_settings_or_foreign_folder_are_refused(user, tmp_path):
    prompts = parse_batch_prompts("a castle\n")
    out = tmp_path / "batch"
    run_batch(prompts, assessor=CountingAssessor(), **batch_args(user, out))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(ConfigError, match="holds a batch with other settings"):
        run_batch(
            prompts, assessor=CountingAssessor(), **batch_args(user, out, strategy="round-robin")
        )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(OutputExistsError, match="not empty"):
        run_batch(prompts, assessor=CountingAssessor(), **batch_args(user, tmp_path / "mine"))
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_a_failing_prompt_is_reported_and_the_batch_goes_on(user, tmp_path):
    from synthpref.renderer import ProceduralGenerator

    class FailsOnCats(ProceduralGenerator):
        def generate(self, prompt, negative_prompt="", seeds=(0,)):
            if "cat" in prompt:
                raise InputError("the generator refused this prompt")
            return super().generate(prompt, negative_prompt, seeds)

    args = batch_args(user, tmp_path / "batch")
    args["generator"] = FailsOnCats(size=64)
    summary = run_batch(parse_batch_prompts(PROMPTS), assessor=CountingAssessor(), **args)
    assert (summary["complete"], summary["failed"]) == (2, 1)
    row = summary["runs"][1]
    assert row["status"] == "failed" and row["error"] == "the generator refused this prompt"
    assert (
        "failed</span>: the generator refused this prompt"
        in (tmp_path / "batch" / "index.html").read_text()
    )


# -- the CLI on the tiny diffusers pipeline -------------------------------------------------------


@pytest.fixture()
def prompts_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('a castle\n{"prompt": "a cat", "seed": 3}\na garden\n')
    return path


def test_cli_batch_profile_once_and_summary(
    tiny_generator_path, refs_dir, prompts_file, tmp_path, monkeypatch, capsys
):
    from preferthinker.assessor import Assessor
    from ptgen.cli.main import main

    calls = []
    real = Assessor.predict_profile
    monkeypatch.setattr(
        Assessor, "predict_profile", lambda self, *a, **k: calls.append(1) or real(self, *a, **k)
    )
    out = tmp_path / "batch"
    argv = [
        "generate",
        "--prompts",
        str(prompts_file),
        "--refs",
        str(refs_dir / "liked"),
        "--disliked",
        str(refs_dir / "disliked"),
        "--assessor",
        "analytic",
        "--generator",
        str(tiny_generator_path),
        "-n",
        "2",
        "--steps",
        "2",
        "--out",
        str(out),
        "--no-cache",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    assert len(calls) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] == 3
    assert f"summary: {out / 'index.html'}" in capsys.readouterr().out.replace(
        "\n", ""
    )  # rich wraps paths
    for row in summary["runs"]:
        assert (out / row["report"]).is_file() and (out / row["best"]).is_file()
    assert main(argv) == 0 and len(calls) == 1  # all done: nothing predicted or generated again
    assert "3 were already done" in capsys.readouterr().err


def test_torchrun_two_processes_share_the_prompts(
    tiny_generator_path, refs_dir, prompts_file, tmp_path
):
    out = tmp_path / "batch"
    command = [
        str(Path(sys.executable).parent / "torchrun"),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "ptgen",
        "generate",
        "--prompts",
        str(prompts_file),
        "--refs",
        str(refs_dir / "liked"),
        "--assessor",
        "analytic",
        "--generator",
        str(tiny_generator_path),
        "-n",
        "2",
        "--steps",
        "2",
        "--out",
        str(out),
        "--no-cache",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] == 3 and summary["processes"] == 2
    logs = {
        p.stem: [json.loads(line) for line in p.read_text().splitlines()]
        for p in (out / "shards").glob("*")
    }
    items = load_batch_prompts(prompts_file)
    assert [e["id"] for e in logs["00000-of-00002"] if e["event"] == "item"] == [
        items[0].folder_name,
        items[2].folder_name,
    ]
    assert [e["id"] for e in logs["00001-of-00002"] if e["event"] == "item"] == [
        items[1].folder_name
    ]
    assert len(list((out / "profile").glob("*.json"))) == 1  # predicted once, by the main process
    for row in summary["runs"]:
        data = json.loads((out / row["folder"] / "result.json").read_text())
        assert data["profile_from_cache"] is True and data["status"] == "complete"
        with Image.open(out / row["best"]) as image:
            assert image.size[0] > 0


def test_batch_folder_held_by_a_running_launch_is_refused(user, tmp_path):
    import socket

    from generation.shards import LOCK_FILE

    out = tmp_path / "batch"
    out.mkdir()
    # The lock a running launch holds: this test process is alive on this host.
    holder = {
        "launch": "another-launch",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": "2026-12-02T04:00:00+0000",
        "world_size": 2,
    }
    (out / LOCK_FILE).write_text(json.dumps(holder))
    with pytest.raises(OutputExistsError, match="is being written by another launch"):
        run_batch(
            parse_batch_prompts("a castle\n"), assessor=CountingAssessor(), **batch_args(user, out)
        )
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]
    # Once that process is gone (a pid that no longer runs), its lock is taken over.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    (out / LOCK_FILE).write_text(json.dumps({**holder, "pid": int(dead)}))
    summary = run_batch(
        parse_batch_prompts("a castle\n"), assessor=CountingAssessor(), **batch_args(user, out)
    )
    assert summary["complete"] == 1 and not (out / LOCK_FILE).exists()


def test_a_damaged_batch_json_is_one_error_and_nothing_changes(user, tmp_path):
    prompts = parse_batch_prompts("a castle\n")
    out = tmp_path / "batch"
    run_batch(prompts, assessor=CountingAssessor(), **batch_args(user, out))
    (out / "batch.json").write_text("{bad")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(OutputExistsError, match="batch.json is damaged"):
        run_batch(prompts, assessor=CountingAssessor(), **batch_args(user, out))
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_a_run_whose_result_json_is_no_object_is_run_again(user, tmp_path):
    prompts = parse_batch_prompts("a castle\n")
    out = tmp_path / "batch"
    run_batch(prompts, assessor=CountingAssessor(), **batch_args(user, out))
    (result,) = out.glob("0001-*/result.json")
    result.write_text("[1]")
    summary = run_batch(prompts, assessor=CountingAssessor(), **batch_args(user, out))
    assert summary["complete"] == 1
    assert json.loads(result.read_text())["status"] == "complete"
