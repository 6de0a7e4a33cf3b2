"""Usage errors through the real entry point (`python -m ptgen` in a subprocess): the usage
text, exit code 2, and no traceback, whichever click classes the installed typer raises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_ptgen(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ptgen", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (("generate",), "Missing argument"),
        (("frobnicate",), "No such command 'frobnicate'"),
        (("generate", "a castle", "-n", "abc"), "Invalid value for '-n'"),
    ],
)
def test_usage_error_prints_usage_and_exits_2(args, message):
    done = run_ptgen(*args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.lstrip().startswith("Usage: ")
    assert f"Error: {message}" in done.stderr



def test_a_sigterm_outside_the_run_still_exits_143(tmp_path, monkeypatch):
    """SIGTERM while the finished run is written, a window too short to hit with a real signal:
    what its handler does (mark the cancel, raise `Cancelled`) is done in its place, and
    `os._exit` raises instead of ending pytest. Exit 143, not typer's 130 for any interrupt."""
    import signal as signals

    from PIL import Image

    from preferthinker import cancel
    from ptgen.cli import generate_cmds
    from ptgen.cli.main import main

    liked = tmp_path / "liked"
    liked.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(liked / "l.png")
    for i in range(2):
        Image.new("RGB", (16, 16), (40 * i, 60, 60)).save(tmp_path / f"c{i}.png")

    def stopped_while_writing(*args, **kwargs):
        cancel.cancel(signals.SIGTERM)
        raise cancel.Cancelled(signals.SIGTERM)

    def exit_now(code):
        raise SystemExit(code)

    monkeypatch.setattr(generate_cmds, "_run_and_write", stopped_while_writing)
    monkeypatch.setattr(os, "_exit", exit_now)
    argv = ["rerank", str(tmp_path / "c0.png"), str(tmp_path / "c1.png"), "--refs", str(liked)]
    try:
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--assessor", "analytic", "--out", str(tmp_path / "out")])
    finally:
        cancel.reset()
    assert exited.value.code == 143
