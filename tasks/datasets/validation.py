"""Validate a dataset against its schema and summarise it: the report a run keeps and a prompt reads.

One path for every size: the file is scanned lazily and streamed in batches by polars' streaming
engine, its columns read as the schema's types (``conversion.py``) and its per-row checks computed
in the same query (``row_checks.py``); pandera's polars backend checks the columns of the first
batch (``lazy=True``: one report lists every failing check), and what needs every row of a column
(``unique``, ...) runs at the end on those columns alone (``runnable.py``). The summary and
the failure table are merged batch by batch (``tally.py``): memory is that of a batch, the columns
kept for the end and the imports, whatever the file's size.

Memory stays bounded whatever fails: each check keeps its first ``max_failures`` cases, and the
totals come from the checks' boolean outputs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandera.polars as pap
import polars as pl
from pandera.config import ValidationDepth, config_context
from pandera.constants import CHECK_OUTPUT_KEY
from pandera.errors import SchemaErrors

from tasks.config.schema import DatasetConfig
from tasks.datasets.conversion import FLAG, convert
from tasks.datasets.held import HeldColumn
from tasks.datasets.loading import Reader, dataset_file, source_of
from tasks.datasets.report import CheckCount, DatasetReport, Failure
from tasks.datasets.row_checks import Checked, output_names, stream_row_checks, tabulate
from tasks.datasets.runnable import (at_end, failure_order, parts, per_batch, without_column_checks,
                                     without_proven_unique)
from tasks.datasets.schemas import load_schema
from tasks.datasets.sources import SourceAccess
from tasks.datasets.tally import CASES, COUNTS, KEYS, Tally
from tasks.errors import DataError

MAX_FAILURES = 100
HEAD_ROWS = 5
_CELL = 80  # characters kept of one value in head rows and failure cases


def validate_dataset(dataset: DatasetConfig, base_dir: Path, *, max_failures: int = MAX_FAILURES,
                     access: SourceAccess | None = None, batch_rows: int | None = None) -> DatasetReport:
    """Read the dataset, validate it against its schema, and report. Raises DataError when the
    data or the schema cannot be read; data that breaks the schema is a report with valid=False.
    ``batch_rows``: rows per batch (default: sized from a sample, ``loading.BATCH_BYTES``)."""
    schema = load_schema(dataset, base_dir)  # a broken schema fails before any download
    source = source_of(dataset, base_dir)
    with dataset_file(dataset, base_dir, access) as path:
        reader = Reader(dataset, path, source)
        validation = _Pass(schema, max_failures, dataset.name, source)
        reader.stream(reader.scan(), validation.build, validation.start, batch_rows)
        tally = validation.finish()
        cases, counts = tally.failures(failure_order(schema, [name for name, _ in validation.converted]))
        shown = _fill_unconverted_values(_pick(cases, max_failures), reader)
    assert tally.schema is not None
    notes = tally.notes + [f"column '{c}': a later row does not fit the type polars guessed from the first rows, "
                           "so it was read as text" for c in sorted(reader.text_columns)]
    if tally.rows == 0:
        notes.append("the dataset has no rows")
    return DatasetReport(
        name=dataset.name, source=source, format=reader.format,
        schema_source=dataset.schema_ if isinstance(dataset.schema_, str) else "inline",
        rows=tally.rows, columns=tally.schema.names(), dtypes={c: str(t) for c, t in tally.schema.items()},
        null_counts=tally.null_counts,
        head=[{c: _cell(v) for c, v in row.items()} for row in tally.head],
        valid=counts.height == 0, failure_count=int(counts["count"].sum()),
        failures=[Failure(r["column"], r["check"], r["failure_case"], r["index"]) for r in shown.iter_rows(named=True)],
        failures_by_check=[CheckCount(r["column"], r["check"], r["count"]) for r in counts.iter_rows(named=True)],
        on_invalid=dataset.on_invalid, notes=notes,
    )


class _Pass:
    """One pass over the data: each batch validated and tallied, the columns that need every row kept."""

    def __init__(self, schema: pap.DataFrameSchema, limit: int, name: str, source: str):
        self.schema, self.limit, self.name, self.source = schema, limit, name, source
        self.converted: list[tuple[str, str]] = []
        self.flags: dict[str, pl.Series] = {}
        self.first = per_batch(schema, self._batch_flags, limit, first=True)
        self.core = without_column_checks(self.first)
        self.rest = per_batch(schema, self._batch_flags, limit, first=False)
        self.streamed = per_batch(schema, self._query_flags, limit, first=False)
        self.checked: Checked | None = None  # the checks the query computes, once it does
        self.end, self.wanted = at_end(schema, limit)

    def _batch_flags(self, name: str) -> pl.Expr | None:
        return pl.lit(self.flags[name]) if name in self.flags else None

    def _query_flags(self, name: str) -> pl.Expr | None:
        return pl.col(FLAG + name) if name in dict(self.converted) else None

    def build(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """The query the pass reads: the columns converted and, when polars can run them all, the
        per-row checks as columns of their own, computed in the read."""
        self.converted.clear()
        query = convert(frame, self.schema, self.converted)
        streamed = stream_row_checks(query, self.streamed)
        self.checked = streamed[1] if streamed else None
        return streamed[0] if streamed else query

    def start(self, query: pl.LazyFrame):
        """A fresh tally for a pass over ``query``."""
        self.query = query
        self.tally = Tally(self.limit, HEAD_ROWS)
        self.held: dict[str, HeldColumn] | None = None
        return self.add

    def add(self, batch: pl.DataFrame) -> None:
        self.flags.clear()
        self.flags.update({name: batch[FLAG + name] for name, _ in self.converted})
        outputs = pl.DataFrame([batch[name] for name in output_names(self.checked or [])])
        added = {FLAG + name for name in self.flags} | set(outputs.columns)
        batch = pl.DataFrame([column for column in batch.iter_columns() if column.name not in added])
        self.tally.add_failures(*_unconverted(self.flags, dict(self.converted), self.limit))
        first = self.tally.schema is None
        if self.checked is None:
            self._run_pandera(batch, self.first if first else self.rest)
        else:
            if first:  # the columns' presence and types; their checks came with the batch
                self._run_pandera(batch, self.core)
            self.tally.add_failures(*tabulate(batch, outputs, self.checked, self.limit, self.tally.full()))
        self._hold(batch)
        self.tally.add_rows(batch)

    def _run_pandera(self, batch: pl.DataFrame, schema: pap.DataFrameSchema) -> None:
        cases, counts, notes = _run_pandera(batch, schema, self.limit, self.name, self.source)
        self.tally.add_failures(cases, counts)
        for note in notes:
            self.tally.add_note(note)

    def _hold(self, batch: pl.DataFrame) -> None:
        if self.end is None:
            return
        if self.held is None:
            self.held = {name: HeldColumn(name, batch.schema[name]) for name in self._needed(batch)}
        for name, column in self.held.items():
            column.add(batch[name])

    def _needed(self, batch: pl.DataFrame) -> list[str]:
        """The batch's columns that the checks run at the end read."""
        if self.wanted is None or self.end is None:
            return batch.columns
        names: list[str] = []
        for wanted in self.wanted:
            column = self.end.columns.get(wanted)
            if column is not None and column.regex:
                names += batch.select(pl.col(f"^{wanted.strip('^$')}$")).columns
            elif wanted in batch.columns:
                names.append(wanted)
        return list(dict.fromkeys(names))

    def finish(self) -> Tally:
        if self.tally.schema is None:  # no rows: the checks of columns and types still run once
            self.add(self.query.head(0).collect())
        if self.end is not None and self.held is not None:
            end, proven = without_proven_unique(self.end, {n for n, c in self.held.items() if c.increasing()})
            unread = proven - set(end.unique or []) if self.wanted is not None else set()
            held, self.held = self.held, None
            if end.columns or end.checks or end.unique:
                frame = pl.DataFrame([column.values() for name, column in held.items() if name not in unread])
                cases, counts, notes = _run_pandera(frame, end, self.limit, self.name, self.source)
                self.tally.add_failures(cases, counts, offset=0)
                for note in notes:
                    self.tally.add_note(note)
        return self.tally


