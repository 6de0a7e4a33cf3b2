"""The `ptgen` command line.

A thin layer: each command builds a config and calls one library function.
"""

from ptgen.cli.main import app, main

__all__ = ["app", "main"]
