"""The ``analyst`` command: one Typer sub-app or command per module."""

from __future__ import annotations

import typer

from flows.cli.run import run
from flows.cli.server import server_app
from flows.cli.validate import infer_schema, validate

app = typer.Typer(
    name="analyst",
    help="Run AI data analyses declared in YAML as Prefect flows: validate, run, deploy, schedule.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(validate)
app.command("infer-schema")(infer_schema)
app.command()(run)
app.add_typer(server_app, name="server", help="Start, stop or inspect the local Prefect server.")

__all__ = ["app"]
