"""``analyst serve`` and ``analyst deploy``: analysis configs as Prefect deployments ``analyze/<name>``."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from flows.cli._errors import err_console, user_errors
from tasks.config import LoadedConfig, config_warnings

DEFAULT_PATHS = [Path("configs")]
_PATHS_HELP = "Analysis YAML files, or folders of them (their *.yaml/*.yml with a prompt or datasets key)."

console = Console(highlight=False)


def serve(
    paths: list[Path] = typer.Argument(None, metavar="CONFIG_OR_DIR", help=_PATHS_HELP + " Default: configs/."),
) -> None:
    """Serve the analyses: register their deployments and run scheduled and triggered runs until stopped."""
    from flows.local_server import configure_prefect

    with user_errors():
        loaded = _load(paths)
        api_url, run_prefix = _connect(configure_prefect)
        from deployments import build_deployment, register

        deployments = [build_deployment(item) for item in loaded]
        # Registered here first only to print each deployment's link; serve() updates them in place.
        ids = [register(d) for d in deployments]
        _print_deployments(loaded, ids, api_url, run_prefix)
        console.print(f"Serving {len(deployments)} deployment(s) from this process; runs execute here. Ctrl+C stops "
                      "(and pauses their schedules until the next serve).")
        from prefect import serve as prefect_serve

        prefect_serve(*deployments, print_starting_message=False)


def deploy(
    paths: list[Path] = typer.Argument(None, metavar="CONFIG_OR_DIR", help=_PATHS_HELP + " Default: configs/."),
    work_pool: str | None = typer.Option(None, "--work-pool", metavar="NAME",
                                         help="Work pool whose workers run the flows (created as a process pool "
                                              "if missing). Start one with: prefect worker start --pool NAME"),
) -> None:
    """Register the analyses' deployments (with their schedules) on the Prefect server, without serving them."""
    from flows.local_server import configure_prefect

    with user_errors():
        loaded = _load(paths)
        api_url, run_prefix = _connect(configure_prefect)
        from deployments import build_deployment, ensure_work_pool, register

        if work_pool:
            pool_type, created = ensure_work_pool(work_pool)
            console.print(f"Work pool {work_pool!r} ({pool_type}): {'created' if created else 'exists'}.")
        ids = [register(build_deployment(item), work_pool) for item in loaded]
        _print_deployments(loaded, ids, api_url, run_prefix)
    if work_pool:
        console.print(Text.assemble(
            "Scheduled and triggered runs wait in the pool until a worker picks them up. Start one where this "
            "project is installed (the worker's Python imports flows.analysis) and the configs and their data "
            "are at the paths above, e.g. from the project folder with its virtualenv active:\n  ",
            (f"{run_prefix}prefect worker start --pool {shlex.quote(work_pool)}", "bold"),
        ))
    else:
        console.print("No work pool: runs of these deployments wait until `analyst serve` serves the same configs. "
                      "Pass --work-pool NAME to have a Prefect worker run them.")


def _load(paths: list[Path] | None) -> list[LoadedConfig]:
    from deployments import load_configs

    loaded = load_configs(paths or DEFAULT_PATHS)  # every problem of every file, before any server starts
    for item in loaded:
        for warning in config_warnings(item.config):
            err_console.print(Text.assemble(("warning: ", "yellow"), f"{item.path}: {warning}"))
    return loaded


def _connect(configure_prefect) -> tuple[str, str]:
    """The API URL, and what `prefect ...` commands need in front to reach it from another shell."""
    given = os.environ.get("PREFECT_API_URL", "").strip()
    api_url = configure_prefect()
    return api_url, "" if given else f"PREFECT_API_URL={api_url} "


def _print_deployments(loaded: list[LoadedConfig], ids: list, api_url: str, run_prefix: str) -> None:
    from deployments import describe_schedule
    from flows.local_server import flow_run_url

    # The deployment page sits beside the flow-run pages (self-hosted /v2, Cloud, PREFECT_UI_URL).
    ui_base = flow_run_url(api_url, "-").removesuffix("/runs/flow-run/-")
    for item, deployment_id in zip(loaded, ids):
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")  # commands and links whole, never cut
        table.add_row("deployment", f"analyze/{item.config.name}")
        table.add_row("config", str(item.path))
        table.add_row("schedule", describe_schedule(item.config.schedule))
        table.add_row("run now", f"{run_prefix}prefect deployment run analyze/{item.config.name}")
        table.add_row("Prefect UI", f"{ui_base}/deployments/deployment/{deployment_id}")
        console.print(table)
        console.print()
