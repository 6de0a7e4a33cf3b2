"""Engines: one interface (`Engine`), one module per backend, one registry (`registry.py`)
that maps `--assessor` strings to backends, and one factory (`create_engine`).

Backend modules import their heavy packages (torch, openai) lazily, so `import preferthinker`
stays light.
"""

from __future__ import annotations

from typing import Any, Optional

from preferthinker.engines.base import (
    Conversation,
    Engine,
    EngineOutput,
    GenerationConfig,
    Message,
    count_images,
)
from preferthinker.engines.registry import (
    EngineBackend,
    backends,
    describe_specs,
    find_backend,
    get_backend,
    list_engines,
    register_backend,
    unregister_backend,
)


def get_engine_class(backend: str) -> type[Engine]:
    """The `Engine` subclass a backend builds (for isinstance checks and docs).

    Example:
        >>> get_engine_class("scripted").__name__
        'ScriptedEngine'
    """
    return get_backend(backend).engine_class


def backend_for(spec: str) -> str:
    """The name of the backend a `--assessor` value means (see `find_backend`).

    Example:
        >>> backend_for("https://example.org/v1")
        'openai'
    """
    return find_backend(spec).name


def create_engine(spec: str, model: Optional[str] = None, **options: Any) -> Engine:
    """Build the engine a `--assessor` value names.

    Args:
        spec: what `describe_specs()` lists: a model id or local path (in-process transformers),
            an `http(s)://host:port/v1` URL (OpenAI-compatible server), `analytic`, `random`...
        model: the served model name, for URLs (ignored by the other backends).
        options: the backend's options (its `Options` dataclass: device, dtype, timeout, ...);
            an unknown option or a bad value is an `InputError` naming it.

    Example:
        >>> engine = create_engine("http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct")
    """
    return find_backend(spec).create(spec, model, **options)


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
    "EngineBackend",
    "backends",
    "describe_specs",
    "find_backend",
    "get_backend",
    "register_backend",
    "unregister_backend",
]
