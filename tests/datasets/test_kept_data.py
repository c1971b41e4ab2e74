from __future__ import annotations

import polars as pl
import psycopg
import pytest

from tasks.agent.fingerprint import data_fingerprint, file_sha256
from tasks.config.schema import DatasetConfig
from tasks.datasets import dataset_file, read_dataset, source_of
from tasks.datasets.kept_data import keep_data, kept_files
from tasks.datasets.sources import SourceAccess
from tests.scaleout.conftest import postgres  # noqa: F401 - the session's cluster


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
    (tmp_path / "s.csv").write_text("x;y\n1;a\n2;b\n")
    dataset = DatasetConfig(name="s", path="s.csv", schema="unused.yaml", read_options={"separator": ";"})
    keep_data(dataset, tmp_path / "s.csv", "s.csv", tmp_path / "run")
    (tmp_path / "s.csv").write_text("x;y\n9;z\n")
    access = SourceAccess(kept=kept_files(tmp_path / "run", [dataset]))
    with dataset_file(dataset, tmp_path, access) as path:
        assert path.name == "s.csv" and path.read_text() == "x;y\n1;a\n2;b\n"
    assert kept_files(tmp_path / "elsewhere", [dataset]) == {}


@pytest.mark.slow
def test_a_query_replays_on_the_kept_rows_after_the_table_changed(postgres, monkeypatch, tmp_path):  # noqa: F811
    postgres.create_database("kept")
    url = postgres.url("kept", driver="psycopg")
    plain = url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(plain) as conn:
        conn.execute("CREATE TABLE orders AS SELECT g AS id, g * 2.5 AS amount FROM generate_series(1, 300) g")
    monkeypatch.setenv("KEPT_DB_URL", url)
    dataset = DatasetConfig(name="orders", sql={"query": "SELECT id, amount FROM orders ORDER BY id",
                                                "connection": {"env": "KEPT_DB_URL"}}, schema="unused.yaml")
    first = SourceAccess()
    with dataset_file(dataset, tmp_path, first) as path:
        keep_data(dataset, path, source_of(dataset, tmp_path), tmp_path / "run")
        digest = file_sha256(path)
    with psycopg.connect(plain) as conn:
        conn.execute("INSERT INTO orders SELECT g, 0 FROM generate_series(301, 350) g")

    replay = SourceAccess(kept=kept_files(tmp_path / "run", [dataset]))
    frame = read_dataset(dataset, tmp_path, replay)
    assert frame.height == 300 and frame["id"].max() == 300
    assert replay.origins == {}  # the query did not run again
    with dataset_file(dataset, tmp_path, replay) as path:
        assert file_sha256(path) == digest  # the sandbox gets the very bytes the first run got
