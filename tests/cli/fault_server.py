"""A misbehaving OpenAI-compatible server on 127.0.0.1, for testing how ptgen copes with faults.

It answers like a PreferThinker model for a user who likes red (the redder of two images wins,
decoded from the request's data URLs), until `healthy` comparison requests have been answered;
from then on every comparison request gets the fault named by `fault`:

- "500": HTTP 500, always;            "500-once": HTTP 500 once, then healthy again;
- "hang": accept and say nothing (until the server stops);
- "bad-json": HTTP 200 with a body that is not JSON;
- "close-mid-body": headers and part of the body, then the connection closes;
- "drop": the connection closes before any response;
- "429": HTTP 429 with `Retry-After: retry_after`, always; "429-once": once, then healthy;
- "empty-choices": HTTP 200 with `"choices": []`;
- "kill": the server stops listening and drops the request (a crashed server).

`fault_on_profile=True` applies the fault to the profile request too. Bounded: every thread is a
daemon, hanging handlers wake when the server stops, and the server stops by itself after
`lifetime` seconds.

Example:
    >>> with FaultServer(fault="500", healthy=2) as server:
    ...     run_cli(..., "--assessor", server.url)
    ...     server.count("comparison")
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional


def _profile_text() -> str:
    from preferthinker.profile import Profile, UserProfile

    profile = UserProfile(
        liked=Profile(
            art_style=["Pixel Art"],
            color=["Crimson"],
            art_medium=["Digital Painting"],
            saturation=["Intense"],
            detail=["Fine"],
        ),
        disliked=Profile(color=["Cobalt Blue"]),
    )
    return profile.to_tag_text()


def _red(url: str) -> int:
    from PIL import Image

    data = base64.b64decode(url.split(",", 1)[1])
    return Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0))[0]


def answer(body: dict) -> tuple[str, str]:
    """(kind, text): the model's answer to a chat request, "profile" or "comparison"."""
    from preferthinker.parser import format_output
    from preferthinker.results import ElementScore

    parts = [
        p
        for m in body.get("messages", [])
        if isinstance(m.get("content"), list)
        for p in m["content"]
    ]
    texts = [p.get("text", "") for p in parts if p.get("type") == "text"]
    urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
    if "Image A" not in texts:  # the comparison prompts label each candidate with this exact part
        return "profile", _profile_text()
    ra, rb = _red(urls[-2]), _red(urls[-1])
    sa, sb = round(ra / 255 * 5), round(rb / 255 * 5)
    scores = [
        ElementScore("color", sa, sb, f"red {ra}", f"red {rb}"),
        ElementScore("detail", 3, 3, "same", "same"),
    ]
    return "comparison", format_output(None, scores, "A" if ra >= rb else "B")


def completion(text: str) -> str:
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }
    )


class FaultServer:
    """The server; use as a context manager. `requests` logs (time, kind, outcome) per request."""

    def __init__(
        self,
        fault: Optional[str] = None,
        healthy: int = 0,
        retry_after: str = "1",
        fault_on_profile: bool = False,
        lifetime: float = 120.0,
    ):
        self.fault = fault
        self.healthy = healthy
        self.retry_after = retry_after
        self.fault_on_profile = fault_on_profile
        self.lifetime = lifetime
        self.requests: list[tuple[float, str, str]] = []
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._answered = 0
        self._faulted = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: str, headers: Optional[dict] = None) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()

            def do_GET(self):
                self._send(
                    200, json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]})
                )

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                kind, text = answer(body)
                outer.handle(self, kind, text)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    # -- behaviour ----------------------------------------------------------------------------
    def _decide(self, kind: str) -> Optional[str]:
        with self._lock:
            faulty = self.fault is not None and (kind == "comparison" or self.fault_on_profile)
            if faulty and kind == "comparison" and self._answered < self.healthy:
                faulty = False
            if faulty and self.fault.endswith("-once") and self._faulted >= 1:
                faulty = False
            if faulty:
                self._faulted += 1
                return self.fault.removesuffix("-once")
            if kind == "comparison":
                self._answered += 1
            return None

    def handle(self, handler: BaseHTTPRequestHandler, kind: str, text: str) -> None:
        fault = self._decide(kind)
        with self._lock:
            self.requests.append((time.monotonic(), kind, fault or "ok"))
        if fault is None:
            handler._send(200, completion(text))
        elif fault == "500":
            handler._send(500, json.dumps({"error": {"message": "injected failure"}}))
        elif fault == "429":
            handler._send(
                429,
                json.dumps({"error": {"message": "slow down"}}),
                {"Retry-After": self.retry_after},
            )
        elif fault == "bad-json":
            handler._send(200, "{this is not json")
        elif fault == "empty-choices":
            handler._send(
                200,
                json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "m",
                        "choices": [],
                    }
                ),
            )
        elif fault == "close-mid-body":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", "5000")
            handler.end_headers()
            handler.wfile.write(b'{"id": "x", "choices": [')
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)
        elif fault == "drop":
            handler.close_connection = True
            handler.connection.shutdown(2)
        elif fault == "hang":
            self.stopped.wait(self.lifetime)
            handler.close_connection = True
        elif fault == "kill":
            handler.close_connection = True
            handler.connection.shutdown(2)
            threading.Thread(target=self.stop, daemon=True).start()
        else:
            raise ValueError(f"unknown fault {fault!r}")

    def count(self, kind: str, outcome: Optional[str] = None) -> int:
        with self._lock:
            return sum(
                1 for _, k, o in self.requests if k == kind and (outcome is None or o == outcome)
            )

    # -- lifetime -----------------------------------------------------------------------------
    def start(self) -> "FaultServer":
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self.stop()
