"""Drafted schemas validate the very data they were drafted from, however messy the file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import yaml

from tasks.datasets import infer_schema_yaml, validate_dataset
from tasks.errors import DataError
from tests.datasets.conftest import dataset
from tests.datasets.messy_csv import COLUMNS, HEADERS, LINE_ENDS, messy_csv

SEEDS = range(150)


def _draft_then_validate(folder: Path, name: str, content: bytes):
    path = folder / name
    path.write_bytes(content)
    draft = infer_schema_yaml(path)
    (folder / f"{name}.schema.yaml").write_text(draft, encoding="utf-8")
    return draft, validate_dataset(dataset(name, f"{name}.schema.yaml"), folder)


def test_generated_messy_csvs_validate_against_their_own_drafts(tmp_path: Path) -> None:
    covered: set[str] = set()
    for seed in SEEDS:
        content, cases = messy_csv(seed)
        _, report = _draft_then_validate(tmp_path, f"m{seed}.csv", content)
        assert report.valid, (seed, cases, report.failures[:3])
        covered |= cases
    expected = {*COLUMNS, *(f"header:{h}" for h in HEADERS), *(f"line_ends:{e}" for e in LINE_ENDS), "bom"}
    assert covered == expected, expected - covered


@pytest.mark.slow
def test_a_wide_file_drafts_and_validates(tmp_path: Path) -> None:
    content, _ = messy_csv(7, columns=300, rows=5)
    _, report = _draft_then_validate(tmp_path, "wide.csv", content)
    assert report.valid and len(report.columns) == 300


@pytest.mark.slow
def test_a_file_of_thousands_of_columns_drafts_and_validates(tmp_path: Path) -> None:
    content, _ = messy_csv(11, columns=3000, rows=30)
    draft, report = _draft_then_validate(tmp_path, "wider.csv", content)
    assert report.valid and len(report.columns) == 3000
    assert draft.count("\n    dtype: ") == 3000


def test_cr_only_line_ends_read_as_rows(tmp_path: Path) -> None:
    draft, report = _draft_then_validate(tmp_path, "cr.csv", b"a,b\r1,x\r2,y\r")
    assert report.valid and report.rows == 2 and report.columns == ["a", "b"]


def test_loosened_columns_say_why(tmp_path: Path) -> None:
    content = "\n".join(["t,money,at,blank_header_next", "12:00:00,\"1,234\",2017-01-01 00:00:00+0000,1",
                         "13:30:00,$5.00,2017-01-02 10:00:00+0100,2"]) + "\n"
    draft, report = _draft_then_validate(tmp_path, "d.csv", content.encode())
    assert report.valid
    assert "# 't': time of day" in draft and "# 'money': numbers written with thousands separators" in draft
    columns = yaml.safe_load(draft)["columns"]
    assert columns["at"]["dtype"] == "datetime64[ns, UTC]"
    assert columns["at"]["less_than_or_equal_to"] == "2017-01-02 09:00:00"


def test_a_column_that_changes_type_after_the_sample_is_kept_as_text(tmp_path: Path, monkeypatch) -> None:
    from tasks.datasets import drafting

    monkeypatch.setattr(drafting, "SAMPLE_ROWS", 3)
    rows = ["when"] + [f"2024-01-0{i % 9 + 1}" for i in range(20)] + ["soon"]
    draft, report = _draft_then_validate(tmp_path, "late.csv", ("\n".join(rows) + "\n").encode())
    assert report.valid
    assert yaml.safe_load(draft)["columns"]["when"]["dtype"] == "str" and "further down" in draft


@pytest.mark.parametrize("content, cause", [(b"", "empty"), (bytes(range(256)), "binary"),
                                            (b"\xff\xfea\x00,\x00b\x00", "UTF-16")])
def test_an_unreadable_file_is_one_line_naming_the_cause(tmp_path: Path, content: bytes, cause: str) -> None:
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(DataError, match=cause) as error:
        infer_schema_yaml(tmp_path / "bad.csv")
    assert "\n" not in str(error.value)


def _bomb(path: Path, size: int) -> None:
    """A small .xlsx whose shared strings expand to ``size`` bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as entry:
            entry.write(b'<sst><si><t>')
            chunk = b"A" * (1 << 20)
            for _ in range(size // len(chunk)):
                entry.write(chunk)
            entry.write(b"</t></si></sst>")


def test_an_xlsx_bomb_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    _bomb(path, 600 * 1024**2)
    assert path.stat().st_size < 2 * 1024**2
    with pytest.raises(DataError, match=r"xl/sharedStrings.xml would expand .* \(a zip bomb\?\)") as error:
        validate_dataset(dataset("bomb.xlsx"), tmp_path)
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="zip bomb"):
        infer_schema_yaml(path)


def test_a_wide_table_prints_a_summary(cli, tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(3000))
    (tmp_path / "wide.csv").write_text(header + "\n" + ",".join("1" for _ in range(3000)) + "\n")
    (tmp_path / "a.yaml").write_text("name: a\nprompt: x\ndatasets: [{name: w, path: wide.csv, schema: "
                                     "{columns: {c0: {dtype: int64}}}}]\n")
    result = cli("validate", tmp_path / "a.yaml")
    assert result.exit_code == 0, result.output
    assert "2,960 more columns" in result.output and len(result.output.splitlines()) < 80
