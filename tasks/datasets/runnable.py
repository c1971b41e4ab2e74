"""The schema as pandera runs it on a file read in batches: what runs on each batch, and what needs
every row of a column and runs once, at the end, on those columns alone.

Per batch: the checks whose verdict on a row depends on that row only (pandera's built-in
comparisons, ranges, sets, string checks) and ``nullable``. The column presence, dtype, strict
and ordered checks are the same for every batch (the batches share one schema), so they run on
the first batch only. At the end: ``unique`` and every other check (``unique_values_eq``, a
check registered by the user, a table-wide ``unique``), on the columns they name; a table-level
check that is not per row needs every column, so the whole table is then held.

Each check keeps its first ``limit`` failure cases (``n_failure_cases``); pandera would otherwise
materialise every failing value as text. ``nullable`` and ``unique``, which pandera runs outside
its Check machinery, run as Checks for that cap.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pandera.polars as pap
import polars as pl
from pandera.api.checks import Check

COLUMNS_PER_RUN = 200  # a wider schema runs in slices; failures of the whole frame are then listed last
_PER_ROW = {"equal_to", "not_equal_to", "greater_than", "greater_than_or_equal_to", "less_than",
            "less_than_or_equal_to", "in_range", "isin", "notin", "str_matches", "str_contains",
            "str_startswith", "str_endswith", "str_length"}
NOT_NULL, UNIQUE = "not_nullable", "field_uniqueness"
_CORE = {"column_in_dataframe", "column_in_schema", "column_ordered"}

# A column's flags of the values that did not convert (True where one did not), as an expression over
# the data the check runs on: a column of the streamed query, or the current batch's flags as a literal.
Flags = Callable[[str], pl.Expr | None]


def per_row(check: Check) -> bool:
    return check.registry_name in _PER_ROW


def per_batch(schema: pap.DataFrameSchema, flags: Flags, limit: int, *, first: bool) -> pap.DataFrameSchema:
    """What runs on each batch: values already converted, per-row checks as capped Checks.
    Copied shallowly: a deep copy of a schema costs milliseconds per column."""
    runnable = _shallow(schema)
    runnable.checks = [_capped(check, limit) for check in schema.checks if per_row(check)]
    runnable.unique = None
    if not first:
        runnable.strict, runnable.ordered, runnable.dtype, runnable.unique_column_names = False, False, None, False
    for name, original in schema.columns.items():
        column = runnable.columns[name] = copy.copy(original)
        column.coerce = False
        extra = []
        if not column.regex and not column.nullable:
            column.nullable = True
            extra.append(_not_null_check(flags))
        column.unique = False  # at the end: duplicates may lie in different batches
        if not first:
            column.dtype, column.required = None, False
        column.checks = [_capped(check, limit) for check in [*extra, *filter(per_row, original.checks)]]
    return runnable


def without_column_checks(schema: pap.DataFrameSchema) -> pap.DataFrameSchema:
    """``schema`` with no column checks: the columns' presence and types, strict and ordered."""
    runnable = _shallow(schema)
    for name, original in schema.columns.items():
        column = runnable.columns[name] = copy.copy(original)
        column.checks = []
    return runnable


def at_end(schema: pap.DataFrameSchema, limit: int) -> tuple[pap.DataFrameSchema | None, list[str] | None]:
    """What needs every row: the schema for it (None when there is nothing), and the columns it
    reads (regex columns by their pattern; None for all of them)."""
    table_checks = [_capped(check, limit) for check in schema.checks if not per_row(check)]
    columns: dict[str, Any] = {}
    for name, original in schema.columns.items():
        checks = [check for check in original.checks if not per_row(check)]
        if not original.regex and original.unique:
            checks.insert(0, _unique_check())
        if checks or (original.regex and original.unique):
            column = columns[name] = copy.copy(original)
            column.coerce, column.dtype, column.nullable, column.required = False, None, True, False
            column.unique = original.unique if original.regex else False
            column.checks = [_capped(check, limit) for check in checks]
    if not columns and not table_checks and not schema.unique:
        return None, []
    runnable = _shallow(schema)
    runnable.columns, runnable.checks, runnable.unique = columns, table_checks, schema.unique
    runnable.strict, runnable.ordered, runnable.dtype, runnable.unique_column_names = False, False, None, False
    if table_checks:
        return runnable, None
    return runnable, [*columns, *(schema.unique or [])]


def without_proven_unique(end: pap.DataFrameSchema, increasing: set[str]) -> tuple[pap.DataFrameSchema, set[str]]:
    """``end`` without the columns whose only check is ``unique`` and whose values only increase
    (they have no duplicates), and those columns' names."""
    proven = {name for name, column in end.columns.items() if name in increasing and not column.regex
              and [check.name for check in column.checks] == [UNIQUE]}
    if not proven:
        return end, proven
    end = copy.copy(end)
    end.columns = {name: column for name, column in end.columns.items() if name not in proven}
    return end, proven


