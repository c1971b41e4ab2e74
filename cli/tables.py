"""Rich tables of dataset validation reports, shared by ``validate`` and ``run``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tasks.text_safety import printable

if TYPE_CHECKING:  # tasks.datasets imports pandas: 1 s that `analyst --help` and `run` need not pay first
    from tasks.datasets import DatasetReport

MAX_COLUMNS_SHOWN = 40  # a wide file (thousands of columns) gets a summary, not a line per column


def _cell(value: object) -> Text:
    """A value from the data (untrusted): never read as markup, never an escape sequence."""
    return Text(printable(value))


def print_dataset_report(console: Console, report: DatasetReport) -> None:
    verdict = Text("valid", style="green") if report.valid else Text(
        f"invalid: {report.failure_count:,} failing values (on_invalid: {report.on_invalid})",
        style="red" if report.blocking else "yellow")
    console.print(Text.assemble(("dataset ", "bold"), (report.name, "bold cyan"), f"  {report.source}  ", verdict))
    summary = Table(title=f"{report.rows:,} rows x {len(report.columns)} columns", title_justify="left")
    for heading in ("column", "dtype", "nulls"):
        summary.add_column(heading)
    shown = report.columns[:MAX_COLUMNS_SHOWN]
    for column in shown:
        summary.add_row(_cell(column), report.dtypes.get(column, ""), f"{report.null_counts.get(column, 0):,}")
    if hidden := len(report.columns) - len(shown):
        summary.add_row(f"... {hidden:,} more columns", "", "")
    console.print(summary)
    if report.head and not hidden:
        head = Table(title=f"first {len(report.head)} rows", title_justify="left")
        for column in report.columns:
            head.add_column(_cell(column), overflow="fold")
        for row in report.head:
            head.add_row(*(_cell(row.get(c, "")) for c in report.columns))
        console.print(head)
    if not report.valid:
        failures = Table(title=f"failures: first {len(report.failures)} of {report.failure_count:,}",
                         title_justify="left",
                         title_style="red")
        for heading in ("row", "column", "check", "failure case"):
            failures.add_column(heading, overflow="fold")
        for failure in report.failures:
            case = "null" if failure.failure_case is None else _cell(failure.failure_case)
            failures.add_row("-" if failure.row is None else str(failure.row), _cell(failure.column or "(table)"),
                             _cell(failure.check), case)
        console.print(failures)
        by_check = Table(title="failing checks", title_justify="left")
        for heading in ("column", "check", "rows"):
            by_check.add_column(heading)
        for count in report.failures_by_check:
            by_check.add_row(_cell(count.column or "(table)"), _cell(count.check), f"{count.count:,}")
        console.print(by_check)
    for note in report.notes:
        console.print(Text(f"note: {printable(note)}", style="yellow"))
