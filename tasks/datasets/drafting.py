"""Draft a schema from a data file: what ``analyst infer-schema`` and ``analyst init`` write.

The draft is read with the very reader validation uses (``loading.Reader``, same options), so
column names and types are the ones validation will see. Two steps:

1. Types are chosen from the first ``SAMPLE_ROWS`` rows: the type polars read, or, for a text
   column whose every value reads as a date/time, a datetime.
2. One streaming pass over the whole file reads each column as that type, through the same
   conversion validation runs (``conversion.convert``), and collects nulls, minimum and maximum.
   A column with any value that does not convert is kept as text. So the draft validates the
   data it came from, whatever its size, and memory stays bounded (a few aggregates per column).

A type that pandera's YAML cannot express never fails the draft: the column gets a looser
dtype (or none), with a YAML comment saying why.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import pandera
import polars as pl
import yaml

from tasks.config.schema import SUFFIX_FORMATS, DatasetConfig
from tasks.datasets.conversion import _DATETIME_FORMATS, FLAG, convert
from tasks.datasets.loading import Reader
from tasks.datasets.schemas import schema_from_mapping
from tasks.errors import DataError

SAMPLE_ROWS = 100_000
_TIME_OF_DAY = re.compile(r"^\s*\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([aApP][mM])?\s*$")
_FORMATTED_NUMBER = re.compile(r"^\s*[-+(]?\s*[$€£¥]?\s*-?\d{1,3}([,\s']\d{3})+(\.\d+)?\)?\s*$"
                               r"|^\s*[-+(]?\s*[$€£¥]\s*-?\d+(\.\d+)?\)?\s*$|^\s*-?\d+(\.\d+)?\s*%\s*$")
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
_NAMES: dict[Any, str] = {pl.Int8: "int8", pl.Int16: "int16", pl.Int32: "int32", pl.Int64: "int64", pl.UInt8: "uint8",
          pl.UInt16: "uint16", pl.UInt32: "uint32", pl.UInt64: "uint64", pl.Float32: "float32",
          pl.Float64: "float64", pl.Boolean: "bool", pl.String: "str", pl.Categorical: "category"}


def infer_schema_yaml(data_path: str | Path, *, format: str | None = None,  # noqa: A002 - the config's key
                      read_options: dict[str, Any] | None = None) -> str:
    """A draft schema for a data file, in pandera's YAML, with comments where a column was loosened.

    Ready to save as a file (``analyst infer-schema DATA -o FILE``) or to paste under ``schema:``.
    ``read_options`` must be the dataset's own: the draft fits the file as read with them.
    """
    path = Path(data_path)
    fmt = format or SUFFIX_FORMATS.get(path.suffix.lower())
    if not path.is_file():
        raise DataError(path.stem, str(path), "file not found")
    if fmt is None:
        raise DataError(path.stem, str(path), "cannot tell the format from the file name: name it .csv, .tsv, "
                                              ".parquet, .json, .jsonl or .xlsx, or set the dataset's 'format'")
    reader = Reader(DatasetConfig(name="draft", path=str(path), format=fmt, schema_={},
                                  read_options=dict(read_options or {})), path, str(path))
    reader.name = path.stem  # for messages: the config's name rules do not apply to a file name
    sample = reader.collect(reader.scan(), lambda frame: frame.head(SAMPLE_ROWS))
    columns = {name: _column_draft(sample[name]) for name in sample.columns}
    _measure_whole_file(reader, columns)
    return _to_yaml(columns, path.name)


class _Draft:
    def __init__(self, dtype: str | None, note: str = ""):
        self.dtype, self.note = dtype, note
        self.nullable = False
        self.bounds: dict[str, Any] = {}


def _column_draft(values: pl.Series) -> _Draft:
    dtype = values.dtype
    if dtype == pl.String:
        return _text_draft(values)
    if isinstance(dtype, pl.Datetime):
        return _Draft(_datetime_name(dtype.time_zone))
    if dtype == pl.Date:
        return _Draft("datetime64[ns]")  # pandas has no date-only type; the schema's datetime accepts dates
    if isinstance(dtype, pl.Duration):
        return _Draft("timedelta64[ns]")
    if dtype in _NAMES:
        return _Draft(_NAMES[dtype])
    if dtype == pl.Time:
        return _Draft(None, "time of day: pandera's YAML has no time type, so the type is not checked")
    return _Draft(None, f"{dtype}: no equivalent in pandera's YAML, so the type is not checked")


def _text_draft(values: pl.Series) -> _Draft:
    present = values.drop_nulls()
    present = present.filter(present.str.strip_chars() != "")
    if present.len() == 0:
        return _Draft("str")
    for fmt in _DATETIME_FORMATS:
        try:
            parsed = present.str.to_datetime(fmt, strict=False, cache=False)
        except pl.exceptions.PolarsError:
            continue
        if parsed.null_count() == 0 and values.str.strip_chars().eq("").sum() == 0:
            zone = "UTC" if "%#z" in fmt else None
            return _Draft(_datetime_name(zone))
    sample = present.head(1000)
    if sample.str.contains(_TIME_OF_DAY.pattern).all():
        return _Draft("str", "time of day: pandera's YAML has no time type, so it is kept as text")
    if sample.str.contains(_FORMATTED_NUMBER.pattern).all():
        return _Draft("str", "numbers written with thousands separators, currency or % signs: kept as text "
                             "(pandas reads them as text too); strip the signs to check them as numbers")
    numeric = sample.str.contains(_NUMBER.pattern).sum()
    if 0 < numeric < sample.len():
        return _Draft("str", f"mixed values: {numeric} of the first {sample.len()} are numbers, the others "
                             "text, so the column is kept as text")
    return _Draft("str")


def _datetime_name(zone: str | None) -> str:
    return f"datetime64[ns, {zone}]" if zone else "datetime64[ns]"


def _measure_whole_file(reader: Reader, columns: dict[str, _Draft]) -> None:
    """Nulls and bounds over the whole file, each column read as its drafted type; a column with
    values that do not read as that type goes back to text."""
    typed = {name: {"dtype": d.dtype} for name, d in columns.items() if d.dtype not in (None, "str")}
    schema = schema_from_mapping({"schema_type": "dataframe", "columns": typed}, dataset=reader.name,
                                 source=reader.source) if typed else None
    converted: list[tuple[str, str]] = []

    def build(frame: pl.LazyFrame) -> pl.LazyFrame:
        converted.clear()
        if schema is not None:
            frame = convert(frame, schema, converted)
        actual = frame.collect_schema()
        return frame.select(_aggregates(actual, [n for n in columns if n in actual], {n for n, _ in converted}))

    stats = reader.collect(reader.scan(), build).row(0, named=True)
    for name, draft in columns.items():
        if name in reader.text_columns and draft.dtype not in (None, "str"):
            draft.dtype, draft.note = "str", "a later row is not a " + str(draft.dtype) + ", so it is kept as text"
        if stats.get(f"unconverted:{name}"):
            draft.dtype = "str"
            draft.note = (f"{stats[f'unconverted:{name}']:,} values further down do not read as the type the first "
                          "rows have, so the column is kept as text")
            draft.nullable = bool(stats[f"nulls:{name}"] - stats[f"unconverted:{name}"])
            continue
        draft.nullable = bool(stats[f"nulls:{name}"] or stats.get(f"nans:{name}"))
        if draft.dtype not in (None, "str", "bool", "category") and stats.get(f"min:{name}") is not None:
            draft.bounds = {"greater_than_or_equal_to": _bound(stats[f"min:{name}"], up=False),
                            "less_than_or_equal_to": _bound(stats[f"max:{name}"], up=True)}


def _aggregates(actual: pl.Schema, names: list[str], converted: set[str]) -> list[pl.Expr]:
    exprs = []
    for name in names:
        col, dtype = pl.col(name), actual[name]
        exprs.append(col.null_count().alias(f"nulls:{name}"))
        if name in converted:
            exprs.append(pl.col(FLAG + name).sum().alias(f"unconverted:{name}"))
        if dtype.is_float():
            exprs.append(col.is_nan().sum().alias(f"nans:{name}"))
            col = col.filter(col.is_not_nan())
        if dtype.is_numeric() or dtype.is_temporal() and dtype != pl.Time:
            exprs += [col.min().alias(f"min:{name}"), col.max().alias(f"max:{name}")]
    return exprs


def _bound(value: Any, *, up: bool) -> Any:
    """A bound as pandera's YAML writes it: numbers as they are, datetimes as text to the second,
    rounded outwards so that the extreme value itself passes."""
    if isinstance(value, float) and math.isinf(value):
        return value
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, dt.datetime):
        value = value.replace(tzinfo=None)  # the zone's wall time: the check reads it in the column's zone
        if up and value.microsecond:
            value = value.replace(microsecond=0) + dt.timedelta(seconds=1)
        return value.replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d 00:00:00")
    return value


def _to_yaml(columns: dict[str, _Draft], source: str) -> str:
    lines = [f"# Drafted by `analyst infer-schema` from {source}: every check holds for that file. Review it:",
             "# tighten the bounds, add isin lists, set nullable: false where a value is required.",
             "schema_type: dataframe", f"version: {pandera.__version__}", "columns:"]
    for name, draft in columns.items():
        spec: dict[str, Any] = {"dtype": draft.dtype}
        if draft.nullable:
            spec["nullable"] = True
        spec.update(draft.bounds)
        if draft.note:
            lines.append(f"  # {name!r}: {draft.note}")
        lines += ["  " + line for line in yaml.safe_dump({name: spec}, sort_keys=False, allow_unicode=True,
                                                        width=10_000).splitlines()]
    lines += ["coerce: true", "strict: false"]
    return "\n".join(lines) + "\n"
