"""``analyst history NAME_OR_CONFIG``: an analysis's last runs, as its ``<name>-history`` artifact lists them.

By name, the rows come from the Prefect server alone (a worker on another host may have made the runs);
given the config, the run folders' ``history.jsonl`` beside it is merged in, so runs made while the
server was out of reach are listed too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table
from rich.text import Text

from cli._console import EXIT_BAD_CONFIG, console, fail, print_fields, warn
from cli._errors import user_errors
from tasks.text_safety import printable

if TYPE_CHECKING:
    from tasks.config import LoadedConfig
    from tasks.run_history import RunRecord

_WHOLE = {"time (UTC)", "status", "cost", "flow run"}  # short: never folded, the results take what is left
_STATUS_STYLE = {"completed": "green", "max_iterations": "yellow", "budget_exceeded": "yellow",
                 "unfinished": "yellow"}


def history(
    target: str = typer.Argument(..., metavar="NAME_OR_CONFIG", help=(
        "An analysis name (its history on the Prefect server), or its YAML config (the server's history and "
        "its run folders' history.jsonl).")),
    runs: int | None = typer.Option(None, "--runs", min=1, help=(
        "How many runs to show, newest first. Default: the config's history.runs (20 for a name).")),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as one JSON list, newest first."),
) -> None:
    """Show an analysis's last runs: time, window, status, cost and each result, newest first."""
    from tasks.config.memory_schema import HistoryConfig
    from tasks.config.schema import SLUG

    loaded = None
    with user_errors():
        if target.endswith((".yaml", ".yml")) or Path(target).is_file():
            from tasks.config import load_config

            loaded = load_config(target)
        elif not SLUG.match(target):
            fail(f"{printable(target)}: neither a config file nor an analysis name (a slug such as retail-sales)",
                 EXIT_BAD_CONFIG)
        name = loaded.config.name if loaded else target
        limit = runs or (loaded.config.history if loaded else HistoryConfig()).runs
        from tasks.run_history import table_rows

        rows = table_rows(_records(name, loaded, limit), loaded.config.results if loaded else ())
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        console.print(f"No runs of {name} in its history yet.")
        return
    _print(rows, f"{name}: the last {len(rows)} run(s), newest first")


def _records(name: str, loaded: LoadedConfig | None, limit: int) -> list[RunRecord]:
    from cli.local_server import ensure_server, use_api_url

    local = not os.environ.get("PREFECT_API_URL", "").strip()
    api_url = ensure_server()
    use_api_url(api_url, local=local)
    from tasks.prefect.history import fetch_server_records
    from tasks.run_history import merge_records, read_local_records

    try:
        server = fetch_server_records(name)
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        problem = f"could not read {name}'s history from the Prefect server at {api_url} ({type(exc).__name__}: {exc})"
        if loaded is None:
            fail(problem)
        warn(f"{problem}; listing the runs in its run folders only")
        server = []
    kept = read_local_records(loaded.outputs_dir / name, limit) if loaded else []
    return merge_records(server, kept)[:limit]


def _print(rows: list[dict[str, Any]], title: str) -> None:
    """A table in a terminal; elsewhere (a pipe, a CI log, where rich would squeeze the table into 80 columns)
    one block of ``key: value`` lines per run, whole for grep."""
    from tasks.run_history import COLUMNS

    results = [k for k in rows[0] if k not in COLUMNS]  # table_rows: the same in every row
    runs = [_fields(row, results, windowed=any(r.get("window") for r in rows),
                    alerted=any(r.get("alerts") for r in rows)) for row in rows]
    if not console.is_terminal:
        console.print(title)
        for fields in runs:
            console.print()
            print_fields((key, value) for key, value in fields if value.plain)
        return
    table = Table(title=title, title_justify="left")
    for heading, _ in runs[0]:
        table.add_column(heading, overflow="fold", no_wrap=heading in _WHOLE)
    for fields in runs:
        table.add_row(*(value for _, value in fields))
    console.print(table)


def _fields(row: dict[str, Any], results: list[str], *, windowed: bool, alerted: bool) -> list[tuple[str, Text]]:
    """One run's cells. All but the cost were read back from the server or history.jsonl, and the results
    came from the model: plain text only, never markup or escape sequences."""
    from tasks.results import results_value

    return [("time (UTC)", Text(printable(_time(row.get("time"))))),
            *([("window", Text(printable(row.get("window") or "")))] if windowed else []),
            ("status", _status(row.get("status"))),
            ("cost", Text(_cost(row.get("cost_usd")))),
            *((k, Text(printable(results_value(row[k])) if row.get(k) is not None else "")) for k in results),
            *([("alerts", Text(printable(row.get("alerts") or "")))] if alerted else []),
            ("flow run", Text(printable(str(row.get("flow_run") or ""))[:8]))]


def _status(value: object) -> Text:
    return Text(printable(value), style=_STATUS_STYLE.get(str(value), "red"))


def _cost(value: object) -> str:
    return f"${value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def _time(value: object) -> str:
    """``2026-11-30 07:00`` from the record's UTC ISO time; anything else as it is."""
    text = str(value or "")
    return text[:16].replace("T", " ") if text.endswith("+00:00") and len(text) >= 16 else text
