"""The text of a run's notification: what happened to which analysis, what it found and cost, where to look.

Domain code: it builds the subject and body; ``tasks/prefect/notifications.py`` sends them through
Prefect's notification blocks. The run's detail, results and alerts came from the model, the data or an
exception: they are untrusted text, cleaned and clipped here, and any secret value found in them (the
value of an environment variable named like ``*_KEY`` or ``*_TOKEN``, or one the caller names) is
replaced, so no message carries a secret.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tasks.secrets import SECRET_NAME
from tasks.text_safety import printable

# Where a run ended, as ``notify[].on`` names it; a stop on a budget or the iteration cap is no failure.
OUTCOME_OF_STATUS = {"completed": "completed", "budget_exceeded": "completed", "max_iterations": "completed",
                     "refused": "failed", "failed": "failed", "running": "crashed", "crashed": "crashed"}
_MIN_SECRET_LENGTH = 8  # shorter values ("1", "true") would blank out ordinary words
_CLIP = 500


@dataclass
class RunNotice:
    """What one notification says about one run. Everything but the analysis and outcome is optional."""

    analysis: str
    outcome: str  # completed, failed, crashed, validation_failed or alert
    status: str = ""  # the transcript's status, when it says more than the outcome (max_iterations, ...)
    detail: str = ""
    window: str | None = None
    results: Mapping[str, Any] | None = None
    alerts: Sequence[str] = field(default_factory=tuple)
    cost_usd: float | None = None
    flow_run_url: str | None = None
    report_url: str | None = None


def notice_subject(notice: RunNotice) -> str:
    what = notice.outcome.replace("_", " ")
    alerts = f", {len(notice.alerts)} alert(s)" if notice.alerts else ""
    return _scrub(f"analysis {notice.analysis}: {what}{alerts}", ())


def notice_body(notice: RunNotice, secrets: Iterable[str] = ()) -> str:
    """Plain text lines, readable in Slack, Teams and an email alike."""
    status = notice.outcome.replace("_", " ")
    if notice.status and notice.status != notice.outcome:
        status += f" ({notice.status.replace('_', ' ')})"
    lines = [f"Analysis: {notice.analysis}", f"Status: {status}"]
    if notice.window:
        lines.append(f"Window: {notice.window}")
    if notice.detail:
        lines.append(f"Detail: {_clip(notice.detail)}")
    if notice.results:
        lines.append("Key results:")
        lines += [f"- {_clip(name, 80)}: {_clip(value, 200)}" for name, value in list(notice.results.items())[:10]]
    if notice.alerts:
        lines.append("Alerts fired:")
        lines += [f"- {_clip(alert, 300)}" for alert in notice.alerts[:10]]
    if notice.cost_usd is not None:
        lines.append(f"Cost: ${notice.cost_usd:.4f}")
    if notice.flow_run_url:
        lines.append(f"Flow run: {notice.flow_run_url}")
    if notice.report_url:
        lines.append(f"Report: {notice.report_url}")
    return _scrub("\n".join(lines), secrets)


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the environment variables named like secrets (ANTHROPIC_API_KEY, *_TOKEN, ...)."""
    environ = os.environ if environ is None else environ
    return [value for name, value in environ.items() if SECRET_NAME.search(name) and value]


def _clip(text: object, limit: int = _CLIP) -> str:
    text = " ".join(printable(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({*environment_secrets(), *secrets}, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, "[secret]")
    return text
