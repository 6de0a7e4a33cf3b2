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
