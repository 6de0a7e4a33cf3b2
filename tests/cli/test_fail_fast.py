"""Cheap checks come before heavy imports, and --force never destroys an earlier run.

Subprocesses run `ptgen.cli.main` exactly as `python -m ptgen` does, then report which heavy
packages ended up imported.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from .conftest import ptgen_env, run_ptgen

HEAVY = ("diffusers", "torch", "transformers")
# Seconds from the interpreter's start (before any ptgen import) to the end of main(): on a
# machine shared with other jobs, process start-up alone varies more than the check itself.
REPORT_IMPORTS = (
    "import time; start = time.monotonic(); import sys; from ptgen.cli.main import main; "
    "code = main(sys.argv[1:]); print('seconds:', time.monotonic() - start); "
    f"print('imported:', [m for m in {HEAVY!r} if m in sys.modules]); sys.exit(code)"
)


def run_reporting_imports(*args, env=None):
    done = subprocess.run(
        [sys.executable, "-c", REPORT_IMPORTS, *map(str, args)],
        capture_output=True,
        text=True,
        env=env or ptgen_env(),
        timeout=120,
    )
    lines = done.stdout.splitlines()
    imported = next(line for line in lines if line.startswith("imported:"))
    seconds = float(next(line for line in lines if line.startswith("seconds:")).split()[1])
    return done, seconds, imported


def test_rerank_with_the_analytic_assessor_imports_no_model_library(images):
    done, _, imported = run_reporting_imports(
        "rerank",
        *images["candidates"][:2],
        "--refs",
        images["liked"],
        "--assessor",
        "analytic",
        "--out",
        images["root"] / "run",
        "--no-cache",
    )
    assert done.returncode == 0, done.stderr
    assert imported == "imported: []"


def test_missing_default_models_fail_in_under_3_s_before_any_import(images):
    out = images["root"] / "run"
    for env in (ptgen_env(), {k: v for k, v in ptgen_env().items() if k != "HF_HUB_OFFLINE"}):
        # Offline (HF_HUB_OFFLINE) and hub unreachable (no network here): the same fast answer.
        done, seconds, imported = run_reporting_imports(
            "generate", "a castle", "--refs", images["liked"], "--out", out, env=env
        )
        assert done.returncode == 3, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(
            "error: assessor 'Qwen/Qwen2.5-VL-7B-Instruct' is not in the local Hugging Face cache"
        )
        assert seconds < 3.0 and imported == "imported: []"
        assert not out.exists()  # no empty run folder left behind
    done, seconds, imported = run_reporting_imports(
        "generate", "a castle", "--refs", images["liked"], "--assessor", "analytic", "--out", out
    )
    assert done.returncode == 3 and "generator 'black-forest-labs/FLUX.1-schnell'" in done.stderr
    assert seconds < 3.0 and imported == "imported: []"


def test_unreadable_references_fail_before_any_import(images):
    done, _, imported = run_reporting_imports(
        "rerank",
        *images["candidates"][:2],
        "--refs",
        images["root"] / "nothing-here",
        "--assessor",
        "analytic",
    )
    assert (
        done.returncode == 2
        and "image path not found" in done.stderr
        and imported == "imported: []"
    )
    empty = images["root"] / "empty"
    empty.mkdir()
    done, _, _ = run_reporting_imports(
        "rerank", *images["candidates"][:2], "--refs", empty, "--assessor", "analytic"
    )
    assert done.returncode == 2 and "holds no PNG, JPEG or WebP image" in done.stderr


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"  # closed on exit: nothing listens


def test_force_with_a_dead_server_keeps_the_earlier_run(images):
    out = images["root"] / "run"
    done, _ = run_ptgen(
        "rerank",
        *images["candidates"],
        "--refs",
        images["liked"],
        "--assessor",
        "analytic",
        "--out",
        out,
        "--no-cache",
    )
    assert done.returncode == 0, done.stderr
    (out / "candidate-99.png").write_bytes(b"mine, not ptgen's")  # merely matches ptgen's naming
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    done, _ = run_ptgen(
        "rerank",
        *images["candidates"],
        "--refs",
        images["liked"],
        "--assessor",
        _dead_url(),
        "--assessor-model",
        "m",
        "--out",
        out,
        "--force",
        "--no-cache",
    )
    assert done.returncode == 4 and "nothing answers at" in done.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # untouched
    (staging,) = [p for p in images["root"].iterdir() if ".ptgen-new-" in p.name]
    assert json.loads((staging / "result.json").read_text())["status"] == "partial"

    done, _ = run_ptgen(
        "rerank",
        *images["candidates"],
        "--refs",
        images["liked"],
        "--assessor",
        "analytic",
        "--out",
        out,
        "--force",
        "--no-cache",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "result.json").read_text())["status"] == "complete"
    assert not (out / "candidate-99.png").exists()
    (old,) = [p for p in images["root"].iterdir() if ".ptgen-old-" in p.name]
    assert {path.name: path.read_bytes() for path in old.iterdir()} == before  # kept whole, renamed
