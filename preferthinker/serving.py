"""Serving an assessor with vLLM: the command line `ptgen serve` builds, and the health wait.

vLLM is CUDA-only and pins its own torch and transformers, so ptgen never imports it: it runs
vLLM's OpenAI-compatible server as a separate process, from this environment when vLLM is
installed here, or from another one named by `vllm_python` / `vllm`. Clients (the CLI, the
ComfyUI nodes, training rewards) then talk to it through `--assessor http://host:port/v1`.

The flags predict-then-assess needs:
- `--limit-mm-per-prompt '{"image": 12}'`: 5 liked + 5 disliked references + 2 candidates.
- `--max-model-len` large enough for those images at the client's pixel budget plus the system
  prompt and 4096 new tokens (`required_model_len`), and `--mm-processor-kwargs` capping each
  image at that budget server-side, so the estimate holds whatever clients send.
- `--enable-prefix-caching`: the long system prompt and the references repeat across every
  candidate pair of one user, so their KV cache is reused. Turned off with
  `--no-enable-prefix-caching` (vLLM enables it by default: leaving the flag out keeps it on).
- The tensor-parallel size must divide the language model's attention heads (Qwen2.5-VL-7B:
  28, so 1, 2, 4, 7, 14 or 28); `check_tensor_parallel` reads them from the model's config
  before anything is launched.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from preferthinker.errors import EngineError, InputError, ServerUnreachableError
from preferthinker.images import DEFAULT_MAX_PIXELS
from preferthinker.references import MAX_REFERENCES

# 5 liked + 5 disliked references + 2 candidates (the authors' prompt holds up to 5 of each).
DEFAULT_MAX_IMAGES = 2 * MAX_REFERENCES + 2
# DEFAULT_MAX_PIXELS: the same pixel budget as AssessorConfig.max_pixels (both read it from
# preferthinker.images), so the server never sees larger images.
DEFAULT_MAX_NEW_TOKENS = 4096
# Qwen2.5-VL: one token per 28x28 patch group, plus vision start/end tokens per image.
PIXELS_PER_IMAGE_TOKEN = 28 * 28
TOKENS_AROUND_IMAGE = 2
# System prompt with worked examples + instructions + labels; measured well below this.
PROMPT_TEXT_TOKENS = 3072
DEFAULT_ADAPTER_NAME = "preferthinker"

INSTALL_HINT = (
    "vLLM is not installed here; it pins its own torch, so give it its own environment: "
    "`python -m venv ~/vllm-env && ~/vllm-env/bin/pip install vllm`, then pass "
    "`--vllm-python ~/vllm-env/bin/python` (or `--vllm ~/vllm-env/bin/vllm`)"
)


def required_model_len(
    max_images: int = DEFAULT_MAX_IMAGES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    prompt_tokens: int = PROMPT_TEXT_TOKENS,
) -> int:
    """The context length one predict-then-assess request needs, rounded up to 1024.

    Args:
        max_images: images per request (references + candidates).
        max_pixels: largest image size in pixels the server accepts.
        max_new_tokens: the completion budget.
        prompt_tokens: the text part of the prompt.

    Example:
        >>> required_model_len(12, 1024 * 1024, 4096)
        23552
    """
    per_image = math.ceil(max_pixels / PIXELS_PER_IMAGE_TOKEN) + TOKENS_AROUND_IMAGE
    total = max_images * per_image + prompt_tokens + max_new_tokens
    return int(math.ceil(total / 1024) * 1024)


@dataclass
class ServeConfig:
    """How to serve an assessor with vLLM.

    Args:
        model: base model id/path, or a merged checkpoint folder.
        adapter: a LoRA adapter folder served on top of `model` (no merge needed).
        adapter_name: the model name clients use to reach the adapter.
        served_model_name: the name clients use for the base model (default: `model`).
        host: bind address; 127.0.0.1 keeps the server private to this machine.
        port: TCP port.
        api_key: require this bearer key on /v1 (passed as VLLM_API_KEY, not on the command line).
        tensor_parallel_size: GPUs per replica that split each layer (one node).
        pipeline_parallel_size: stages that split the layers (across nodes, with Ray).
        data_parallel_size: independent replicas behind the one URL.
        ray: use the Ray executor (multi-node; start the Ray cluster first).
        max_images: images allowed per request (`--limit-mm-per-prompt`).
        max_pixels: largest image in pixels (`--mm-processor-kwargs`).
        max_new_tokens: completion budget the context length must leave room for.
        max_model_len: context length; None computes it with `required_model_len`.
        max_lora_rank: largest LoRA rank to accept (with `adapter`).
        gpu_memory_utilization: fraction of each GPU vLLM may take (None: vLLM's default).
        dtype: weights dtype (None: vLLM's "auto").
        prefix_caching: reuse the KV cache of repeated prompt prefixes.
        extra_args: further vLLM flags, appended as given.
        vllm_python: a Python interpreter of an environment that has vLLM.
        vllm: the `vllm` executable of such an environment.

    Example:
        >>> cfg = ServeConfig(model="Qwen/Qwen2.5-VL-7B-Instruct", tensor_parallel_size=2)
    """

    model: str
    adapter: Optional[str] = None
    adapter_name: str = DEFAULT_ADAPTER_NAME
    served_model_name: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: Optional[str] = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    ray: bool = False
    max_images: int = DEFAULT_MAX_IMAGES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    max_model_len: Optional[int] = None
    max_lora_rank: int = 64
    gpu_memory_utilization: Optional[float] = None
    dtype: Optional[str] = None
    prefix_caching: bool = True
    extra_args: Sequence[str] = field(default_factory=tuple)
    vllm_python: Optional[str] = None
    vllm: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.model or not str(self.model).strip():
            raise ValueError(f"model must name a model id or folder, got {self.model!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        for name in (
            "tensor_parallel_size",
            "pipeline_parallel_size",
            "data_parallel_size",
            "max_images",
            "max_pixels",
            "max_new_tokens",
            "max_lora_rank",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_model_len is not None and self.max_model_len < self.needed_model_len():
            raise ValueError(
                f"max_model_len={self.max_model_len} cannot hold {self.max_images} images of "
                f"{self.max_pixels} pixels plus {self.max_new_tokens} new tokens; "
                f"use at least {self.needed_model_len()}"
            )
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(
                f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}"
            )
        if self.vllm_python and self.vllm:
            raise ValueError("give vllm_python or vllm, not both")
        if self.adapter and not self.adapter_name.strip():
            raise ValueError(f"adapter_name must be a non-empty name, got {self.adapter_name!r}")
        self.extra_args = tuple(self.extra_args)

    def needed_model_len(self) -> int:
        return required_model_len(self.max_images, self.max_pixels, self.max_new_tokens)

    @property
    def model_len(self) -> int:
        return self.max_model_len or self.needed_model_len()

    @property
    def client_model(self) -> str:
        """The model name clients pass (`--assessor-model`): the adapter's when one is served."""
        if self.adapter:
            return self.adapter_name
        return self.served_model_name or self.model

    @property
    def client_host(self) -> str:
        # A wildcard bind address is reachable locally through the loopback address.
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def base_url(self) -> str:
        """The URL to pass to `--assessor`."""
        host = f"[{self.client_host}]" if ":" in self.client_host else self.client_host
        return f"http://{host}:{self.port}/v1"


@dataclass
class VLLMLauncher:
    """How to start vLLM: the argv prefix before the model, and what was found."""

    prefix: list[str]
    found: bool
    source: str

    def describe(self) -> str:
        return f"{'found' if self.found else 'NOT found'}: {self.source}"


def find_vllm(vllm_python: Optional[str] = None, vllm: Optional[str] = None) -> VLLMLauncher:
    """Locate vLLM: a given interpreter or executable, else this environment, else PATH.

    Returns a launcher whose `found` is False when nothing usable was found (the prefix is then
    the plain `vllm serve` a user would type), so a dry run can still print the command.

    Example:
        >>> find_vllm(vllm_python="/opt/vllm-env/bin/python").prefix[1:]
        ['-m', 'vllm.entrypoints.cli.main', 'serve']
    """
    # vLLM's CLI entry point (`vllm serve MODEL`); the old `vllm.entrypoints.openai.api_server
    # --model MODEL` module is deprecated.
    server_module = ["-m", "vllm.entrypoints.cli.main", "serve"]
    if vllm_python:
        path = Path(vllm_python).expanduser()
        ok = path.is_file() and os.access(path, os.X_OK) and _python_has_vllm(str(path))
        return VLLMLauncher([str(path), *server_module], ok, f"--vllm-python {path}")
    if vllm:
        path = Path(vllm).expanduser()
        ok = path.is_file() and os.access(path, os.X_OK)
        return VLLMLauncher([str(path), "serve"], ok, f"--vllm {path}")
    if importlib.util.find_spec("vllm") is not None:
        return VLLMLauncher(
            [sys.executable, *server_module], True, f"this environment ({sys.executable})"
        )
    on_path = shutil.which("vllm")
    if on_path:
        return VLLMLauncher([on_path, "serve"], True, f"PATH ({on_path})")
    return VLLMLauncher(["vllm", "serve"], False, "no vllm in this environment or on PATH")


def _python_has_vllm(python: str) -> bool:
    try:
        done = subprocess.run(
            [
                python,
                "-c",
                "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)",
            ],
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def build_vllm_args(config: ServeConfig) -> list[str]:
    """The vLLM flags (everything after the model) for `config`.

    Example:
        >>> args = build_vllm_args(ServeConfig(model="Qwen/Qwen2.5-VL-7B-Instruct"))
        >>> args[args.index("--limit-mm-per-prompt") + 1]
        '{"image": 12}'
    """
    args = [
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--limit-mm-per-prompt",
        json.dumps({"image": config.max_images}),
        "--mm-processor-kwargs",
        json.dumps({"max_pixels": config.max_pixels}),
        "--max-model-len",
        str(config.model_len),
        "--tensor-parallel-size",
        str(config.tensor_parallel_size),
    ]
    if config.pipeline_parallel_size > 1:
        args += ["--pipeline-parallel-size", str(config.pipeline_parallel_size)]
    if config.data_parallel_size > 1:
        args += ["--data-parallel-size", str(config.data_parallel_size)]
    if config.ray:
        args += ["--distributed-executor-backend", "ray"]
    # Both ways explicit: vLLM enables prefix caching by default.
    args.append(
        "--enable-prefix-caching" if config.prefix_caching else "--no-enable-prefix-caching"
    )
    if config.served_model_name:
        args += ["--served-model-name", config.served_model_name]
    if config.adapter:
        args += [
            "--enable-lora",
            "--lora-modules",
            f"{config.adapter_name}={config.adapter}",
            "--max-lora-rank",
            str(config.max_lora_rank),
        ]
    if config.dtype:
        args += ["--dtype", config.dtype]
    if config.gpu_memory_utilization is not None:
        args += ["--gpu-memory-utilization", str(config.gpu_memory_utilization)]
    args += list(config.extra_args)
    return args


# Attention heads of the language model of the checkpoints ptgen names, for when their config is
# not on this machine (values from each checkpoint's config.json on the hub).
KNOWN_ATTENTION_HEADS = {
    "Qwen/Qwen2.5-VL-3B-Instruct": 16,
    "Qwen/Qwen2.5-VL-7B-Instruct": 28,
    "Qwen/Qwen2.5-VL-32B-Instruct": 40,
    "Qwen/Qwen2.5-VL-72B-Instruct": 64,
}


def attention_heads(model: str) -> Optional[int]:
    """The language model's attention heads: from `config.json` in a local folder or the hub
    cache (no download), else `KNOWN_ATTENTION_HEADS`; None when unknown.

    Example:
        >>> attention_heads("Qwen/Qwen2.5-VL-7B-Instruct")
        28
    """
    config_file: Optional[Path] = Path(model).expanduser() / "config.json"
    if not config_file.is_file():
        config_file = None
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "config.json")
            config_file = Path(cached) if isinstance(cached, str) else None
        except Exception:  # not an id the hub library accepts: nothing cached
            config_file = None
    if config_file is not None:
        try:
            data = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        text_config = data.get("text_config") or {}
        heads = text_config.get("num_attention_heads") or data.get("num_attention_heads")
        if isinstance(heads, int) and heads > 0:
            return heads
    return KNOWN_ATTENTION_HEADS.get(str(model))


def check_tensor_parallel(config: ServeConfig) -> Optional[int]:
    """Refuse a tensor-parallel size that does not divide the model's attention heads (vLLM
    would refuse it after minutes of loading). Returns the heads, None when they are unknown.

    Raises:
        InputError: naming the heads and the sizes that work.

    Example:
        >>> config = ServeConfig(model="Qwen/Qwen2.5-VL-7B-Instruct", tensor_parallel_size=4)
        >>> check_tensor_parallel(config)
        28
    """
    heads = attention_heads(config.model)
    if heads is None:
        return None
    if heads % config.tensor_parallel_size:
        valid = ", ".join(str(n) for n in range(1, heads + 1) if heads % n == 0)
        raise InputError(
            f"--tensor-parallel-size {config.tensor_parallel_size} does not divide the {heads} "
            f"attention heads of {config.model}; valid sizes: {valid} (scale out with --dp instead)"
        )
    return heads


@dataclass
class ServeCommand:
    """The exact process `ptgen serve` starts: argv, extra environment, and where vLLM came from."""

    argv: list[str]
    env: dict[str, str]
    launcher: VLLMLauncher
    config: ServeConfig

    def shell(self, reveal_secrets: bool = False) -> str:
        """The command as one shell line (the API key masked unless `reveal_secrets`)."""
        env = " ".join(
            f"{k}={shlex.quote(v if reveal_secrets or k != 'VLLM_API_KEY' else '****')}"
            for k, v in self.env.items()
        )
        line = shlex.join(self.argv)
        return f"{env} {line}" if env else line


def build_serve_command(
    config: ServeConfig, launcher: Optional[VLLMLauncher] = None
) -> ServeCommand:
    """Build the vLLM server command for `config` (finding vLLM unless `launcher` is given).

    Example:
        >>> cmd = build_serve_command(ServeConfig(model="/ckpt/merged", api_key="s3cret"))
        >>> cmd.env["VLLM_API_KEY"]
        's3cret'
    """
    launcher = launcher or find_vllm(config.vllm_python, config.vllm)
    argv = [*launcher.prefix, config.model, *build_vllm_args(config)]
    # The key goes through the environment (vLLM reads VLLM_API_KEY): argv is visible in `ps`.
    env = {"VLLM_API_KEY": config.api_key} if config.api_key else {}
    return ServeCommand(argv=argv, env=env, launcher=launcher, config=config)


@dataclass
class HealthResult:
    """How the wait ended: the URL that answered 200, the time it took and the attempts."""

    url: str
    seconds: float
    attempts: int


def _probe(url: str, timeout: float, api_key: Optional[str]) -> Optional[int]:
    """HTTP status of GET url, or None when nothing answers."""
    request = urllib.request.Request(url, method="GET")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError, ValueError):
        return None


def health_url(base_url: str) -> str:
    """`http://h:p/v1` -> `http://h:p/health` (vLLM and transformers serve both answer there)."""
    root = base_url.rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return f"{root}/health"


def wait_for_health(
    base_url: str,
    timeout: float = 900.0,
    interval: float = 2.0,
    *,
    process: Optional[subprocess.Popen] = None,
    api_key: Optional[str] = None,
    progress: Optional[Callable[[float, Optional[int]], None]] = None,
    request_timeout: float = 5.0,
) -> HealthResult:
    """Poll `<root>/health` until it answers 200, the process exits, or `timeout` passes.

    Args:
        base_url: the server's `/v1` URL (or its root).
        timeout: seconds to wait in all; loading a 7B model and compiling takes minutes.
        interval: seconds between probes.
        process: the server process; its exit ends the wait early with an error.
        api_key: sent as a bearer token (vLLM's /health does not need it; proxies may).
        progress: called after each failed probe with (seconds waited, last HTTP status or None).

    Raises:
        ServerUnreachableError: no 200 within `timeout`.
        EngineError: the process exited first.

    Example:
        >>> wait_for_health("http://127.0.0.1:8000/v1", timeout=600)  # doctest: +SKIP
    """
    url = health_url(base_url)
    start = time.monotonic()
    attempts = 0
    status: Optional[int] = None
    while True:
        attempts += 1
        status = _probe(url, min(request_timeout, max(timeout, 0.1)), api_key)
        waited = time.monotonic() - start
        if status == 200:
            return HealthResult(url=url, seconds=waited, attempts=attempts)
        if process is not None and process.poll() is not None:
            raise EngineError(
                f"the server process exited with code {process.returncode} "
                f"before {url} was healthy; "
                "read its log above (out of GPU memory? wrong model path? port in use?)"
            )
        if progress is not None:
            progress(waited, status)
        if waited + interval > timeout:
            last = f"last status {status}" if status is not None else "nothing answered"
            raise ServerUnreachableError(
                f"{url} was not healthy after {timeout:.0f}s ({last}); raise --health-timeout "
                "or check the server log"
            )
        time.sleep(interval)


def start_server(command: ServeCommand, log_path: Optional[Path] = None) -> subprocess.Popen:
    """Start the server process (output to `log_path`, else inherited). Raises when vLLM is missing.

    Example:
        >>> command = build_serve_command(ServeConfig(model="Qwen/Qwen2.5-VL-7B-Instruct"))
        >>> process = start_server(command)  # doctest: +SKIP
    """
    if not command.launcher.found:
        raise InputError(f"{INSTALL_HINT} ({command.launcher.source})")
    env = {**os.environ, **command.env}
    stdout = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        stdout = open(log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
    try:
        return subprocess.Popen(
            command.argv, env=env, stdout=stdout, stderr=subprocess.STDOUT if stdout else None
        )
    except OSError as error:
        raise InputError(f"cannot start {command.argv[0]}: {error}; {INSTALL_HINT}") from None
    finally:
        if stdout is not None:
            stdout.close()


def stop_server(process: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop a server started by `start_server`: SIGTERM, then SIGKILL after `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)
