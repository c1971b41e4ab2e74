"""``analyst backfill CONFIG --from DATE --to DATE``: one run of the deployment per scheduled time in a range.

Each run is created on the deployment ``analyze/<name>`` (so it shows in the UI like any scheduled run
and waits for the deployment's concurrency limit) with its scheduled time and ``as_of`` set to that
occurrence: its window and ``{{ }}`` templates are the ones a run at that time would have had.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from cli._console import console, print_json
from cli._errors import user_errors
from tasks.config import LoadedConfig, load_config
from tasks.config.window import RunTime, parse_as_of
from tasks.errors import ConfigError, Problem


def backfill(
    config: Path = typer.Argument(..., help="The analysis YAML file (its schedule and window)."),
    from_: str = typer.Option(..., "--from", metavar="DATE", help="First day (or ISO date-time) of the range."),
    to: str = typer.Option(..., "--to", metavar="DATE",
                           help="Last day of the range, included (or an ISO date-time, included)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs and their windows; create nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of lines."),
) -> None:
    """Create one flow run of the analysis's deployment per occurrence of its schedule in a range."""
    with user_errors():
        loaded = load_config(config)
        occurrences = _occurrences(loaded, from_, to)
        runs = [RunTime.for_config(when, loaded.config.window, _timezone(loaded)) for when in occurrences]
        created = [] if dry_run else _create_runs(loaded, runs)
    if as_json:
        print_json({"deployment": f"analyze/{loaded.config.name}", "dry_run": dry_run,
                    "runs": [run.to_dict() | ({"flow_run_id": created[i][0]} if created else {})
                             for i, run in enumerate(runs)]})
        return
    for i, run in enumerate(runs):
        covers = f"window {run.window.label()}" if run.window else "no window"
        made = f"flow run {created[i][0]} ({created[i][1]})" if created else "(dry run: not created)"
        console.print(f"{run.as_of.isoformat()}  {covers}  {made}", highlight=False, soft_wrap=True)
    if not runs:
        console.print(f"No run of analyze/{loaded.config.name} is scheduled between {from_} and {to}.")


def _timezone(loaded: LoadedConfig) -> str:
    schedule = loaded.config.schedule
    return schedule.timezone if schedule else "UTC"


def _occurrences(loaded: LoadedConfig, from_: str, to: str) -> list[datetime]:
    file = str(loaded.path)
    schedule = loaded.config.schedule
    if schedule is None:
        raise ConfigError([Problem(file, "schedule", "a backfill creates one run per scheduled time, and this "
                                                     "config has no schedule; add one (e.g. schedule: {cron: "
                                                     "'0 7 * * 1'}) or run single periods with `analyst run "
                                                     "--as-of`")])
    start, end = _bound(from_, "--from", schedule.timezone), _bound(to, "--to", schedule.timezone)
    if len(to.strip()) == 10:  # a date: its whole day is in the range
        end += timedelta(days=1) - timedelta(microseconds=1)
    if end < start:
        raise typer.BadParameter(f"{to} is before --from {from_}", param_hint="--to")
    from tasks.prefect.schedules import schedule_occurrences  # Prefect's import is not paid by other commands

    try:
        return schedule_occurrences(schedule, start, end)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--from/--to") from None


def _bound(text: str, option: str, tz: str) -> datetime:
    try:
        return parse_as_of(text, tz)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _create_runs(loaded: LoadedConfig, runs: list[RunTime]) -> list[tuple[str, str]]:
    """(flow run id, UI link) per run, created on the deployment."""
    from cli.local_server import configure_prefect, flow_run_url

    api_url = configure_prefect()
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    name = f"analyze/{loaded.config.name}"
    _require_deployment(name, loaded, api_url)
    created = []
    for run in runs:
        tags = [f"window:{run.window.label()}"] if run.window else []
        try:
            flow_run: Any = run_deployment(name, timeout=0, scheduled_time=run.as_of, tags=["backfill", *tags],
                                           parameters={"as_of": run.as_of.isoformat()}, as_subflow=False)
        except ObjectNotFound:  # removed while we were creating runs
            _require_deployment(name, loaded, api_url)
            raise
        created.append((str(flow_run.id), flow_run_url(api_url, str(flow_run.id))))
    return created


def _require_deployment(name: str, loaded: LoadedConfig, api_url: str) -> None:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise ConfigError([Problem(str(loaded.path), "name", (
                f"no deployment {name} on the Prefect server at {api_url}; register it first with "
                f"`analyst serve {loaded.path}` (runs here) or `analyst deploy {loaded.path}` (runs on a worker)"))]) \
                from None
