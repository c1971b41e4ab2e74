"""Step 2: validate every dataset against its pandera schema, before any sandbox is paid for."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from tasks.config import LoadedConfig
from tasks.datasets import DatasetReport
from tasks.errors import AnalystError
from tasks.prefect.artifacts import publish_validation
from tasks.prefect.source_blocks import source_access


class DataInvalid(AnalystError):
    """A dataset with ``on_invalid: fail`` did not pass its schema."""

    def __init__(self, reports: list[DatasetReport]):
        self.reports = reports
        self.alerts: list[dict[str, Any]] = []  # the alerts this failure fired (tasks/prefect/alerts.py)
        names = ", ".join(f"{r.name} ({r.failure_count:,} failing values)" for r in reports if r.blocking)
        super().__init__(f"data invalid: {names}; see the validation table, or set on_invalid: warn to go on")


# Reading a local file twice gives the same answer: no retries. A URL download is not retried
# either (yet): an unreachable URL fails the run at once with a clear error.
@task(name="validate-datasets", cache_policy=NONE)
def validate_datasets(loaded: LoadedConfig) -> list[DatasetReport]:
    from tasks.datasets import validate_dataset  # noqa: PLC0415 - pandas and pandera (1 s): while the sandbox starts

    logger = get_run_logger()
    access = source_access(loaded)
    reports = [validate_dataset(dataset, loaded.base_dir, access=access) for dataset in loaded.config.datasets]
    for report in reports:
        if report.valid:
            logger.info("Dataset %s: valid (%s rows)", report.name, f"{report.rows:,}")
        else:
            logger.warning("Dataset %s: %s failing checks (on_invalid: %s)", report.name, report.failure_count,
                           report.on_invalid)
    publish_validation(loaded.config.name, [r.to_dict() for r in reports])
    if any(r.blocking for r in reports):
        raise DataInvalid(reports)
    return reports
