"""Turn errors meant for the user into plain lines and exit statuses, never tracebacks.

Set ANALYST_DEBUG=1 to get the traceback back when you need to see where an error came from.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from cli._console import EXIT_BAD_CONFIG, EXIT_FAILED, EXIT_OK, err_console, error, fail
from tasks.errors import AnalystError, ConfigError

__all__ = ["EXIT_BAD_CONFIG", "EXIT_FAILED", "EXIT_OK", "user_errors"]


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except AnalystError as exc:
        if os.environ.get("ANALYST_DEBUG"):
            raise
        *first, last = [str(p) for p in exc.problems] if isinstance(exc, ConfigError) else [str(exc)]
        for line in first:
            error(line)
        fail(last, EXIT_BAD_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILED)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
