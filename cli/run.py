"""``analyst run CONFIG``: run one analysis through the Prefect flow, with live progress."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from cli._console import console, print_fields, print_json, warn
from cli._errors import EXIT_BAD_CONFIG, EXIT_FAILED, EXIT_OK, user_errors
from cli.cancel_watch import CANCELLED_MESSAGE, CancelWatch
from cli.progress import LiveProgress, quiet_prefect_console
from cli.warm_client import start_runner
from tasks.config import config_warnings, load_config, parse_overrides
from tasks.results import results_value
from tasks.text_safety import printable

COMPLETE = {"completed", "max_iterations", "budget_exceeded"}  # a report was written


def run(
    config: Path = typer.Argument(..., help="The analysis YAML file."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set model.max_iterations=3."),
    replay: Path | None = typer.Option(None, "--replay", help="Replay the model's turns from a transcript.json."),
    resume: Path | None = typer.Option(None, "--resume", metavar="RUN_FOLDER",
                                       help="Go on from an unfinished run of this analysis (killed or failed): its "
                                            "model turns are reused, its code is run again in a fresh sandbox."),
    as_of: str | None = typer.Option(None, "--as-of", metavar="DATETIME",
                                     help="Run as if scheduled at this ISO date-time, e.g. 2026-11-02T07:00 (read "
                                          "in the schedule's time zone): its window and {{ }} templates follow."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of progress."),
) -> None:
    """Run an analysis: validate the data, run Claude's loop in a sandbox, write the report."""
    shown = Console(quiet=True) if as_json else console  # --json: stdout holds the JSON object alone
    quiet_prefect_console()  # before prefect is imported: loading a config with a schedule imports it
    with user_errors():
        overrides = parse_overrides(set_)
        loaded = load_config(config, overrides, as_of=as_of)  # fail fast, before any server or flow run exists
        for warning in config_warnings(loaded.config):
            warn(warning)
        if replay is not None and not replay.is_file():
            raise typer.BadParameter(f"no such transcript: {replay}", param_hint="--replay")
        if resume is not None:  # the cheap checks before any server or flow run; the flow checks the rest
            from tasks.agent.resume import read_resumable, transcript_file

            earlier = read_resumable(transcript_file(resume), loaded.config.name)
            if as_of is None and earlier.run_time:  # the resumed run covers the period it started on
                as_of = earlier.run_time["as_of"]
                loaded = load_config(config, overrides, as_of=as_of)
        from cli.local_server import configure_prefect, flow_run_url

        api_url = configure_prefect(wait=False)
        start_runner()  # for the next run: this one paid for the imports a runner keeps
        if resume is not None:
            _warn_if_still_running(earlier.flow_run_id)
        from flows.analysis import analyze  # imports prefect: only after its API URL is settled
        from tasks.prefect.heartbeat import heartbeats_from_the_flow

        # Retries of this run resume where the failed attempt stopped (tasks/agent/resume.py).
        analyze = analyze.with_options(retries=loaded.config.retries,
                                       retry_delay_seconds=loaded.config.retry_delay_seconds)

        progress = LiveProgress(shown, loaded.config.name, loaded.config.model.max_iterations)
        result: dict[str, Any] | None = None
        error: BaseException | None = None
        watch = CancelWatch(lambda: progress.flow_run_id)  # no Prefect runner here to act on a cancellation
        with progress, watch, heartbeats_from_the_flow():
            try:
                result = analyze(str(loaded.path), overrides or None, str(replay.resolve()) if replay else None,
                                 str(resume.resolve()) if resume else None,
                                 loaded.run_time.as_of.isoformat() if as_of else None)
            except Exception as exc:  # noqa: BLE001 - reported below, with the run's link and folder
                error = exc
            except BaseException as exc:  # the SIGTERM the watch sent, as Prefect raises it in the flow
                if not watch.cancelled:
                    raise
                error = exc
        watch.finish()
        summary = _summary(result, error, progress, api_url, flow_run_url)
        if watch.cancelled:
            summary.update(status="cancelled", error=CANCELLED_MESSAGE)

    if as_json:
        print_json(summary)
    else:
        _print_data_failures(console, error)
        _print_summary(console, summary)
    if error is not None and not _is_user_error(error):
        if os.environ.get("ANALYST_DEBUG"):
            raise error
    raise typer.Exit(EXIT_OK if summary["status"] in COMPLETE else _exit_code(error))


