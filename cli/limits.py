"""``analyst limits``: the cap on sandboxes alive at once (a Prefect global concurrency limit), and a look at
each deployment's limit on runs at once."""

from __future__ import annotations

import typer
from rich.table import Table

from cli._console import JSON_OPTION_HELP, console, print_json
from cli._errors import user_errors

limits_app = typer.Typer(no_args_is_help=True)


@limits_app.command("set")
def set_(
    name: str = typer.Argument(..., help="The limit: sandboxes (sandboxes alive at once, across all analyses)."),
    limit: int = typer.Argument(..., help="How many at once (at least 1)."),
) -> None:
    """Create or change a limit on the Prefect server; runs over it wait for a slot."""
    from deployments import check_known, check_value, set_limit

    with user_errors():
        check_value(check_known(name), limit)  # before any server starts
        _connect()
        before, after = set_limit(name, limit)
        was = "created" if before is None else f"was {before.limit}{'' if before.active else ' (inactive)'}"
        console.print(f"{after.name}: at most {after.limit} at once ({was}); {after.in_use} in use now.")


@limits_app.command("remove")
def remove(name: str = typer.Argument(..., help="The limit: sandboxes.")) -> None:
    """Delete a limit: nothing is capped any more (runs waiting for it go on)."""
    from deployments import check_known, remove_limit

    with user_errors():
        check_known(name)
        _connect()
        before = remove_limit(name)
        console.print(f"{name}: removed (it was {before.limit}); not capped any more." if before
                      else f"{name}: there was no such limit; not capped.")


@limits_app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """The sandbox cap and each analysis deployment's limit on runs at once, with the slots in use."""
    from deployments import KNOWN_LIMITS, deployment_names, read_all_limits

    with user_errors():
        _connect()
        limits = {state.name: state for state in read_all_limits()}
        deployments = deployment_names()
    if as_json:
        print_json({
            "limits": [{"name": name, "what": what, "limit": s.limit if (s := limits.get(name)) else None,
                        "active": bool(s and s.active), "in_use": s.in_use if s else None}
                       for name, what in KNOWN_LIMITS.items()],
            "deployments": [{"deployment": deployments[name], "runs_at_once": state.limit, "in_use": state.in_use}
                            for name, state in limits.items() if name in deployments],
        })
        return
    table = Table(box=None, pad_edge=False)
    for column in ("limit", "what", "at most", "in use"):
        table.add_column(column, justify="right" if column in ("at most", "in use") else "left")
    for name, what in KNOWN_LIMITS.items():
        state = limits.get(name)
        if state is None:
            table.add_row(name, what, "not capped", "-")
        else:
            at_most = str(state.limit) if state.active else f"{state.limit} (inactive)"
            table.add_row(name, what, at_most, str(state.in_use))
    for name, state in limits.items():
        if name in deployments:
            table.add_row(deployments[name], "runs at once (concurrency.runs)", str(state.limit), str(state.in_use))
    console.print(table)


def _connect() -> None:
    from cli.local_server import configure_prefect

    configure_prefect()