def _unconverted(flags: dict[str, pl.Series], declared: dict[str, str], limit: int
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Values that did not convert; their text is looked up later, for the rows shown only."""
    cases, counts = [pl.DataFrame(schema=CASES)], [pl.DataFrame(schema=COUNTS)]
    for name, flag in flags.items():
        if total := int(flag.sum()):
            check = f"coerce_dtype('{declared[name]}')"
            rows = flag.arg_true().head(limit).cast(pl.Int64)
            cases.append(pl.DataFrame({"column": name, "check": check, "failure_case": None, "index": rows},
                                      schema=CASES))
            counts.append(pl.DataFrame({"column": [name], "check": [check], "count": [total]}, schema=COUNTS))
    return pl.concat(cases), pl.concat(counts)


def _run_pandera(frame: pl.DataFrame, schema: pap.DataFrameSchema, limit: int, name: str, source: str
                 ) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    cases, counts = [pl.DataFrame(schema=CASES)], [pl.DataFrame(schema=COUNTS)]
    with warnings.catch_warnings(record=True) as caught, \
            config_context(validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA):
        warnings.simplefilter("always")
        for part, data in parts(schema, frame):
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


def _tabulate(exc: SchemaErrors, schema: pap.DataFrameSchema) -> tuple[pl.DataFrame, pl.DataFrame]:
    """pandera's failure cases (capped per check) and the true count of failing rows per check.

    pandera concatenates one block of cases per error, in order, so the blocks are matched to
    the errors and their boolean check outputs."""
    cases = _normalise(exc.failure_cases, schema)
    sizes = [err.failure_cases.height if isinstance(err.failure_cases, pl.DataFrame) else 1
             for err in exc.schema_errors]
    if sum(sizes) != cases.height:  # not the layout expected: count what the table holds
        return cases, cases.group_by(KEYS, maintain_order=True).len("count").cast({"count": pl.Int64})
    totals = [_failing_rows(err, size) for err, size in zip(exc.schema_errors, sizes)]
    errors = pl.Series("error", [i for i, size in enumerate(sizes) for _ in range(size)], dtype=pl.Int64)
    counts = (cases.with_columns(errors).group_by("error", maintain_order=True).agg(pl.col(KEYS).first())
              .join(pl.DataFrame({"error": range(len(totals)), "count": totals}, schema={"error": pl.Int64,
                                                                                        "count": pl.Int64}),
                    on="error").group_by(KEYS, maintain_order=True).agg(pl.col("count").sum()))
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
        _rank=pl.int_range(pl.len()).over(KEYS), _group=pl.col("_order").min().over(KEYS))
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