def _warn_if_still_running(flow_run_id: str | None) -> None:
    """Resuming a run whose process is alive would have both go on; after a kill the server says
    Running until its crash detection marks the run Crashed (two heartbeat periods)."""
    from prefect import get_client

    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state if flow_run_id else None
    except Exception:  # noqa: BLE001 - a run from another server, or none: nothing to say
        return
    if state is not None and state.is_running():
        warn(f"flow run {flow_run_id} of that folder is still Running on the Prefect server: if its process is "
             "alive, stop it first, or both runs will go on")


def _is_user_error(error: BaseException) -> bool:
    from tasks.errors import AnalystError

    return isinstance(error, AnalystError)


def _exit_code(error: BaseException | None) -> int:
    from tasks.errors import ConfigError

    return EXIT_BAD_CONFIG if isinstance(error, ConfigError) else EXIT_FAILED


def _server_lost(error: BaseException, api_url: str, run_dir: str | None) -> str | None:
    """Prefect's client (httpx; the model and Daytona SDKs' errors never get here raw) gave up on the server."""
    import httpx

    if not isinstance(error, httpx.TransportError):
        return None
    ended = ""
    if run_dir:
        from tasks.transcript import TRANSCRIPT_FILE, Transcript

        try:
            ended = f"; the analysis itself ended {Transcript.load(Path(run_dir) / TRANSCRIPT_FILE).status!r}"
        except Exception:  # noqa: BLE001 - no transcript yet: nothing more to say
            pass
    return (f"the Prefect server at {api_url} stopped answering ({type(error).__name__}: {error}){ended}; what "
            f"the run wrote is in its folder, but Prefect may not show its end (`analyst server status`)")


def _summary(result, error, progress, api_url, flow_run_url) -> dict[str, Any]:
    summary: dict[str, Any] = dict(result or {})
    summary.setdefault("analysis", progress.analysis)
    summary.setdefault("flow_run_id", progress.flow_run_id)
    summary.setdefault("run_dir", progress.run_dir)
    if error is not None:
        summary["status"] = "failed"
        summary["error"] = _server_lost(error, api_url, summary["run_dir"]) or str(error) or type(error).__name__
        summary.setdefault("iterations", progress.iterations)
    if summary.get("flow_run_id"):
        summary["ui_url"] = flow_run_url(api_url, summary["flow_run_id"])
    return summary


def _print_data_failures(console: Console, error: BaseException | None) -> None:
    from tasks.prefect.validate import DataInvalid

    if isinstance(error, DataInvalid):
        from cli.tables import print_dataset_report

        for report in error.reports:
            if not report.valid:
                print_dataset_report(console, report)


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    status = summary.get("status", "failed")
    colour = "green" if status == "completed" else ("yellow" if status in COMPLETE else "red")
    rows: list[tuple[str, str | Text]] = [
        ("status", Text.assemble((status, colour), f" {summary.get('detail') or ''}".rstrip()))]
    if summary.get("alerts"):  # the values they read are the model's and the data's: plain text
        rows.append(("alerts", Text(printable("; ".join(summary["alerts"])), style="bold yellow")))
    if summary.get("error"):
        rows.append(("error", printable(summary["error"])))  # may quote the sandbox's or the model's text
    if summary.get("report"):
        rows.append(("report", summary["report"]))
    if summary.get("charts"):
        rows.append(("charts", f"{len(summary['charts'])} in {Path(summary['run_dir']) / 'charts'}"))
    if summary.get("run_dir"):
        rows.append(("run folder", str(summary["run_dir"])))
    if summary.get("ui_url"):
        rows.append(("Prefect UI", summary["ui_url"]))
    if summary.get("results"):  # the model's values: printed as plain text
        shown = ", ".join(f"{k} = {results_value(v)}" for k, v in summary["results"].items())
        rows.append(("results", printable(shown)))
    if summary.get("iterations") is not None:
        rows.append(("iterations", str(summary["iterations"])))
    usage = summary.get("usage")
    if summary.get("replayed"):
        rows.append(("model", f"replayed from {summary['replayed']} (no model called, no cost)"))
    elif usage:
        cost = summary.get("cost_usd")
        tokens = (f"{usage['input_tokens']:,} in, {usage['output_tokens']:,} out, "
                  f"{usage['cache_read_input_tokens']:,} cache read, "
                  f"{usage['cache_creation_input_tokens']:,} cache write")
        rows.append(("tokens", tokens))
        rows.append(("cost", "unknown (model not priced)" if cost is None else f"${cost:.4f}"))
    print_fields(rows, console)
