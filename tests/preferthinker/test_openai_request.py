"""What the HTTP engine puts in the request body, read by a recording server on 127.0.0.1.

vLLM reads `max_completion_tokens` (it deprecates `max_tokens`), applies the checkpoint's
generation_config.json to any sampling field left out (Qwen2.5-VL: top_k=1, so a sampled retry
would be greedy again), and takes `chat_template_kwargs` (the authors render with
`add_vision_id`). The server here records each body and answers from a script.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from preferthinker.engines import GenerationConfig
from preferthinker.engines.openai_engine import OpenAIEngine


def _reply(text: str) -> tuple[int, str]:
    return 200, json.dumps(
        {
            "id": "1",
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
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    )


class _Recorder(BaseHTTPRequestHandler):
    bodies: list
    replies: list  # (status, body) per request, the last one repeats

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}))

    def do_POST(self):
        cls = type(self)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        cls.bodies.append(body)
        index = min(len(cls.bodies), len(cls.replies)) - 1
        self._send(*cls.replies[index])


@pytest.fixture
def recorder():
    handler = type(
        "Recorder", (_Recorder,), {"bodies": [], "replies": [_reply("<answer>Image A</answer>")]}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


HI = [[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]]


def test_greedy_request_body(recorder):
    handler, url = recorder
    engine = OpenAIEngine(url, model="m", max_retries=0)
    engine.generate(
        HI,
        GenerationConfig(
            max_new_tokens=77, repetition_penalty=1.15, chat_template_kwargs={"add_vision_id": True}
        ),
    )
    (body,) = handler.bodies
    assert body["max_completion_tokens"] == 77 and "max_tokens" not in body
    assert body["temperature"] == 0 and body["repetition_penalty"] == 1.15
    assert body["chat_template_kwargs"] == {"add_vision_id": True}
    assert "top_k" not in body  # greedy: nothing to cut


def test_sampled_request_sends_top_k_and_top_p(recorder):
    handler, url = recorder
    engine = OpenAIEngine(url, model="m", max_retries=0)
    engine.generate(HI, GenerationConfig(temperature=0.7))
    engine.generate(HI, GenerationConfig(temperature=0.7, top_p=0.9, top_k=20))
    assert [(b["temperature"], b["top_p"], b["top_k"]) for b in handler.bodies] == [
        (0.7, 1.0, -1),
        (0.7, 0.9, 20),
    ]
    assert handler.bodies[0]["max_completion_tokens"] == 4096  # the authors' limit by default


def test_assessor_retry_is_sampled_with_explicit_top_k(recorder, make_images):
    """An unparseable first answer is asked again, sampled, with top_k/top_p in the body."""
    from preferthinker.assessor import Assessor, AssessorConfig

    handler, url = recorder
    handler.replies = [_reply("I cannot tell."), _reply("<answer>Image B</answer>")]
    config = AssessorConfig(
        assessor=url, assessor_model="Qwen/Qwen2.5-VL-7B-Instruct", max_retries=1
    )
    with Assessor.from_config(config) as assessor:
        liked, a, b = make_images(3)
        comparison = assessor.compare(a, b, liked=[liked])
    assert comparison.winner == "B"
    first, retry = handler.bodies
    assert first["temperature"] == 0 and "top_k" not in first
    assert retry["temperature"] == 0.7 and retry["top_k"] == -1 and retry["top_p"] == 1.0
    # A Qwen2.5-VL model: the template's vision ids are on by default, in every request.
    assert first["chat_template_kwargs"] == retry["chat_template_kwargs"] == {"add_vision_id": True}


def test_add_vision_id_off_and_for_other_models(recorder, make_images):
    from preferthinker.assessor import Assessor, AssessorConfig

    handler, url = recorder
    for model, option in (
        ("Qwen/Qwen2.5-VL-7B-Instruct", False),
        ("llava-hf/llava-1.5-7b-hf", None),
    ):
        config = AssessorConfig(assessor=url, assessor_model=model, add_vision_id=option)
        with Assessor.from_config(config) as assessor:
            liked, a, b = make_images(3)
            assessor.compare(a, b, liked=[liked])
    assert all("chat_template_kwargs" not in body for body in handler.bodies)


def test_a_refused_field_is_dropped_once_with_a_warning(recorder):
    handler, url = recorder
    detail = json.dumps({"detail": "Unexpected field chat_template_kwargs"})
    handler.replies = [(422, detail), _reply("<answer>Image A</answer>")]
    engine = OpenAIEngine(url, model="m", max_retries=0)
    config = GenerationConfig(chat_template_kwargs={"add_vision_id": True}, repetition_penalty=1.15)
    with pytest.warns(RuntimeWarning, match="chat_template_kwargs"):
        assert engine.generate(HI, config)[0].text == "<answer>Image A</answer>"
    engine.generate(HI, config)
    assert ["chat_template_kwargs" in b for b in handler.bodies] == [True, False, False]
    assert all(b["repetition_penalty"] == 1.15 for b in handler.bodies)  # only the named field goes
