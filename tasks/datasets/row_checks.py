"""A dataset's per-row checks computed by the streaming read itself, next to the values they judge.

pandera's polars backend collects each check on its own, twice (its output, then its failure
cases): some forty polars queries a batch for a schema of twenty checks, whose fixed cost was most
of the time validation took (benchmarks/validate_large.py). Here the checks are still pandera's:
its check backend builds each one's expression, and its null handling is applied as its backend
applies it. Only their evaluation is put together: ``stream_row_checks`` adds every check's output
to the streaming query as a boolean column, so polars computes them while it parses, in one pass
over each batch. For the checks that failed in a batch, ``tabulate`` takes their failure cases as
pandera tabulates them (the value as text, the row in the batch, the first ``limit`` of them) and
their true count.

pandera still checks the columns' presence and types, on the first batch. A schema this does not
cover (a regex column, a table-wide check, a check that only warns, a check that is not a single
expression, a check polars cannot run on its column's type) runs through pandera on every batch:
``stream_row_checks`` returns None for those."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import pandera.polars as pap
from pandera.api.checks import Check
import polars as pl
from pandera.api.polars.types import PolarsData
import pandera.backends.polars.builtin_checks  # noqa: F401 - registers the built-in checks for polars data
from pandera.backends.polars.checks import PolarsCheckBackend
from pandera.constants import CHECK_OUTPUT_KEY

from tasks.datasets.runnable import identify
from tasks.datasets.tally import CASES, COUNTS

PASSED = "__passed__"  # prefix of the check outputs' columns: PASSED + their place in the list of checks

Checked = list[tuple[str, str]]  # (column, check) of each output, in order


def stream_row_checks(query: pl.LazyFrame, schema: pap.DataFrameSchema) -> tuple[pl.LazyFrame, Checked] | None:
    """``query`` with a column ``PASSED + i`` per check of ``schema`` (True where the row passes),
    and the (column, check) of each; None when the schema is not one this covers, or when polars
    cannot run one of its checks on these columns (tried on no rows: the failure would otherwise
    end the read; pandera reports it as the check's failure)."""
    columns = query.collect_schema()
    built = _outputs(columns, schema)
    if built is None:
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
    # Series methods, not DataFrame queries: each query is planned, then run on the thread pool the
    # streaming read keeps busy (1.4 ms a query, seven queries a batch, in a profiled validation).
    for output, (name, check) in zip(results.iter_columns(), checked):
        failing = output.len() - output.sum()
        if not failing:
            continue
        counts.append(pl.DataFrame({"column": [name], "check": [check], "count": [failing]}, schema=COUNTS))
        if (name, check) in shown:
            continue
        rows = output.not_().arg_true().head(limit)
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
    data = _Selections(schema=columns)  # once: an empty frame costs time in its number of columns
    for name, column in schema.columns.items():
        if name not in columns:
            continue  # not required after the first batch, where its absence was reported
        for check in column.checks:
            if check.raise_warning or (expr := data.expression(check, name)) is None:
                return None
            passed = expr | expr.is_null() if check.ignore_na else expr.fill_null(False)
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
        self.__dict__.setdefault("selections", []).append((exprs, named_exprs))  # frames made from it record their own
        return super().select(*exprs, **named_exprs)

    def expression(self, check: Check, column: str) -> pl.Expr | None:
        """The expression ``check`` selects over ``column``, when its output (as pandera's check
        backend gives it, the column renamed) is that one selection and nothing else."""
        self.__dict__["selections"] = []
        output = PolarsCheckBackend(check).apply(PolarsData(self, column))
        selections = self.__dict__["selections"]
        if not isinstance(output, pl.LazyFrame) or len(selections) != 1:
            return None
        (exprs, named), = selections
        if named or len(exprs) != 1 or not isinstance(exprs[0], pl.Expr):
            return None
        alone = pl.LazyFrame.select(self, exprs[0])
        alone = alone.rename({alone.collect_schema().names()[0]: CHECK_OUTPUT_KEY})
        return exprs[0] if output.explain(optimized=False) == alone.explain(optimized=False) else None
