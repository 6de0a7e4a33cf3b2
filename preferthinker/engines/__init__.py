"""Engines: one interface (`Engine`), one module per backend, one factory (`create_engine`).

Backends are imported lazily so that `import preferthinker` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any, Optional

from preferthinker.engines.base import (
    Conversation,
    Engine,
    EngineOutput,
    GenerationConfig,
    Message,
    count_images,
)
from preferthinker.errors import InputError

# backend name -> "module:Class"
_BACKENDS: dict[str, str] = {
    "transformers": "preferthinker.engines.transformers_engine:TransformersEngine",
    "openai": "preferthinker.engines.openai_engine:OpenAIEngine",
    "analytic": "preferthinker.analytic:AnalyticEngine",
    "scripted": "preferthinker.engines.scripted:ScriptedEngine",
}


def list_engines() -> list[str]:
    return sorted(_BACKENDS)


def get_engine_class(backend: str) -> type[Engine]:
    if backend not in _BACKENDS:
        raise InputError(f"unknown engine {backend!r}; valid engines: {', '.join(list_engines())}")
    module_name, class_name = _BACKENDS[backend].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def backend_for(spec: str) -> str:
    """Which backend a `--assessor` value means: a URL is an OpenAI-compatible server,
    `analytic` is the pixel-measuring assessor, anything else is a model id or path."""
    if spec.startswith(("http://", "https://")):
        return "openai"
    if spec == "analytic":
        return "analytic"
    return "transformers"


def create_engine(spec: str, model: Optional[str] = None, **options: Any) -> Engine:
    """Build the engine a `--assessor` value names.

    Args:
        spec: a model id or local path (in-process transformers), an `http(s)://host:port/v1` URL
            (OpenAI-compatible server; `model` names the served model), or `analytic`.
        model: the served model name, for URLs.
        options: backend options (device, dtype, timeout, max_concurrency, ...).

    Example:
        >>> engine = create_engine("http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct")
    """
    backend = backend_for(spec)
    cls = get_engine_class(backend)
    if backend == "openai":
        return cls(base_url=spec, model=model, **options)
    if backend == "analytic":
        return cls(**options)
    return cls(spec, **options)


__all__ = [
    "Conversation",
    "Engine",
    "EngineOutput",
    "GenerationConfig",
    "Message",
    "count_images",
    "create_engine",
    "get_engine_class",
    "list_engines",
    "backend_for",
]
