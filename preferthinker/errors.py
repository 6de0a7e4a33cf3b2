"""One short hierarchy of errors. Each message says what went wrong and how to fix it.

The CLI turns every `PTGenError` into a one-line message and a non-zero exit code in one place
(`ptgen/cli/main.py`); library callers can catch the specific class they care about.
"""

from __future__ import annotations

from typing import Callable


def cli_flag(setting: str) -> str:
    """How the command line names a setting: its flag (`assessor_model` -> `--assessor-model`).

    Example:
        >>> cli_flag("assessor_model")
        '--assessor-model'
    """
    return "--" + setting.replace("_", "-")


class PTGenError(Exception):
    """Base class of every error ptgen raises on purpose.

    A message that tells the user to change a setting writes the setting as a `{name}` field
    (the library's name, e.g. `{assessor}`) and lists it in `settings`; each front end words it
    its own way by setting `name_setting`: the command line (the default) says `--assessor`,
    a ComfyUI node says its field, `assessor`. The text stays in one place.

    Example:
        >>> error = PTGenError("check the path given to {assessor}", settings=("assessor",))
        >>> str(error)
        'check the path given to --assessor'
        >>> error.name_setting = lambda setting: setting
        >>> str(error)
        'check the path given to assessor'
    """

    exit_code = 1
    name_setting: Callable[[str], str] = staticmethod(cli_flag)

    def __init__(self, *args: object, settings: tuple[str, ...] = ()):
        super().__init__(*args)
        self.settings = tuple(settings)

    def __str__(self) -> str:
        text = super().__str__()
        # Only the declared fields are replaced: other braces (paths, JSON) stay as they are.
        for setting in self.settings:
            text = text.replace("{" + setting + "}", self.name_setting(setting))
        return text


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
            raise cls(
                f"{who} returned {results} {result_noun} for {inputs} {input_noun}; "
                "it must return one per input, in order"
            )


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
