"""A batch's per-row checks evaluated together, for every batch after the first.

pandera's polars backend collects each check on its own, twice (its output, then its failure
cases): some forty polars queries a batch for a schema of twenty checks, whose fixed cost was most
of the time validation took (benchmarks/validate_large.py). Here the checks are still pandera's
(its check backend builds each one's output, and its null handling is applied as its backend
applies it); only their evaluation is put together: one query for all of a batch's check outputs,
then, for the checks that failed, their failure cases as pandera tabulates them (the value as
text, the row in the batch, the first ``limit`` of them) and their true count.

The first batch, which also checks the columns' presence and types, runs through pandera; so does
any batch whose schema this does not cover (a regex column, a table-wide check, a check that only
warns, a check without a per-row output): ``run_row_checks`` returns None for those.
"""

from __future__ import annotations

from collections.abc import Container

import pandera.polars as pap
import polars as pl
from pandera.api.polars.types import PolarsData
import pandera.backends.polars.builtin_checks  # noqa: F401 - registers the built-in checks for polars data
from pandera.backends.polars.checks import PolarsCheckBackend
from pandera.constants import CHECK_OUTPUT_KEY

from tasks.datasets.runnable import identify
from tasks.datasets.tally import CASES, COUNTS

OUTPUTS_PER_QUERY = 200  # a very wide schema's outputs in several queries: one plan of thousands plans slowly


def run_row_checks(batch: pl.DataFrame, schema: pap.DataFrameSchema, limit: int,
                   shown: Container[tuple[str | None, str]] = ()) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """(failure cases, counts) of ``schema``'s column checks on ``batch``, rows numbered within it,
    as ``validation._run_pandera`` would give them; None when the schema is not one this covers.
    ``shown``: (column, check) whose cases are not wanted any more, only their count."""
    if schema.checks or schema.unique or any(column.regex for column in schema.columns.values()):
        return None
    frame = batch.lazy()
    outputs: list[pl.LazyFrame] = []
    checked: list[tuple[str, str]] = []
    for name, column in schema.columns.items():
        if name not in batch.columns:
            continue  # not required after the first batch, where its absence was reported
        for check in column.checks:
            if check.raise_warning:
                return None
            output = PolarsCheckBackend(check).apply(PolarsData(frame, name))
            if not isinstance(output, pl.LazyFrame):
                return None
            passed = pl.col(CHECK_OUTPUT_KEY)
            passed = passed | passed.is_null() if check.ignore_na else passed.fill_null(False)
            outputs.append(output.select(passed.alias(str(len(checked)))))
            checked.append((name, identify(check)))
    cases, counts = [pl.DataFrame(schema=CASES)], [pl.DataFrame(schema=COUNTS)]
    for start in range(0, len(outputs), OUTPUTS_PER_QUERY):
        results = pl.concat(outputs[start:start + OUTPUTS_PER_QUERY], how="horizontal").collect()
        for result in results.select(pl.all().not_().sum()).unpivot().filter(pl.col("value") > 0).iter_rows():
            name, check = checked[int(result[0])]
            counts.append(pl.DataFrame({"column": [name], "check": [check], "count": [result[1]]}, schema=COUNTS))
            if (name, check) in shown:
                continue
            rows = results[result[0]].not_().arg_true().head(limit)
            cases.append(pl.DataFrame({"column": name, "check": check,
                                       "failure_case": batch[name].gather(rows).cast(pl.String),
                                       "index": rows.cast(pl.Int64)}, schema=CASES))
    return pl.concat(cases), pl.concat(counts)
