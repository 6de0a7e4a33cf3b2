"""`ptgen user ...`, `ptgen like/dislike` and `generate/rerank --user` through `ptgen.cli.main`
(real files, a real SQLite store, the tiny diffusion pipeline, the analytic assessor)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ptgen.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path, monkeypatch, pngs):
    monkeypatch.setenv("PTGEN_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("PTGEN_CACHE_DIR", str(tmp_path / "cache"))
    pngs("liked", [10, 20, 30])
    pngs("disliked", [200])
    return tmp_path


def fake_run(folder: Path, count: int = 3) -> Path:
    """A run folder as `write_run` leaves it: candidate PNGs and result.json."""
    folder.mkdir(parents=True)
    candidates = []
    for i in range(count):
        name = f"candidate-{i:02d}-seed{40 + i}.png"
        Image.new("RGB", (16, 16), (i * 60, 100, 30)).save(folder / name)
        candidates.append({"index": i, "file": name, "seed": 40 + i})
    (folder / "result.json").write_text(
        json.dumps(
            {"prompt": "a castle", "rewritten_prompt": "a castle, Red", "candidates": candidates}
        )
    )
    return folder


def test_create_like_dislike_show_forget(env, capsys):
    assert (
        main(
            [
                "user",
                "create",
                "ana",
                "--refs",
                str(env / "liked"),
                "--disliked",
                str(env / "disliked"),
            ]
        )
        == 0
    )
    assert "3 liked, 1 disliked" in capsys.readouterr().out
    run = fake_run(env / "run1")
    assert main(["like", f"{run}#1", "--user", "ana"]) == 0
    assert "4 liked, 1 disliked" in capsys.readouterr().out
    # Same again: idempotent, reported; then disliked: the later label wins, reported.
    assert main(["like", str(run / "candidate-01-seed41.png"), "--user", "ana"]) == 0
    assert "already liked" in capsys.readouterr().out
    assert main(["dislike", f"{run}#1", "--user", "ana"]) == 0
    output = capsys.readouterr().out
    assert "was liked, now disliked" in output and "3 liked, 2 disliked" in output
    from generation.store import UserStore

    stored = UserStore().user("ana").images("disliked")[0]
    assert (stored.provenance.candidate, stored.provenance.seed, stored.provenance.prompt) == (
        1,
        41,
        "a castle, Red",
    )
    assert main(["user", "show", "ana"]) == 0
    assert f"{run.resolve()}#1" in capsys.readouterr().out
    assert main(["user", "forget", "ana", stored.hash[:10]]) == 0
    assert main(["user", "list"]) == 0
    assert "ana: 3 liked, 1 disliked" in capsys.readouterr().out


def test_default_user_and_export_import(env, capsys, tmp_path):
    assert main(["user", "create", "ana", "--refs", str(env / "liked")]) == 0
    assert main(["user", "default", "ana"]) == 0
    run = fake_run(env / "run1")
    assert main(["like", f"{run}#0"]) == 0  # no --user: the default
    assert main(["user", "export", "ana", str(tmp_path / "ana.zip")]) == 0
    assert main(["user", "import", str(tmp_path / "ana.zip"), "--name", "bea"]) == 0
    capsys.readouterr()
    assert main(["user", "list"]) == 0
    listed = capsys.readouterr().out
    assert "* ana: 4 liked" in listed and "  bea: 4 liked" in listed


@pytest.mark.parametrize(
    "case, expected",
    [
        ("not-image", "not a readable image"),
        ("no-run", "does not exist"),
        ("no-candidate", "has no candidate 7"),
        ("unknown-user", "unknown user 'bob'"),
        ("folder", "is a folder"),
        ("foreign-result", "not a ptgen run result"),
        ("garbled-journal", "not a readable ptgen journal"),
    ],
)
def test_bad_feedback_is_one_line_exit_2_and_loses_nothing(env, capsys, case, expected):
    assert main(["user", "create", "ana", "--refs", str(env / "liked")]) == 0
    run = fake_run(env / "run1")
    (env / "notes.png").write_text("hello")
    argv = {
        "not-image": ["like", str(env / "notes.png"), f"{run}#0", "--user", "ana"],
        "no-run": ["like", str(env / "gone") + "#0", "--user", "ana"],
        "no-candidate": ["like", f"{run}#7", "--user", "ana"],
        "unknown-user": ["like", f"{run}#0", "--user", "bob"],
        "folder": ["like", str(run), "--user", "ana"],
        "foreign-result": ["like", f"{env / 'foreign'}#0", "--user", "ana"],
        "garbled-journal": ["like", f"{env / 'garbled'}#0", "--user", "ana"],
    }[case]
    # A result.json of another shape, and a journal that is not UTF-8 text (no result.json).
    fake_run(env / "foreign")
    (env / "foreign" / "result.json").write_text('{"candidates": "candidate-00-seed40.png"}')
    fake_run(env / "garbled")
    (env / "garbled" / "result.json").unlink()
    (env / "garbled" / "journal.jsonl").write_bytes(b"\xff\xfe not text\n")
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err
    from generation.store import UserStore

    assert UserStore().user("ana").counts() == {"liked": 3, "disliked": 0}


def test_a_file_outside_any_run_is_recorded_with_a_note(env, capsys):
    assert main(["user", "create", "ana"]) == 0
    assert main(["like", str(env / "liked" / "010.png"), "--user", "ana"]) == 0
    captured = capsys.readouterr()
    assert "not a candidate of a ptgen run" in captured.err
    assert "1 liked" in captured.out


def test_generate_with_user_records_run_and_prints_feedback(env, capsys, tiny_generator_path):
    assert (
        main(
            [
                "user",
                "create",
                "ana",
                "--refs",
                str(env / "liked"),
                "--disliked",
                str(env / "disliked"),
            ]
        )
        == 0
    )
    common = [
        "--user",
        "ana",
        "--assessor",
        "analytic",
        "--generator",
        str(tiny_generator_path),
        "-n",
        "2",
        "--steps",
        "2",
        "--width",
        "32",
        "--height",
        "32",
    ]
    assert main(["generate", "a castle", *common, "--out", str(env / "run1")]) == 0
    output = capsys.readouterr()
    assert f"ptgen like {env / 'run1'}#" in output.out.replace("'", "")
    assert "first profile for this user" in output.err
    report = (env / "run1" / "report.html").read_text()
    assert "--user ana" in report and "profile-changes" in report
    # Feedback through the printed reference, then a second run reads the grown store.
    assert main(["like", f"{env / 'run1'}#0", "--user", "ana"]) == 0
    assert main(["generate", "a castle", *common, "--out", str(env / "run2")]) == 0
    from generation.store import UserStore

    user = UserStore().user("ana")
    assert [r["folder"] for r in user.runs()] == [
        str((env / "run2").resolve()),
        str((env / "run1").resolve()),
    ]
    assert len(user.profiles()) == 2
    assert (
        main(
            [
                "rerank",
                str(env / "run1"),
                "--user",
                "ana",
                "--assessor",
                "analytic",
                "--out",
                str(env / "rr"),
            ]
        )
        == 0
    )
    assert len(user.runs()) == 3


def test_generate_without_refs_or_user_says_so(env, capsys):
    assert main(["generate", "a castle", "--assessor", "analytic"]) == 2
    assert "--refs (a folder of images you like) or --user NAME" in capsys.readouterr().err


def test_subprocess_like_exit_codes(env):
    run = fake_run(env / "run1")
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    create = subprocess.run(
        [sys.executable, "-m", "ptgen", "user", "create", "ana"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert create.returncode == 0, create.stderr
    liked = subprocess.run(
        [sys.executable, "-m", "ptgen", "like", f"{run}#2", "--user", "ana"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert liked.returncode == 0 and "1 liked" in liked.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "ptgen", "like", f"{run}#9", "--user", "ana"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "Traceback" not in bad.stderr


def test_like_reads_a_stopped_run_from_its_journal(env, capsys):
    """A run that stopped before writing result.json still has its journal."""
    from generation.journal import Journal

    run = env / "stopped"
    run.mkdir()
    Image.new("RGB", (16, 16), (9, 99, 199)).save(run / "candidate-00-seed5.png")
    journal = Journal.open(run)
    journal.start({"prompt": "a harbour"}, {})
    journal.append("rewrite", rewrite={"prompt": "a harbour, Teal"})
    journal.append("candidate", index=0, seed=5, file="candidate-00-seed5.png", sha256="x")
    journal.close()
    assert main(["user", "create", "ana"]) == 0
    assert main(["like", f"{run}#0", "--user", "ana"]) == 0
    from generation.store import UserStore

    stored = UserStore().user("ana").images("liked")[0]
    assert (stored.provenance.prompt, stored.provenance.seed, stored.provenance.candidate) == (
        "a harbour, Teal",
        5,
        0,
    )


def test_list_shows_every_user_when_one_store_is_damaged(env, capsys):
    assert main(["user", "create", "ana", "--refs", str(env / "liked")]) == 0
    assert main(["user", "create", "bea", "--refs", str(env / "liked")]) == 0
    (env / "store" / "users" / "ana" / "store.db").write_bytes(b"not a database" * 100)
    capsys.readouterr()
    assert main(["user", "list"]) == 0
    listed = capsys.readouterr().out
    assert "ana: cannot be read (" in listed and "store.db" in listed
    assert "bea: 3 liked, 0 disliked" in listed
