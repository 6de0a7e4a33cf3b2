"""Configuration: one dataclass per configurable object; defaults < YAML file < explicit overrides.

`load_config(MyConfig, path, overrides)` is the one place that reads YAML config files. Within a
named section (and in overrides) an unknown key is an error that names the key and the valid
ones; a flat file shared by several commands (`ptgen generate --config f.yaml`) keeps only the
keys the object has, since the other keys belong to other objects.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Optional, TypeVar, Union

from preferthinker.errors import ConfigError

T = TypeVar("T")


def read_yaml(path: Union[str, Path]) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value, got {type(data).__name__}")
    return data


def config_from_dict(cls: type[T], data: Mapping[str, Any], source: str = "config") -> T:
    """Build `cls` from a mapping, rejecting unknown keys by name. Keys may use - or _."""
    names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in names:
            raise ConfigError(
                f"{source}: unknown option {key!r} for {cls.__name__}; valid: {', '.join(sorted(names))}"
            )
        values[name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: {error}") from None


def load_config(
    cls: type[T],
    path: Optional[Union[str, Path]] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    section: Optional[str] = None,
) -> T:
    """Defaults of `cls`, then the YAML file at `path` (optionally one `section` of it), then
    `overrides` whose value is not None (the flags a user actually gave).

    Example:
        >>> cfg = load_config(AssessorConfig, "ptgen.yaml", {"debias": True})
    """
    data: dict[str, Any] = {}
    source = "flags"
    if path is not None:
        data = read_yaml(path)
        if section is not None:
            data = data.get(section) or {}
            if not isinstance(data, dict):
                raise ConfigError(f"config file {path}: section {section!r} must be a mapping")
        source = str(path)
    names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if section is None and path is not None:
        # A shared file may hold options of several commands: keep only those this object has.
        data = {k: v for k, v in data.items() if str(k).replace("-", "_") in names}
    merged = dict(data)
    for key, value in (overrides or {}).items():
        if value is not None:
            merged[key] = value
    return config_from_dict(cls, merged, source=source)
