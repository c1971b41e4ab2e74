"""The report of validating one dataset: kept as a task result and an artifact, and read by prompts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


_MAX_COLUMNS = 200  # of a wide table, the prompt lists the first ones only


@dataclass
class Failure:
    column: str | None
    check: str
    failure_case: str | None
    row: int | None  # 0-based row number in the data; None for a failure of the whole column


@dataclass
class CheckCount:
    column: str | None
    check: str
    count: int


@dataclass
class DatasetReport:
    """What validating one dataset found. JSON-serialisable through ``to_dict``."""

    name: str
    source: str
    format: str
    schema_source: str
    rows: int
    columns: list[str]
    dtypes: dict[str, str]
    null_counts: dict[str, int]
    head: list[dict[str, str]]
    valid: bool
    failure_count: int
    failures: list[Failure]  # the first 100 (by default), drawn in turn from every failing check
    failures_by_check: list[CheckCount]
    on_invalid: str
    notes: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        """Whether the run should stop here (the caller decides; this is the config's wish)."""
        return not self.valid and self.on_invalid == "fail"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetReport:
        data = dict(data)
        data["failures"] = [Failure(**f) for f in data["failures"]]
        data["failures_by_check"] = [CheckCount(**c) for c in data["failures_by_check"]]
        return cls(**data)


def render_summary(report: DatasetReport, *, max_failures: int = 10) -> str:
    """The report as compact text for a prompt: shape, columns, a few rows, what failed."""
    status = "valid" if report.valid else f"INVALID ({report.failure_count:,} failures; on_invalid={report.on_invalid})"
    lines = [(f"Dataset '{report.name}' ({report.format}, {report.source}): {report.rows:,} rows x "
              f"{len(report.columns)} columns; schema: {status}"), "Columns:"]
    shown = report.columns[:_MAX_COLUMNS]
    lines += [f"  - {c}: {report.dtypes[c]}, {report.null_counts.get(c, 0):,} nulls" for c in shown]
    if len(report.columns) > len(shown):
        lines.append(f"  ... and {len(report.columns) - len(shown):,} more columns (list them from the data)")
    if report.head and len(report.columns) == len(shown):
        lines.append(f"First {len(report.head)} rows:")
        lines.append("  " + " | ".join(report.columns))
        lines += ["  " + " | ".join(row.get(c, "") for c in report.columns) for row in report.head]
    if not report.valid:
        lines.append("Failing checks (column: check: rows):")
        lines += [f"  - {c.column or '(table)'}: {c.check}: {c.count:,}" for c in report.failures_by_check]
        lines.append("Examples (row: column: check: value):")
        lines += [f"  - {'-' if f.row is None else f.row}: {f.column or '(table)'}: {f.check}: "
                  f"{'null' if f.failure_case is None else f.failure_case}"
                  for f in report.failures[:max_failures]]
    lines += [f"Note: {n}" for n in report.notes]
    return "\n".join(lines)
