"""Loaded engines, shared between nodes and between runs of a workflow.

Loading a 7B vision-language model takes minutes and gigabytes, so an engine is loaded once per
distinct setting (model, served name, device, dtype, HTTP options) and reused by every assessor
node that asks for the same one. A small LRU bound keeps at most `max_engines` loaded; the
least recently used one is closed (its GPU memory freed) when a new setting arrives.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, Optional

from preferthinker.engines import Engine, EngineBackend

EngineKey = tuple[tuple[str, Hashable], ...]


class EngineCache:
    """An LRU of engines keyed by their settings.

    Args:
        max_engines: engines kept loaded at once.
        factory: builds an engine from (backend, spec, model, **options); by default
            `backend.create(spec, model, **options)`.

    Example:
        >>> cache = EngineCache()
        >>> url = "http://127.0.0.1:8000/v1"
        >>> engine = cache.get(find_backend(url), url, "preferthinker")  # doctest: +SKIP
    """

    def __init__(self, max_engines: int = 2, factory: Optional[Callable[..., Engine]] = None):
        if max_engines < 1:
            raise ValueError(f"max_engines must be >= 1, got {max_engines}")
        self.max_engines = max_engines
        self.factory = factory or _build
        self._engines: "OrderedDict[EngineKey, Engine]" = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    @staticmethod
    def key(spec: str, model: Optional[str], options: dict[str, Any]) -> EngineKey:
        items = {"spec": spec, "model": model, **options}
        return tuple(sorted((name, value) for name, value in items.items()))

    def get(
        self, backend: EngineBackend, spec: str, model: Optional[str] = None, **options: Any
    ) -> Engine:
        """The engine for these settings: the cached one, or a newly loaded one.

        `backend` is `find_backend(spec)`, looked up once by the caller.
        """
        key = self.key(spec, model, options)
        with self._lock:
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
            # Load under the lock: two nodes asking for one model at once must not load it twice.
            engine = self.factory(backend, spec, model, **options)
            self.loads += 1
            self._engines[key] = engine
            while len(self._engines) > self.max_engines:
                _, evicted = self._engines.popitem(last=False)
                evicted.close()
            return engine

    def clear(self) -> None:
        """Close and forget every engine."""
        with self._lock:
            for engine in self._engines.values():
                engine.close()
            self._engines.clear()

    def __len__(self) -> int:
        return len(self._engines)


def _build(backend: EngineBackend, spec: str, model: Optional[str], **options: Any) -> Engine:
    return backend.create(spec, model, **options)


# The one cache all nodes of this ComfyUI process share.
ENGINES = EngineCache()
