"""HTTP engine: any OpenAI-compatible chat server (vLLM in production, `transformers serve` in tests).

Images travel as base64 PNG data URLs in `image_url` parts. Requests run concurrently in a bounded
thread pool; each has a timeout and is retried with exponential backoff when the failure is
transient (connection refused/reset, timeout, HTTP 5xx, 429), never on other 4xx answers, which
would fail the same way again.
"""

from __future__ import annotations

import base64
import io
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar
from urllib.parse import urlsplit

from preferthinker.engines.base import (
    DEFAULT_MAX_NEW_TOKENS,
    Conversation,
    Engine,
    EngineOutput,
    GenerationConfig,
)
from preferthinker.engines.registry import EngineBackend
from preferthinker.errors import EngineError, InputError, ServerUnreachableError

T = TypeVar("T")


def image_data_url(image) -> str:
    """A PIL image as a `data:image/png;base64,...` URL (PNG: lossless, so the server sees our pixels).

    Example:
        >>> from PIL import Image
        >>> image_data_url(Image.new("RGB", (1, 1))).startswith("data:image/png;base64,")
        True
    """
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def normalize_base_url(base_url: str) -> str:
    """Strip trailing slashes; a bare `http://host:port` gets the `/v1` that OpenAI servers use.

    Example:
        >>> normalize_base_url("http://127.0.0.1:8000/")
        'http://127.0.0.1:8000/v1'
    """
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"server URL must look like http://host:port/v1, got {base_url!r}")
    if parts.path in ("", "/"):
        url += "/v1"
    return url


class RequestRejectedError(EngineError):
    """The server refused a request with an HTTP 4xx answer (retrying would not help)."""

    def __init__(self, message: str, status_code: int, detail: str):
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


