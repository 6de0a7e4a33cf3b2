"""Shared test fixtures: the tiny assessor, images, an image folder, a real `transformers serve`.

Everything is offline: the hub is switched off before anything imports huggingface_hub, models
are built from configs and loaded with `from_pretrained`, and the HTTP engine is tested against a
real OpenAI-compatible server on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

# huggingface_hub reads this once, at import: set it before any test imports transformers.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Profiles cached by the commands under test go to a throwaway folder, never the user's own cache.
os.environ["PTGEN_CACHE_DIR"] = tempfile.mkdtemp(prefix="ptgen-test-cache-")

import pytest  # noqa: E402

SERVER_START_TIMEOUT = 120.0


@pytest.fixture(scope="session")
def tiny_assessor_path(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2.5-VL (model + processor) saved with save_pretrained, built
    once."""
    from preferthinker.tiny import make_tiny_assessor

    return make_tiny_assessor(tmp_path_factory.mktemp("tiny") / "assessor")


def _pattern_image(color, size, pattern):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, color)
    if pattern == "stripes":
        draw = ImageDraw.Draw(image)
        inverse = tuple(255 - channel for channel in image.getpixel((0, 0)))
        for x in range(0, size[0], 8):
            draw.rectangle([x, 0, x + 3, size[1]], fill=inverse)
    elif pattern == "checker":
        draw = ImageDraw.Draw(image)
        inverse = tuple(255 - channel for channel in image.getpixel((0, 0)))
        for x in range(0, size[0], 8):
            for y in range((x // 8 % 2) * 8, size[1], 16):
                draw.rectangle([x, y, x + 7, y + 7], fill=inverse)
    elif pattern != "solid":
        raise ValueError(f"pattern must be solid, stripes or checker, got {pattern!r}")
    return image


@pytest.fixture(scope="session")
def make_images() -> Callable:
    """Factory: `make_images(n=3, size=(64, 64), pattern="solid"|"stripes"|"checker", colors=None)`
    returns n distinct RGB PIL images (distinct colours; pass `colors` to choose them)."""

    palette = [
        (220, 40, 40),
        (40, 160, 60),
        (40, 70, 220),
        (240, 200, 30),
        (150, 60, 180),
        (30, 190, 200),
        (250, 130, 20),
        (120, 120, 120),
    ]

    def factory(n: int = 3, size=(64, 64), pattern: str = "solid", colors=None):
        chosen = (
            list(colors) if colors is not None else [palette[i % len(palette)] for i in range(n)]
        )
        return [_pattern_image(tuple(chosen[i]), tuple(size), pattern) for i in range(n)]

    return factory


@pytest.fixture
def image_dir(tmp_path, make_images) -> Path:
    """A folder with 01.png, 02.jpg, 03.webp (usable, sorted by name), notes.txt (not an image),
    04_corrupt.png (garbage bytes) and a hidden .hidden.png (ignored)."""
    folder = tmp_path / "refs"
    folder.mkdir()
    red, green, blue = make_images(3, size=(48, 40))
    red.save(folder / "01.png")
    green.save(folder / "02.jpg", quality=95)
    blue.save(folder / "03.webp", lossless=True)
    (folder / "notes.txt").write_text("not an image\n", encoding="utf-8")
    (folder / "04_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    red.save(folder / ".hidden.png")
    return folder


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _transformers_cli() -> str:
    local = Path(sys.executable).parent / "transformers"
    if local.exists():
        return str(local)
    found = shutil.which("transformers")
    if found is None:
        pytest.skip("the `transformers` command is missing; install transformers[serving]")
    return found


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no stderr>"


@pytest.fixture(scope="session")
def tiny_server(tiny_assessor_path, tmp_path_factory) -> Iterator[str]:
    """A real `transformers serve` of the tiny assessor on a free 127.0.0.1 port.

    Yields the base URL (`http://127.0.0.1:PORT/v1`); the served model name is
    `str(tiny_assessor_path)`. Fails with the server's stderr tail if it is not up in 120 s.
    """
    port = _free_port()
    log_dir = tmp_path_factory.mktemp("tiny_server")
    stderr_path = log_dir / "stderr.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    command = [
        _transformers_cli(),
        "serve",
        str(tiny_assessor_path),
        "--device",
        "cpu",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with open(log_dir / "stdout.log", "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
    base_url = f"http://127.0.0.1:{port}/v1"
    started = time.monotonic()
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"transformers serve exited with code {process.returncode}:\n"
                    f"{_tail(stderr_path)}"
                )
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                    if json.load(response).get("data"):
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            if time.monotonic() - started > SERVER_START_TIMEOUT:
                pytest.fail(
                    f"transformers serve not ready after {SERVER_START_TIMEOUT:.0f} s:\n"
                    f"{_tail(stderr_path)}"
                )
            time.sleep(0.25)
        # Reported in the test log (-s or -rP): how long the real server takes to come up.
        print(f"\ntiny_server ready at {base_url} in {time.monotonic() - started:.1f} s")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
