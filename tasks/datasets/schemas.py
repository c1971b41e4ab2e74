"""Dataset schemas: pandera's pandas-format YAML, validated with pandera's polars backend.

Users write (or draft with ``analyst infer-schema``) the YAML that ``pandera.infer_schema``,
``DataFrameSchema.to_yaml`` and ``from_yaml`` speak, with pandas dtypes. pandera parses it
into a pandas schema; ``to_polars`` rebuilds it as an equivalent ``pandera.polars`` schema,
because the polars backend validates a 1 GB file within the memory and time budget and the
pandas one cannot. pandera's built-in checks (ranges, isin, str_matches, ...) are one Check
class that dispatches on the frame type, so the parsed check objects are reused as they are.
A schema already in pandera's polars format (``schema_type: polars_dataframe``) is also read.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.polars as pap
import polars as pl
import yaml
from pandera.api.checks import Check
from pandera.engines import polars_engine
from pandera.io import pandas_io, polars_io

from tasks.config.schema import DatasetConfig
from tasks.config.yaml_guard import read_config_yaml
from tasks.errors import ConfigError, DataError

_INTEGERS = {f"{sign}int{bits}": getattr(pl, f"{sign.upper()}Int{bits}")
             for sign in ("", "u") for bits in (8, 16, 32, 64)}
_SIMPLE: dict[str, Any] = {
    **_INTEGERS,
    **{name.replace("uint", "UInt").replace("int", "Int"): dtype for name, dtype in _INTEGERS.items()},  # nullable
    "float16": pl.Float32, "float32": pl.Float32, "float64": pl.Float64, "Float32": pl.Float32, "Float64": pl.Float64,
    "bool": pl.Boolean, "boolean": pl.Boolean,
    "str": pl.String, "string": pl.String, "string[python]": pl.String, "string[pyarrow]": pl.String,
    "object": pl.String, "category": pl.Categorical, "date": pl.Date,
}
_STRING_CHECKS = ("str_matches", "str_contains")


class AnyDatetime(polars_engine.DateTime):
    """pandas' ``datetime64[ns]`` is what pandas calls any datetime (pandera maps every unit to ns),
    and pandas has no date-only type, so it matches polars Datetime of any unit, and Date."""

    def check(self, pandera_dtype, data_container=None) -> bool:
        try:
            actual = polars_engine.Engine.dtype(pandera_dtype).type
        except TypeError:
            return False
        if isinstance(actual, pl.Datetime):
            return actual.time_zone == self.type.time_zone
        return actual == pl.Date and self.type.time_zone is None

    def __str__(self) -> str:
        zone = f", {self.type.time_zone}" if self.type.time_zone else ""
        return f"Datetime(any unit{zone})"


def load_schema(dataset: DatasetConfig, base_dir: Path) -> pap.DataFrameSchema:
    """The dataset's schema as a ``pandera.polars.DataFrameSchema``.

    ``dataset.schema_`` is an inline mapping (pandera's YAML, parsed) or a path to a YAML file,
    relative to ``base_dir`` (the config's folder). Raises DataError naming the schema's source.
    """
    if isinstance(dataset.schema_, Mapping):
        return schema_from_mapping(dataset.schema_, dataset=dataset.name, source="inline schema")
    path = Path(dataset.schema_).expanduser()
    path = path if path.is_absolute() else base_dir / path
    source = f"schema {path}"
    try:
        mapping = read_config_yaml(path)  # the same size and alias-bomb guard as a config
    except FileNotFoundError:
        raise DataError(dataset.name, source, "schema file not found (a relative path is read from the config's "
                                              "folder)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(dataset.name, source, f"cannot read the schema file: {exc}") from None
    except yaml.YAMLError as exc:
        raise DataError(dataset.name, source, f"not valid YAML: {exc}") from None
    except ConfigError as exc:
        raise DataError(dataset.name, source, exc.problems[0].message) from None
    return schema_from_mapping(mapping, dataset=dataset.name, source=source)


def schema_from_mapping(mapping: Any, *, dataset: str, source: str) -> pap.DataFrameSchema:
    """Parse pandera's serialized schema (pandas or polars format) into a polars schema."""
    def fail(message: str) -> DataError:
        return DataError(dataset, source, message)

    if not isinstance(mapping, Mapping) or not mapping.get("columns"):
        raise fail("expected pandera's schema YAML: a mapping with 'columns' (draft one with "
                   "`analyst infer-schema DATA -o FILE`, or pandera's DataFrameSchema.to_yaml())")
    try:
        if mapping.get("schema_type") == "polars_dataframe":
            schema = polars_io.deserialize_schema(copy.deepcopy(dict(mapping)))
        else:
            columns = mapping["columns"]
            written = ({str(k): v.get("dtype") for k, v in columns.items() if isinstance(v, Mapping)}
                       if isinstance(columns, Mapping) else {})
            schema = to_polars(pandas_io.deserialize_schema(copy.deepcopy(dict(mapping))), written)
    except DataError:
        raise
    except _SchemaProblem as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - pandera raises TypeError, AttributeError, KeyError, ... on bad YAML
        raise fail(f"pandera cannot read this schema: {type(exc).__name__}: {exc}") from None
    for name, column in schema.columns.items():
        for check in column.checks:
            if check.name in _STRING_CHECKS:
                _check_regex(check.statistics.get("pattern"), name, fail)
    return schema


class _SchemaProblem(ValueError):
    pass


def to_polars(schema, written: Mapping[str, Any] | None = None) -> pap.DataFrameSchema:
    """An equivalent ``pandera.polars.DataFrameSchema`` for a pandas ``DataFrameSchema``.

    ``written``: the dtypes as the YAML spells them ('str' rather than pandera's 'string[pyarrow]'),
    kept in each column's metadata so that failures name the dtype the way the user wrote it.
    """
    index = schema.index
    if index is not None and (getattr(index, "indexes", None) or index.checks or index.name is not None):
        # infer_schema always writes a bare int64 index; that one means nothing for a file.
        raise _SchemaProblem("an 'index' with a name or checks is not supported: data files have no index "
                             "(rows are numbered from 0); declare a column instead")
    columns = {}
    for name, column in schema.columns.items():
        declared = None if column.dtype is None else str(column.dtype)
        dtype = polars_dtype(declared, where=f"column '{name}'")
        columns[str(name)] = pap.Column(
            dtype,
            checks=[_adapt_check(c, dtype) for c in column.checks],
            nullable=column.nullable, unique=column.unique, coerce=column.coerce, required=column.required,
            name=str(name), regex=column.regex, title=column.title, description=column.description,
            metadata={**(column.metadata or {}), "declared_dtype": (written or {}).get(str(name)) or declared},
        )
    return pap.DataFrameSchema(
        columns,
        checks=list(schema.checks),
        dtype=polars_dtype(None if schema.dtype is None else str(schema.dtype), where="the schema"),
        coerce=schema.coerce, strict=schema.strict, name=schema.name, ordered=schema.ordered,
        unique=schema.unique, report_duplicates=schema.report_duplicates,
        unique_column_names=schema.unique_column_names, add_missing_columns=schema.add_missing_columns,
        title=schema.title, description=schema.description,
    )


def polars_dtype(declared: str | None, *, where: str = "") -> Any:
    """The polars dtype for a pandas dtype name as pandera writes it ('int64', 'datetime64[ns, UTC]')."""
    if declared is None:
        return None
    if declared in _SIMPLE:
        return _SIMPLE[declared]
    if declared.startswith("datetime64"):
        zone = declared.partition(",")[2].rstrip("]").strip() or None
        return AnyDatetime(time_zone=zone)
    if declared.startswith("timedelta64"):
        return pl.Duration("us")
    raise _SchemaProblem(f"{where}: dtype '{declared}' has no polars equivalent; use one of int64, float64, str, "
                         "bool, datetime64[ns], date, category, timedelta64[ns]")


def _adapt_check(check: Check, dtype: Any) -> Check:
    """Datetime bounds must be datetimes for polars to compare: pandera leaves a bound it cannot
    read with its one format ('2020-01-01' without a time) as text, and dates need date objects."""
    if not isinstance(dtype, AnyDatetime) and dtype is not pl.Date:
        return check
    # pandera types AnyDatetime as a union with its DataTypeClass; an instance always has .type (polars').
    zone = None if dtype is pl.Date else dtype.type.time_zone  # type: ignore[union-attr]

    def to_value(value: Any) -> Any:
        stamp = pd.Timestamp(value)
        if dtype is pl.Date:
            return stamp.date()
        if zone:  # polars will not compare an aware column with a naive bound
            stamp = stamp.tz_localize(zone) if stamp.tzinfo is None else stamp.tz_convert(zone)
        return stamp.to_pydatetime()

    def convert(value: Any) -> Any:
        if isinstance(value, (list, tuple, set)):
            return [convert(v) for v in value]
        if isinstance(value, (str, dt.date, pd.Timestamp)):
            try:
                return to_value(value)
            except (ValueError, TypeError):
                raise _SchemaProblem(f"check {check.name}: {value!r} is not a date/time") from None
        return value

    stats = {key: convert(value) for key, value in (check.statistics or {}).items()}
    name = check.name or ""
    if stats == check.statistics or not hasattr(Check, name):
        return check
    rebuilt = getattr(Check, name)(**stats)
    for option in ("raise_warning", "ignore_na", "n_failure_cases", "title", "description"):
        setattr(rebuilt, option, getattr(check, option))
    return rebuilt


def _check_regex(pattern: Any, column: str, fail) -> None:
    # polars uses Rust's regex syntax: no look-around or back-references. Say so now, not per row.
    try:
        pl.select(pl.lit("").str.contains(str(pattern)))
    except pl.exceptions.PolarsError as exc:
        raise fail(f"column '{column}': pattern {pattern!r} is not a regex polars supports (no look-around "
                   f"or back-references): {str(exc).splitlines()[0]}") from None
