"""The health wait against real local HTTP servers: a warming one, a dead port,
`transformers serve`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from preferthinker.errors import EngineError, ServerUnreachableError
from preferthinker.serving import (
    ServeCommand,
    ServeConfig,
    VLLMLauncher,
    health_url,
    start_server,
    stop_server,
    wait_for_health,
)
from ptgen.cli.main import main

from .conftest import free_port


def test_health_url_from_base_url():
    assert health_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/health"
    assert health_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/health"
    assert health_url("http://h:1") == "http://h:1/health"


def test_waits_through_503_until_200(warming_server):
    server = warming_server(warmup=1.0)
    seen: list = []
    result = wait_for_health(
        server.base_url,
        timeout=10,
        interval=0.2,
        api_key="k",
        progress=lambda waited, status: seen.append(status),
    )
    assert result.url == f"http://127.0.0.1:{server.port}/health"
    assert 0.8 <= result.seconds < 5
    assert server.statuses[-1] == 200 and 503 in server.statuses
    assert seen and set(seen) == {503}  # progress reported each failed probe with its status
    assert result.attempts == len(server.statuses)
    assert server.auth[0] == "Bearer k"


def test_dead_port_times_out_with_a_clear_error():
    port = free_port()
    start = time.monotonic()
    with pytest.raises(ServerUnreachableError, match="nothing answered"):
        wait_for_health(f"http://127.0.0.1:{port}/v1", timeout=1.0, interval=0.2)
    assert time.monotonic() - start < 4  # bounded


def test_server_stuck_at_503_times_out_naming_the_status(warming_server):
    server = warming_server(warmup=60)
    with pytest.raises(ServerUnreachableError, match="last status 503"):
        wait_for_health(server.base_url, timeout=0.8, interval=0.2)


def test_process_exit_ends_the_wait_early():
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    process.wait()
    with pytest.raises(EngineError, match="exited with code 3"):
        wait_for_health(f"http://127.0.0.1:{free_port()}/v1", timeout=30, process=process)


FAKE_VLLM = textwrap.dedent(
    """\
    #!{python}
    # Stands in for `vllm serve`: health 503 while "loading", then 200, then exits.
    import os, sys, threading, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    port = int(sys.argv[sys.argv.index("--port") + 1])
    assert os.environ.get("VLLM_API_KEY") == "k1", "api key not passed via env"
    start = time.monotonic()
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path == "/health" and time.monotonic() - start > 0.5
            self.send_response(200 if ok else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()
        def log_message(self, *a): pass
    server = HTTPServer(("127.0.0.1", port), H)
    threading.Timer(3.0, server.shutdown).start()
    server.serve_forever()
    """
)


def test_cli_starts_waits_and_prints_the_assessor_url(tmp_path, capsys):
    exe = tmp_path / "vllm"
    exe.write_text(FAKE_VLLM.format(python=sys.executable))
    exe.chmod(0o755)
    port = free_port()
    code = main(
        [
            "serve",
            "/ckpt/merged",
            "--vllm",
            str(exe),
            "--port",
            str(port),
            "--api-key",
            "k1",
            "--health-timeout",
            "20",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == f"--assessor http://127.0.0.1:{port}/v1 --assessor-model /ckpt/merged"
    assert "ready after" in err and "k1" not in err


# The venv's own console script first: `make test` runs pytest without activating the venv.
TRANSFORMERS_CLI = next(
    (str(p) for p in [Path(sys.executable).parent / "transformers"] if p.exists()),
    shutil.which("transformers"),
)


@pytest.mark.skipif(TRANSFORMERS_CLI is None, reason="transformers CLI not installed")
def test_against_a_real_transformers_serve_process(tmp_path):
    """`transformers serve` answers /health like vLLM: start it, wait, stop it."""
    exe = TRANSFORMERS_CLI
    port = free_port()
    cfg = ServeConfig(model="unused", port=port)
    command = ServeCommand(
        argv=[exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        env={},
        launcher=VLLMLauncher([exe, "serve"], True, "test"),
        config=cfg,
    )
    process = start_server(command, log_path=tmp_path / "server.log")
    try:
        result = wait_for_health(cfg.base_url, timeout=120, interval=0.5, process=process)
        assert result.url == f"http://127.0.0.1:{port}/health"
    finally:
        stop_server(process, grace=10)
    assert process.poll() is not None


def test_against_the_shared_tiny_server(tiny_server):
    """The shared `tiny_server` fixture: transformers serve with the tiny assessor loaded."""
    result = wait_for_health(tiny_server, timeout=60, interval=0.5)
    assert result.url == health_url(tiny_server)
    assert result.attempts == 1  # the fixture already waited for it; health answers at once
