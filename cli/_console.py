"""The CLI's two consoles (stdout, stderr) and its one way to fail.

soft_wrap: rich wraps at 80 columns when the output is not a terminal (CI logs, pipes, ``| tee``),
which cut paths and links mid-word; long lines are left to the terminal instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tasks.text_safety import printable

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: object) -> None:
    """One line on stderr. Its text may quote the data, the sandbox or the model."""
    err_console.print(Text.assemble(("error: ", "red"), printable(message)))


def fail(message: object, code: int = EXIT_FAILED) -> NoReturn:
    """The error line, then exit: errors a user can act on, never a traceback."""
    error(message)
    raise typer.Exit(code)


def warn(message: str) -> None:
    err_console.print(Text.assemble(("warning: ", "yellow"), message))


def print_fields(rows: Iterable[tuple[str, str | Text]], out: Console = console) -> None:
    """Key and value pairs: aligned in a terminal; plain ``key: value`` lines elsewhere, whole for grep and copying."""
    rows = [(key, value if isinstance(value, Text) else Text(str(value))) for key, value in rows]
    if not out.is_terminal:
        for key, value in rows:
            out.print(Text.assemble(f"{key}: ", value))
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # links and paths whole, never cut with an ellipsis
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)


JSON_OPTION_HELP = "Print one JSON object instead of tables."


def print_json(data: dict[str, Any]) -> None:
    """The whole of stdout for --json: one object, for scripts (rich would wrap and style it)."""
    print(json.dumps(data, indent=2, default=str))
