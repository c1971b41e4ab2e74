"""A SQL dataset whose connection is a Prefect SqlAlchemyConnector block, saved on a real local
Prefect server and pointing at a real PostgreSQL cluster: the rows arrive through `analyst validate`
and the validate step, and the block's password shows nowhere, not even when it is wrong."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml

from tasks.config import load_config
from tests.scaleout.conftest import postgres  # noqa: F401 - the session's cluster

pytestmark = pytest.mark.slow

SCHEMA = {"schema_type": "dataframe",
          "columns": {"day": {"dtype": "datetime64[ns]"}, "region": {"dtype": "str", "isin": ["north", "south"]},
                      "amount": {"dtype": "float64", "greater_than_or_equal_to": 0}}}


@pytest.fixture(scope="module")
def shop_database(postgres):  # noqa: F811
    postgres.create_database("shop")
    url = postgres.url("shop", driver="psycopg").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE orders AS SELECT DATE '2026-01-01' + (i % 30) AS day, "
                     "(ARRAY['north', 'south'])[1 + i % 2] AS region, (i / 4.0)::float8 AS amount "
                     "FROM generate_series(1, 250) AS i")
    return postgres


def _save_connector(cluster, password: str) -> str:
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector

    name = f"shop-{uuid.uuid4().hex[:8]}"
    SqlAlchemyConnector(connection_info=ConnectionComponents(
        driver="postgresql+psycopg", username=cluster.user, password=password, host=cluster.host,
        port=cluster.port, database="shop")).save(name)
    return f"sqlalchemy-connector/{name}"


def _save_secret_url(cluster) -> str:
    from prefect.blocks.system import Secret

    name = f"shop-url-{uuid.uuid4().hex[:8]}"
    Secret(value=cluster.url("shop", driver="psycopg")).save(name)
    return f"secret/{name}"


def _config(folder: Path, block: str) -> Path:
    (folder / "orders.schema.yaml").write_text(yaml.safe_dump(SCHEMA))
    config = folder / "shop.yaml"
    config.write_text(yaml.safe_dump({
        "name": "shop", "prompt": "x",
        "datasets": [{"name": "orders", "schema": "orders.schema.yaml",
                      "sql": {"query": "SELECT day, region, amount FROM orders ORDER BY day",
                              "connection": {"block": block}}}]}))
    return config


@pytest.mark.parametrize("kind", ["connector", "secret"])
def test_analyst_validate_reads_the_rows_through_a_block(kind, shop_database, prefect_api, cli, tmp_path):
    block = (_save_connector(shop_database, shop_database.password) if kind == "connector"
             else _save_secret_url(shop_database))
    config = _config(tmp_path, block)
    result = cli("validate", config, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] and report["datasets"][0]["rows"] == 250
    assert shop_database.password not in result.output


def test_the_validate_step_reads_the_rows_through_a_connector_block(shop_database, prefect_api, tmp_path):
    from tasks.prefect.validate import validate_datasets

    loaded = load_config(_config(tmp_path, _save_connector(shop_database, shop_database.password)))
    [report] = validate_datasets(loaded)
    assert report.valid and report.rows == 250


def test_a_wrong_password_in_the_block_fails_in_one_line_without_it(shop_database, prefect_api, cli, tmp_path):
    wrong = shop_database.password + "-Wrong"
    config = _config(tmp_path, _save_connector(shop_database, wrong))
    result = cli("validate", config)
    assert result.exit_code == 1, result.output
    assert "password authentication failed" in result.output
    assert wrong not in result.output and shop_database.password not in result.output
