"""SQL datasets against a real PostgreSQL cluster (Debian's binaries on loopback, tests/scaleout/postgres.py)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
import pytest

from tasks.config.schema import DatasetConfig
from tasks.datasets import read_dataset
from tasks.datasets.sources import SourceAccess
from tasks.errors import DataError
from tests.scaleout.conftest import postgres  # noqa: F401 - the session's cluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sales_url(postgres):  # noqa: F811
    postgres.create_database("sales")
    url = postgres.url("sales", driver="psycopg")
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("CREATE TABLE orders (day date, region text, amount numeric(10,2), note text)")
        with conn.cursor().copy("COPY orders FROM STDIN") as copy:
            for i in range(1000):
                day = dt.date(2026, 1, 1) + dt.timedelta(days=i % 60)
                copy.write_row((day, ["north", "south"][i % 2], i / 4, None if i < 600 else "late: 10:00 %"))
    return url


def _dataset(query: str, env: str = "SALES_DB_URL") -> DatasetConfig:
    return DatasetConfig(name="orders", sql={"query": query, "connection": {"env": env}, "batch_rows": 128},
                         schema="unused.yaml")


def test_a_templated_query_streams_to_parquet_and_is_recorded(sales_url, monkeypatch, tmp_path):
    monkeypatch.setenv("SALES_DB_URL", sales_url)
    access = SourceAccess(render=lambda text: text.replace("{{ start }}", "2026-02-01"))
    dataset = _dataset("SELECT day, region, amount, note FROM orders WHERE day >= '{{ start }}' ORDER BY day")
    frame = read_dataset(dataset, tmp_path, access)
    expected = sum(1 for i in range(1000) if i % 60 >= 31)
    assert frame.height == expected and frame.columns == ["day", "region", "amount", "note"]
    assert frame["day"].dtype == pl.Date and frame["day"].min() == dt.date(2026, 2, 1)
    # the first batches hold only NULL notes: the later text still lands as text
    assert frame["note"].dtype == pl.String and frame["note"].drop_nulls().str.contains("10:00 %").all()
    origin = access.origins["orders"]
    assert origin["query"].endswith("WHERE day >= '2026-02-01' ORDER BY day") and origin["rows"] == expected
    assert "***" in origin["connection"] and sales_url.split(":")[2].split("@")[0] not in origin["connection"]
    assert dataset.sandbox_filename == "orders.parquet"


def test_a_wrong_password_is_one_line_naming_the_dataset_without_the_password(sales_url, monkeypatch, tmp_path):
    password = sales_url.split(":")[2].split("@")[0]
    monkeypatch.setenv("SALES_DB_URL", sales_url.replace(password, password + "-wrong"))
    with pytest.raises(DataError) as caught:
        read_dataset(_dataset("SELECT 1"), tmp_path, SourceAccess())
    message = str(caught.value)
    assert message.startswith("dataset 'orders' (query on $SALES_DB_URL): the query failed: ")
    assert "password authentication failed" in message and "\n" not in message and password not in message


def test_a_bad_query_is_one_line_naming_the_dataset(sales_url, monkeypatch, tmp_path):
    monkeypatch.setenv("SALES_DB_URL", sales_url)
    with pytest.raises(DataError) as caught:
        read_dataset(_dataset("SELECT no_such_column FROM orders"), tmp_path, SourceAccess())
    message = str(caught.value)
    assert message.startswith("dataset 'orders' (query on $SALES_DB_URL): the query failed: ")
    assert 'column "no_such_column" does not exist' in message and "\n" not in message


def test_a_connection_variable_that_is_not_set_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv("NO_SUCH_DB_URL", raising=False)
    with pytest.raises(DataError, match=r"^dataset 'orders' .*the environment variable NO_SUCH_DB_URL is not set$"):
        read_dataset(_dataset("SELECT 1", env="NO_SUCH_DB_URL"), tmp_path, SourceAccess())
