"""Validate a dataset against its schema and summarise it: the report a run keeps and a prompt reads.

One path for every size: the file is scanned lazily and collected with polars' streaming
engine while columns are read as the schema's types (``conversion.py``), then pandera's polars
backend runs every check lazily (``lazy=True``): one report lists every failing check.

Memory stays bounded whatever fails. pandera materialises every failing value as text; a check
failing on 10M rows then costs gigabytes. So each check keeps its first ``max_failures`` cases
(``n_failure_cases``) and the totals come from the checks' boolean outputs. The two per-row
checks pandera runs outside its Check machinery, ``nullable`` and ``unique``, run here as Checks
for that cap; ``unique`` also costs a tenth (counting distinct values; duplicates are looked up
only when there are some) of pandera's ``is_duplicated``, ~2 s and ~700 MB on 10M rows.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pandera.polars as pap
import polars as pl
from pandera.api.checks import Check
from pandera.config import ValidationDepth, config_context
from pandera.constants import CHECK_OUTPUT_KEY
from pandera.errors import SchemaErrors

from tasks.config.schema import DatasetConfig
from tasks.datasets.conversion import FLAG, convert
from tasks.datasets.loading import Reader, dataset_file, source_of
from tasks.datasets.report import CheckCount, DatasetReport, Failure
from tasks.datasets.schemas import load_schema
from tasks.datasets.sources import SourceAccess
from tasks.errors import DataError

MAX_FAILURES = 100
HEAD_ROWS = 5
_CELL = 80  # characters kept of one value in head rows and failure cases
_KEYS = ["column", "check"]
_COLUMNS_PER_RUN = 200  # a wider schema runs in slices; failures of the whole frame are then listed last


def validate_dataset(dataset: DatasetConfig, base_dir: Path, *, max_failures: int = MAX_FAILURES,
                     access: SourceAccess | None = None) -> DatasetReport:
    """Read the dataset, validate it against its schema, and report. Raises DataError when the
    data or the schema cannot be read; data that breaks the schema is a report with valid=False."""
    schema = load_schema(dataset, base_dir)  # a broken schema fails before any download
    source = source_of(dataset, base_dir)
    with dataset_file(dataset, base_dir, access) as path:
        reader = Reader(dataset, path, source)
        converted: list[tuple[str, str]] = []

        def build(frame: pl.LazyFrame) -> pl.LazyFrame:
            converted.clear()
            return convert(frame, schema, converted)

        frame = reader.collect(reader.scan(), build)
        flags = {name: frame[FLAG + name] for name, _ in converted}
        frame = frame.drop([FLAG + name for name in flags])
        cases, counts = _unconverted(flags, dict(converted), max_failures)
        more_cases, more_counts, notes = _run_pandera(frame, schema, flags, max_failures, dataset.name, source)
        cases = pl.concat([cases, more_cases], how="vertical_relaxed")
        counts = pl.concat([counts, more_counts], how="vertical_relaxed")
        shown = _fill_unconverted_values(_pick(cases, max_failures), reader)
    notes += [f"column '{c}': a later row does not fit the type polars guessed from the first rows, so it was "
              "read as text" for c in sorted(reader.text_columns)]
    if frame.height == 0:
        notes.append("the dataset has no rows")
    return DatasetReport(
        name=dataset.name, source=source, format=reader.format,
        schema_source=dataset.schema_ if isinstance(dataset.schema_, str) else "inline",
        rows=frame.height, columns=frame.columns, dtypes={c: str(t) for c, t in frame.schema.items()},
        null_counts={c: int(n) for c, n in zip(frame.columns, frame.null_count().row(0))} if frame.width else {},
        head=[{c: _cell(v) for c, v in row.items()} for row in frame.head(HEAD_ROWS).rows(named=True)],
        valid=counts.height == 0, failure_count=int(counts["count"].sum()),
        failures=[Failure(r["column"], r["check"], r["failure_case"], r["index"]) for r in shown.iter_rows(named=True)],
        failures_by_check=[CheckCount(r["column"], r["check"], r["count"]) for r in counts.iter_rows(named=True)],
        on_invalid=dataset.on_invalid, notes=notes,
    )


_CASES = {"column": pl.String, "check": pl.String, "failure_case": pl.String, "index": pl.Int64}
_COUNTS = {"column": pl.String, "check": pl.String, "count": pl.Int64}


def _unconverted(flags: dict[str, pl.Series], declared: dict[str, str], limit: int
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Values that did not convert; their text is looked up later, for the rows shown only."""
    cases, counts = [pl.DataFrame(schema=_CASES)], [pl.DataFrame(schema=_COUNTS)]
    for name, flag in flags.items():
        if total := int(flag.sum()):
            check = f"coerce_dtype('{declared[name]}')"
            rows = flag.arg_true().head(limit).cast(pl.Int64)
            cases.append(pl.DataFrame({"column": name, "check": check, "failure_case": None, "index": rows},
                                      schema=_CASES))
            counts.append(pl.DataFrame({"column": [name], "check": [check], "count": [total]}, schema=_COUNTS))
    return pl.concat(cases), pl.concat(counts)


