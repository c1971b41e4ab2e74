"""Schemas: pandera's YAML inline or from a file, translated for pandera's polars backend; drafts by inference."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandera.polars as pap
import polars as pl
import pytest
import yaml

from tasks.datasets import infer_schema_yaml, load_schema, validate_dataset
from tasks.datasets.schemas import AnyDatetime
from tasks.errors import DataError
from tests.datasets.conftest import GOOD_CSV, SCHEMA, dataset

BAD = "id,price,city,day\n1,-1.5,Paris,2024-01-02\n"


def test_inline_and_file_schemas_give_the_same_result(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(BAD)
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "sales.yaml").write_text(yaml.safe_dump(SCHEMA))
    inline = validate_dataset(dataset("d.csv"), tmp_path)
    from_file = validate_dataset(dataset("d.csv", "schemas/sales.yaml"), tmp_path)
    assert inline.failures == from_file.failures and inline.failure_count == 1
    assert from_file.schema_source == "schemas/sales.yaml"


def test_the_schema_is_a_polars_schema_with_the_declared_meaning() -> None:
    schema = load_schema(dataset("d.csv"), Path("."))
    assert isinstance(schema, pap.DataFrameSchema)
    assert schema.columns["id"].dtype.type == pl.Int64 and schema.columns["id"].unique
    assert schema.columns["city"].dtype.type == pl.String
    day = schema.columns["day"]
    assert isinstance(day.dtype, AnyDatetime)
    # any time unit, and dates, are what pandas' datetime64[ns] means
    for actual in (pl.Datetime("ns"), pl.Datetime("ms"), pl.Date):
        assert day.dtype.check(actual)
    assert not day.dtype.check(pl.Datetime("us", "UTC")) and not day.dtype.check(pl.String)
    assert day.checks[0].statistics == {"min_value": dt.datetime(2024, 1, 1)}


def test_datetime_bounds_may_be_written_without_a_time(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("day,when\n2024-01-02,2024-01-02T10:00:00+01:00\n2023-05-01,2023-05-01T10:00:00Z\n")
    schema = {"columns": {"day": {"dtype": "date", "greater_than": "2024-01-01"},
                          "when": {"dtype": "datetime64[ns, UTC]", "less_than": "2024-01-01"}}}
    report = validate_dataset(dataset("d.csv", schema), tmp_path)
    assert {(f.column, f.row) for f in report.failures} == {("day", 1), ("when", 0)}
    assert report.dtypes == {"day": "Date", "when": "Datetime(time_unit='us', time_zone='UTC')"}


def test_a_polars_format_schema_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(BAD)
    polars_yaml = pap.DataFrameSchema({"price": pap.Column(pl.Float64, pap.Check.ge(0))}).to_yaml()
    report = validate_dataset(dataset("d.csv", yaml.safe_load(polars_yaml)), tmp_path)
    assert [(f.column, f.row) for f in report.failures] == [("price", 0)]


BAD_SCHEMAS = [
    ("missing.yaml", None, "schema file not found"),
    ("syntax.yaml", "columns: {a: [", "not valid YAML"),
    ("list.yaml", "- a\n- b\n", "expected pandera's schema YAML"),
    ("dtype.yaml", "columns: {a: {dtype: banana}}", "pandera cannot read this schema: TypeError"),
    ("check.yaml", "columns: {a: {dtype: int64, checks: {bigger_than: 3}}}", "pandera cannot read this schema"),
    ("polars-only.yaml", "columns: {a: {dtype: complex128}}", "dtype 'complex128' has no polars equivalent"),
    ("regex.yaml", "columns: {a: {dtype: str, str_matches: '(?=x)'}}", "not a regex polars supports"),
    ("index.yaml", "columns: {a: {dtype: int64}}\nindex: [{dtype: int64, name: key}]", "'index' .* not supported"),
    ("bound.yaml", "columns: {a: {dtype: 'datetime64[ns]', greater_than: soon}}", "'soon' is not a date/time"),
]


@pytest.mark.parametrize(("filename", "text", "message"), BAD_SCHEMAS, ids=[b[0] for b in BAD_SCHEMAS])
def test_a_schema_pandera_cannot_use_is_a_data_error(tmp_path: Path, filename: str, text: str | None,
                                                     message: str) -> None:
    (tmp_path / "d.csv").write_text(GOOD_CSV)
    if text is not None:
        (tmp_path / filename).write_text(text)
    with pytest.raises(DataError, match=message) as caught:
        load_schema(dataset("d.csv", filename), tmp_path)
    assert caught.value.source == f"schema {tmp_path / filename}"
    with pytest.raises(DataError, match=message):
        validate_dataset(dataset("d.csv", filename), tmp_path)
    if text is not None and filename != "syntax.yaml" and not text.startswith("-"):
        with pytest.raises(DataError, match=message) as caught:  # the same, written inline
            load_schema(dataset("d.csv", yaml.safe_load(text)), tmp_path)
        assert caught.value.source == "inline schema"


def _rich_frame() -> pl.DataFrame:
    return pl.DataFrame({
        "id": [1, 2, 3, 4],
        "price": [9.5, None, 0.25, 1e6],
        "city": ["Paris", "Lyon", None, "Nice"],
        "ok": [True, False, True, True],
        "day": [dt.date(2024, 1, 2), dt.date(2024, 2, 3), dt.date(2023, 12, 31), dt.date(2024, 3, 4)],
        "at": [dt.datetime(2024, 1, 2, 3, 4, 5, 678901), dt.datetime(2024, 1, 2, 3, 4, 5), None,
               dt.datetime(2020, 1, 1)],
    })


@pytest.mark.parametrize("filename", ["d.csv", "d.parquet", "d.json", "d.jsonl", "d.xlsx"])
def test_an_inferred_schema_validates_its_own_data(tmp_path: Path, filename: str) -> None:
    frame, path = _rich_frame(), tmp_path / filename
    {"d.csv": lambda: frame.write_csv(path),
     "d.parquet": lambda: frame.write_parquet(path),
     "d.json": lambda: path.write_text(json.dumps(frame.to_dicts(), default=str)),
     "d.jsonl": lambda: frame.write_ndjson(path),
     "d.xlsx": lambda: frame.to_pandas().to_excel(path, index=False)}[filename]()
    draft = infer_schema_yaml(path)
    parsed = yaml.safe_load(draft)
    assert parsed["schema_type"] == "dataframe" and "index" not in parsed
    columns = parsed["columns"]
    assert columns["id"]["dtype"] == "int64" and columns["price"]["dtype"] == "float64"
    assert columns["price"]["nullable"] is True and columns["price"]["less_than_or_equal_to"] == 1e6
    has_dates = filename not in ("d.json", "d.jsonl")  # JSON has no date type: dates stay text
    if has_dates:
        assert columns["at"]["dtype"].startswith("datetime64")
        assert columns["at"]["less_than_or_equal_to"] == "2024-01-02 03:04:06"  # rounded up, not truncated
    (tmp_path / "schema.yaml").write_text(draft)
    for schema in (parsed, "schema.yaml"):  # pasted inline, or saved as a file
        report = validate_dataset(dataset(filename, schema), tmp_path)
        assert report.valid, report.failures
        assert report.rows == 4
    # and it does catch data that differs
    (tmp_path / "other.csv").write_text("id,price,city,ok,day,at\n9,2e6,Rome,true,2030-01-01,2030-01-01 00:00:00\n")
    report = validate_dataset(dataset("other.csv", parsed), tmp_path)
    assert {f.column for f in report.failures} >= ({"id", "price", "day", "at"} if has_dates else {"id", "price"})


def test_infer_schema_accepts_read_options(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("a;b\n1;x\n")
    parsed = yaml.safe_load(infer_schema_yaml(tmp_path / "d.txt", format="csv", read_options={"separator": ";"}))
    assert list(parsed["columns"]) == ["a", "b"]


def test_infer_schema_on_a_bad_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        infer_schema_yaml(tmp_path / "none.csv")
    (tmp_path / "d.txt").write_text("a\n1\n")
    with pytest.raises(DataError, match="cannot tell the format"):
        infer_schema_yaml(tmp_path / "d.txt")
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match="binary"):
        infer_schema_yaml(tmp_path / "bin.csv")
