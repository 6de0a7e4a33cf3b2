"""HTTP engine: any OpenAI-compatible chat server (vLLM in production, `transformers serve` in
tests).

Images travel as base64 PNG data URLs in `image_url` parts. Requests run concurrently in daemon
worker threads (`preferthinker.cancel.map_in_threads`: a cancelled run does not wait for them);
each has a timeout and is retried when the failure is transient (connection refused or dropped,
HTTP 5xx, 429), after the server's `Retry-After` when it sends one, within a total retry budget;
never on timeouts (the request already waited that long) or other 4xx answers, which would fail
the same way again.

Default timeout: `DEFAULT_TIMEOUT` (300 s) per request. A 7B model on one GPU writes 4096 tokens
in about 1-3 minutes under vLLM (20-50 tokens/s per request with 8 in flight); 300 s covers that
with room, and a server that accepts but never answers costs 5 minutes, not 10. Connecting has
its own short limit (`CONNECT_TIMEOUT`), so a dead host fails in seconds.
"""

from __future__ import annotations

import base64
import email.utils
import io
import os
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar
from urllib.parse import urlsplit

from preferthinker import cancel
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

DEFAULT_TIMEOUT = 300.0  # seconds per request; see the module docstring
CONNECT_TIMEOUT = 10.0  # seconds to open a connection
DEFAULT_RETRY_BUDGET = 60.0  # seconds one request may spend waiting between its tries


def image_data_url(image) -> str:
    """A PIL image as a `data:image/png;base64,...` URL (PNG: lossless, so the server sees our
    pixels).

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
        timeout: seconds per request (connecting: at most `CONNECT_TIMEOUT`).
        max_concurrency: requests in flight at once.
        max_retries: extra tries of a request after a transient failure.
        backoff: first retry delay in seconds when the server sends no Retry-After; doubles on
            each retry.
        retry_budget: the most seconds one request may spend waiting between its tries; a
            Retry-After that would pass it ends the retries at once.
        send_repetition_penalty: send `repetition_penalty` (vLLM accepts it) when it is not 1.0.
            Servers that reject the field (`transformers serve` answers 422) are detected on the
            first request; the engine warns once and carries on without it.
    """

    api_key: Optional[str] = None
    timeout: float = DEFAULT_TIMEOUT
    max_concurrency: int = 8
    max_retries: int = 3
    backoff: float = 1.0
    retry_budget: float = DEFAULT_RETRY_BUDGET
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
        if self.retry_budget < 0:
            raise ValueError(f"retry_budget must be >= 0, got {self.retry_budget}")


