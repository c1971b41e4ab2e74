"""The ``analyst`` command.

The package itself imports nothing: ``analyst run`` first offers itself to a warm runner
(cli/warm_client.py) and only loads typer, the config schema and the commands when it runs here.
``from cli import app`` still gives the Typer app (cli/commands.py)."""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    """The console script."""
    from cli import warm_client

    code = warm_client.run_in_runner(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)
    from cli.commands import app

    app(prog_name="analyst")


def __getattr__(name: str) -> Any:
    if name == "app":
        from cli.commands import app

        return app
    raise AttributeError(f"module 'cli' has no attribute {name!r}")
