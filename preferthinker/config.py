"""Configuration: one dataclass per configurable object; defaults < YAML file < explicit overrides.

A config file has one section per config dataclass (the table `SECTIONS`):

    assessor:    # preferthinker.assessor.AssessorConfig  (profile, assess, generate, rerank, eval)
      max_pixels: 262144
    generator:   # generation.generator.GeneratorConfig   (generate)
      batch_size: 2
    loop:        # generation.loop.LoopConfig             (generate, rerank)
      n: 8
    serve:       # preferthinker.serving.ServeConfig      (serve)
    data:        # training.data.DataConfig               (data build)
    sft:         # training.sft.SFTTrainingConfig         (train sft)
    grpo:        # training.grpo.GRPOTrainingConfig       (train grpo)

Defaults are the dataclasses' own (each written once, in its class). Each command reads the
sections it needs; a key that is not a field of its section is a one-line `ConfigError` naming
the file, the section, the key, the valid keys, and the section it belongs to if another one has
it. `load_config(MyConfig, path, overrides)` is the one place that reads config files.

Flat files (no sections):
- `data`, `sft` and `grpo` read a flat file as their own (the shipped training/configs/*.yaml),
  with the same strict key check.
- The other commands read the old shared flat format, where each config kept the keys it has
  (so `batch_size` set both the assessor's and the generator's). It still works for one release,
  with a `FlatConfigWarning` saying where each key goes; `ptgen config convert FILE` (or
  `convert_flat`) prints the sectioned file.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, TypeVar, Union

from preferthinker.errors import ConfigError

T = TypeVar("T")

# Section name -> the config dataclass it holds ("module:Class", imported only when needed: the
# training configs import TRL). The one list of sections; docs/cli.md describes each.
SECTIONS: dict[str, str] = {
    "assessor": "preferthinker.assessor:AssessorConfig",
    "generator": "generation.generator:GeneratorConfig",
    "loop": "generation.loop:LoopConfig",
    "serve": "preferthinker.serving:ServeConfig",
    "data": "training.data:DataConfig",
    "sft": "training.sft:SFTTrainingConfig",
    "grpo": "training.grpo:GRPOTrainingConfig",
}
# Sections whose command reads a flat file as its own file (not the deprecated shared format).
OWN_FILE_SECTIONS = ("data", "sft", "grpo")
# The sections the deprecated shared flat format fed.
SHARED_SECTIONS = tuple(name for name in SECTIONS if name not in OWN_FILE_SECTIONS)

PathLike = Union[str, Path]


class FlatConfigWarning(UserWarning):
    """A flat (unsectioned) shared config file: it still works, for one release."""


def read_yaml(path: PathLike) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(
            f"config file {path} is not valid YAML: {error}".splitlines()[0]
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {error.start})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of option: value, got {type(data).__name__}"
        )
    return data


# -- sections and their fields ----------------------------------------------------------------


def section_class(section: str) -> type:
    """The config dataclass of a section (imported on first use).

    Example:
        >>> section_class("assessor").__name__
        'AssessorConfig'
    """
    if section not in SECTIONS:
        raise ConfigError(f"unknown config section {section!r}; valid: {', '.join(SECTIONS)}")
    module, name = SECTIONS[section].split(":")
    return getattr(importlib.import_module(module), name)


def section_of(cls: type) -> Optional[str]:
    """The section name of a registered config class, or None.

    Example:
        >>> from preferthinker.assessor import AssessorConfig
        >>> section_of(AssessorConfig)
        'assessor'
    """
    spelled = f"{cls.__module__}:{cls.__qualname__}"
    return next((name for name, where in SECTIONS.items() if where == spelled), None)


def field_names(cls: type) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]


def _key(key: Any) -> str:
    return str(key).replace("-", "_")


def _is_section(key: Any, value: Any) -> bool:
    """A top-level `name:` whose name is a section and whose value a mapping (or empty):
    `generator: tiny/generator` in a flat data file is a field, not a section."""
    return _key(key) in SECTIONS and isinstance(value, (dict, type(None)))


def owners(key: str, among: Optional[tuple[str, ...]] = None) -> list[str]:
    """The sections that have a field `key` (the light ones are checked first; the training
    sections, which import TRL, only when the key is not found elsewhere).

    Example:
        >>> owners("batch_size", ("assessor", "generator", "loop"))
        ['assessor', 'generator']
    """
    names = among or tuple(SECTIONS)
    light = [name for name in names if name not in OWN_FILE_SECTIONS]
    heavy = [name for name in names if name in OWN_FILE_SECTIONS]
    found = [name for name in light if key in field_names(section_class(name))]
    if found:
        return found
    return [name for name in heavy if key in field_names(section_class(name))]


def _valid_keys(names: set[str], key: str) -> str:
    """All valid keys when they are few (the closest first), only the closest when a TRL config
    has hundreds."""
    close = difflib.get_close_matches(_key(key), sorted(names), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    if len(names) <= 40:
        return f"{hint}valid keys: " + ", ".join(sorted(names))
    return f"{hint}{len(names)} valid keys (see the config class docstring and docs/cli.md)"


def unknown_key_error(where: str, section: Optional[str], cls: type, key: str) -> ConfigError:
    """The one-line error for a key that is not a field of `cls`: file, section, key, valid keys,
    and the section the key belongs to when another one has it."""
    other = [name for name in owners(key) if name != section]
    belongs = f" (it belongs to section {' / '.join(other)}:)" if other else ""
    in_section = f" in section {section}:" if section else ""
    return ConfigError(
        f"{where}: unknown key {key!r}{in_section} for {cls.__name__}{belongs}; "
        f"{_valid_keys(field_names(cls), key)}"
    )


def config_from_dict(
    cls: type[T], data: Mapping[str, Any], source: str = "config", section: Optional[str] = None
) -> T:
    """Build `cls` from a mapping, rejecting unknown keys by name. Keys may use - or _.

    Example:
        >>> from preferthinker.assessor import AssessorConfig
        >>> config_from_dict(AssessorConfig, {"max-pixels": 4096}).max_pixels
        4096
    """
    names = field_names(cls)
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = _key(key)
        if name not in names:
            raise unknown_key_error(source, section, cls, str(key))
        values[name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        where = f"{source} [{section}]" if section else source
        numbers = {  # fields typed int / float / Optional of one: by their annotation
            f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.type in (int, float)
            or re.fullmatch(r"(Optional\[)?(int|float)\]?", str(f.type).replace(" ", ""))
        }
        text = [f"{k} must be a number, got {v!r}" for k, v in values.items()
                if k in numbers and isinstance(v, str)]  # else "'<' not supported between ..."
        raise ConfigError(f"{where}: {text[0] if text else error}".splitlines()[0]) from None


# -- config files -----------------------------------------------------------------------------


class ConfigFile:
    """One YAML config file, read once: sectioned (`assessor:`, `loop:`, ...) or flat.

    Commands that build several configs read the file once and pass this object to each
    `load_config` call, so a flat file warns once.

    Example:
        >>> file = ConfigFile.read("ptgen.yaml")  # doctest: +SKIP
        >>> assessor = load_config(AssessorConfig, file, {"debias": True})  # doctest: +SKIP
    """

    def __init__(self, path: PathLike, data: dict[str, Any]):
        self.path = Path(path)
        self.data = data
        self.sectioned = any(_is_section(k, v) for k, v in data.items())
        self._warned = False
        if self.sectioned:
            self._check_sections()
        else:
            for key, value in data.items():  # a misspelled section makes the file look flat
                close = difflib.get_close_matches(_key(key), list(SECTIONS), n=1, cutoff=0.8)
                if isinstance(value, dict) and close:
                    raise ConfigError(
                        f"{self.path}: unknown section {key!r} (did you mean "
                        f"{close[0]}:?); valid sections: {', '.join(SECTIONS)}"
                    )

    @classmethod
    def read(cls, path: PathLike) -> "ConfigFile":
        return cls(path, read_yaml(path))

    def _check_sections(self) -> None:
        for key, value in self.data.items():
            name = _key(key)
            if _is_section(key, value):
                continue
            places = owners(name)
            if name in SECTIONS and not places:
                raise ConfigError(
                    f"{self.path}: section {key}: must hold option: value lines, "
                    f"got {type(value).__name__}"
                )
            if places:
                raise ConfigError(
                    f"{self.path}: key {key!r} is outside any section; put it under "
                    + " or ".join(place + ":" for place in places)
                )
            close = difflib.get_close_matches(name, list(SECTIONS), n=1)
            hint = f" (did you mean {close[0]}:?)" if close else ""
            raise ConfigError(
                f"{self.path}: unknown section {key!r}{hint}; valid sections: {', '.join(SECTIONS)}"
            )

    def section(self, cls: type, section: Optional[str]) -> dict[str, Any]:
        """The keys of `section` for `cls`, checked (unknown keys are errors naming the file, the
        section and the key)."""
        where = str(self.path)
        if self.sectioned:
            if section is None:
                raise ConfigError(f"{where} has sections; say which one {cls.__name__} reads")
            data = self.data.get(section) or {}
            for key in data:
                if _key(key) not in field_names(cls):
                    raise unknown_key_error(where, section, cls, str(key))
            return dict(data)
        if section is None or section in OWN_FILE_SECTIONS:
            # A flat file of one command's own: every key must be a field.
            for key in self.data:
                if _key(key) not in field_names(cls):
                    raise unknown_key_error(where, section, cls, str(key))
            return dict(self.data)
        # The deprecated shared flat format: each config keeps the keys it has.
        self._warn_flat()
        names = field_names(cls)
        return {k: v for k, v in self.data.items() if _key(k) in names}

    def _warn_flat(self) -> None:
        if self._warned:
            return
        self._warned = True
        placed, _ = _place(self.data, str(self.path))
        moves = "; ".join(f"{name}: {', '.join(keys)}" for name, keys in placed.items() if keys)
        warnings.warn(
            f"{self.path} is a flat config file, read as before for one more release; put each "
            f"key under its section ({moves}); `ptgen config convert {self.path}` prints the "
            "converted file",
            FlatConfigWarning,
            stacklevel=4,
        )


def _place(
    data: Mapping[str, Any], where: str
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """For a flat shared file: (section -> its keys, key -> sections when several read it)."""
    placed: dict[str, list[str]] = {name: [] for name in SHARED_SECTIONS}
    shared: dict[str, list[str]] = {}
    for key in data:
        places = owners(_key(key), SHARED_SECTIONS)
        if not places:
            elsewhere = owners(_key(key))
            if elsewhere:
                raise ConfigError(
                    f"{where}: key {key!r} belongs to section "
                    f"{' / '.join(elsewhere)}: which this flat file cannot hold; "
                    "put it in that command's own file"
                )
            raise ConfigError(
                f"{where}: unknown key {key!r}; no config section has it "
                f"(sections: {', '.join(SECTIONS)})"
            )
        for name in places:
            placed[name].append(str(key))
        if len(places) > 1:
            shared[str(key)] = places
    return placed, shared


def convert_flat(path: PathLike, section: Optional[str] = None) -> str:
    """The sectioned YAML text of a flat config file, for `ptgen config convert`.

    Each key goes under every section the old flat format fed it to (a comment marks keys that
    several sections read, e.g. `batch_size`: keep the one you meant); with `section`, every key
    goes under that one section (for a flat training file).

    Raises:
        ConfigError: the file is already sectioned, or a key belongs to no section.

    Example:
        >>> print(convert_flat("old.yaml"))  # doctest: +SKIP
        assessor:
          batch_size: 8   # also read by generator: keep it where you meant it
        generator:
          batch_size: 8   # also read by assessor: keep it where you meant it
    """
    import yaml

    file = ConfigFile.read(path)
    if file.sectioned:
        raise ConfigError(f"{file.path} already has sections; nothing to convert")
    if section is not None:
        file.section(section_class(section), section)  # checks every key
        return yaml.safe_dump({section: dict(file.data)}, sort_keys=False)
    placed, shared = _place(file.data, str(file.path))
    lines: list[str] = []
    for name, keys in placed.items():
        if not keys:
            continue
        lines.append(f"{name}:")
        for key in keys:
            text = yaml.safe_dump({key: file.data[key]}, default_flow_style=True, width=1000)
            text = text.strip()
            text = text[1:-1] if text.startswith("{") else text
            others = [other for other in shared.get(key, []) if other != name]
            note = ""
            if others:
                note = f"   # also read by {', '.join(others)}: keep it where you meant it"
            lines.append(f"  {text}{note}")
    return "\n".join(lines) + "\n"


def load_config(
    cls: type[T],
    path: Optional[Union[PathLike, ConfigFile]] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    section: Optional[str] = None,
) -> T:
    """Defaults of `cls`, then its section of the YAML file at `path` (a path or a `ConfigFile`),
    then `overrides` whose value is not None (the flags a user actually gave).

    Args:
        cls: the config dataclass.
        path: the YAML file, or None for defaults and overrides only.
        overrides: flag values; None means "not given".
        section: the section to read (default: the one `SECTIONS` lists for `cls`).

    Raises:
        ConfigError: a missing or invalid file, an unknown key (naming the file, the section,
            the key and the valid keys), or a value the dataclass rejects.

    Example:
        >>> cfg = load_config(AssessorConfig, "ptgen.yaml", {"debias": True})  # doctest: +SKIP
    """
    data: dict[str, Any] = {}
    source = "flags"
    section = section or section_of(cls)
    if path is not None:
        file = path if isinstance(path, ConfigFile) else ConfigFile.read(path)
        data = file.section(cls, section)
        source = str(file.path)
    merged = dict(data)
    for key, value in (overrides or {}).items():
        if value is not None:
            merged[key] = value
    return config_from_dict(cls, merged, source=source, section=section)
