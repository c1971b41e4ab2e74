"""A batch's per-row checks evaluated together, in the read itself when the file is streamed.

pandera's polars backend collects each check on its own, twice (its output, then its failure
cases): some forty polars queries a batch for a schema of twenty checks, whose fixed cost was most
of the time validation took (benchmarks/validate_large.py). Here the checks are still pandera's
(its check backend builds each one's output, and its null handling is applied as its backend
applies it); only their evaluation is put together. ``stream_row_checks`` adds every check's output
to the streaming query as a boolean column, so that polars computes them while it parses, on the
batch it has just parsed; ``run_row_checks`` evaluates them in one query over a batch. For the
checks that failed, ``tabulate`` takes their failure cases as pandera tabulates them (the value as
text, the row in the batch, the first ``limit`` of them) and their true count.

pandera still checks the columns' presence and types, on the first batch. A schema this does not
cover (a regex column, a table-wide check, a check that only warns, a check without a per-row
output, a check polars cannot run on the column's type) runs through pandera on every batch:
both functions return None for those."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import pandera.polars as pap
import polars as pl
from pandera.api.polars.types import PolarsData
import pandera.backends.polars.builtin_checks  # noqa: F401 - registers the built-in checks for polars data
from pandera.backends.polars.checks import PolarsCheckBackend

from tasks.datasets.runnable import identify
from tasks.datasets.tally import CASES, COUNTS

OUTPUTS_PER_QUERY = 200  # a very wide schema's outputs in several queries: one plan of thousands plans slowly
PASSED = "__passed__"  # prefix of the check outputs' columns: PASSED + their place in the list of checks

Checked = list[tuple[str, str]]  # (column, check) of each output, in order


def run_row_checks(batch: pl.DataFrame, schema: pap.DataFrameSchema, limit: int,
                   shown: Container[tuple[str | None, str]] = ()) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """(failure cases, counts) of ``schema``'s column checks on ``batch``, rows numbered within it,
    as ``validation._run_pandera`` would give them; None when the schema is not one this covers.
    ``shown``: (column, check) whose cases are not wanted any more, only their count."""
    built = _outputs(batch.schema, schema)
    if built is None:
        return None
    outputs, checked = built
    try:
        results = pl.concat([batch.select(outputs[start:start + OUTPUTS_PER_QUERY])
                             for start in range(0, len(outputs), OUTPUTS_PER_QUERY)] or [pl.DataFrame()],
                            how="horizontal")
    except pl.exceptions.PolarsError:  # a check polars cannot run on this column: pandera reports it as failing
        return None
    return tabulate(batch, results, checked, limit, shown)


def stream_row_checks(query: pl.LazyFrame, schema: pap.DataFrameSchema) -> tuple[pl.LazyFrame, Checked] | None:
    """``query`` with a column ``PASSED + i`` per check of ``schema`` (True where the row passes),
    and the (column, check) of each; None when the schema is not one this covers, or when polars
    cannot run one of its checks on these columns (tried on no rows: the failure would otherwise
    end the read; pandera reports it as the check's failure)."""
    columns = query.collect_schema()
    built = _outputs(columns, schema)
    if built is None or not built[1]:
        return None
    try:
        pl.LazyFrame(schema=columns).select(built[0]).collect()
    except pl.exceptions.PolarsError:
        return None
    return query.with_columns(built[0]), built[1]


def output_names(checked: Checked) -> list[str]:
    return [f"{PASSED}{i}" for i in range(len(checked))]


def tabulate(batch: pl.DataFrame, results: pl.DataFrame, checked: Checked, limit: int,
             shown: Container[tuple[str | None, str]] = ()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(failure cases, counts) from the checks' outputs on ``batch`` (``results``, a column each)."""
    cases, counts = [pl.DataFrame(schema=CASES)], [pl.DataFrame(schema=COUNTS)]
    if not checked:
        return pl.concat(cases), pl.concat(counts)
    for output, failing in results.select(pl.all().not_().sum()).unpivot().filter(pl.col("value") > 0).iter_rows():
        name, check = checked[int(output.removeprefix(PASSED))]
        counts.append(pl.DataFrame({"column": [name], "check": [check], "count": [failing]}, schema=COUNTS))
        if (name, check) in shown:
            continue
        rows = results[output].not_().arg_true().head(limit)
        cases.append(pl.DataFrame({"column": name, "check": check,
                                   "failure_case": batch[name].gather(rows).cast(pl.String),
                                   "index": rows.cast(pl.Int64)}, schema=CASES))
    return pl.concat(cases), pl.concat(counts)


def _outputs(columns: pl.Schema, schema: pap.DataFrameSchema) -> tuple[list[pl.Expr], Checked] | None:
    """Each check's output over data with these ``columns``, as an expression named ``PASSED + i``,
    and its (column, check)."""
    if schema.checks or schema.unique or any(column.regex for column in schema.columns.values()):
        return None
    outputs: list[pl.Expr] = []
    checked: Checked = []
    for name, column in schema.columns.items():
        if name not in columns:
            continue  # not required after the first batch, where its absence was reported
        for check in column.checks:
            if check.raise_warning:
                return None
            data = _Selections(schema=columns)
            if not isinstance(PolarsCheckBackend(check).apply(PolarsData(data, name)), pl.LazyFrame):
                return None
            if (output := data.selected()) is None:
                return None
            passed = output | output.is_null() if check.ignore_na else output.fill_null(False)
            outputs.append(passed.alias(f"{PASSED}{len(checked)}"))
            checked.append((name, identify(check)))
    return outputs, checked


class _Selections(pl.LazyFrame):
    """No rows, the data's columns, and a record of what a check selects from it. Each of pandera's
    per-row checks (and ``runnable``'s not-null check) is one ``select`` of one expression over the
    data, which is then the check's output: the expressions of all the checks go into one
    ``select``, which polars runs in one pass over a batch. (Their queries side by side, as pandera
    builds them, cost validation 10-15% more time on the benchmark.)"""

    def select(self, *exprs: Any, **named_exprs: Any) -> pl.LazyFrame:
        self.__dict__.setdefault("_selections", []).append((exprs, named_exprs))
        return super().select(*exprs, **named_exprs)

    def selected(self) -> pl.Expr | None:
        """The expression the check selected, when it selected exactly one, once."""
        selections = self.__dict__.get("_selections", [])
        if len(selections) != 1:
            return None
        exprs, named = selections[0]
        return exprs[0] if len(exprs) == 1 and not named and isinstance(exprs[0], pl.Expr) else None
