"""Reading datasets: every format, read_options, URLs, and a clear DataError for every bad file."""

from __future__ import annotations

import codecs
import json
import os
import socket
import tempfile
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from tasks.datasets import dataset_file, read_dataset, validate_dataset
from tasks.errors import DataError
from tests.datasets.conftest import GOOD_CSV, dataset

EXPECTED = pl.DataFrame({"id": [1, 2, 3], "price": [9.5, 20.0, 0.0], "city": ["Paris", "Lyon", "Nice"]})


def _records() -> list[dict]:
    return EXPECTED.to_dicts()


@pytest.mark.parametrize(
    ("filename", "write"),
    [
        ("d.csv", lambda p: EXPECTED.write_csv(p)),
        ("d.tsv", lambda p: EXPECTED.write_csv(p, separator="\t")),
        ("d.parquet", lambda p: EXPECTED.write_parquet(p)),
        ("d.json", lambda p: p.write_text(json.dumps(_records()))),
        ("d.jsonl", lambda p: p.write_text("\n".join(json.dumps(r) for r in _records()))),
        ("lines.json", lambda p: p.write_text("\n".join(json.dumps(r) for r in _records()))),
        ("d.xlsx", lambda p: EXPECTED.to_pandas().to_excel(p, index=False)),
    ],
)
def test_each_format_reads_the_same_table(tmp_path: Path, filename: str, write) -> None:
    write(tmp_path / filename)
    frame = read_dataset(dataset(filename), tmp_path)
    assert frame.equals(EXPECTED)


