"""Read a file's columns as the types the schema declares, marking the values that do not fit.

pandera's polars coercion is not used: it stops at the first column that fails without saying
which, and polars 2 cannot cast text to dates at all. Instead:

- a text column the schema declares as a number, boolean, date or datetime is parsed (CSV and
  JSON have no such types; pandas would be told ``parse_dates``/``dtype`` at read time);
- any other column of the wrong type is converted only when the schema says ``coerce``.

Each conversion adds a flag column marking the rows whose value did not convert (it became
null). The expressions run inside the streaming read, so a text column never sits in memory
next to its parsed copy.
"""

from __future__ import annotations

from typing import Any

import pandera.polars as pap
import polars as pl
from pandera.engines import polars_engine

from tasks.datasets.schemas import AnyDatetime

FLAG = "__unconverted__"
_SAMPLE_ROWS = 5_000
_DATETIME_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y-%m-%d %H:%M:%S%.f",
                     "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%.f%#z",
                     "%Y-%m-%d %H:%M:%S%.f%#z"]
_DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False, "t": True, "f": False}


def convert(frame: pl.LazyFrame, schema: pap.DataFrameSchema, converted: list[tuple[str, str]]) -> pl.LazyFrame:
    """``frame`` with conversions and their flag columns (``FLAG + name``) added; appends
    (column, declared dtype) to ``converted`` for each.

    Every step is batched over all columns (one sample, one trial cast, one ``with_columns``):
    a query planned column by column costs quadratic time on a file with thousands of columns."""
    actual = frame.collect_schema()
    wanted: dict[str, tuple[Any, bool, str]] = {}
    for column in schema.columns.values():
        if column.dtype is None:
            continue
        names = (frame.select(pl.col(f"^{column.name.strip('^$')}$")).collect_schema().names() if column.regex
                 else [column.name] if column.name in actual else [])
        declared = (column.metadata or {}).get("declared_dtype") or str(column.dtype)
        for name in names:
            try:
                if column.dtype.check(polars_engine.Engine.dtype(actual[name])):
                    continue
            except TypeError:  # a polars type pandera has no name for (Null, Object, ...)
                pass
            wanted.setdefault(name, (column.dtype, schema.coerce or column.coerce, declared))
    formats = _date_formats(frame, actual, {name: dtype for name, (dtype, _, _) in wanted.items()})
    exprs = {}
    for name, (dtype, coerce, _) in wanted.items():
        if (expr := _conversion(name, actual[name], dtype, coerce, formats.get(name))) is not None:
            exprs[name] = expr
    exprs = _castable(exprs, actual)
    if not exprs:
        return frame
    converted += [(name, wanted[name][2]) for name in exprs]
    return frame.with_columns(expr.alias(FLAG + name) for name, expr in exprs.items()).with_columns(
        *((pl.col(name).is_not_null() & pl.col(FLAG + name).is_null()).alias(FLAG + name) for name in exprs),
        *(pl.col(FLAG + name).alias(name) for name in exprs),
    )


def _castable(exprs: dict[str, pl.Expr], actual: pl.Schema) -> dict[str, pl.Expr]:
    """The conversions polars can run at all, tried on an empty frame; a cast polars cannot do is
    left to pandera's dtype check to report."""
    def runs(names: list[str]) -> bool:
        try:
            pl.LazyFrame(schema={n: actual[n] for n in names}).select(exprs[n].alias(n) for n in names).collect()
        except pl.exceptions.PolarsError:
            return False
        return True

    if not exprs or runs(list(exprs)):
        return exprs
    return {name: expr for name, expr in exprs.items() if runs([name])}


def _conversion(name: str, actual: pl.DataType, dtype: Any, coerce: bool, fmt: str | None) -> pl.Expr | None:
    target = dtype.type
    col = pl.col(name)
    if actual == pl.String and (target.is_numeric() or target == pl.Boolean or target in (pl.Date, pl.Datetime)):
        if _is_datetime(dtype):
            return col.str.to_datetime(fmt, **_parse(target.time_zone))
        if target == pl.Date:
            return col.str.to_date(fmt, **_parse())
        if target == pl.Boolean:
            return col.str.strip_chars().str.to_lowercase().replace_strict(_BOOLEANS, default=None,
                                                                           return_dtype=pl.Boolean)
        return col.str.strip_chars().cast(target, strict=False)
    if not coerce:
        return None
    if isinstance(dtype, AnyDatetime):
        return col.cast(pl.Datetime("us", target.time_zone), strict=False)
    return col.cast(target, strict=False)


def _is_datetime(dtype: Any) -> bool:
    return isinstance(dtype, AnyDatetime) or dtype.type == pl.Datetime


def _parse(zone: str | None = None) -> dict[str, Any]:
    # cache=False: the cache only pays off for few distinct values and costs 2x on timestamps.
    return {"strict": False, "cache": False, **({"time_zone": zone} if zone else {})}


def _date_formats(frame: pl.LazyFrame, actual: pl.Schema, dtypes: dict[str, Any]) -> dict[str, str | None]:
    """Per text column declared a date or datetime, the first format that reads every value of a
    sample (one sample for all columns). polars infers one itself when given none, but then
    parses 5-10x slower."""
    names = [n for n, dtype in dtypes.items() if actual[n] == pl.String and (_is_datetime(dtype)
                                                                             or dtype.type == pl.Date)]
    if not names:
        return {}
    sample = frame.head(_SAMPLE_ROWS).select(names).collect()
    found: dict[str, str | None] = {}
    for name in names:
        values, dtype = sample[name].drop_nulls(), dtypes[name]
        if _is_datetime(dtype):
            zone = dtype.type.time_zone
            found[name] = _first_format(values, _DATETIME_FORMATS,
                                        lambda s, f, zone=zone: s.str.to_datetime(f, **_parse(zone)))
        else:
            found[name] = _first_format(values, _DATE_FORMATS, lambda s, f: s.str.to_date(f, **_parse()))
    return found


def _first_format(sample: pl.Series, formats: list[str], parse) -> str | None:
    for fmt in formats if sample.len() else []:
        try:
            if parse(sample, fmt).null_count() == 0:
                return fmt
        except pl.exceptions.PolarsError:
            continue
    return None