def _run_pandera(frame: pl.DataFrame, schema: pap.DataFrameSchema, flags: dict[str, pl.Series], limit: int,
                 name: str, source: str) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    runnable = _runnable(schema, flags, limit)
    cases, counts = [pl.DataFrame(schema=_CASES)], [pl.DataFrame(schema=_COUNTS)]
    with warnings.catch_warnings(record=True) as caught, \
            config_context(validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA):
        warnings.simplefilter("always")
        for part, data in _parts(runnable, frame):
            try:
                part.validate(data, lazy=True)
            except SchemaErrors as exc:
                more_cases, more_counts = _tabulate(exc, schema)
                cases.append(more_cases)
                counts.append(more_counts)
            except Exception as exc:  # noqa: BLE001 - a schema pandera accepted but cannot apply to this data
                raise DataError(name, source, f"validation could not run: {type(exc).__name__}: "
                                              f"{_short(str(exc), 300)}") from None
    notes = [f"warning: {_short(str(w.message), 300)}" for w in caught if "SchemaWarning" in type(w.message).__name__]
    return pl.concat(cases), pl.concat(counts), notes


def _parts(schema: pap.DataFrameSchema, frame: pl.DataFrame) -> list[tuple[pap.DataFrameSchema, pl.DataFrame]]:
    """The schema as pandera runs it: its named columns in slices of ``_COLUMNS_PER_RUN``, each on
    those columns of the frame alone, then what needs the whole frame (regex columns, strict,
    ordered, table checks, unique) when the schema has any of it. pandera's polars backend reads
    the frame's column list once per column or more, so a single run costs time quadratic in
    the width: minutes for a few thousand columns."""
    named = [(n, c) for n, c in schema.columns.items() if not c.regex]
    if len(named) <= _COLUMNS_PER_RUN:
        return [(schema, frame)]
    present = set(frame.columns)
    parts = []
    for start in range(0, len(named), _COLUMNS_PER_RUN):
        columns = dict(named[start:start + _COLUMNS_PER_RUN])
        part = _with_columns(schema, columns)
        part.strict, part.ordered, part.checks, part.unique, part.dtype = False, False, [], None, None
        parts.append((part, frame.select([n for n in columns if n in present])))
    whole: dict[str, Any] = {}
    if schema.strict or schema.ordered or len(named) < len(schema.columns):
        # strict and ordered compare the frame's columns with all of the schema's, and a regex
        # leaves the columns named explicitly to their own checks. This part stays quadratic.
        whole = {n: c if c.regex else _name_only(c) for n, c in schema.columns.items()}
    if whole or schema.checks or schema.unique:
        part = _with_columns(schema, whole)
        part.dtype = None  # with columns declared, pandera applies the table's dtype to none
        parts.append((part, frame))
    return parts


def _with_columns(schema: pap.DataFrameSchema, columns: dict[str, Any]) -> pap.DataFrameSchema:
    part = copy.copy(schema)
    part.columns = columns
    return part


def _name_only(column: pap.Column) -> pap.Column:
    """A column that only names itself: its checks run in its slice."""
    column = copy.copy(column)
    column.dtype, column.checks, column.nullable, column.unique, column.required = None, [], True, False, False
    return column


def _runnable(schema: pap.DataFrameSchema, flags: dict[str, pl.Series], limit: int) -> pap.DataFrameSchema:
    """The schema pandera runs: values already converted, per-row checks as capped Checks.
    Copied shallowly: a deep copy of a schema costs milliseconds per column."""
    runnable = copy.copy(schema)
    runnable.coerce = False
    runnable.checks = [_capped(check, limit) for check in runnable.checks]
    runnable.columns = {}
    for name, original in schema.columns.items():
        column = runnable.columns[name] = copy.copy(original)
        column.coerce = False
        extra = []
        if not column.regex and not column.nullable:
            column.nullable = True
            extra.append(_not_null_check(flags.get(column.name)))
        if not column.regex and column.unique:
            column.unique = False
            extra.append(_unique_check())
        column.checks = [_capped(check, limit) for check in [*extra, *column.checks]]
    return runnable


def _capped(check: Check, limit: int) -> Check:
    check = copy.copy(check)
    check.n_failure_cases = limit
    return check


def _not_null_check(unconverted: pl.Series | None) -> Check:
    def not_null(data) -> pl.LazyFrame:
        col = pl.col(data.key)
        present = col.is_not_null() & col.is_not_nan() if data.lazyframe.collect_schema()[data.key].is_float() \
            else col.is_not_null()
        if unconverted is not None:  # already reported as not converting: null by our doing
            present = present | pl.lit(unconverted)
        return data.lazyframe.select(present.alias(data.key))

    return Check(not_null, name="not_nullable", ignore_na=False)


