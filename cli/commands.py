"""The ``analyst`` Typer app: one sub-app or command per module."""

from __future__ import annotations

import typer

from cli.backfill import backfill
from cli.deploy import deploy, serve
from cli.history import history
from cli.init import init
from cli.limits import limits_app
from cli.prune import prune
from cli.run import run
from cli.sandboxes import sandboxes_app
from cli.server import server_app
from cli.validate import infer_schema, validate

app = typer.Typer(
    name="analyst",
    help="Run AI data analyses declared in YAML as Prefect flows: validate, run, deploy, schedule.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(init)
app.command()(validate)
app.command("infer-schema")(infer_schema)
app.command()(run)
app.command()(serve)
app.command()(deploy)
app.command()(backfill)
app.command()(prune)
app.command()(history)
app.add_typer(server_app, name="server", help="Start, stop or inspect the local Prefect server.")
app.add_typer(sandboxes_app, name="sandboxes", help="List or clean up Daytona sandboxes this tool created.")
app.add_typer(limits_app, name="limits", help="Cap the sandboxes alive at once; show each deployment's runs at once.")

__all__ = ["app"]
