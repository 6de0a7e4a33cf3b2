"""One short hierarchy of errors. Each message says what went wrong and how to fix it.

The CLI turns every `PTGenError` into a one-line message and a non-zero exit code in one place
(`ptgen/cli/main.py`); library callers can catch the specific class they care about.
"""

from __future__ import annotations


class PTGenError(Exception):
    """Base class of every error ptgen raises on purpose."""

    exit_code = 1


class InputError(PTGenError, ValueError):
    """Bad user input: no usable image, a wrong type, an unknown option value."""

    exit_code = 2


class ConfigError(InputError):
    """A configuration file or value that cannot be used."""


class ModelNotFoundError(PTGenError):
    """A model id or path that cannot be loaded (not local, hub unreachable, wrong layout)."""

    exit_code = 3


class EngineError(PTGenError):
    """An inference engine failed: dead server, timeout, garbage reply, generation error."""

    exit_code = 4


class ServerUnreachableError(EngineError):
    """An OpenAI-compatible server did not answer at all."""


class EngineContractError(EngineError):
    """An engine, generator or comparison function broke its contract: N results for M inputs.

    A bug in that component (or in a plugin), never bad user input; `check` is the one place
    the message is written.
    """

    @classmethod
    def check(cls, who: str, results: int, inputs: int, result_noun: str, input_noun: str) -> None:
        """Raise unless `results == inputs`.

        Example:
            >>> EngineContractError.check("engine x", 2, 2, "outputs", "conversations")
        """
        if results != inputs:
            raise cls(f"{who} returned {results} {result_noun} for {inputs} {input_noun}; "
                      "it must return one per input, in order")


class ParseError(PTGenError, ValueError):
    """Model output that cannot be turned into a result. `reason` says why, `text` is the output."""

    def __init__(self, reason: str, text: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.text = text


class OutputExistsError(InputError):
    """An output folder that is not empty, where writing would overwrite earlier results."""


class StoreError(InputError):
    """The user store cannot be used: a corrupt or newer-schema database, a read-only disk.
    The store is left untouched."""
