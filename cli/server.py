"""`analyst server start|stop|status`: the local Prefect server that `analyst run` reuses."""

from __future__ import annotations

import os

import typer
from rich.text import Text

from cli import local_server
from cli._console import JSON_OPTION_HELP, console, print_fields, print_json
from cli._errors import EXIT_FAILED, user_errors

server_app = typer.Typer(
    help="Manage the local Prefect server (SQLite under .analyst/prefect) that `analyst run` uses "
    "when PREFECT_API_URL is not set.",
    no_args_is_help=True,
)

_STYLE = {"running": "green", "unhealthy": "yellow", "stale": "yellow", "stopped": "dim"}
_MEANING = {
    "unhealthy": "process alive but /api/health does not answer (starting, or stuck)",
    "stale": "its process is gone; the next start cleans up",
}


def _show(st: local_server.ServerStatus) -> None:
    state = Text(st.state, style=_STYLE[st.state])
    if st.state in _MEANING:
        state.append(f" ({_MEANING[st.state]})", style="dim")
    rows: list[tuple[str, str | Text]] = [("state", state)]
    if st.url and st.ui_url:
        rows += [("UI", st.ui_url), ("API", st.url)]
    if st.pid:
        rows.append(("pid", str(st.pid)))
    rows += [("database", str(st.db)), ("log", str(st.log))]
    if st.note:
        rows.append(("note", Text(st.note, style="yellow")))
    print_fields(rows)


def _note_env_override() -> None:
    if url := os.environ.get("PREFECT_API_URL"):
        console.print(f"[dim]PREFECT_API_URL is set ({url}): `analyst run` uses that server, not this one.[/]")


@server_app.command()
def start() -> None:
    """Start the local server in the background (no-op if it runs); wait until it answers."""
    with user_errors():
        before = local_server.status()
        with console.status("Starting the Prefect server…", spinner="dots"):
            st = local_server.start()
    console.print("Already running." if before.running and before.pid == st.pid else "[green]Started.[/]")
    _show(st)
    _note_env_override()


@server_app.command()
def stop() -> None:
    """Stop the local server (SIGTERM, then SIGKILL after 10 s). Safe to run when it is stopped."""
    with user_errors():
        before = local_server.stop()
    if before.state in ("running", "unhealthy"):
        console.print(f"[green]Stopped[/] the server (pid {before.pid}, port {before.port}).")
    elif before.state == "stale":
        console.print(f"Not running; removed a stale state file ({before.note}).")
    else:
        console.print("Not running.")


@server_app.command()
def status(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """Show whether the local server runs, its URL, pid, database and log. Exit 1 unless running."""
    with user_errors():
        st = local_server.status()
    if as_json:
        print_json({"state": st.state, "url": st.url, "ui_url": st.ui_url, "pid": st.pid, "port": st.port,
                    "database": str(st.db), "log": str(st.log), "note": st.note or None,
                    "prefect_api_url_env": os.environ.get("PREFECT_API_URL") or None})
    else:
        _show(st)
        _note_env_override()
    if not st.running:
        raise typer.Exit(EXIT_FAILED)
