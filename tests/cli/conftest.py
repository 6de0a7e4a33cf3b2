"""Fixtures of the command-line tests: reference and candidate images, the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REDS = (40, 200, 90, 250, 10, 160)  # candidate i is (REDS[i], 60, 60): the redder, the better


@pytest.fixture()
def images(tmp_path) -> dict:
    """`liked/` (three red images) and six candidates `c0.png`..`c5.png`."""
    from PIL import Image

    liked = tmp_path / "liked"
    liked.mkdir()
    for k, color in enumerate([(250, 20, 20), (230, 40, 30), (240, 60, 10)]):
        Image.new("RGB", (32, 32), color).save(liked / f"l{k}.png")
    candidates = []
    for i, red in enumerate(REDS):
        path = tmp_path / f"c{i}.png"
        Image.new("RGB", (32, 32), (red, 60, 60)).save(path)
        candidates.append(path)
    return {"liked": liked, "candidates": candidates, "root": tmp_path}


def ptgen_env() -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "COLUMNS": "200",
    }


def run_ptgen(*args, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    """`python -m ptgen ARGS` in a subprocess: (the finished process, seconds it took)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ptgen", *map(str, args)],
        capture_output=True,
        text=True,
        env=ptgen_env(),
        timeout=timeout,
    )
    return done, time.monotonic() - started


def start_ptgen(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ptgen", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ptgen_env(),
    )
