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
    (column, declared dtype) to ``converted`` for each."""
    actual = frame.collect_schema()
    for column in schema.columns.values():
        if column.dtype is None:
            continue
        names = (frame.select(pl.col(f"^{column.name.strip('^$')}$")).collect_schema().names() if column.regex
                 else [column.name] if column.name in actual else [])
        for name in names:
            try:
                if column.dtype.check(polars_engine.Engine.dtype(actual[name])):
                    continue
            except TypeError:  # a polars type pandera has no name for (Null, Object, ...)
                pass
            expr = _conversion(frame, name, actual[name], column.dtype, schema.coerce or column.coerce)
            if expr is None:
                continue
            try:  # a cast polars cannot do at all is left to pandera's dtype check to report
                pl.LazyFrame(schema={name: actual[name]}).select(expr).collect()
            except pl.exceptions.PolarsError:
                continue
            converted.append((name, (column.metadata or {}).get("declared_dtype") or str(column.dtype)))
            frame = frame.with_columns(expr.alias(FLAG)).with_columns(
                (pl.col(name).is_not_null() & pl.col(FLAG).is_null()).alias(FLAG + name),
                pl.col(FLAG).alias(name),
            ).drop(FLAG)
    return frame


def _conversion(frame: pl.LazyFrame, name: str, actual: pl.DataType, dtype: Any, coerce: bool) -> pl.Expr | None:
    target = dtype.type
    col = pl.col(name)
    if actual == pl.String and (target.is_numeric() or target == pl.Boolean or target in (pl.Date, pl.Datetime)):
        if isinstance(dtype, AnyDatetime) or target == pl.Datetime:
            zone = target.time_zone
            fmt = _date_format(frame, name, _DATETIME_FORMATS, lambda s, f: s.str.to_datetime(f, **_parse(zone)))
            return col.str.to_datetime(fmt, **_parse(zone))
        if target == pl.Date:
            fmt = _date_format(frame, name, _DATE_FORMATS, lambda s, f: s.str.to_date(f, **_parse()))
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


def _parse(zone: str | None = None) -> dict[str, Any]:
    # cache=False: the cache only pays off for few distinct values and costs 2x on timestamps.
    return {"strict": False, "cache": False, **({"time_zone": zone} if zone else {})}


def _date_format(frame: pl.LazyFrame, name: str, formats: list[str], parse) -> str | None:
    """The first format that reads every value of a sample. polars infers one itself when
    given none, but then parses 5-10x slower."""
    sample = frame.head(_SAMPLE_ROWS).select(pl.col(name).drop_nulls()).collect().to_series()
    for fmt in formats if sample.len() else []:
        try:
            if parse(sample, fmt).null_count() == 0:
                return fmt
        except pl.exceptions.PolarsError:
            continue
    return None
