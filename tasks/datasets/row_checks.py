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

import pandera.polars as pap
import polars as pl
from pandera.api.polars.types import PolarsData
import pandera.backends.polars.builtin_checks  # noqa: F401 - registers the built-in checks for polars data
from pandera.backends.polars.checks import PolarsCheckBackend
from pandera.constants import CHECK_OUTPUT_KEY

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
    built = _outputs(batch.lazy(), schema)
    if built is None:
        return None
    outputs, checked = built
    try:
        results = pl.concat([pl.concat(outputs[start:start + OUTPUTS_PER_QUERY], how="horizontal").collect()
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
    built = _outputs(query, schema)
    if built is None or not built[1] or len(built[0]) > OUTPUTS_PER_QUERY:
        return None
    trial = _outputs(pl.LazyFrame(schema=query.collect_schema()), schema)
    try:
        pl.concat(trial[0] if trial else [], how="horizontal").collect()
    except pl.exceptions.PolarsError:
        return None
    return pl.concat([query, *built[0]], how="horizontal"), built[1]


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


def _outputs(frame: pl.LazyFrame, schema: pap.DataFrameSchema) -> tuple[list[pl.LazyFrame], Checked] | None:
    """Each check's output on ``frame`` as a one-column query, and its (column, check)."""
    if schema.checks or schema.unique or any(column.regex for column in schema.columns.values()):
        return None
    present = set(frame.collect_schema().names())
    outputs: list[pl.LazyFrame] = []
    checked: Checked = []
    for name, column in schema.columns.items():
        if name not in present:
            continue  # not required after the first batch, where its absence was reported
        for check in column.checks:
            if check.raise_warning:
                return None
            output = PolarsCheckBackend(check).apply(PolarsData(frame, name))
            if not isinstance(output, pl.LazyFrame):
                return None
            passed = pl.col(CHECK_OUTPUT_KEY)
            passed = passed | passed.is_null() if check.ignore_na else passed.fill_null(False)
            outputs.append(output.select(passed.alias(f"{PASSED}{len(checked)}")))
            checked.append((name, identify(check)))
    return outputs, checked