def test_read_options_reach_the_reader(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("# exported\nid;price;city\n1;9,5;Paris\n")
    frame = read_dataset(dataset("d.csv", read_options={"separator": ";", "skip_rows": 1, "decimal_comma": True,
                                                        "columns": ["id", "price"]}), tmp_path)
    assert frame.to_dicts() == [{"id": 1, "price": 9.5}]


def test_read_options_for_xlsx_go_to_pandas(tmp_path: Path) -> None:
    with pd.ExcelWriter(tmp_path / "book.xlsx") as writer:
        pd.DataFrame({"a": [1]}).to_excel(writer, sheet_name="first", index=False)
        pd.DataFrame({"b": ["x", "y"]}).to_excel(writer, sheet_name="second", index=False)
    frame = read_dataset(dataset("book.xlsx", read_options={"sheet_name": "second"}), tmp_path)
    assert frame.to_dicts() == [{"b": "x"}, {"b": "y"}]
    with pytest.raises(DataError, match="Worksheet named 'third' not found"):
        read_dataset(dataset("book.xlsx", read_options={"sheet_name": "third"}), tmp_path)


def test_an_unknown_read_option_is_named(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(GOOD_CSV)
    with pytest.raises(DataError, match="read_options rejected by the csv reader: .*'sep'"):
        read_dataset(dataset("d.csv", read_options={"sep": ";"}), tmp_path)


def test_an_absolute_path_is_used_as_is(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(GOOD_CSV)
    assert read_dataset(dataset(str(tmp_path / "d.csv")), Path("/nonexistent")).height == 3


BAD_FILES = [
    ("missing.csv", None, "file not found"),
    ("empty.csv", b"", r"file is empty \(0 bytes\)"),
    ("empty.parquet", b"", r"file is empty \(0 bytes\)"),
    ("random.csv", bytes(range(256)) * 40, "binary file"),
    ("utf16.csv", "id,city\n1,Zürich\n".encode("utf-16"), "is UTF-16 text: save it as UTF-8"),
    ("latin1.csv", "id,city\n1,Zürich\n".encode("latin-1"), r"is not UTF-8 text \(byte 0xfc"),
    ("ragged.csv", b"id,city\n1,Paris\n2,Lyon,extra\n", "line 3 has 3 fields but the header has 2"),
    ("random.parquet", os.urandom(2000), "not a Parquet file"),
    ("truncated.parquet", b"PAR1" + os.urandom(100), "cannot read as PARQUET"),
    ("random.xlsx", os.urandom(2000), "not an .xlsx workbook"),
    ("zip.xlsx", b"PK\x03\x04" + os.urandom(200), "cannot read as XLSX"),
    ("old.xlsx", codecs.decode("d0cf11e0a1b11ae1", "hex") + os.urandom(200), "legacy .xls"),
    ("broken.json", b'[{"id": 1}, {"id": ', "cannot read as JSON"),
    ("object.json", b'{\n  "data": [1, 2]\n}\n', "expected a JSON array of records, or JSON lines"),
]


@pytest.mark.parametrize(("filename", "content", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_is_a_clear_data_error(tmp_path: Path, filename: str, content: bytes | None, message: str) -> None:
    if content is not None:
        (tmp_path / filename).write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        read_dataset(dataset(filename), tmp_path)
    assert caught.value.dataset == "sales"
    assert caught.value.source == str(tmp_path / filename)
    assert "Traceback" not in str(caught.value)
    # validate_dataset goes through the same reader: the same error, not a crash
    with pytest.raises(DataError, match=message):
        validate_dataset(dataset(filename), tmp_path)


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="is not a file"):
        read_dataset(dataset("dir.csv"), tmp_path)


def test_ragged_lines_can_be_truncated_by_option(tmp_path: Path) -> None:
    (tmp_path / "ragged.csv").write_bytes(b"id,city\n1,Paris\n2,Lyon,extra\n")
    frame = read_dataset(dataset("ragged.csv", read_options={"truncate_ragged_lines": True}), tmp_path)
    assert frame.to_dicts() == [{"id": 1, "city": "Paris"}, {"id": 2, "city": "Lyon"}]


def test_lossy_encoding_option_reads_latin1(tmp_path: Path) -> None:
    (tmp_path / "latin1.csv").write_bytes("id,city\n1,Zürich\n".encode("latin-1"))
    frame = read_dataset(dataset("latin1.csv", read_options={"encoding": "utf8-lossy"}), tmp_path)
    assert frame["city"][0] == "Z\ufffdrich"


def test_a_header_only_csv_reads_as_zero_rows(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text("id,price,city,day\n")
    frame = read_dataset(dataset("header.csv"), tmp_path)
    assert frame.shape == (0, 4)


def test_a_late_value_of_another_type_is_read_as_text(tmp_path: Path) -> None:
    # polars guesses the type from the first 10,000 rows; row 12,000 holds text
    lines = ["n"] + [str(i) for i in range(12_000)] + ["oops"]
    (tmp_path / "late.csv").write_text("\n".join(lines) + "\n")
    frame = read_dataset(dataset("late.csv"), tmp_path)
    assert frame.schema["n"] == pl.String and frame["n"][-1] == "oops"


def test_a_url_is_downloaded_and_the_copy_removed(http_folder: tuple[Path, str], tmp_path: Path) -> None:
    folder, base = http_folder
    (folder / "d.csv").write_text(GOOD_CSV)
    config = dataset(f"{base}/d.csv")
    with dataset_file(config, tmp_path) as path:
        assert path.read_text() == GOOD_CSV
        assert str(path).startswith(tempfile.gettempdir())
    assert not path.exists() and not path.parent.exists()
    assert read_dataset(config, tmp_path).height == 3


def test_an_http_error_status_is_a_data_error(http_folder: tuple[Path, str], tmp_path: Path) -> None:
    _, base = http_folder
    with pytest.raises(DataError, match="download failed: HTTP 404 File not found") as caught:
        read_dataset(dataset(f"{base}/nope.csv"), tmp_path)
    assert caught.value.source == f"{base}/nope.csv"


def test_an_unreachable_url_is_a_data_error(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DataError, match="cannot download: .*(refused|connect)"):
        read_dataset(dataset(f"http://127.0.0.1:{port}/d.csv"), tmp_path)
