"""Send a run's notification through the Prefect blocks the config's ``notify`` names, from the flow's hooks.

``on_completion`` and ``on_failure`` hooks run in the flow's own process once its final state is known:
a failed attempt that Prefect will retry is not final and sends nothing. A crashed run cannot speak for
itself; ``deployments/_crash_notifications.py`` keeps the Prefect automation that does. A notification
that cannot be sent is logged: it never changes the run's outcome.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from prefect.blocks.core import Block
from prefect.settings import get_current_settings

from cli.local_server import flow_run_url
from tasks.alerts import alert_line
from tasks.config import LoadedConfig, load_config
from tasks.config.upkeep_schema import EMAIL_BLOCK_TYPE, NotifyConfig
from tasks.notifications import OUTCOME_OF_STATUS, RunNotice, notice_body, notice_subject
from tasks.prefect.artifacts import artifact_key
from tasks.prefect.validate import DataInvalid
from tasks.transcript import TRANSCRIPT_FILE, Transcript

log = logging.getLogger(__name__)


def notify_completed(flow: Any, flow_run: Any, state: Any) -> None:
    """The flow's ``on_completion`` hook: the summary the flow returned says how the analysis ended."""
    loaded = _config_of(flow_run)
    if loaded is None or not loaded.config.notify:
        return
    summary = state.result(raise_on_failure=False)
    summary = summary if isinstance(summary, dict) else {}
    status = str(summary.get("status", "completed"))
    notice = _notice(loaded, flow_run, OUTCOME_OF_STATUS.get(status, "failed"), status, summary.get("detail", ""))
    notice.cost_usd = summary.get("cost_usd")
    notice.results = summary.get("results") or None
    notice.alerts = list(summary.get("alerts") or ())
    send(loaded, notice)


def notify_failed(flow: Any, flow_run: Any, state: Any) -> None:
    """The flow's ``on_failure`` hook, after its last attempt: a schema failure or any other error."""
    loaded = _config_of(flow_run)
    if loaded is None or not loaded.config.notify:
        return
    error = state.result(raise_on_failure=False)
    outcome = "validation_failed" if isinstance(error, DataInvalid) else "failed"
    detail = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(state.message or "")
    notice = _notice(loaded, flow_run, outcome, outcome, detail)
    transcript = _transcript_of(loaded, str(flow_run.id))
    notice.cost_usd = transcript.cost_usd if transcript else None
    # the alerts a validation failure fired ride on the error; a later failure's are in its transcript
    fired = error.alerts if isinstance(error, DataInvalid) else transcript.alerts if transcript else []
    notice.alerts = [alert_line(a) for a in fired]
    send(loaded, notice)


def send(loaded: LoadedConfig, notice: RunNotice) -> list[str]:
    """Send ``notice`` to every ``notify`` entry that asks for its outcome (and for ``alert``, when alerts
    fired). Returns the blocks it was sent through."""
    wanted = {notice.outcome} | ({"alert"} if notice.alerts else set())
    subject, body = notice_subject(notice), notice_body(notice)
    sent = []
    for entry in loaded.config.notify:
        if not wanted & set(entry.on):
            continue
        try:
            _send_one(entry, subject, body)
            sent.append(entry.block)
        except Exception as exc:  # noqa: BLE001 - a notification must never change the run's outcome
            log.warning("Could not send the notification through %s (notify in %s): %s: %s",
                        entry.block, loaded.path, type(exc).__name__, exc)
    return sent


def _send_one(entry: NotifyConfig, subject: str, body: str) -> None:
    block = Block.load(entry.block, _sync=True)
    if entry.block.startswith(EMAIL_BLOCK_TYPE + "/"):
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, block.username or "analyst", ", ".join(entry.to)
        message.set_content(body)
        with block.get_server() as server:
            server.send_message(message)
        return
    if not hasattr(block, "notify"):
        raise TypeError(f"the block {entry.block!r} is not a notification block (slack-webhook, ms-teams-webhook, "
                        "custom-webhook) nor email-server-credentials")
    block.notify(body, subject, _sync=True)


def _notice(loaded: LoadedConfig, flow_run: Any, outcome: str, status: str, detail: str) -> RunNotice:
    name = loaded.config.name
    run_url = report_url = None
    if api_url := get_current_settings().api.url:
        run_url = flow_run_url(api_url, flow_run.id)
        shown = "validation" if outcome == "validation_failed" else "report"  # no report without valid data
        report_url = f"{run_url.rsplit('/runs/flow-run/', 1)[0]}/artifacts/key/{artifact_key(name, shown)}"
    window = (flow_run.parameters or {}).get("window")
    return RunNotice(analysis=name, outcome=outcome, status=status, detail=str(detail or ""),
                     window=str(window) if window else None, flow_run_url=run_url, report_url=report_url)


def _config_of(flow_run: Any) -> LoadedConfig | None:
    parameters = flow_run.parameters or {}
    try:
        return load_config(parameters["config"], parameters.get("overrides"))
    except Exception as exc:  # noqa: BLE001 - a config that does not load names no one to notify
        log.warning("No notification sent: the config did not load (%s: %s)", type(exc).__name__, exc)
        return None


def _transcript_of(loaded: LoadedConfig, flow_run_id: str) -> Transcript | None:
    """This flow run's transcript, if it got that far: the model's cost and the alerts it fired."""
    for path in sorted((loaded.outputs_dir / loaded.config.name).glob(f"*-{flow_run_id[:8]}/{TRANSCRIPT_FILE}")):
        try:
            return Transcript.load(Path(path))
        except Exception:  # noqa: BLE001 - the cost and alerts are a courtesy in a failure's message
            return None
    return None
