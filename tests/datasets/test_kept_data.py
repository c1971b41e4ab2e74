from __future__ import annotations

import polars as pl

from tasks.agent.fingerprint import data_fingerprint, file_sha256
from tasks.config.schema import DatasetConfig
from tasks.datasets import dataset_file, source_of
from tasks.datasets.kept_data import keep_data
from tasks.datasets.sources import SourceAccess


def test_kept_data_is_the_rows_the_run_read_even_after_the_source_changes(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("day,amount\n2026-01-01,1\n")
    (tmp_path / "in" / "b.csv").write_text("day,amount\n2026-01-02,2\n")
    dataset = DatasetConfig(name="daily", path="in/*.csv", combine="concat", schema="unused.yaml")
    access = SourceAccess()
    with dataset_file(dataset, tmp_path, access) as path:
        kept = keep_data(dataset, path, source_of(dataset, tmp_path), tmp_path / "run")
        digest = file_sha256(path)
    (tmp_path / "in" / "c.csv").write_text("day,amount\n2026-01-03,3\n")
    assert kept == tmp_path / "run" / "data" / "daily.parquet"
    assert sorted(pl.read_parquet(kept)["amount"].to_list()) == [1, 2]
    record = data_fingerprint(source_of(dataset, tmp_path), 2, ["day", "amount"], digest,
                              access.origins["daily"], window=None)
    assert record["files"] == [str(tmp_path / "in" / "a.csv"), str(tmp_path / "in" / "b.csv")]
    assert record["content_hash"].startswith("sha256:") and record["rows"] == 2


def test_a_csv_is_kept_as_parquet(tmp_path):
    (tmp_path / "s.csv").write_text("x,y\n1,a\n2,b\n")
    dataset = DatasetConfig(name="s", path="s.csv", schema="unused.yaml")
    kept = keep_data(dataset, tmp_path / "s.csv", "s.csv", tmp_path / "run")
    assert pl.read_parquet(kept).to_dicts() == [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]


def test_kept_rows_go_back_to_the_sandbox_in_the_format_it_got(tmp_path):
    from tasks.datasets.kept_data import kept_files
    from tasks.datasets.sources import SourceAccess

    (tmp_path / "s.csv").write_text("x;y\n1;a\n2;b\n")
    dataset = DatasetConfig(name="s", path="s.csv", schema="unused.yaml", read_options={"separator": ";"})
    keep_data(dataset, tmp_path / "s.csv", "s.csv", tmp_path / "run")
    (tmp_path / "s.csv").write_text("x;y\n9;z\n")
    access = SourceAccess(kept=kept_files(tmp_path / "run", [dataset]))
    with dataset_file(dataset, tmp_path, access) as path:
        assert path.name == "s.csv" and path.read_text() == "x;y\n1;a\n2;b\n"
    assert kept_files(tmp_path / "elsewhere", [dataset]) == {}
