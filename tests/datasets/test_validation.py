"""Validation: every failing check collected, a bounded failure table, a report a prompt can read."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tasks.datasets import DatasetReport, render_summary, validate_dataset
from tasks.datasets.report import Failure
from tests.datasets.conftest import GOOD_CSV, SCHEMA, dataset


def _write(tmp_path: Path, text: str, name: str = "d.csv") -> str:
    (tmp_path / name).write_text(text)
    return name


def _failures(report: DatasetReport) -> set[tuple]:
    return {(f.column, f.check, f.failure_case, f.row) for f in report.failures}


def test_valid_data_passes_and_is_summarised(tmp_path: Path) -> None:
    report = validate_dataset(dataset(_write(tmp_path, GOOD_CSV)), tmp_path)
    assert report.valid and report.failure_count == 0 and report.failures == []
    assert not report.blocking
    assert (report.rows, report.columns) == (3, ["id", "price", "city", "day"])
    assert report.dtypes == {"id": "Int64", "price": "Float64", "city": "String",
                             "day": "Datetime(time_unit='us', time_zone=None)"}  # the text dates were parsed
    assert report.null_counts == {"id": 0, "price": 0, "city": 0, "day": 0}
    assert report.head[0] == {"id": "1", "price": "9.5", "city": "Paris", "day": "2024-01-02 00:00:00"}
    assert report.source == str(tmp_path / "d.csv") and report.schema_source == "inline"


BAD_CSV = (
    "id,price,city,day\n"
    "1,9.5,Paris,2024-01-02\n"
    "1,-3,Lille,2023-12-31\n"  # duplicate id, negative price, unknown city, too early
    "3,,Nice,2024-03-04\n"  # missing price: not nullable
    "4,250,Nice,someday\n"  # too expensive, not a date
)


@pytest.mark.parametrize("on_invalid", ["fail", "warn"])
def test_every_failing_check_is_collected(tmp_path: Path, on_invalid: str) -> None:
    report = validate_dataset(dataset(_write(tmp_path, BAD_CSV), on_invalid=on_invalid), tmp_path)
    assert not report.valid
    assert report.on_invalid == on_invalid and report.blocking == (on_invalid == "fail")
    assert _failures(report) == {
        ("day", "coerce_dtype('datetime64[ns]')", "someday", 3),
        ("id", "field_uniqueness", "1", 0),
        ("id", "field_uniqueness", "1", 1),
        ("price", "not_nullable", None, 2),
        ("price", "in_range(0, 100)", "-3.0", 1),
        ("price", "in_range(0, 100)", "250.0", 3),
        ("city", "isin(['Paris', 'Lyon', 'Nice'])", "Lille", 1),
        ("day", "greater_than_or_equal_to(2024-01-01 00:00:00)", "2023-12-31 00:00:00.000000", 1),
    }
    assert report.failure_count == 8
    assert {(c.column, c.check): c.count for c in report.failures_by_check}[("id", "field_uniqueness")] == 2
    # the unparseable date became null; its not_nullable failure would say nothing new
    assert not any(f.column == "day" and f.check == "not_nullable" for f in report.failures)


def test_a_missing_column_and_a_wrong_dtype_are_failures_not_crashes(tmp_path: Path) -> None:
    text = "id,price,day\n1,9.5,2024-01-02\n2,1.5,2024-01-03\n"
    schema = {"columns": {**SCHEMA["columns"], "id": {"dtype": "str"}}}
    report = validate_dataset(dataset(_write(tmp_path, text), schema), tmp_path)
    assert _failures(report) == {
        ("city", "column_in_dataframe", "city", None),
        ("id", "dtype('str')", "Int64", None),
    }


def test_coerce_converts_and_reports_values_that_do_not_convert(tmp_path: Path) -> None:
    text = "code,flag\n10,yes\n20,no\nabc,maybe\n"
    schema = {"coerce": True, "columns": {"code": {"dtype": "float64"}, "flag": {"dtype": "bool"}}}
    report = validate_dataset(dataset(_write(tmp_path, text), schema), tmp_path)
    assert report.dtypes == {"code": "Float64", "flag": "Boolean"}
    assert _failures(report) == {
        ("code", "coerce_dtype('float64')", "abc", 2),
        ("flag", "coerce_dtype('bool')", "maybe", 2),
    }


def test_coerce_between_numbers(tmp_path: Path) -> None:
    text = "n\n1.0\n2.0\n"
    with_coerce = {"columns": {"n": {"dtype": "int64", "coerce": True}}}
    without = {"columns": {"n": {"dtype": "int64"}}}
    assert validate_dataset(dataset(_write(tmp_path, text), with_coerce), tmp_path).valid
    report = validate_dataset(dataset(_write(tmp_path, text), without), tmp_path)
    assert _failures(report) == {("n", "dtype('int64')", "Float64", None)}


def test_a_value_past_polars_type_guess_is_a_failure_at_its_row(tmp_path: Path) -> None:
    lines = ["n"] + [str(i) for i in range(12_000)] + ["oops"]
    schema = {"columns": {"n": {"dtype": "int64"}}}
    report = validate_dataset(dataset(_write(tmp_path, "\n".join(lines) + "\n"), schema), tmp_path)
    assert report.dtypes == {"n": "Int64"}
    assert _failures(report) == {("n", "coerce_dtype('int64')", "oops", 12_000)}
    assert any("column 'n'" in note for note in report.notes)


def test_the_failure_table_is_capped_but_counts_everything(tmp_path: Path) -> None:
    rows = [f"{i},{-1 if i < 250 else 1},{'x' if i < 3 else 'Paris'}" for i in range(1000)]
    schema = {"columns": {"id": {"dtype": "int64"}, "n": {"dtype": "int64", "greater_than": 0},
                          "city": {"dtype": "str", "isin": ["Paris"]}}}
    report = validate_dataset(dataset(_write(tmp_path, "id,n,city\n" + "\n".join(rows) + "\n"), schema), tmp_path)
    assert report.failure_count == 253 and len(report.failures) == 100
    assert [(c.column, c.count) for c in report.failures_by_check] == [("n", 250), ("city", 3)]
    # every failing check is represented, and rows are in order within a check
    assert [f.row for f in report.failures if f.column == "city"] == [0, 1, 2]
    assert [f.row for f in report.failures if f.column == "n"] == list(range(97))
    report = validate_dataset(dataset("d.csv", schema), tmp_path, max_failures=10)
    assert len(report.failures) == 10 and report.failure_count == 253


def test_duplicates_are_found_among_nulls_too(tmp_path: Path) -> None:
    schema = {"columns": {"k": {"dtype": "int64", "unique": True, "nullable": True}}}
    report = validate_dataset(dataset(_write(tmp_path, "k\n1\n\n2\n\n"), schema), tmp_path)
    assert [(f.check, f.row) for f in report.failures] == [("field_uniqueness", 1), ("field_uniqueness", 3)]


def test_a_warning_check_does_not_invalidate(tmp_path: Path) -> None:
    schema = {"columns": {"n": {"dtype": "int64",
                                "checks": {"less_than": {"value": 5, "options": {"raise_warning": True}}}}}}
    report = validate_dataset(dataset(_write(tmp_path, "n\n1\n9\n"), schema), tmp_path)
    assert report.valid
    assert any(note.startswith("warning:") and "less_than(5)" in note for note in report.notes)


def test_a_header_only_file_is_valid_but_empty(tmp_path: Path) -> None:
    report = validate_dataset(dataset(_write(tmp_path, "id,price,city,day\n")), tmp_path)
    assert report.valid and report.rows == 0 and report.head == []
    assert report.dtypes["id"] == "Int64"  # typed by the schema, there being no values to contradict it
    assert "the dataset has no rows" in report.notes


def test_each_format_validates(tmp_path: Path) -> None:
    frame = pl.read_csv(GOOD_CSV.encode(), try_parse_dates=True)
    frame.write_parquet(tmp_path / "d.parquet")
    frame.write_ndjson(tmp_path / "d.jsonl")
    (tmp_path / "d.json").write_text(json.dumps(frame.to_dicts(), default=str))
    frame.to_pandas().to_excel(tmp_path / "d.xlsx", index=False)
    for name in ("d.parquet", "d.jsonl", "d.json", "d.xlsx"):
        report = validate_dataset(dataset(name), tmp_path)
        assert report.valid, (name, report.failures)
        assert report.rows == 3


def test_a_url_dataset_validates(http_folder: tuple[Path, str], tmp_path: Path) -> None:
    folder, base = http_folder
    (folder / "d.csv").write_text(BAD_CSV)
    report = validate_dataset(dataset(f"{base}/d.csv"), tmp_path)
    assert report.source == f"{base}/d.csv" and report.failure_count == 8
    # the values that did not convert are looked up again in the download, which is then gone
    assert ("day", "coerce_dtype('datetime64[ns]')", "someday", 3) in _failures(report)


def test_the_report_round_trips_through_json(tmp_path: Path) -> None:
    report = validate_dataset(dataset(_write(tmp_path, BAD_CSV)), tmp_path)
    data = json.loads(json.dumps(report.to_dict()))
    assert DatasetReport.from_dict(data) == report
    assert isinstance(DatasetReport.from_dict(data).failures[0], Failure)


def test_render_summary_is_compact_and_complete(tmp_path: Path) -> None:
    report = validate_dataset(dataset(_write(tmp_path, BAD_CSV), on_invalid="warn"), tmp_path)
    text = render_summary(report, max_failures=3)
    assert text.splitlines()[0] == (f"Dataset 'sales' (csv, {tmp_path / 'd.csv'}): 4 rows x 4 columns; "
                                    "schema: INVALID (8 failures; on_invalid=warn)")
    assert "  - price: Float64, 1 nulls" in text
    assert "  1 | -3.0 | Lille | 2023-12-31 00:00:00" in text
    assert "  - id: field_uniqueness: 2" in text
    assert len([line for line in text.splitlines() if line.startswith("  - ") and line[4].isdigit()]) == 3
    assert "schema: valid" in render_summary(validate_dataset(dataset(_write(tmp_path, GOOD_CSV)), tmp_path))


def test_counts_past_the_cap_are_exact_for_nulls_and_duplicates(tmp_path: Path) -> None:
    rows = [f"{i % 300},{'' if i % 4 == 0 else i}" for i in range(1200)]
    schema = {"columns": {"k": {"dtype": "int64", "unique": True}, "v": {"dtype": "int64"}}}
    report = validate_dataset(dataset(_write(tmp_path, "k,v\n" + "\n".join(rows) + "\n"), schema), tmp_path,
                              max_failures=20)
    assert {(c.column, c.check): c.count for c in report.failures_by_check} == {
        ("k", "field_uniqueness"): 1200, ("v", "not_nullable"): 300}
    assert report.failure_count == 1500 and len(report.failures) == 20
    assert [f.row for f in report.failures if f.column == "v"] == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]


def _scattered_failures() -> str:
    """1,000 rows whose failures lie far apart: a duplicate id split across the file, a negative
    price, a missing price, an unknown city, an unparseable date, each in a different part."""
    rows = []
    for i in range(1000):
        price = {40: "-1.5", 777: ""}.get(i, "5.5")
        city = "Lille" if i in (3, 998) else "Paris"
        day = "someday" if i == 612 else "2024-05-06"
        rows.append(f"{7 if i in (2, 901) else i + 10},{price},{city},{day}")
    return "id,price,city,day\n" + "\n".join(rows) + "\n"


def test_a_file_read_in_batches_reports_as_one_read_whole(tmp_path: Path) -> None:
    path = _write(tmp_path, _scattered_failures())
    whole = validate_dataset(dataset(path), tmp_path)
    assert whole.rows == 1000
    for batch_rows in (7, 100, 999):
        assert validate_dataset(dataset(path), tmp_path, batch_rows=batch_rows) == whole, batch_rows
    assert _failures(validate_dataset(dataset(path), tmp_path, batch_rows=7)) == {
        ("id", "field_uniqueness", "7", 2), ("id", "field_uniqueness", "7", 901),
        ("price", "in_range(0, 100)", "-1.5", 40), ("price", "not_nullable", None, 777),
        ("city", "isin(['Paris', 'Lyon', 'Nice'])", "Lille", 3),
        ("city", "isin(['Paris', 'Lyon', 'Nice'])", "Lille", 998),
        ("day", "coerce_dtype('datetime64[ns]')", "someday", 612),
    }
    capped = validate_dataset(dataset(path), tmp_path, batch_rows=7, max_failures=5)  # five checks: one case each
    assert capped == validate_dataset(dataset(path), tmp_path, max_failures=5)
    assert capped.failures_by_check == whole.failures_by_check  # counts past the cap, across batches
    assert [f.row for f in capped.failures if f.column in ("id", "city")] == [2, 3]


def test_the_reader_streams_batches_and_starts_over_when_a_column_is_re_read(tmp_path: Path) -> None:
    from tasks.datasets.loading import Reader

    lines = ["n"] + [str(i) for i in range(12_000)] + ["oops"]
    path = tmp_path / _write(tmp_path, "\n".join(lines) + "\n")
    reader = Reader(dataset(path.name), path, str(path))
    passes: list[list[int]] = []

    def start(query):
        passes.append([])
        return lambda batch: passes[-1].append(batch.height)

    reader.stream(reader.scan(), lambda frame: frame, start, rows=5_000)
    assert reader.text_columns == {"n"}
    assert passes[-1] == [5_000, 5_000, 2_001] and len(passes) == 2  # the second pass read 'n' as text


@pytest.mark.parametrize("batch_rows", [None, 7, 500])
def test_a_duplicate_after_a_run_of_consecutive_ids_is_found(tmp_path: Path, batch_rows: int | None) -> None:
    # ids 1..999 are kept as one run (first, length); the repeated 5 at the end must bring them back
    schema = {"columns": {"id": {"dtype": "int64", "unique": True}}}
    ids = [*range(1, 1000), 5]
    report = validate_dataset(dataset(_write(tmp_path, "id\n" + "\n".join(map(str, ids)) + "\n"), schema), tmp_path,
                              batch_rows=batch_rows)
    assert _failures(report) == {("id", "field_uniqueness", "5", 4), ("id", "field_uniqueness", "5", 999)}
    ordered = validate_dataset(dataset(_write(tmp_path, "id\n" + "\n".join(map(str, range(1, 1001))) + "\n"),
                                       schema), tmp_path, batch_rows=batch_rows)
    assert ordered.valid and ordered.rows == 1000


def test_a_check_polars_cannot_run_on_its_column_fails_in_every_batch_without_ending_the_read(tmp_path: Path) -> None:
    schema = {"columns": {"s": {"dtype": "str", "greater_than": 0, "str_length": {"max_value": 3}}}}
    path = _write(tmp_path, "s\n" + "\n".join(["ab", "abcd", "x"] * 5) + "\n")
    report = validate_dataset(dataset(path, schema), tmp_path, batch_rows=4)
    counts = {(c.column, c.check): c.count for c in report.failures_by_check}
    assert counts[("s", "str_length(None, 3)")] == 5
    assert counts[("s", "greater_than(0)")] >= 1
    assert any(f.check == "greater_than(0)" and "cannot compare" in str(f.failure_case) for f in report.failures)
