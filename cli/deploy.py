"""``analyst serve`` and ``analyst deploy``: analysis configs as Prefect deployments ``analyze/<name>``."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import typer
from rich.text import Text

from cli._console import console, print_fields, warn
from cli._errors import user_errors
from tasks.config import LoadedConfig, config_warnings

DEFAULT_PATHS = [Path("configs")]
_PATHS_HELP = "Analysis YAML files, or folders of them (their *.yaml/*.yml with a prompt or datasets key)."



def serve(
    paths: list[Path] = typer.Argument(None, metavar="CONFIG_OR_DIR", help=_PATHS_HELP + " Default: configs/."),
) -> None:
    """Serve the analyses: register their deployments and run scheduled and triggered runs until stopped."""
    from cli.local_server import configure_prefect

    with user_errors():
        loaded = _load(paths)
        deployments = _build(loaded)
        api_url, run_prefix = _connect(configure_prefect)
        from deployments import register

        _apply_sandbox_cap(loaded)
        # Registered here first only to print each deployment's link; serve() updates them in place.
        ids = [register(d) for d in deployments]
        _sync_crash_notifications(loaded, ids)
        _print_deployments(loaded, ids, api_url, run_prefix)
        console.print(f"Serving {len(deployments)} deployment(s) from this process; runs execute here. Ctrl+C stops "
                      "(and pauses their schedules until the next serve).")
        from deployments import serve_deployments

        serve_deployments(loaded)


def deploy(
    paths: list[Path] = typer.Argument(None, metavar="CONFIG_OR_DIR", help=_PATHS_HELP + " Default: configs/."),
    work_pool: str | None = typer.Option(None, "--work-pool", metavar="NAME",
                                         help="Work pool whose workers run the flows (created as a process pool "
                                              "if missing). Start one with: prefect worker start --pool NAME"),
    prefect_yaml: Path | None = typer.Option(
        None, "--prefect-yaml", metavar="PATH",
        help="Write the deployments to this .yaml file (any other PATH: PATH/prefect.yaml) for `prefect deploy "
             "--all`, instead of registering them. No server needed. Work pool: --work-pool, or 'analyses'."),
) -> None:
    """Register the analyses' deployments (with their schedules) on the Prefect server, without serving them."""
    from cli.local_server import configure_prefect

    with user_errors():
        loaded = _load(paths)
        if prefect_yaml is not None:
            _write_prefect_yaml(loaded, prefect_yaml, work_pool)
            return
        deployments = _build(loaded, work_pool)
        api_url, run_prefix = _connect(configure_prefect)
        from deployments import ensure_work_pool, register

        if work_pool:
            pool_type, created = ensure_work_pool(work_pool)
            console.print(f"Work pool {work_pool!r} ({pool_type}): {'created' if created else 'exists'}.")
        _apply_sandbox_cap(loaded)
        ids = [register(d, work_pool) for d in deployments]
        _sync_crash_notifications(loaded, ids)
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
    from deployments import load_configs, sandbox_cap

    loaded = load_configs(paths or DEFAULT_PATHS)  # every problem of every file, before any server starts
    sandbox_cap(loaded)  # configs that disagree on the global cap: a ConfigError naming both, before any server
    for item in loaded:
        for warning in config_warnings(item.config):
            warn(f"{item.path}: {warning}")
    return loaded


def _build(loaded: list[LoadedConfig], work_pool: str | None = None) -> list:
    from deployments import build_deployment

    return [build_deployment(item, work_pool) for item in loaded]  # refuses a secret in a deployment field


def _apply_sandbox_cap(loaded: list[LoadedConfig]) -> None:
    """Set the global limit 'sandboxes' from ``concurrency.sandboxes``, or say what it is."""
    from deployments import read_limit_state, sandbox_cap, set_limit
    from tasks.prefect.sandbox_slots import SANDBOX_LIMIT

    cap = sandbox_cap(loaded)
    if cap is None:
        state = read_limit_state(SANDBOX_LIMIT)
        capped = f"at most {state.limit} at once" if state and state.active else "not capped"
        console.print(f"Sandboxes (all analyses): {capped} (`analyst limits set {SANDBOX_LIMIT} N`, or "
                      "concurrency.sandboxes in a config).")
        return
    limit, source = cap
    before, _ = set_limit(SANDBOX_LIMIT, limit)
    was = "" if before is None else (" (unchanged)" if before.limit == limit and before.active
                                     else f" (was {before.limit}{'' if before.active else ', inactive'})")
    console.print(f"Sandboxes (all analyses): at most {limit} at once{was}, "
                  f"from concurrency.sandboxes in {source.path}.")


def _sync_crash_notifications(loaded: list[LoadedConfig], ids: list) -> None:
    """A killed run cannot send its own notification: the server's automation sends it, once the crash
    detection that ``configure_prefect`` set up has marked the run Crashed."""
    from deployments import sync_crash_notifications

    for item, deployment_id in zip(loaded, ids, strict=True):
        if names := sync_crash_notifications(item, deployment_id):
            console.print(f"Crashed runs of analyze/{item.config.name}: notified through "
                          f"{', '.join(n.rsplit(' via ', 1)[1] for n in names)}.")


def _write_prefect_yaml(loaded: list[LoadedConfig], path: Path, work_pool: str | None) -> None:
    from deployments import DEFAULT_WORK_POOL, sandbox_cap, write_prefect_yaml

    written = write_prefect_yaml(path, loaded, work_pool)
    pool = work_pool or DEFAULT_WORK_POOL
    console.print(f"Wrote {len(loaded)} deployment(s) to {written} (work pool {pool!r}). Then, with PREFECT_API_URL "
                  "pointing at your server:")
    steps = [f"prefect work-pool create {shlex.quote(pool)} --type process   # once, if it does not exist",
             f"prefect deploy --all --prefect-file {shlex.quote(str(written))}"]
    if cap := sandbox_cap(loaded):
        steps.append(f"analyst limits set sandboxes {cap[0]}   # concurrency.sandboxes in {cap[1].path}")
    steps.append(f"prefect worker start --pool {shlex.quote(pool)}   # where this project is installed")
    for step in steps:
        console.print(Text.assemble("  ", (step, "bold")))


def _connect(configure_prefect) -> tuple[str, str]:
    """The API URL, and what `prefect ...` commands need in front to reach it from another shell."""
    given = os.environ.get("PREFECT_API_URL", "").strip()
    api_url = configure_prefect()
    return api_url, "" if given else f"PREFECT_API_URL={api_url} "


def _print_deployments(loaded: list[LoadedConfig], ids: list, api_url: str, run_prefix: str) -> None:
    from deployments import describe_schedule
    from cli.local_server import flow_run_url

    # The deployment page sits beside the flow-run pages (self-hosted /v2, Cloud, PREFECT_UI_URL).
    ui_base = flow_run_url(api_url, "-").removesuffix("/runs/flow-run/-")
    for item, deployment_id in zip(loaded, ids):
        runs = item.config.concurrency
        print_fields([
            ("deployment", f"analyze/{item.config.name}"),
            ("config", str(item.path)),
            ("schedule", describe_schedule(item.config.schedule)),
            ("runs at once", f"{runs.runs}; more {'wait' if runs.when_busy == 'wait' else 'are cancelled'} "
                             "(concurrency.runs, concurrency.when_busy)"),
            ("run now", f"{run_prefix}prefect deployment run analyze/{item.config.name}"),
            ("Prefect UI", f"{ui_base}/deployments/deployment/{deployment_id}"),
        ])
        console.print()
