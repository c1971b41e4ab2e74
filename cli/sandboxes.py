"""`analyst sandboxes list|cleanup`: Daytona sandboxes this tool created (label created-by=analyst)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from cli._console import JSON_OPTION_HELP, console, error, print_json
from cli._errors import EXIT_FAILED, user_errors
from tasks.config.schema import SandboxConfig, parse_duration
from tasks.errors import ConfigError, Problem
from tasks.text_safety import printable

sandboxes_app = typer.Typer(
    help="Find and delete Daytona sandboxes this tool created that outlived their run. Credentials: "
    "DAYTONA_API_KEY (environment or .env), or --config to use an analysis config's sandbox settings.",
    no_args_is_help=True,
)

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="An analysis config whose sandbox.api_key_secret, "
                             "sandbox.target and .env to use.", dir_okay=False)


def _client(config: Path | None):
    from tasks.config.loading import load_config
    from tasks.prefect.secret_blocks import read_secret_block
    from tasks.sandbox.daytona.client import connect

    if config is None:
        return connect(SandboxConfig(provider="daytona"), Path.cwd(), read_secret_block)
    loaded = load_config(config)
    return connect(loaded.config.sandbox.model_copy(update={"provider": "daytona"}), loaded.base_dir,
                   read_secret_block)


def _age(delta: timedelta | None) -> str:
    if delta is None:
        return "?"
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 1440}d {minutes % 1440 // 60}h" if minutes >= 1440 else f"{minutes // 60}h {minutes % 60:02d}m"


def _table(found: list, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for heading in ("id", "state", "analysis", "flow run", "created (UTC)", "age"):
        table.add_column(heading, overflow="fold")
    for item in found:
        created = item.created_at.strftime("%Y-%m-%d %H:%M") if item.created_at else "?"
        # Labels and states come from the Daytona API: text, never markup or escape sequences.
        table.add_row(*(Text(printable(v)) for v in (item.id, item.state, item.analysis or "-", item.flow_run or "-")),
                      created, _age(item.age()))
    return table


@sandboxes_app.command("list")
def list_sandboxes(config: Path | None = CONFIG_OPTION,
                   as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List the live Daytona sandboxes created by this tool, oldest first."""
    from tasks.sandbox.daytona.cleanup import find_sandboxes

    with user_errors():
        found = find_sandboxes(_client(config))
    if as_json:
        print_json({"sandboxes": [
            {"id": item.id, "state": item.state, "analysis": item.analysis, "flow_run": item.flow_run,
             "created_at": item.created_at.isoformat() if item.created_at else None,
             "age_seconds": int(age.total_seconds()) if (age := item.age()) is not None else None}
            for item in found]})
        return
    if not found:
        console.print("No Daytona sandboxes created by this tool.")
        return
    console.print(_table(found, f"{len(found)} sandbox(es)"))


@sandboxes_app.command()
def cleanup(
    older_than: str = typer.Option("1h", "--older-than", help="Delete sandboxes created longer ago than this "
                                   "(90s, 30m, 1h, 1d). Runs younger than this may still be using theirs."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be deleted; delete nothing."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Delete this tool's Daytona sandboxes older than --older-than (default 1h)."""
    from tasks.sandbox.daytona.cleanup import delete_found, find_sandboxes

    with user_errors():
        try:
            threshold = timedelta(seconds=parse_duration(older_than))
        except ValueError as exc:
            raise ConfigError([Problem("--older-than", older_than, str(exc))]) from None
        found = [f for f in find_sandboxes(_client(config)) if (f.age() or timedelta(0)) >= threshold]
        if not found:
            console.print(f"No Daytona sandboxes created by this tool older than {older_than}.")
            return
        console.print(_table(found, f"{'Would delete' if dry_run else 'Deleting'} {len(found)} sandbox(es)"))
        if dry_run:
            return
        deleted, failures = delete_found(found)
    console.print(f"[green]Deleted {len(deleted)}.[/]")
    for failure in failures:
        error(failure)
    if failures:
        raise typer.Exit(EXIT_FAILED)
