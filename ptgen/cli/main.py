"""The typer app, its error handling, and the registration of every command group.

Each `*_cmds.py` module owns one group of commands and exposes `register(app)`. Errors are
turned into one-line messages and exit codes here, in one place.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Optional

import typer

from preferthinker.errors import PTGenError

app = typer.Typer(
    name="ptgen",
    help="Personalized text-to-image generation with the PreferThinker assessor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _register_all() -> None:
    from ptgen.cli import (
        assess_cmds,
        config_cmds,
        data_cmds,
        demo_cmds,
        eval_cmds,
        generate_cmds,
        score_cmds,
        serve_cmds,
        user_cmds,
    )

    for module in (
        demo_cmds,
        assess_cmds,
        generate_cmds,
        eval_cmds,
        data_cmds,
        serve_cmds,
        config_cmds,
        score_cmds,
        user_cmds,
    ):
        module.register(app)


_register_all()


def fail(message: str, code: int = 1) -> "typer.Exit":
    """Print `error: message` on stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # One line per warning (e.g. a skipped non-image file), not Python's source excerpt.
    typer.echo(f"warning: {message}", err=True)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the `ptgen` console script; callable from tests with an argv list.

    After a run stopped by SIGINT or SIGTERM (its partial run already written), the process ends
    at once with `os._exit`: interpreter shutdown with torch loaded takes seconds, and requests
    abandoned on a hanging server must not hold it up.
    """
    code = _main(argv)
    from preferthinker import cancel

    if cancel.cancelled():
        if code == 130:  # typer's code for any KeyboardInterrupt, a SIGTERM's too
            code = cancel.exit_code()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: Optional[list[str]]) -> int:
    warnings.showwarning = _show_warning
    # Each user warning once per command run, also when main() runs again in one process (a
    # repeated warning is otherwise shown only the first time).
    warnings.filterwarnings("default", category=UserWarning)
    try:
        # With standalone_mode=False, click returns typer.Exit codes instead of raising them.
        code = app(args=argv, standalone_mode=False)
    except PTGenError as error:
        typer.echo(f"error: {error}", err=True)
        return error.exit_code
    except typer.Exit as exit_:
        return exit_.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except _click_exception_types() as error:  # usage errors: usage text, "Error: ...", exit 2
        error.show()
        return error.exit_code
    return code if isinstance(code, int) else 0


def _click_exception_types() -> tuple[type, ...]:
    """Every `ClickException` base the installed typer may raise.

    Older typer raises `click`'s own classes; newer typer (0.2x) vendors click as
    `typer._click`, whose `ClickException` is not a subclass of `click.ClickException`. Both are
    found through `typer.core`, which imports the one it uses.
    """
    import typer.core

    found: list[type] = []
    for name in ("_click", "click"):
        module = getattr(typer.core, name, None)
        exceptions = getattr(module, "exceptions", None)
        base = getattr(exceptions, "ClickException", None)
        if isinstance(base, type) and base not in found:
            found.append(base)
    try:
        import click

        if click.ClickException not in found:
            found.append(click.ClickException)
    except ImportError:  # newer typer does not need click installed
        pass
    return tuple(found)


if __name__ == "__main__":
    sys.exit(main())
