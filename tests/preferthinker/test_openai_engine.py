"""The HTTP engine against a real `transformers serve` and against deliberately broken servers."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from preferthinker.engines import GenerationConfig, create_engine
from preferthinker.engines.openai_engine import OpenAIEngine, image_data_url, normalize_base_url
from preferthinker.errors import EngineError, InputError, ServerUnreachableError


def conversation(text, images):
    content = [{"type": "text", "text": text}]
    for label, image in zip("ABCDEFG", images):
        content += [{"type": "text", "text": f"Image {label}"}, {"type": "image", "image": image}]
    return [{"role": "system", "content": [{"type": "text", "text": "You judge images."}]},
            {"role": "user", "content": content}]


# -- against the real server --------------------------------------------------------------------

def test_three_images_return_text_and_usage(tiny_server, tiny_assessor_path, make_images):
    engine = OpenAIEngine(tiny_server)  # no model given: the engine asks /v1/models
    assert engine.name == str(tiny_assessor_path)
    with pytest.warns(RuntimeWarning, match="repetition_penalty"):  # transformers serve rejects it (422)
        outputs = engine.generate([conversation("which one?", make_images(3))],
                                  GenerationConfig(max_new_tokens=5, repetition_penalty=1.15))
    assert len(outputs) == 1 and isinstance(outputs[0].text, str)
    assert outputs[0].completion_tokens > 0 and outputs[0].seconds > 0
    # Three 56x56 images are 4 visual tokens each; the prompt counts them plus the text.
    assert outputs[0].prompt_tokens > 12
    assert engine.send_repetition_penalty is False
    engine.close()


def test_concurrent_requests_come_back_in_order(tiny_server, tiny_assessor_path, make_images):
    engine = create_engine(tiny_server, model=str(tiny_assessor_path), max_concurrency=3,
                           send_repetition_penalty=False)
    images = make_images(4)
    # Prompts of clearly different lengths, so the order of the outputs can be checked by usage.
    conversations = [conversation("x" * (10 * i), images[: 1 + i % 3]) for i in range(6)]
    config = GenerationConfig(max_new_tokens=4, repetition_penalty=1.0)
    outputs = engine.generate(conversations, config)
    assert len(outputs) == 6
    prompt_tokens = [output.prompt_tokens for output in outputs]
    assert len(set(prompt_tokens)) == 6
    alone = [engine.generate([conv], config)[0].prompt_tokens for conv in conversations]
    assert prompt_tokens == alone
    engine.close()


def test_wrong_model_name_is_an_engine_error(tiny_server):
    engine = OpenAIEngine(tiny_server, model="not-served", max_retries=0, send_repetition_penalty=False)
    with pytest.raises(EngineError, match="HTTP"):
        engine.generate([[{"role": "user", "content": "hi"}]], GenerationConfig(max_new_tokens=2))


# -- dead and broken servers ----------------------------------------------------------------------

def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed on exit: nothing listens there


def test_dead_port_is_unreachable_quickly():
    url = f"http://127.0.0.1:{_dead_port()}/v1"
    engine = OpenAIEngine(url, model="m", max_retries=2, backoff=0.01, timeout=5)
    started = time.monotonic()
    with pytest.raises(ServerUnreachableError) as info:
        engine.generate([[{"role": "user", "content": "hi"}]])
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert url in message and "ptgen serve" in message and "\n" not in message


class _Handler(BaseHTTPRequestHandler):
    """Answers /v1/models properly and chat completions with whatever the test asks for."""

    reply: tuple[int, str] = (200, "{}")
    calls = 0
    delay = 0.0
    in_flight = 0
    most_in_flight = 0
    lock = threading.Lock()

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, json.dumps({"object": "list", "data": [{"id": "fake-model", "object": "model"}]}))

    def do_POST(self):
        cls = type(self)
        with cls.lock:
            cls.calls += 1
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(cls.delay)
        with cls.lock:
            cls.in_flight -= 1
        status, body = cls.reply
        try:
            self._send(status, body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass


@pytest.fixture
def fake_server():
    handler = type("Handler", (_Handler,), {"calls": 0, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("body,match", [
    ('{"id": "x", "object": "chat.completion"}', "without choices"),
    ('{"choices": []}', "without choices"),
    ('{"choices": [{"index": 0, "message": {"role": "assistant", "content": null}, "finish_reason": "stop"}]}',
     "without text"),
    ("this is not json", "without choices|unusable"),
])
def test_garbage_replies_are_engine_errors(fake_server, body, match):
    handler, url = fake_server
    handler.reply = (200, body)
    engine = OpenAIEngine(url, max_retries=0)
    assert engine.name == "fake-model"
    with pytest.raises(EngineError, match=match) as info:
        engine.generate([[{"role": "user", "content": "hi"}]])
    assert not isinstance(info.value, ServerUnreachableError) and "\n" not in str(info.value)


def test_5xx_is_retried_and_4xx_is_not(fake_server):
    handler, url = fake_server
    handler.reply = (503, '{"detail": "overloaded"}')
    engine = OpenAIEngine(url, model="m", max_retries=2, backoff=0.01)
    with pytest.raises(EngineError, match="503.*overloaded"):
        engine.generate([[{"role": "user", "content": "hi"}]])
    assert handler.calls == 3
    handler.calls = 0
    handler.reply = (400, '{"error": {"message": "too many images"}}')
    with pytest.raises(EngineError, match="400.*too many images"):
        engine.generate([[{"role": "user", "content": "hi"}]])
    assert handler.calls == 1


GOOD_REPLY = json.dumps({
        "id": "1", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "<answer>Image A</answer>"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 321, "completion_tokens": 9, "total_tokens": 330},
})


def test_usage_and_text_from_a_good_reply(fake_server, make_images):
    handler, url = fake_server
    handler.reply = (200, GOOD_REPLY)
    engine = OpenAIEngine(url, model="m", max_concurrency=4)
    outputs = engine.generate([conversation("q", make_images(2))] * 5)
    assert [output.text for output in outputs] == ["<answer>Image A</answer>"] * 5
    assert outputs[0].prompt_tokens == 321 and outputs[0].completion_tokens == 9
    assert handler.calls == 5


def test_concurrency_is_bounded(fake_server):
    handler, url = fake_server
    handler.reply = (200, GOOD_REPLY)
    handler.delay = 0.2
    engine = OpenAIEngine(url, model="m", max_concurrency=2)
    started = time.monotonic()
    outputs = engine.generate([[{"role": "user", "content": f"q{i}"}] for i in range(6)])
    elapsed = time.monotonic() - started
    assert len(outputs) == 6 and handler.most_in_flight == 2
    assert 0.55 < elapsed < 3  # 3 rounds of 2 in parallel, not 6 in a row and not all at once


def test_timeout_is_an_engine_error_and_not_retried(fake_server):
    # A request that timed out already waited `timeout` seconds: trying again would double it.
    handler, url = fake_server
    handler.reply = (200, GOOD_REPLY)
    handler.delay = 1.0
    engine = OpenAIEngine(url, model="m", timeout=0.2, max_retries=1, backoff=0.01)
    with pytest.raises(EngineError, match="did not answer within 0.2 s.*--timeout") as info:
        engine.generate([[{"role": "user", "content": "hi"}]])
    assert not isinstance(info.value, ServerUnreachableError)
    assert handler.calls == 1


def test_helpers():
    from PIL import Image

    assert normalize_base_url("http://h:1") == "http://h:1/v1"
    assert normalize_base_url("http://h:1/v1/") == "http://h:1/v1"
    with pytest.raises(InputError, match="host:port"):
        normalize_base_url("localhost:8000")
    image = Image.new("RGBA", (3, 2), (1, 2, 3, 4))
    import base64
    import io

    decoded = Image.open(io.BytesIO(base64.b64decode(image_data_url(image).split(",", 1)[1])))
    assert decoded.format == "PNG" and decoded.size == (3, 2) and decoded.getpixel((0, 0)) == (1, 2, 3, 4)
