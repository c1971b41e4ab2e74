"""The config's alerts, evaluated when a run ends (or its data fails validation), and told to Prefect.

Each alert that fires is an ``analysis.alert`` event whose resource is the analysis
(``analysis.<name>``, labelled with the alert's name), so a Prefect automation can act on it
(docs/deployments.md); the events worker relates it to the flow run, flow and deployment it came from.
Its payload holds the values the condition read: untrusted (the model's results, the data's row counts),
clipped by ``tasks/alerts.py``. A completed run with alerts ends in a Completed state whose message
names them first; the flow's caller still gets the summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prefect.events import emit_event
from prefect.states import Completed, State

from tasks.alerts import AlertOutcome, RunFacts, Vocabulary, evaluate_all, state_message
from tasks.config import AnalysisConfig, LoadedConfig
from tasks.prefect.artifacts import _logger
from tasks.prefect.validate import DataInvalid
from tasks.run_history import RunRecord, previous_completed, utc_iso
from tasks.transcript import Transcript

ALERT_EVENT = "analysis.alert"


def raise_alerts(loaded: LoadedConfig, transcript: Transcript, earlier: Iterable[RunRecord]) -> list[AlertOutcome]:
    """Evaluate the alerts over the run that just ended: the fired ones go to ``transcript.alerts``, the
    ones that could not be evaluated to ``transcript.alerts_not_evaluated``, and each fired one is an event."""
    cfg = loaded.config
    if not cfg.alerts:
        return []
    before = utc_iso((transcript.run_time or {}).get("as_of") or transcript.started_at)
    facts = RunFacts(status=transcript.status, results=transcript.results, datasets=transcript.datasets,
                     cost_usd=transcript.cost_usd,
                     previous=previous_record(transcript.memory, earlier, before, transcript.flow_run_id or ""))
    outcomes = evaluate_all(cfg.alerts, vocabulary_of(cfg), facts)
    transcript.alerts = [o.to_record() for o in outcomes if o.fired]
    transcript.alerts_not_evaluated = [{"name": o.name, "reason": o.reason} for o in outcomes if o.reason]
    announce(cfg.name, outcomes, transcript.status)
    return outcomes


def alert_on_invalid_data(loaded: LoadedConfig, invalid: DataInvalid,
                          earlier: Callable[[], Iterable[RunRecord]]) -> None:
    """The alerts over a run whose data failed validation (status ``validation_failed``, no results): the
    fired ones ride on the error to the failure notification (``invalid.alerts``). Never raises: the
    run's outcome is the validation failure."""
    cfg = loaded.config
    if not cfg.alerts:
        return
    try:
        before = utc_iso(loaded.run_time.to_dict()["as_of"])
        facts = RunFacts(status="validation_failed", results=None, datasets=[r.to_dict() for r in invalid.reports],
                         previous=previous_record(None, earlier(), before, ""))
        outcomes = evaluate_all(cfg.alerts, vocabulary_of(cfg), facts)
        invalid.alerts = [o.to_record() for o in outcomes if o.fired]
        announce(cfg.name, outcomes, "validation_failed")
    except Exception:  # noqa: BLE001 - see the docstring
        _logger().exception("Could not evaluate the alerts")


def vocabulary_of(cfg: AnalysisConfig) -> Vocabulary:
    return Vocabulary(tuple(cfg.results), tuple(d.name for d in cfg.datasets))


def previous_record(memory: list[dict[str, Any]] | None, earlier: Iterable[RunRecord], before: str,
                    exclude: str) -> dict[str, Any] | None:
    """The run ``previous.*`` reads: the one Claude was told of when memory is on (a replay or resume keeps
    it), else the newest completed run before ``before`` that is not this one (``exclude``)."""
    if memory is not None:
        return memory[0] if memory else None
    found = previous_completed(earlier, before, exclude)
    return found[0].to_dict() if found else None


def announce(analysis: str, outcomes: list[AlertOutcome], status: str) -> None:
    """Log every alert's outcome and emit one event per fired alert."""
    logger = _logger()
    for outcome in outcomes:
        if outcome.fired:
            logger.warning("Alert %s fired: %s", outcome.name, outcome.message or outcome.when)
            emit_event(event=ALERT_EVENT,
                       resource={"prefect.resource.id": f"analysis.{analysis}", "prefect.resource.name": analysis,
                                 "analysis.alert": outcome.name},
                       payload={"alert": outcome.name, "message": outcome.message, "when": outcome.when,
                                "values": outcome.values, "status": status})
        elif outcome.reason:
            logger.info("Alert %s not evaluated: %s", outcome.name, outcome.reason)


def with_alerts(summary: dict[str, Any], transcript: Transcript) -> dict[str, Any] | State[dict[str, Any]]:
    """The flow's return value: with alerts fired, a Completed state whose message names them first;
    Prefect's engine unwraps it, so the flow's caller and its hooks still get ``summary``."""
    if not transcript.alerts:
        return summary
    return Completed(message=state_message(transcript.alerts), data=summary)
