"""The config's ``alerts``: named conditions over the results, the previous run's results and the data."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from tasks.alerts import ConditionError, Vocabulary, compile_condition

# Alert names go into the history table's comma-separated alerts column and Prefect resource labels.
ALERT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class AlertConfig(BaseModel):
    """One alert: when its condition holds after a run, the report, the run's state message, a Prefect
    event (analysis.alert) and the notify entries with `on: [alert]` say so."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=ALERT_NAME.pattern, description=(
        "A name for it: lowercase letters, digits, '_' and '-', e.g. 'revenue_drop'."))
    when: str = Field(min_length=1, max_length=1000, description=(
        "The condition, e.g. 'total_revenue < previous.total_revenue * 0.9', 'anomalies > 0', 'data.rows == 0', "
        "'validation.failed', \"status == 'failed'\". Names: the results, previous.<result>, cost_usd, "
        "previous.cost_usd, status, data.rows, data.<dataset>.rows, validation.failed, validation.failures; "
        "operators: comparisons, in, and, or, not, + - * / // % **; functions: abs, min, max, round, len."))
    message: str | None = Field(None, max_length=300, description=(
        "What the alert says, e.g. 'Revenue fell more than 10% since the last run'. Default: the condition."))


def check_alerts(alerts: list[AlertConfig], results: Iterable[str], datasets: Iterable[str]) -> None:
    """Every condition parses and reads only names these results and datasets give; a ``ValidationError``
    located at ``[i].when`` (pydantic prefixes the field: ``alerts[0].when``) lists each that does not."""
    names = [a.name for a in alerts]
    repeated = sorted({n for n in names if names.count(n) > 1})
    errors = [InitErrorDetails(type=PydanticCustomError("value_error", "alert names must be unique; repeated: "
                                                        "{names}", {"names": ", ".join(repeated)}),
                               loc=(), input=names)] if repeated else []
    vocabulary = Vocabulary(tuple(results), tuple(datasets))
    for i, alert in enumerate(alerts):
        try:
            compile_condition(alert.when, vocabulary)
        except ConditionError as exc:
            errors.append(InitErrorDetails(type=PydanticCustomError("value_error", "{problem}", {"problem": str(exc)}),
                                           loc=(i, "when"), input=alert.when))
    if errors:
        raise ValidationError.from_exception_data("alerts", errors)
