"""``analyst prune``: apply the configs' ``outputs.retention`` now (each run also applies it when it ends)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from cli._console import console
from cli._errors import user_errors

DEFAULT_PATHS = [Path("configs")]


def prune(
    paths: list[Path] = typer.Argument(None, metavar="CONFIG_OR_DIR", help=(
        "Analysis YAML files, or folders of them. Default: configs/.")),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be deleted; delete nothing."),
) -> None:
    """Delete the run folders and saved model turns that the configs' outputs.retention no longer keeps."""
    from deployments import load_configs
    from tasks.prefect.model import RESULTS_FOLDER
    from tasks.retention import plan_prune

    with user_errors():
        loaded = load_configs(paths or DEFAULT_PATHS)
    verb = "Would delete" if dry_run else "Deleted"
    for item in loaded:
        policy = item.config.outputs.retention
        if policy.keep_runs is None and policy.max_age is None:
            console.print(f"{item.config.name}: no outputs.retention in {item.path}; everything is kept.")
            continue
        results_dir = None if item.config.outputs.results_storage else item.outputs_dir / RESULTS_FOLDER
        plan = plan_prune(item.outputs_dir / item.config.name, policy, results_dir)
        if not dry_run:
            plan.apply()
        console.print(Text(f"{item.config.name}: {verb.lower()} {len(plan.run_dirs)} run folder(s) and "
                           f"{len(plan.saved_turns)} saved model turn(s)."))
        for folder in plan.run_dirs:
            console.print(Text(f"  {verb} {folder}"))
