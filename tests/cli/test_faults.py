"""`ptgen rerank` against a real misbehaving OpenAI-compatible server (tests/cli/fault_server.py).

The server answers the profile and two comparisons, then injects one kind of fault. For each:
the exit code, the one-line message, the time it took, and what the partial run kept.
The CLI runs as users run it: `python -m ptgen` in a subprocess.
"""

from __future__ import annotations

import json

import pytest

from .conftest import REDS, run_ptgen
from .fault_server import FaultServer


def rerank(server, images, *extra, strategy="knockout"):
    out = images["root"] / "run"
    done, seconds = run_ptgen(
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
        "--strategy",
        strategy,
        *extra,
    )
    return done, seconds, out


def error_line(done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def assert_partial(out, finished: int) -> dict:
    """The partial run kept the profile and exactly `finished` comparisons; it claims no winner."""
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "partial" and data["best"] is None
    assert data["profile"] is not None
    assert len(data["ranking"]["comparisons"]) == finished and data["ranking"]["winner"] is None
    journal = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    kept = [r for r in journal if r["kind"] == "comparison"]
    assert len(kept) == finished
    for record in kept:  # each kept comparison is the right verdict (the redder wins)
        a, b = record["a"], record["b"]
        assert record["comparison"]["winner"] == ("A" if REDS[a] >= REDS[b] else "B")
    assert journal[-1]["kind"] == "stop" and journal[-1]["status"] == "partial"
    page = (out / "report.html").read_text()
    assert "Partial run" in page and "no winner is claimed" in page
    return data


@pytest.mark.parametrize(
    "fault, extra, message, most_seconds",
    [
        ("500", (), "failed with HTTP 500 (chat completion): injected failure (4 tries)", 20),
        (
            "hang",
            ("--timeout", "2"),
            "did not answer within 2 s (chat completion); raise --timeout",
            12,
        ),
        ("bad-json", (), "sent an unusable reply", 12),
        ("close-mid-body", (), "closed the connection in the middle of its reply", 20),
        ("drop", (), "closed the connection without answering", 20),
        ("empty-choices", (), "replied without choices", 12),
        ("429", (), "is rate limiting requests (HTTP 429", 15),
    ],
)
def test_a_fault_after_two_comparisons_keeps_them(images, fault, extra, message, most_seconds):
    with FaultServer(fault=fault, healthy=2, retry_after="1") as server:
        done, seconds, out = rerank(server, images, *extra)
    assert done.returncode == 4, done.stderr
    assert message in error_line(done)
    assert seconds < most_seconds
    data = assert_partial(out, finished=2)
    # Knockout round 1 is (0,1) (2,3) (4,5); the pair whose comparison failed is unranked.
    assert len(data["unranked"]) == 2 and f"--resume {out}" in done.stderr
    if fault == "429":
        faulted = [t for t, kind, outcome in server.requests if outcome == "429"]
        gaps = [later - earlier for earlier, later in zip(faulted, faulted[1:], strict=False)]
        assert len(faulted) == 4 and all(0.95 <= gap < 2.0 for gap in gaps)  # Retry-After: 1
    if fault == "hang":
        assert server.count("comparison", "hang") == 1  # a timed-out request is not sent again


def test_500_then_200_is_retried_and_completes(images):
    with FaultServer(fault="500-once", healthy=2) as server:
        done, seconds, out = rerank(server, images)
    assert done.returncode == 0, done.stderr
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "complete" and len(data["ranking"]["comparisons"]) == 5
    assert data["best"]["index"] == REDS.index(max(REDS))
    assert server.count("comparison") == 6 and server.count("comparison", "500") == 1


def test_retry_after_is_honoured(images):
    with FaultServer(fault="429-once", healthy=2, retry_after="3") as server:
        done, seconds, out = rerank(server, images)
    assert done.returncode == 0, done.stderr
    faulted = [t for t, kind, outcome in server.requests if outcome == "429"]
    assert len(faulted) == 1
    # The retry is the last comparison of round 1 to come in after the 429.
    retried = min(
        t for t, kind, outcome in server.requests if kind == "comparison" and t > faulted[0]
    )
    assert 2.9 <= retried - faulted[0] < 4.5


def test_retry_after_past_the_budget_gives_up_at_once(images):
    with FaultServer(fault="429", healthy=2, retry_after="Wed, 21 Oct 2099 07:28:00 GMT") as server:
        done, seconds, out = rerank(server, images)
    assert done.returncode == 4
    line = error_line(done)
    assert "rate limiting" in line and "retry budget" in line
    assert server.count("comparison", "429") == 1 and seconds < 12
    assert_partial(out, finished=2)


@pytest.mark.parametrize("strategy", ["knockout", "round-robin"])
def test_server_killed_mid_run(images, strategy):
    with FaultServer(fault="kill", healthy=2) as server:
        done, seconds, out = rerank(server, images, strategy=strategy)
    assert done.returncode == 4
    assert "nothing answers at" in error_line(done)
    assert seconds < 20
    assert_partial(out, finished=2)


def test_resume_after_a_fault_finishes_without_repeating_calls(images):
    with FaultServer(fault="500", healthy=2) as server:
        done, _, out = rerank(server, images)
    assert done.returncode == 4
    with FaultServer() as healthy:
        done, _ = run_ptgen("rerank", "--resume", out, "--assessor", healthy.url)
        assert done.returncode == 0, done.stderr
        # Profile and the 2 finished comparisons came from the journal: only 3 new comparisons.
        assert healthy.count("profile") == 0 and healthy.count("comparison") == 3
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "complete" and data["best"]["index"] == REDS.index(max(REDS))


def test_cancel_ends_retries_at_once():
    # The openai SDK's own retries would sleep out Retry-After in the worker and send 3 more
    # requests after the caller gave up; the engine's retries end on cancel.
    import threading
    import time

    from preferthinker import cancel
    from preferthinker.engines.openai_engine import OpenAIEngine

    with FaultServer(fault="429", retry_after="3", fault_on_profile=True) as server:
        engine = OpenAIEngine(server.url, model="m")
        outcome = {}

        def call():
            try:
                engine.generate([[{"role": "user", "content": "hi"}]])
            except BaseException as error:
                outcome.update(error=error, at=time.monotonic())

        cancel.reset()
        try:
            thread = threading.Thread(target=call, daemon=True)
            thread.start()
            while not server.requests:
                time.sleep(0.02)
            cancelled_at = time.monotonic()
            cancel.cancel()
            thread.join(5)
            assert (
                isinstance(outcome["error"], cancel.Cancelled)
                and outcome["at"] - cancelled_at < 0.5
            )
            time.sleep(3.5)  # past the Retry-After: nothing more is sent
            assert len(server.requests) == 1
        finally:
            cancel.reset()
