"""The profile vocabulary: the terms each profile element draws from (`vocabulary.yaml`).

Used by the user simulator (which terms a simulated user likes), the analytic engine and the
CoT builder (which words to write), and to canonicalise free text ("pixel art" -> "Pixel Art").
The bundled file holds at least 288 terms, the size of the paper's (unpublished) list.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

from preferthinker.errors import ConfigError
from preferthinker.profile import ELEMENTS

DEFAULT_VOCABULARY_PATH = Path(__file__).with_name("vocabulary.yaml")


class Vocabulary:
    """Terms per element, with case-insensitive lookup.

    Args:
        terms: mapping of every element in `ELEMENTS` to its list of terms.
        source: where the terms came from (for error messages).

    Raises:
        ConfigError: an unknown or missing element, a non-string or empty term, or a duplicate
            term (case-insensitive, within or across elements).

    Example:
        >>> vocab = load_vocabulary()
        >>> vocab.element_of("pixel art"), vocab.canonical("PIXEL ART")
        ('art_style', 'Pixel Art')
    """

    def __init__(self, terms: dict[str, list[str]], source: str = "<dict>"):
        self.source = source
        self._terms: dict[str, tuple[str, ...]] = {}
        self._index: dict[str, tuple[str, str]] = {}  # lower-case term -> (element, term)
        if not isinstance(terms, dict):
            raise ConfigError(
                f"{source}: the vocabulary must map elements to term lists, "
                f"got {type(terms).__name__}"
            )
        unknown = [key for key in terms if key not in ELEMENTS]
        if unknown:
            raise ConfigError(
                f"{source}: unknown element(s) {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(ELEMENTS)}"
            )
        missing = [element for element in ELEMENTS if not terms.get(element)]
        if missing:
            raise ConfigError(
                f"{source}: no terms for element(s) {', '.join(missing)}; give each a list of terms"
            )
        for element in ELEMENTS:
            values = terms[element]
            if not isinstance(values, list):
                raise ConfigError(
                    f"{source}: {element} must be a list of terms, got {type(values).__name__}"
                )
            cleaned = []
            for term in values:
                if not isinstance(term, str) or not term.strip():
                    raise ConfigError(
                        f"{source}: {element} has a term that is not a non-empty string: {term!r}"
                    )
                term = " ".join(term.split())
                key = term.lower()
                if key in self._index:
                    first = self._index[key][0]
                    raise ConfigError(
                        f"{source}: duplicate term {term!r} in {element} "
                        f"(already in {first}); keep one"
                    )
                self._index[key] = (element, term)
                cleaned.append(term)
            self._terms[element] = tuple(cleaned)

    @property
    def elements(self) -> tuple[str, ...]:
        """The five elements, in `ELEMENTS` order."""
        return ELEMENTS

    def terms(self, element: str) -> list[str]:
        """The terms of `element` (a copy), in file order. Raises KeyError for an unknown
        element."""
        if element not in self._terms:
            raise KeyError(f"unknown profile element {element!r}; valid: {', '.join(ELEMENTS)}")
        return list(self._terms[element])

    def all_terms(self) -> list[str]:
        """Every term, element by element."""
        return [term for element in ELEMENTS for term in self._terms[element]]

    def element_of(self, term: str) -> Optional[str]:
        """The element a term belongs to (case- and spacing-insensitive), or None."""
        found = self._index.get(" ".join(str(term).split()).lower())
        return found[0] if found else None

    def canonical(self, term: str) -> Optional[str]:
        """The term as the vocabulary spells it ("pixel art" -> "Pixel Art"), or None."""
        found = self._index.get(" ".join(str(term).split()).lower())
        return found[1] if found else None

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and self.element_of(term) is not None

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        counts = ", ".join(f"{e}={len(self._terms[e])}" for e in ELEMENTS)
        return f"Vocabulary({len(self)} terms: {counts})"


def _read(path: Path) -> Vocabulary:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"vocabulary file {path} does not exist; pass an existing YAML file"
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(
            f"vocabulary file {path} is not valid YAML: {str(error).splitlines()[0]}"
        ) from None
    return Vocabulary(data if data is not None else {}, source=str(path))


@lru_cache(maxsize=8)
def _load_cached(path: str) -> Vocabulary:
    return _read(Path(path))


def load_vocabulary(path: Union[str, Path, None] = None) -> Vocabulary:
    """Load (and cache) a vocabulary YAML file: `{element: [term, ...]}` for the five elements.

    Args:
        path: a YAML file; None loads the bundled `vocabulary.yaml`.

    Returns:
        The validated `Vocabulary` (the same object on later calls with the same path).

    Raises:
        ConfigError: the file is missing, not YAML, or breaks the rules (see `Vocabulary`).

    Example:
        >>> len(load_vocabulary()) >= 288
        True
    """
    resolved = Path(path) if path is not None else DEFAULT_VOCABULARY_PATH
    return _load_cached(str(resolved.expanduser().resolve()))


__all__ = ["DEFAULT_VOCABULARY_PATH", "Vocabulary", "load_vocabulary"]