def _unique_check() -> Check:
    def no_duplicates(data) -> bool | pl.LazyFrame:
        # Eager on purpose: on a Series, n_unique needs ~80 MB for 10M ints; in a lazy query ~470 MB.
        values = data.lazyframe.select(data.key).collect().to_series()
        if values.n_unique() == values.len():
            return True
        repeated = values.value_counts().filter(pl.col("count") > 1).to_series()
        return data.lazyframe.select(pl.col(data.key).is_in(repeated.implode(), nulls_equal=True).not_())

    return Check(no_duplicates, name="field_uniqueness", ignore_na=False)


def _tabulate(exc: SchemaErrors, schema: pap.DataFrameSchema) -> tuple[pl.DataFrame, pl.DataFrame]:
    """pandera's failure cases (capped per check) and the true count of failing rows per check.

    pandera concatenates one block of cases per error, in order, so the blocks are matched to
    the errors and their boolean check outputs."""
    cases = _normalise(exc.failure_cases, schema)
    sizes = [err.failure_cases.height if isinstance(err.failure_cases, pl.DataFrame) else 1
             for err in exc.schema_errors]
    if sum(sizes) != cases.height:  # not the layout expected: count what the table holds
        return cases, cases.group_by(_KEYS, maintain_order=True).len("count").cast({"count": pl.Int64})
    totals = [_failing_rows(err, size) for err, size in zip(exc.schema_errors, sizes)]
    errors = pl.Series("error", [i for i, size in enumerate(sizes) for _ in range(size)], dtype=pl.Int64)
    counts = (cases.with_columns(errors).group_by("error", maintain_order=True).agg(pl.col(_KEYS).first())
              .join(pl.DataFrame({"error": range(len(totals)), "count": totals}, schema={"error": pl.Int64,
                                                                                        "count": pl.Int64}),
                    on="error").group_by(_KEYS, maintain_order=True).agg(pl.col("count").sum()))
    return cases, counts


def _failing_rows(err: Any, size: int) -> int:
    output = err.check_output
    if isinstance(output, pl.DataFrame) and CHECK_OUTPUT_KEY in output.columns:
        return int(output[CHECK_OUTPUT_KEY].not_().sum())
    return size


def _normalise(cases: pl.DataFrame, schema: pap.DataFrameSchema) -> pl.DataFrame:
    """pandera's failure_cases as one table: column named for schema-level failures, checks
    named with the dtypes as the schema writes them (pandas names), long error texts cut."""
    declared = {name: (c.metadata or {}).get("declared_dtype") for name, c in schema.columns.items()}
    renames = {f"dtype('{c.dtype}')": f"dtype('{declared[n]}')" for n, c in schema.columns.items() if declared[n]}
    case = pl.col("failure_case").cast(pl.String)
    return cases.select(
        pl.when(pl.col("column").is_null() & pl.col("check").is_in(["column_in_dataframe", "column_in_schema"]))
        .then(case).otherwise(pl.col("column")).cast(pl.String).alias("column"),
        pl.col("check").cast(pl.String).replace(renames),
        pl.when(case.str.contains("\n") | (case.str.len_chars() > _CELL * 3))  # error texts run to many lines
        .then(case.str.split("\n").list.first().str.slice(0, _CELL * 3 - 1) + "…")
        .otherwise(case).alias("failure_case"),
        pl.col("index").cast(pl.Int64),
    )


def _pick(cases: pl.DataFrame, limit: int) -> pl.DataFrame:
    """At most ``limit`` rows, taken in turn from every failing check so that one check failing
    on a million rows cannot hide the others; shown grouped by check, rows in order."""
    ranked = cases.with_row_index("_order").with_columns(
        _rank=pl.int_range(pl.len()).over(_KEYS), _group=pl.col("_order").min().over(_KEYS))
    return ranked.sort(["_rank", "_group"]).head(limit).sort(["_group", "_rank"]).drop("_order", "_rank", "_group")


def _fill_unconverted_values(shown: pl.DataFrame, reader: Reader) -> pl.DataFrame:
    """The text of the values that did not convert: read again, for the shown rows only."""
    wanted = pl.col("check").str.starts_with("coerce_dtype(") & pl.col("failure_case").is_null()
    for name in shown.filter(wanted)["column"].unique().to_list():
        rows = shown.filter(wanted & (pl.col("column") == name))["index"].cast(pl.UInt32).implode()
        values = reader.collect(reader.scan(), lambda lf, name=name, rows=rows: lf.select(
            pl.col(name).cast(pl.String)).with_row_index("index").filter(pl.col("index").is_in(rows)))
        lookup = dict(zip(values["index"].cast(pl.Int64).to_list(), values[name].to_list()))
        shown = shown.with_columns(failure_case=pl.when(wanted & (pl.col("column") == name)).then(
            pl.col("index").replace_strict(lookup, default=None, return_dtype=pl.String)).otherwise("failure_case"))
    return shown


def _cell(value: Any) -> str:
    return "null" if value is None else _short(str(value), _CELL)


def _short(text: str, limit: int) -> str:
    text = text.strip()
    if "\n" in text and len(text) > limit:
        text = text.splitlines()[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"