def _one_line(text: Any, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def accepts_spec(spec: str) -> bool:
    """Whether `spec` names an OpenAI-compatible server: an http(s):// URL.

    Example:
        >>> accepts_spec("http://127.0.0.1:8000/v1"), accepts_spec("Qwen/Qwen2.5-VL-7B-Instruct")
        (True, False)
    """
    return spec.strip().lower().startswith(("http://", "https://"))


@dataclass
class OpenAIOptions:
    """Settings of the HTTP engine.

    Args:
        api_key: sent as a bearer token; None uses $OPENAI_API_KEY, else "EMPTY" (vLLM's default).
        timeout: seconds per request.
        max_concurrency: requests in flight at once.
        max_retries: extra tries of a request after a transient failure.
        backoff: first retry delay in seconds; doubles on each retry.
        send_repetition_penalty: send `repetition_penalty` (vLLM accepts it) when it is not 1.0.
            Servers that reject the field (`transformers serve` answers 422) are detected on the
            first request; the engine warns once and carries on without it.
    """

    api_key: Optional[str] = None
    timeout: float = 600
    max_concurrency: int = 8
    max_retries: int = 3
    backoff: float = 1.0
    send_repetition_penalty: bool = True

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {self.timeout}")
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff < 0:
            raise ValueError(f"backoff must be >= 0, got {self.backoff}")


class OpenAIEngine(Engine):
    """Sends conversations to an OpenAI-compatible `/v1/chat/completions` endpoint.

    Args:
        base_url: e.g. "http://127.0.0.1:8000/v1" (a bare host:port gets /v1).
        model: the served model name; None asks /v1/models and uses the first one listed.
        options: an `OpenAIOptions`; or give its fields as keywords (api_key, timeout,
            max_concurrency, max_retries, backoff, send_repetition_penalty).

    Raises (from `generate`):
        ServerUnreachableError: nothing answers at base_url after the retries.
        EngineError: timeouts, HTTP errors, replies without text.

    Example:
        >>> engine = OpenAIEngine("http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct")  # doctest: +SKIP
        >>> engine.generate([[{"role": "user", "content": "hi"}]])[0].text  # doctest: +SKIP
    """

    concurrent = True

    def __init__(
        self,
        base_url: str,
        model: Optional[str] = None,
        options: Optional[OpenAIOptions] = None,
        **settings: Any,
    ):
        import openai

        options = options or OpenAIOptions(**settings)
        api_key = options.api_key
        self.base_url = normalize_base_url(base_url)
        self.model = model
        self.timeout = float(options.timeout)
        self.max_concurrency = options.max_concurrency
        self.max_retries = options.max_retries
        self.backoff = options.backoff
        self.send_repetition_penalty = options.send_repetition_penalty
        self._lock = threading.Lock()
        # The client's own retries are off: ours know which failures are worth repeating.
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
            timeout=self.timeout,
            max_retries=0,
        )

    # -- model name --------------------------------------------------------------------------
    @property
    def name(self) -> str:  # type: ignore[override]
        """The served model name (asks the server once when none was given)."""
        if self.model is None:
            with self._lock:
                if self.model is None:
                    self.model = self._first_model()
        return self.model

    def _first_model(self) -> str:
        page = self._with_retries(lambda: self._client.models.list(), "listing models")
        models = [getattr(item, "id", None) for item in (getattr(page, "data", None) or [])]
        models = [model for model in models if isinstance(model, str) and model]
        if not models:
            raise EngineError(
                f"the server at {self.base_url} lists no model at /models; pass the model name with --assessor-model"
            )
        return models[0]

    # -- errors and retries ------------------------------------------------------------------
    def _with_retries(self, call: Callable[[], T], what: str) -> T:
        """Run `call`, retrying transient failures with exponential backoff; raise ptgen errors."""
        import openai

        attempt = 0
        while True:
            try:
                return call()
            except openai.APITimeoutError:
                if attempt >= self.max_retries:
                    raise EngineError(
                        f"the server at {self.base_url} did not answer within {self.timeout:g} s ({what}, "
                        f"{attempt + 1} tries); raise --timeout or lower --max-concurrency"
                    ) from None
            except openai.APIConnectionError as error:
                if attempt >= self.max_retries:
                    cause = error.__cause__ or error
                    raise ServerUnreachableError(
                        f"cannot reach the assessor server at {self.base_url} ({_one_line(cause, 120)}); "
                        "start one with `ptgen serve` or check the URL"
                    ) from None
            except openai.APIStatusError as error:
                transient = error.status_code >= 500 or error.status_code == 429
                if not transient or attempt >= self.max_retries:
                    detail = _one_line(_detail(error))
                    message = f"the server at {self.base_url} answered HTTP {error.status_code} ({what}): {detail}"
                    if not transient:
                        raise RequestRejectedError(message, error.status_code, detail) from None
                    raise EngineError(message) from None
            except (openai.OpenAIError, ValueError) as error:  # replies that are not JSON, etc.
                raise EngineError(
                    f"the server at {self.base_url} sent an unusable reply ({what}): {_one_line(error)}"
                ) from None
            time.sleep(self.backoff * (2 ** attempt))
            attempt += 1

    # -- requests ----------------------------------------------------------------------------
    def _messages(self, conversation: Conversation, urls: dict[int, str]) -> list[dict[str, Any]]:
        messages = []
        for message in conversation:
            content = message.get("content")
            if isinstance(content, str):
                messages.append({"role": message["role"], "content": content})
                continue
            parts = []
            for part in content or []:
                kind = part.get("type")
                if kind == "text":
                    parts.append({"type": "text", "text": part.get("text", "")})
                elif kind == "image":
                    image = part.get("image")
                    if image is None:
                        raise InputError("an image part has no 'image' (a PIL image) in the conversation")
                    parts.append({"type": "image_url", "image_url": {"url": urls[id(image)]}})
                else:
                    raise InputError(f"unknown message part type {kind!r}; use 'text' or 'image'")
            messages.append({"role": message["role"], "content": parts})
        return messages

    def _request(self, messages: list[dict[str, Any]], config: GenerationConfig) -> EngineOutput:
        started = time.perf_counter()
        while True:
            kwargs: dict[str, Any] = dict(
                model=self.name,
                messages=messages,
                max_tokens=config.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
                temperature=config.temperature,
                top_p=config.top_p,
            )
            if config.seed is not None:
                kwargs["seed"] = config.seed
            if config.stop:
                kwargs["stop"] = list(config.stop)
            with_penalty = self.send_repetition_penalty and config.repetition_penalty != 1.0
            if with_penalty:
                kwargs["extra_body"] = {"repetition_penalty": config.repetition_penalty}
            try:
                response = self._with_retries(
                    lambda: self._client.chat.completions.create(**kwargs), "chat completion"
                )
                break
            except RequestRejectedError as error:
                # Servers that validate fields strictly (transformers serve: 422) reject the field
                # vLLM needs; drop it once, for good, and say so.
                if with_penalty and "repetition_penalty" in error.detail:
                    with self._lock:
                        if self.send_repetition_penalty:
                            self.send_repetition_penalty = False
                            warnings.warn(
                                f"the server at {self.base_url} does not accept repetition_penalty; "
                                "generating without it", RuntimeWarning, stacklevel=3,
                            )
                    continue
                raise
        return self._output(response, time.perf_counter() - started)

    def _output(self, response: Any, seconds: float) -> EngineOutput:
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise EngineError(
                f"the server at {self.base_url} replied without choices ({_one_line(response, 120)}); "
                "is it an OpenAI-compatible chat server?"
            )
        message = getattr(choices[0], "message", None)
        text = getattr(message, "content", None)
        if not isinstance(text, str):
            raise EngineError(
                f"the server at {self.base_url} replied without text (content={_one_line(text, 80)}, "
                f"finish_reason={getattr(choices[0], 'finish_reason', None)})"
            )
        usage = getattr(response, "usage", None)
        return EngineOutput(
            text=text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            seconds=seconds,
        )

    def generate(
        self, conversations: list[Conversation], config: Optional[GenerationConfig] = None
    ) -> list[EngineOutput]:
        """Send every conversation, `max_concurrency` at a time; outputs come back in order.

        Each image is encoded once per call, however many conversations share it (the same
        reference images go with every pair of a tournament).

        Example:
            >>> outputs = engine.generate(conversations, GenerationConfig(max_new_tokens=512))  # doctest: +SKIP
        """
        config = config or GenerationConfig()
        if not conversations:
            return []
        urls: dict[int, str] = {}
        for conversation in conversations:
            for message in conversation:
                for part in message.get("content") if isinstance(message.get("content"), list) else []:
                    image = part.get("image") if part.get("type") == "image" else None
                    if image is not None and id(image) not in urls:
                        urls[id(image)] = image_data_url(image)
        requests = [self._messages(conversation, urls) for conversation in conversations]
        _ = self.name  # resolve the model name once, before the threads start
        if len(requests) == 1 or self.max_concurrency == 1:
            return [self._request(messages, config) for messages in requests]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests))) as pool:
            futures = [pool.submit(self._request, messages, config) for messages in requests]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()  # do not start the rest after a failure
                raise

    def close(self) -> None:
        """Close the HTTP connections. Safe to call twice."""
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
            self._client = None  # type: ignore[assignment]


def _detail(error: Any) -> str:
    """The server's own explanation of an HTTP error (FastAPI `detail`, OpenAI `error.message`)."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict) and body["error"].get("message"):
            return str(body["error"]["message"])
        for key in ("detail", "message", "error"):
            if body.get(key):
                return str(body[key])
    return str(getattr(error, "message", "") or error)


BACKEND = EngineBackend(
    name="openai",
    spec="an http(s)://HOST:PORT/v1 URL (OpenAI-compatible server, e.g. vLLM)",
    accepts=accepts_spec,
    engine_class=OpenAIEngine,
    options=OpenAIOptions,
    build=lambda spec, model, options: OpenAIEngine(spec, model=model, options=options),
    config_fields=("timeout", "max_concurrency"),
    served_model=True,
)
