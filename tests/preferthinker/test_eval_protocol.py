"""`ptgen eval --protocol ptgen|authors|both`, checked against a re-implementation of the
authors' scoring written here from the facts in REFERENCE.md ("Authors' evaluation protocol").

The model is a scripted OpenAI-compatible server on 127.0.0.1 (a real 7B cannot run here): it
records every request and answers each item with a scripted text, chosen by the colour of the
image that follows "Image A". `ptgen eval` runs as a real subprocess.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from preferthinker.benchmark import load_benchmark
from preferthinker.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
COT = (
    '<visual preference profile>\n"Art Styles": "Pixel Art", "Color": "Pink", "Artistic Medium": '
    '"Digital Painting", "Saturation": "Intense", "Detail": "Fine"\n</visual preference profile>\n'
    "<think>1. Artistic style: Image A(4) - x; Image B(1) - y\n"
    "Total: Image A: 4  Image B: 1</think>\n"
)

# (item id, truth, references, model output). The outputs are chosen so the two protocols differ.
ITEMS = [
    ("exact", "Image A", (2, 2), COT + "<answer>Image A</answer>"),
    ("bold", "Image B", (2, 2), "<answer>**Image B**</answer>"),  # ptgen right, authors wrong
    (
        "no-refs lower-case",
        "Image A",
        (0, 0),
        "<answer>image a</answer>",
    ),  # ptgen right, authors wrong
    (
        "liked-only, corrected",
        "Image B",
        (3, 0),
        "<answer>Image A</answer> no: <answer> Image B </answer>",
    ),
    (
        "7+6 refs, sentence",
        "Image A",
        (7, 6),
        COT + "Answer: Image A",
    ),  # ptgen right, authors wrong
    ("wrong", "Image B", (1, 1), "<answer>Image A</answer>"),
    ("unclosed", "Image B", (1, 1), "<answer>Image B"),  # ptgen right, authors wrong
]


def _colour(i: int) -> tuple:
    return (20 + 30 * i, 200 - 20 * i, (77 * i) % 256)


def _build(folder: Path) -> Path:
    """A benchmark file in the authors' exact JSON format, images relative to its folder."""
    images = folder / "images"
    images.mkdir(parents=True)

    def save(name: str, colour: tuple) -> str:
        Image.new("RGB", (32, 32), colour).save(images / name)
        return f"images/{name}"

    records = []
    for i, (_, truth, (n_liked, n_disliked), _) in enumerate(ITEMS):
        records.append(
            {
                "imageA": save(f"{i}_a.png", _colour(i)),
                "imageB": save(f"{i}_b.png", (255, 255, 255)),
                "prefered_images": [
                    save(f"{i}_l{k}.png", (255, 0, 10 * k)) for k in range(n_liked)
                ],
                "non_prefered_images": [
                    save(f"{i}_d{k}.png", (0, 0, 10 * k)) for k in range(n_disliked)
                ],
                "conversations": [{"from": "gpt", "value": truth}],
            }
        )
    # Bad items: reported and skipped, never fatal.
    records.append(
        {
            "imageA": "images/missing.png",
            "imageB": "images/0_b.png",
            "prefered_images": [],
            "non_prefered_images": [],
            "conversations": [{"from": "gpt", "value": "Image A"}],
        }
    )
    records.append(
        {
            "imageA": "images/0_a.png",
            "imageB": "images/0_b.png",
            "prefered_images": [],
            "non_prefered_images": [],
            "conversations": [{"from": "gpt", "value": "no idea"}],
        }
    )
    path = folder / "SP_ID.json"
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path


def _authors_accuracy(records: list, outputs: list) -> float:
    """Their scoring, from REFERENCE.md: the LAST <answer>...</answer> block, stripped, compared
    case-sensitively with the truth in conversations[0]["value"]; no block counts wrong and
    stays in the denominator."""
    correct = 0
    for record, output in zip(records, outputs, strict=True):
        blocks = re.findall(r"<answer>(.*?)</answer>", output, re.DOTALL)
        prediction = blocks[-1].strip() if blocks else None
        correct += prediction == record["conversations"][0]["value"]
    return correct / len(records)


_MIRROR = {"A": "B", "B": "A", "a": "b", "b": "a"}