class OpenAIEngine(Engine):
    """Sends conversations to an OpenAI-compatible `/v1/chat/completions` endpoint.

    Args:
        base_url: e.g. "http://127.0.0.1:8000/v1" (a bare host:port gets /v1).
        model: the served model name; None asks /v1/models and uses the first one listed.
        options: an `OpenAIOptions`; or give its fields as keywords (api_key, timeout,
            max_concurrency, max_retries, backoff, retry_budget, send_repetition_penalty).

    Raises (from `generate`):
        ServerUnreachableError: nothing answers at base_url after the retries.
        EngineError: timeouts, dropped connections, rate limits, HTTP errors, unusable replies
            (each with its own message).
        preferthinker.cancel.Cancelled: the run was cancelled while waiting.

    Example:
        >>> engine = OpenAIEngine(  # doctest: +SKIP
        ...     "http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct"
        ... )
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
        self.retry_budget = float(options.retry_budget)
        self.send_repetition_penalty = options.send_repetition_penalty
        # Extra request fields (repetition_penalty, top_k, chat_template_kwargs) it refused.
        self._refused_fields: set[str] = set()
        self._lock = threading.Lock()
        # The client's own retries are off: see `_with_retries`.
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
            timeout=openai.Timeout(self.timeout, connect=min(self.timeout, CONNECT_TIMEOUT)),
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
                f"the server at {self.base_url} lists no model at /models; "
                "give the model name with {assessor_model}",
                settings=("assessor_model",),
            )
        return models[0]

    # -- errors and retries ------------------------------------------------------------------
    # Our own loop rather than the SDK's (`max_retries=0` above): the SDK sleeps with `time.sleep`
    # inside the worker thread, so a cancelled run's workers keep retrying, and it has no total
    # budget. Ours honours Retry-After the same way, within `retry_budget`, and stops on cancel.
    def _with_retries(self, call: Callable[[], T], what: str) -> T:
        """Run `call`, retrying transient failures; raise one ptgen error that says which failure.

        Retried: refused or dropped connections, HTTP 5xx and 429, after the server's
        `Retry-After` (seconds or an HTTP date) or an exponential backoff, while the total wait
        stays within `retry_budget` seconds. Not retried: timeouts (the request already waited
        `timeout` seconds), other 4xx answers and unusable replies (they would fail again).
        """
        import openai

        attempt = 0
        waited = 0.0
        while True:
            cancel.check()
            try:
                return call()
            except openai.APITimeoutError:
                raise EngineError(
                    f"the server at {self.base_url} did not answer within {self.timeout:g} s "
                    f"({what}); "
                    "raise {timeout} if the model is slow, or check the server",
                    settings=("timeout",),
                ) from None
            except openai.APIConnectionError as error:
                failure, delay = self._connection_failure(error, what), None
            except openai.APIStatusError as error:
                failure, delay = self._status_failure(error, what), _retry_after(error)
                if isinstance(failure, RequestRejectedError):
                    raise failure from None
            except (openai.OpenAIError, ValueError) as error:  # replies that are not JSON, etc.
                raise EngineError(
                    f"the server at {self.base_url} sent an unusable reply ({what}): "
                    f"{_one_line(error)}"
                ) from None
            if delay is None:
                delay = self.backoff * (2**attempt)
            if attempt >= self.max_retries or waited + delay > self.retry_budget:
                spent = f"{attempt + 1} tries"
                if waited + delay > self.retry_budget and attempt < self.max_retries:
                    spent += (
                        f"; waiting {delay:g} s more would pass the "
                        f"{self.retry_budget:g} s retry budget"
                    )
                raise type(failure)(f"{failure} ({spent})") from None
            cancel.wait(delay)
            waited += delay
            attempt += 1

    def _connection_failure(self, error: Any, what: str) -> EngineError:
        """Which way a connection failed: refused (no server), dropped before or during a reply."""
        cause = error.__cause__ or error
        text = str(cause)
        # By class name: openai sits on httpx or (newer releases) httpx2, which name them alike.
        kinds = {cls.__name__ for cls in type(cause).__mro__}
        if "ConnectTimeout" in kinds:
            return ServerUnreachableError(
                f"the server at {self.base_url} did not accept a connection ({what}); check the URL"
            )
        if "ConnectError" in kinds:
            return ServerUnreachableError(
                f"nothing answers at {self.base_url} ({what}: {_one_line(text, 80)}); "
                "start a server with `ptgen serve` or check the URL"
            )
        if "without sending a response" in text or "Server disconnected" in text:
            return EngineError(
                f"the server at {self.base_url} closed the connection without answering ({what})"
            )
        return EngineError(
            f"the server at {self.base_url} closed the connection in the middle of its reply "
            f"({what}: {_one_line(text, 80)})"
        )

    def _status_failure(self, error: Any, what: str) -> EngineError:
        detail = _one_line(_detail(error))
        code = error.status_code
        if code == 429:
            return EngineError(
                f"the server at {self.base_url} is rate limiting requests (HTTP 429, {what}): "
                f"{detail}"
            )
        if code >= 500:
            return EngineError(
                f"the server at {self.base_url} failed with HTTP {code} ({what}): {detail}"
            )
        message = f"the server at {self.base_url} answered HTTP {code} ({what}): {detail}"
        return RequestRejectedError(message, code, detail)

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
                        raise InputError(
                            "an image part has no 'image' (a PIL image) in the conversation"
                        )
                    parts.append({"type": "image_url", "image_url": {"url": urls[id(image)]}})
                else:
                    raise InputError(f"unknown message part type {kind!r}; use 'text' or 'image'")
            messages.append({"role": message["role"], "content": parts})
        return messages

    def _extra_fields(self, config: GenerationConfig) -> dict[str, Any]:
        """vLLM's fields beyond the OpenAI schema, less those this server refused once."""
        extra: dict[str, Any] = {}
        if self.send_repetition_penalty and config.repetition_penalty != 1.0:
            extra["repetition_penalty"] = config.repetition_penalty
        if config.temperature > 0:
            # Explicit, or vLLM applies the checkpoint's generation_config.json (top_k=1 for
            # Qwen2.5-VL) and a sampled retry decodes greedily again. -1: no top-k cut.
            extra["top_k"] = config.top_k if config.top_k is not None else -1
        if config.chat_template_kwargs:
            extra["chat_template_kwargs"] = dict(config.chat_template_kwargs)
        return {k: v for k, v in extra.items() if k not in self._refused_fields}

    def _request(self, messages: list[dict[str, Any]], config: GenerationConfig) -> EngineOutput:
        started = time.perf_counter()
        while True:
            kwargs: dict[str, Any] = dict(
                model=self.name,
                messages=messages,
                # vLLM deprecates max_tokens for chat completions.
                max_completion_tokens=config.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
                temperature=config.temperature,
                top_p=config.top_p,
            )
            if config.seed is not None:
                kwargs["seed"] = config.seed
            if config.stop:
                kwargs["stop"] = list(config.stop)
            extra = self._extra_fields(config)
            if extra:
                kwargs["extra_body"] = extra
            try:
                response = self._with_retries(
                    lambda kwargs=kwargs: self._client.chat.completions.create(**kwargs),
                    "chat completion",
                )
                break
            except RequestRejectedError as error:
                # Servers that validate fields strictly (transformers serve: 422) reject the
                # fields vLLM needs; drop the one named, once, for good, and say so.
                refused = [key for key in extra if key in error.detail]
                if not refused:
                    raise
                with self._lock:
                    for key in refused:
                        if key not in self._refused_fields:
                            self._refused_fields.add(key)
                            if key == "repetition_penalty":
                                self.send_repetition_penalty = False
                            warnings.warn(
                                f"the server at {self.base_url} does not accept {key}; "
                                "generating without it",
                                RuntimeWarning,
                                stacklevel=3,
                            )
        return self._output(response, time.perf_counter() - started)

    def _output(self, response: Any, seconds: float) -> EngineOutput:
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise EngineError(
                f"the server at {self.base_url} replied without choices "
                f"({_one_line(response, 120)}); "
                "is it an OpenAI-compatible chat server?"
            )
        message = getattr(choices[0], "message", None)
        text = getattr(message, "content", None)
        if not isinstance(text, str):
            raise EngineError(
                f"the server at {self.base_url} replied without text "
                f"(content={_one_line(text, 80)}, "
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
            >>> outputs = engine.generate(  # doctest: +SKIP
            ...     conversations, GenerationConfig(max_new_tokens=512)
            ... )
        """
        config = config or GenerationConfig()
        if not conversations:
            return []
        urls: dict[int, str] = {}
        for conversation in conversations:
            for message in conversation:
                for part in (
                    message.get("content") if isinstance(message.get("content"), list) else []
                ):
                    image = part.get("image") if part.get("type") == "image" else None
                    if image is not None and id(image) not in urls:
                        urls[id(image)] = image_data_url(image)
        requests = [self._messages(conversation, urls) for conversation in conversations]
        # Even one request runs in a worker: the caller's wait stays interruptible by signals.
        cancel.map_in_threads(lambda _: self.name, [None], 1)  # the model name, before the rest
        return cancel.map_in_threads(
            lambda messages: self._request(messages, config), requests, self.max_concurrency
        )

    def close(self) -> None:
        """Close the HTTP connections. Safe to call twice."""
        client = getattr(self, "_client", None)
        if client is not None:
            if not cancel.cancelled():  # abandoned requests may still hold connections
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


def _retry_after(error: Any) -> Optional[float]:
    """Seconds the server asked us to wait (`retry-after-ms`, or `Retry-After` in seconds or as an
    HTTP date), or None when it did not say."""
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
    try:
        if headers.get("retry-after-ms") is not None:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None