def failure_order(schema: pap.DataFrameSchema, converted: list[str]
                  ) -> Callable[[str | None, str, int], tuple[int, ...]]:
    """A sort key for (column, check) that lists failures as a single run over the whole table
    would, whichever batch found them first (``seen``, the order found, breaks ties): the values
    that did not convert (``converted``: the columns converted, in order), then, as pandera reports,
    the columns missing or not in the schema (last when the schema runs in slices), then each
    column in the schema's order with its dtype and its checks, then the rest."""
    coerced = {name: position for position, name in enumerate(converted)}
    places: dict[tuple[str, str], tuple[int, int]] = {}
    patterns: list[tuple[re.Pattern[str], dict[str, tuple[int, int]]]] = []
    for position, (name, column) in enumerate(schema.columns.items()):
        declared = (column.metadata or {}).get("declared_dtype") or str(column.dtype)
        names = [f"dtype('{declared}')", *([] if column.regex or column.nullable else [NOT_NULL]),
                 *([] if column.regex or not column.unique else [UNIQUE]), *map(identify, column.checks)]
        ranks: dict[str, tuple[int, int]] = {}
        for rank, check in enumerate(names):
            ranks.setdefault(check, (position, rank))
        if column.regex:
            patterns.append((re.compile(name), ranks))
        else:
            places.update({(name, check): place for check, place in ranks.items()})
    named = [position for position, column in enumerate(schema.columns.values()) if not column.regex]
    sliced = len(named) > COLUMNS_PER_RUN
    core = 3 if sliced else 1
    if sliced:  # a missing column is reported by its slice's run, before that slice's columns
        for index, name in enumerate(n for n, c in schema.columns.items() if not c.regex):
            places[(name, "column_in_dataframe")] = (named[index - index % COLUMNS_PER_RUN], -1)

    def key(column: str | None, check: str, seen: int = 0) -> tuple[int, ...]:
        if column is None:
            return 3, 0, 0, seen
        if column in coerced and check.startswith("coerce_dtype("):
            return 0, coerced[column], 0, seen
        place = places.get((column, check))
        for pattern, ranks in patterns if place is None else []:
            if pattern.fullmatch(column) and check in ranks:
                place = ranks[check]
                break
        if place is not None:
            return 2, *place, seen
        return (core if check in _CORE else 3), 0, 0, seen

    return key


def identify(check: Check) -> str:
    """The check's name in pandera's failure cases."""
    return check.error if check.error is not None else check.name if check.name is not None else str(check)


def parts(schema: pap.DataFrameSchema, frame: pl.DataFrame) -> list[tuple[pap.DataFrameSchema, pl.DataFrame]]:
    """The schema as pandera runs it: its named columns in slices of ``COLUMNS_PER_RUN``, each on
    those columns of the frame alone, then what needs the whole frame (regex columns, strict,
    ordered, table checks, unique) when the schema has any of it. pandera's polars backend reads
    the frame's column list once per column or more, so a single run costs time quadratic in
    the width: minutes for a few thousand columns."""
    named = [(n, c) for n, c in schema.columns.items() if not c.regex]
    if len(named) <= COLUMNS_PER_RUN:
        return [(schema, frame)]
    present = set(frame.columns)
    slices = []
    for start in range(0, len(named), COLUMNS_PER_RUN):
        columns = dict(named[start:start + COLUMNS_PER_RUN])
        part = _with_columns(schema, columns)
        part.strict, part.ordered, part.checks, part.unique, part.dtype = False, False, [], None, None
        slices.append((part, frame.select([n for n in columns if n in present])))
    whole: dict[str, Any] = {}
    if schema.strict or schema.ordered or len(named) < len(schema.columns):
        # strict and ordered compare the frame's columns with all of the schema's, and a regex
        # leaves the columns named explicitly to their own checks. This part stays quadratic.
        whole = {n: c if c.regex else _name_only(c) for n, c in schema.columns.items()}
    if whole or schema.checks or schema.unique:
        part = _with_columns(schema, whole)
        part.dtype = None  # with columns declared, pandera applies the table's dtype to none
        slices.append((part, frame))
    return slices


def _shallow(schema: pap.DataFrameSchema) -> pap.DataFrameSchema:
    runnable = copy.copy(schema)
    runnable.coerce = False
    runnable.columns = {}
    return runnable


def _with_columns(schema: pap.DataFrameSchema, columns: dict[str, Any]) -> pap.DataFrameSchema:
    part = copy.copy(schema)
    part.columns = columns
    return part


def _name_only(column: pap.Column) -> pap.Column:
    """A column that only names itself: its checks run in its slice."""
    column = copy.copy(column)
    column.dtype, column.checks, column.nullable, column.unique, column.required = None, [], True, False, False
    return column


def _capped(check: Check, limit: int) -> Check:
    check = copy.copy(check)
    check.n_failure_cases = limit
    return check


def _not_null_check(flags: Flags) -> Check:
    def not_null(data) -> pl.LazyFrame:
        col = pl.col(data.key)
        present = col.is_not_null() & col.is_not_nan() if data.lazyframe.collect_schema()[data.key].is_float() \
            else col.is_not_null()
        if (unconverted := flags(data.key)) is not None:  # already reported as not converting: null by our doing
            present = present | unconverted
        return data.lazyframe.select(present.alias(data.key))

    return Check(not_null, name=NOT_NULL, ignore_na=False)


def _unique_check() -> Check:
    def no_duplicates(data) -> bool | pl.LazyFrame:
        # Eager on purpose: on a Series, n_unique needs ~80 MB for 10M ints; in a lazy query ~470 MB.
        values = data.lazyframe.select(data.key).collect().to_series()
        if values.n_unique() == values.len():
            return True
        repeated = values.value_counts().filter(pl.col("count") > 1).to_series()
        return data.lazyframe.select(pl.col(data.key).is_in(repeated.implode(), nulls_equal=True).not_())

    return Check(no_duplicates, name=UNIQUE, ignore_na=False)