class _Scripted(BaseHTTPRequestHandler):
    bodies: list
    by_colour: dict

    def log_message(self, *args):
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(
            {"object": "list", "data": [{"id": "Qwen/Qwen2.5-VL-7B-Instruct", "object": "model"}]}
        )

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        type(self).bodies.append(body)
        parts = body["messages"][-1]["content"]
        colours = {}
        for letter in "AB":
            label = next(
                i
                for i, p in enumerate(parts)
                if p.get("type") == "text" and p["text"] == f"Image {letter}"
            )
            url = parts[label + 1]["image_url"]["url"]
            image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
            colours[letter] = image.getpixel((0, 0))
        if colours["A"] in type(self).by_colour:
            text = type(self).by_colour[colours["A"]]
        else:  # the swapped pair of the position-bias pass: the same judgement, mirrored
            text = re.sub(
                r"(?i)(image\s*)([ab])\b",
                lambda m: m.group(1) + _MIRROR[m.group(2)],
                type(self).by_colour[colours["B"]],
            )
        self._send(
            {
                "id": "1",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )


@pytest.fixture
def scripted_server():
    handler = type(
        "Scripted",
        (_Scripted,),
        {"bodies": [], "by_colour": {_colour(i): item[3] for i, item in enumerate(ITEMS)}},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _eval(url: str, data: Path, out: Path, protocol: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ptgen",
            "eval",
            "--data",
            str(data),
            "--assessor",
            url,
            "--protocol",
            protocol,
            "--no-similarity",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_protocol_both_matches_the_authors_scoring(tmp_path, scripted_server):
    handler, url = scripted_server
    data = _build(tmp_path / "bench")
    result = _eval(url, data, tmp_path / "out" / "both.json", "both")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "both.json").read_text())

    records = json.loads(data.read_text())[: len(ITEMS)]
    outputs = [item[3] for item in ITEMS]
    expected_authors = _authors_accuracy(records, outputs)
    assert expected_authors == pytest.approx(2 / 7)
    assert report["protocol"] == "both" and report["n"] == len(ITEMS)
    assert report["accuracy_by_protocol"]["authors"] == pytest.approx(expected_authors)
    assert report["accuracy_by_protocol"]["ptgen"] == pytest.approx(6 / 7)
    # One generation per item, no retry and no swapped pass: both readings share it.
    assert len(handler.bodies) == len(ITEMS)
    for body in handler.bodies:
        assert body["temperature"] == 0 and body["repetition_penalty"] == 1.15
        assert body["max_completion_tokens"] == 4096 and "top_k" not in body
        assert body["chat_template_kwargs"] == {"add_vision_id": True}  # a Qwen2.5-VL model
    # The reference block only when both sides exist, at most 5 per side.
    images = sorted(
        sum(p.get("type") == "image_url" for p in b["messages"][-1]["content"])
        for b in handler.bodies
    )
    assert images == [2, 2, 4, 4, 6, 6, 12]
    # The bad items are reported, not fatal.
    reasons = " ".join(s["reason"] for s in report["skipped"])
    assert len(report["skipped"]) == 2 and "missing.png" in reasons and "no idea" in reasons
    assert "skipped" in result.stderr + result.stdout
    table = (tmp_path / "out" / "both.md").read_text()
    assert "acc % (ptgen)" in table and "acc % (authors)" in table and "28.6" in table


def test_protocol_authors_and_ptgen_alone(tmp_path, scripted_server):
    handler, url = scripted_server
    data = _build(tmp_path / "bench")
    authors = _eval(url, data, tmp_path / "authors.json", "authors")
    assert authors.returncode == 0, authors.stderr
    report = json.loads((tmp_path / "authors.json").read_text())
    assert report["accuracy"] == report["accuracy_by_protocol"]["authors"] == pytest.approx(2 / 7)
    assert "protocol authors" in authors.stderr + authors.stdout
    handler.bodies.clear()
    ptgen = _eval(url, data, tmp_path / "ptgen.json", "ptgen")
    assert ptgen.returncode == 0, ptgen.stderr
    report = json.loads((tmp_path / "ptgen.json").read_text())
    assert report["protocol"] == "ptgen" and "authors" not in report["accuracy_by_protocol"]
    # ptgen sends liked-only items their liked images (5 of the 7 are kept by the cap).
    images = sorted(
        sum(p.get("type") == "image_url" for p in b["messages"][-1]["content"])
        for b in handler.bodies
    )
    assert 5 in images  # the liked-only item: 3 liked + 2 candidates


def test_bad_protocol_is_a_one_line_error(tmp_path, scripted_server):
    _, url = scripted_server
    result = _eval(url, _build(tmp_path / "bench"), tmp_path / "x.json", "paper")
    assert (
        result.returncode != 0
        and "--protocol" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_training_layout_truth_is_read_from_the_answer_turn(tmp_path):
    """Their training layout: [question, answer]; the question quotes the format line with
    "<answer>Image A</answer>", which must never be read as the truth."""
    question = (
        "Which image does the user prefer? Answer with <answer>Image A</answer> or "
        "<answer>Image B</answer>."
    )
    records = [
        {
            "imageA": "a.png",
            "imageB": "b.png",
            "conversations": [
                {"from": "human", "value": question},
                {"from": "gpt", "value": "<answer>Image B</answer>"},
            ],
        },
        {
            "imageA": "a.png",
            "imageB": "b.png",
            "conversations": [
                {"from": "human", "value": question},
                {"from": "gpt", "value": COT + "<answer>Image B</answer>"},
            ],
        },
        {
            "imageA": "a.png",
            "imageB": "b.png",
            "conversations": [
                {"role": "user", "value": question},
                {"role": "assistant", "value": "Image B"},
            ],
        },
        {
            "imageA": "a.png",
            "imageB": "b.png",
            "conversations": [{"value": question}, {"value": "Image B"}],
        },
        {
            "imageA": "a.png",
            "imageB": "b.png",
            "conversations": [{"from": "gpt", "value": "Image A"}],
        },
    ]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(records))
    assert [item.answer for item in load_benchmark(path)] == ["B", "B", "B", "B", "A"]
    records[0]["conversations"][1]["value"] = "I am not sure"
    path.write_text(json.dumps(records))
    with pytest.raises(InputError, match="conversations.*answer turn"):
        load_benchmark(path)
    skipped: list = []
    assert len(load_benchmark(path, skipped=skipped)) == 4 and "item 0" in skipped[0]


def test_evaluate_in_process_with_the_scripted_engine(tmp_path):
    """The library call behind `ptgen eval`, on the scripted engine: both readings of one
    generation per item, and the authors' accuracy equals their scoring re-implemented above."""
    from preferthinker.assessor import Assessor, AssessorConfig
    from preferthinker.engines.scripted import ScriptedEngine
    from preferthinker.evaluation import AUTHORS_DECODING, EvalConfig, evaluate

    by_colour = {_colour(i): item[3] for i, item in enumerate(ITEMS)}

    def respond(conversation) -> str:
        parts = conversation[-1]["content"]
        label = next(
            i for i, p in enumerate(parts) if p.get("type") == "text" and p["text"] == "Image A"
        )
        return by_colour[parts[label + 1]["image"].convert("RGB").getpixel((0, 0))]

    data = _build(tmp_path / "bench")
    skipped: list = []
    items = load_benchmark(data, skipped=skipped)
    engine = ScriptedEngine(respond)
    assessor = Assessor(engine, AssessorConfig(assessor="scripted", **AUTHORS_DECODING))
    result = evaluate(
        items, assessor, EvalConfig(protocol="both", position_bias=False, similarity=False)
    )
    records = json.loads(data.read_text())[: len(ITEMS)]
    assert result["accuracy_by_protocol"]["authors"] == pytest.approx(
        _authors_accuracy(records, [item[3] for item in ITEMS])
    )
    assert result["accuracy_by_protocol"]["ptgen"] == pytest.approx(6 / 7)
    assert len(engine.calls) == len(ITEMS)  # one generation per item, read twice
    assert [entry["references"] for entry in result["items"]] == [
        "liked+disliked",
        "liked+disliked",
        "none",
        "none",
        "liked+disliked",
        "liked+disliked",
        "liked+disliked",
    ]
    assert (
        len(skipped) == 1 and len(result["skipped"]) == 1
    )  # bad truth at load, missing image at run
