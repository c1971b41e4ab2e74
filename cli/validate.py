"""``analyst validate`` and ``analyst infer-schema``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from cli._console import JSON_OPTION_HELP, console, err_console, error, print_json, warn
from cli._errors import EXIT_FAILED, EXIT_OK, user_errors
from cli.tables import print_dataset_report
from tasks.config import config_warnings, load_config, parse_overrides
from tasks.errors import DataError


def validate(
    config: Path = typer.Argument(..., help="The analysis YAML file."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set datasets.0.on_invalid=warn."),
    as_of: str | None = typer.Option(None, "--as-of", metavar="DATETIME",
                                     help="Check the config and data a run at this ISO date-time would use."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Check a config and its datasets. Exit 0: valid, 1: data invalid or unreadable, 2: config invalid."""
    from tasks.datasets import validate_dataset  # polars and pandera: only once the config is fine
    from tasks.prefect.source_blocks import source_access

    with user_errors():
        loaded = load_config(config, parse_overrides(set_), as_of=as_of)
        warnings = config_warnings(loaded.config)
        for warning in warnings:
            warn(warning)
        if not as_json:
            console.print(Text.assemble(("config ", "bold"), str(loaded.path), ("  ok", "green")))
        if any(dataset.blocks for dataset in loaded.config.datasets):
            _connect_to_prefect()
        access = source_access(loaded)
        all_valid = True
        datasets: list[dict] = []
        for dataset in loaded.config.datasets:  # every dataset, even after one fails
            try:
                report = validate_dataset(dataset, loaded.base_dir, access=access)
            except DataError as exc:
                error(exc)
                datasets.append({"name": dataset.name, "valid": False, "error": str(exc)})
                all_valid = False
                continue
            if as_json:
                datasets.append(report.to_dict())
            else:
                print_dataset_report(console, report)
            all_valid &= report.valid
    if as_json:
        print_json({"config": str(loaded.path), "valid": all_valid, "datasets": datasets,
                    "warnings": warnings})
    raise typer.Exit(EXIT_OK if all_valid else EXIT_FAILED)


def _connect_to_prefect() -> None:
    """Blocks are kept by the Prefect server `analyst run` uses: PREFECT_API_URL, else the local one."""
    import os

    from cli import local_server

    local = not os.environ.get("PREFECT_API_URL", "").strip()
    local_server.use_api_url(local_server.ensure_server(), local=local)


def infer_schema(
    data: Path = typer.Argument(..., help="A data file (csv, parquet, json, xlsx)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the schema here instead of printing it."),
) -> None:
    """Draft a pandera YAML schema for a dataset, ready to use as a config's `schema:`."""
    from tasks.datasets import infer_schema_yaml

    with user_errors():
        text = infer_schema_yaml(data)
    if output is None:
        print(text, end="" if text.endswith("\n") else "\n")
        return
    output.write_text(text, encoding="utf-8")
    err_console.print(Text(f"wrote {output}; review the checks, then point a dataset's `schema:` at it"))
