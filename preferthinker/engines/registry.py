"""The engine registry: which backend an `--assessor` string names, and how that backend is built.

Each backend module declares one `EngineBackend` named `BACKEND`: the spec strings it accepts,
an `Options` dataclass of its own settings (validated in `__post_init__`), and how to build the
engine. This registry lists those modules, in matching order, and nothing else knows which
strings mean what: `create_engine`, `AssessorConfig`, the CLI's `--assessor` help, `ptgen eval`
and the ComfyUI nodes all ask `find_backend` once per engine they build.

Adding a backend: write its module (an `Engine` subclass, an `Options` dataclass, `BACKEND`),
add one line to `_BACKEND_MODULES`, and test it. A plugin or a test can also add one at run time
with `register_backend`.

Example:
    >>> find_backend("http://127.0.0.1:8000/v1").name
    'openai'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import Any, Callable, Optional

from preferthinker.engines.base import Engine
from preferthinker.errors import InputError

# One line per backend module, each defining `BACKEND`. Backends are tried in this order; a
# backend with `catch_all=True` (in-process models: any model id or path) is tried last.
_BACKEND_MODULES = (
    "preferthinker.engines.openai_engine",
    "preferthinker.analytic",
    "preferthinker.engines.random_engine",
    "preferthinker.engines.scripted",
    "preferthinker.engines.similarity_engine",
    "preferthinker.engines.transformers_engine",
)
_registered: list["EngineBackend"] = []  # added at run time by `register_backend`


@dataclass(frozen=True)
class EngineBackend:
    """One engine backend, as its module declares it.

    Args:
        name: short name (`list_engines()`, messages).
        spec: how its `--assessor` strings look, in words (the CLI help lists these).
        accepts: whether a spec string names this backend.
        engine_class: the `Engine` subclass it builds.
        options: its settings dataclass; its `__post_init__` raises ValueError naming the field.
        build: `build(spec, model, options) -> Engine`; `model` is the served model name (None
            unless `served_model`).
        config_fields: the `AssessorConfig` fields passed on as options (same names in `options`).
        served_model: the spec needs a served model name (`--assessor-model`) to be complete.
        catch_all: its pattern is broad (any hub id or path), so it is tried after every
            other backend.

    Example:
        >>> backend = find_backend("analytic")
        >>> engine = backend.create("analytic")
    """

    name: str
    spec: str
    accepts: Callable[[str], bool]
    engine_class: type
    options: type
    build: Callable[[str, Optional[str], Any], Engine]
    config_fields: tuple[str, ...] = ()
    served_model: bool = False
    catch_all: bool = False

    def option_names(self) -> list[str]:
        return [f.name for f in fields(self.options)]

    def parse_options(self, **options: Any) -> Any:
        """This backend's `Options` from keyword options; a one-line InputError for an unknown
        option or a bad value."""
        unknown = sorted(set(options) - set(self.option_names()))
        if unknown:
            raise InputError(
                f"{self.name} engine: no option {', '.join(unknown)}; "
                f"valid: {', '.join(self.option_names()) or '(none)'}"
            )
        try:
            return self.options(**options)
        except ValueError as error:
            raise InputError(f"{self.name} engine: {error}") from None

    def create(self, spec: str, model: Optional[str] = None, **options: Any) -> Engine:
        """Build the engine for `spec` with validated options."""
        return self.build(spec, model if self.served_model else None, self.parse_options(**options))


def backends() -> list[EngineBackend]:
    """Every backend, in the order specs are matched (catch-all ones last)."""
    found = [importlib.import_module(module).BACKEND for module in _BACKEND_MODULES] + _registered
    return [b for b in found if not b.catch_all] + [b for b in found if b.catch_all]


def list_engines() -> list[str]:
    """The backend names, sorted.

    Example:
        >>> "openai" in list_engines()
        True
    """
    return sorted(backend.name for backend in backends())


def describe_specs() -> str:
    """What `--assessor` accepts, one clause per backend (for help texts and errors).

    Example:
        >>> "analytic" in describe_specs()
        True
    """
    return "; ".join(backend.spec for backend in backends())


def find_backend(spec: str) -> EngineBackend:
    """The backend a spec string names (the first in matching order that accepts it).

    Raises:
        InputError: no backend accepts it; the message lists what is accepted.

    Example:
        >>> find_backend("Qwen/Qwen2.5-VL-7B-Instruct").name
        'transformers'
    """
    if isinstance(spec, str) and spec.strip():
        for backend in backends():
            if backend.accepts(spec):
                return backend
    raise InputError(f"unknown assessor {spec!r}; give {describe_specs()}")


def get_backend(name: str) -> EngineBackend:
    """The backend called `name`.

    Example:
        >>> get_backend("openai").served_model
        True
    """
    for backend in backends():
        if backend.name == name:
            return backend
    raise InputError(f"unknown engine {name!r}; valid engines: {', '.join(list_engines())}")


def register_backend(backend: EngineBackend) -> None:
    """Add a backend at run time (a plugin, a test); its name must be new.

    Example:
        >>> register_backend(EngineBackend(
        ...     "echo", "'echo' (repeats the prompt)", lambda spec: spec == "echo", EchoEngine,
        ...     EchoOptions, lambda spec, model, options: EchoEngine(options)))  # doctest: +SKIP
    """
    if any(existing.name == backend.name for existing in backends()):
        raise InputError(f"an engine backend called {backend.name!r} is already registered")
    _registered.append(backend)


def unregister_backend(name: str) -> None:
    """Remove a backend added with `register_backend` (the built-in ones stay)."""
    _registered[:] = [backend for backend in _registered if backend.name != name]
