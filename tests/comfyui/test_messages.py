"""One message text, two wordings: a ComfyUI node names its field, the CLI names its flag."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from comfyui_nodes import NODE_CLASS_MAPPINGS
from comfyui_nodes.engine_cache import ENGINES
from preferthinker.errors import EngineError, InputError, ModelNotFoundError
from ptgen.cli.main import main

ASSESSOR_INPUTS = dict(
    model_name="",
    device="cpu",
    dtype="auto",
    debias=False,
    max_retries=0,
    max_new_tokens=8,
    timeout=5.0,
)


def run_node(key: str, **inputs):
    cls = NODE_CLASS_MAPPINGS[key]
    return getattr(cls(), cls.FUNCTION)(**inputs)


@pytest.fixture
def no_model_server():
    """A real HTTP server on 127.0.0.1 whose /v1/models lists nothing (stops with the test)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = json.dumps({"object": "list", "data": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_missing_model_folder_names_the_node_field(tmp_path):
    ENGINES.clear()
    with pytest.raises(ModelNotFoundError) as caught:
        run_node("PTGenAssessor", assessor=str(tmp_path / "no" / "model"), **ASSESSOR_INPUTS)
    assert str(caught.value).endswith("check the path given to assessor")
    assert "--" not in str(caught.value)


def test_missing_model_folder_names_the_cli_flag(capsys, tmp_path, image_dir):
    code = main(["profile", "--refs", str(image_dir), "--assessor", str(tmp_path / "no" / "model")])
    err = capsys.readouterr().err
    assert code == 3
    assert err.strip().endswith("check the path given to --assessor")


def test_unnamed_served_model_names_model_name_in_a_node(no_model_server, red_batch):
    ENGINES.clear()
    (assessor,) = run_node("PTGenAssessor", assessor=no_model_server, **ASSESSOR_INPUTS)
    with pytest.raises(EngineError) as caught:
        run_node("PTGenPredictProfile", assessor=assessor, liked=red_batch[:1])
    assert str(caught.value).endswith(
        "lists no model at /models; give the model name with model_name"
    )
    ENGINES.clear()


def test_unnamed_served_model_names_the_flag_in_the_cli(capsys, no_model_server, image_dir):
    code = main(["profile", "--refs", str(image_dir), "--assessor", no_model_server])
    err = capsys.readouterr().err
    assert code == 4
    assert err.strip().endswith("give the model name with --assessor-model")


def test_cuda_on_a_machine_without_it_names_the_device_field_or_flag(
    capsys, tiny_assessor_path, image_dir
):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    ENGINES.clear()
    inputs = dict(ASSESSOR_INPUTS, device="cuda")
    with pytest.raises(InputError) as caught:
        run_node("PTGenAssessor", assessor=str(tiny_assessor_path), **inputs)
    assert str(caught.value).endswith("CUDA is not available; use device cpu")
    code = main(
        [
            "profile",
            "--refs",
            str(image_dir),
            "--assessor",
            str(tiny_assessor_path),
            "--device",
            "cuda",
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.strip().endswith("CUDA is not available; use --device cpu")


def test_unwritable_store_names_the_store_field_in_a_node(tmp_path, red_batch):
    from generation.store import UserStore
    from preferthinker.errors import StoreError

    store = UserStore(tmp_path / "store")
    store.create("ann").close()
    images = next((tmp_path / "store").rglob("images"))
    images.rmdir()
    images.write_text("a file where the image folder should be")
    with pytest.raises(StoreError) as caught:
        run_node("PTGenRecordFeedback", images=red_batch[:1], user="ann", store=str(store.root))
    assert "pass store DIR or set PTGEN_STORE" in str(caught.value)
    assert "--" not in str(caught.value)


def test_a_server_timeout_names_the_timeout_field_in_a_node(red_batch):
    """A real server on 127.0.0.1 that answers /models and never answers a completion in time."""
    import time

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = json.dumps({"object": "list", "data": [{"id": "slow", "object": "model"}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def do_POST(self):  # noqa: N802 - http.server's name
            time.sleep(3)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ENGINES.clear()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        inputs = dict(ASSESSOR_INPUTS, timeout=0.5)
        (assessor,) = run_node("PTGenAssessor", assessor=url, **inputs)
        with pytest.raises(EngineError) as caught:
            run_node("PTGenPredictProfile", assessor=assessor, liked=red_batch[:1])
        assert "raise timeout if the model is slow" in str(caught.value)
        assert "--" not in str(caught.value)
    finally:
        ENGINES.clear()
        server.shutdown()
        server.server_close()
