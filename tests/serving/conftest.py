"""Local HTTP servers for the health-wait tests: a scripted one (http.server in a thread) and
ports."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WarmingServer:
    """Answers /health with 503 for `warmup` seconds, then 200; records the Authorization
    headers."""

    def __init__(self, warmup: float):
        self.warmup = warmup
        self.started = time.monotonic()
        self.statuses: list[int] = []
        self.auth: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                outer.auth.append(self.headers.get("Authorization"))
                if self.path != "/health":
                    status = 404
                elif time.monotonic() - outer.started < outer.warmup:
                    status = 503
                else:
                    status = 200
                outer.statuses.append(status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def warming_server():
    servers: list[WarmingServer] = []

    def make(warmup: float) -> WarmingServer:
        server = WarmingServer(warmup)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
