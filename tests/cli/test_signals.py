"""Real SIGINT and SIGTERM sent to `python -m ptgen` while it works: the process stops within 2 s,
whatever is in flight (a hanging HTTP request, a diffusion step, a model generating), writes the
partial run, and exits 130 (SIGINT) or 143 (SIGTERM)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from .conftest import REDS, run_ptgen, start_ptgen
from .fault_server import FaultServer

STOP_WITHIN = 2.0


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    from generation.tiny import make_tiny_generator
    from preferthinker.tiny import make_tiny_assessor

    folder = tmp_path_factory.mktemp("tiny")
    make_tiny_generator(folder / "generator")
    make_tiny_assessor(folder / "assessor")
    return folder


def journal_kinds(out: Path) -> list[str]:
    path = out / "journal.jsonl"
    if not path.exists():
        return []
    kinds = []
    for line in path.read_text().splitlines():
        try:
            kinds.append(json.loads(line)["kind"])
        except ValueError:
            pass
    return kinds


def wait_for(condition, process, seconds: float = 240.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            raise AssertionError(
                f"ptgen ended early ({process.returncode}): {process.communicate()[1]}"
            )
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the condition never came true")
        time.sleep(0.05)


def stop(process, signum) -> tuple[int, float, str]:
    """Send `signum`; (exit code, seconds until exit, stderr)."""
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=30)
    except Exception:
        process.kill()
        raise
    return process.returncode, time.monotonic() - sent, err


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_comparison_requests_hang(images, signum, code):
    out = images["root"] / "run"
    with FaultServer(fault="hang", healthy=2) as server:
        process = start_ptgen(
            "rerank",
            *images["candidates"],
            "--refs",
            images["liked"],
            "--assessor",
            server.url,
            "--assessor-model",
            "m",
            "--out",
            out,
            "--no-cache",
        )
        wait_for(
            lambda: (
                journal_kinds(out).count("comparison") == 2
                and server.count("comparison", "hang") == 1
            ),
            process,
        )
        returncode, seconds, err = stop(process, signum)
    assert returncode == code and seconds < STOP_WITHIN, (seconds, err)
    assert "interrupted: partial run written to" in err and "Traceback" not in err
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "partial" and data["reason"] == "interrupted" and data["best"] is None
    assert len(data["ranking"]["comparisons"]) == 2 and len(data["unranked"]) == 2
    assert server.count("comparison") == 3  # nobody retried the hanging request after the signal
    with FaultServer() as healthy:  # resume: only the 3 unfinished comparisons are asked for
        done, _ = run_ptgen("rerank", "--resume", out, "--assessor", healthy.url)
        assert done.returncode == 0, done.stderr
        assert healthy.count("profile") == 0 and healthy.count("comparison") == 3
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "complete" and data["best"]["index"] == REDS.index(max(REDS))


def test_sigint_while_the_profile_request_hangs(images):
    out = images["root"] / "run"
    with FaultServer(fault="hang", fault_on_profile=True) as server:
        process = start_ptgen(
            "rerank",
            *images["candidates"],
            "--refs",
            images["liked"],
            "--assessor",
            server.url,
            "--assessor-model",
            "m",
            "--out",
            out,
            "--no-cache",
        )
        wait_for(lambda: server.count("profile") == 1, process)
        returncode, seconds, err = stop(process, signal.SIGINT)
    assert returncode == 130 and seconds < STOP_WITHIN, (seconds, err)
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "partial" and data["profile"] is None and data["ranking"] is None
    assert len(data["candidates"]) == 6 and data["unranked"] == list(range(6))


def test_sigint_during_generation_with_the_tiny_pipeline(images, tiny_models):
    out = images["root"] / "run"
    process = start_ptgen(
        "generate",
        "a castle",
        "--refs",
        images["liked"],
        "--assessor",
        "analytic",
        "--generator",
        tiny_models / "generator",
        "--steps",
        "40",
        "-n",
        "6",
        "--batch-size",
        "1",
        "--out",
        out,
        "--no-cache",
    )
    wait_for(lambda: journal_kinds(out).count("candidate") >= 1, process)
    returncode, seconds, err = stop(process, signal.SIGINT)
    assert returncode == 130 and seconds < STOP_WITHIN, (seconds, err)
    data = json.loads((out / "result.json").read_text())
    kept = journal_kinds(out).count("candidate")
    assert data["status"] == "partial" and 1 <= len(data["candidates"]) == kept < 6
    assert all((out / c["file"]).is_file() for c in data["candidates"])


def test_sigterm_during_generates_rerank_keeps_round_one(images, tiny_models):
    out = images["root"] / "run"
    with FaultServer(fault="hang", healthy=2) as server:
        process = start_ptgen(
            "generate",
            "a castle",
            "--refs",
            images["liked"],
            "--assessor",
            server.url,
            "--assessor-model",
            "m",
            "--generator",
            tiny_models / "generator",
            "--steps",
            "2",
            "-n",
            "4",
            "--out",
            out,
            "--no-cache",
        )
        # Knockout of 4: round 1 is 2 comparisons (answered), round 2 hangs.
        wait_for(lambda: server.count("comparison", "hang") == 1, process)
        returncode, seconds, err = stop(process, signal.SIGTERM)
    assert returncode == 143 and seconds < STOP_WITHIN, (seconds, err)
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "partial" and len(data["candidates"]) == 4
    assert len(data["ranking"]["comparisons"]) == 2 and data["ranking"]["winner"] is None
    assert data["unranked"] == []  # every candidate played round 1


def test_sigterm_while_the_in_process_model_compares(images, tiny_models):
    # --mode full: no profile stage, the tiny model goes straight to the comparisons.
    out = images["root"] / "run"
    process = start_ptgen(
        "rerank", *images["candidates"], "--refs", images["liked"], "--assessor",
        tiny_models / "assessor", "--mode", "full", "--max-new-tokens", "100000", "--out", out,
        "--no-cache",
    )
    wait_for(lambda: journal_kinds(out).count("candidate") == 6, process)
    time.sleep(1.0)  # into the first comparisons
    assert "comparison" not in journal_kinds(out)
    returncode, seconds, err = stop(process, signal.SIGTERM)
    assert returncode == 143 and seconds < STOP_WITHIN, (seconds, err)
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "partial" and data["mode"] == "full" and data["ranking"] is None
    assert data["unranked"] == list(range(6))


def test_sigint_while_the_in_process_model_writes_the_profile(images, tiny_models):
    out = images["root"] / "run"
    process = start_ptgen(
        "rerank",
        *images["candidates"],
        "--refs",
        images["liked"],
        "--assessor",
        tiny_models / "assessor",
        "--max-new-tokens",
        "100000",
        "--out",
        out,
        "--no-cache",
    )
    wait_for(lambda: "references" in journal_kinds(out), process)
    time.sleep(1.0)  # into the profile's generation
    assert "profile" not in journal_kinds(out)
    returncode, seconds, err = stop(process, signal.SIGINT)
    assert returncode == 130 and seconds < STOP_WITHIN, (seconds, err)
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "partial" and data["profile"] is None


SLOW_PARTIAL_WRITE = """
import sys, time
from preferthinker import cancel
from ptgen.cli.signals import stop_on_signals
with stop_on_signals():
    try:
        print("working", flush=True)
        time.sleep(60)
    except cancel.Cancelled:
        print("writing the partial run", flush=True)
        time.sleep(60)  # a partial write that takes long: a second Ctrl-C must not wait for it
"""


def test_a_second_sigint_exits_at_once():
    import subprocess
    import sys

    from .conftest import ptgen_env

    process = subprocess.Popen([sys.executable, "-c", SLOW_PARTIAL_WRITE], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=ptgen_env())
    assert process.stdout.readline().strip() == "working"
    process.send_signal(signal.SIGINT)
    assert process.stdout.readline().strip() == "writing the partial run"
    returncode, seconds, err = stop(process, signal.SIGINT)
    assert returncode == 130 and seconds < 1.0
    assert "stopped by a second SIGINT" in err
