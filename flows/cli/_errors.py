"""Turn errors meant for the user into plain lines and exit statuses, never tracebacks.

Set ANALYST_DEBUG=1 to get the traceback back when you need to see where an error came from.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.text import Text

from tasks.errors import AnalystError, ConfigError

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2

err_console = Console(stderr=True, highlight=False)


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except AnalystError as exc:
        if os.environ.get("ANALYST_DEBUG"):
            raise
        lines = [str(p) for p in exc.problems] if isinstance(exc, ConfigError) else [str(exc)]
        for line in lines:
            # Text, not markup: messages hold key paths such as datasets[0] that rich would eat.
            err_console.print(Text.assemble(("error: ", "red"), line), soft_wrap=True)
        raise typer.Exit(EXIT_BAD_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILED) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
