"""Globs over a bucket and a local folder, both combine modes. The bucket is moto's S3-compatible
server on loopback: it stands in for S3, and obstore talks to it as it would to AWS (not a mock of
our code)."""

from __future__ import annotations

import time

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tasks.config.schema import DatasetConfig
from tasks.datasets import read_dataset
from tasks.datasets.sources import SourceAccess
from tasks.errors import DataError
from tests.scaleout.processes import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket="exports")
    client.put_object(Bucket="exports", Key="daily/b-2026-01-01.csv", Body=b"day,amount\n2026-01-01,1\n2026-01-01,2\n")
    client.put_object(Bucket="exports", Key="daily/other.txt", Body=b"not matched")
    time.sleep(1.1)  # S3 keeps modification times in whole seconds: the next object is newer
    client.put_object(Bucket="exports", Key="daily/a-2026-01-02.csv", Body=b"day,amount\n2026-01-02,3\n")
    client.put_object(Bucket="exports", Key="odd/x.csv", Body=b"day,amount\n2026-01-01,1\n")
    client.put_object(Bucket="exports", Key="odd/y.csv", Body=b"day,total\n2026-01-01,1\n")
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                        "AWS_ENDPOINT": s3_endpoint, "AWS_ALLOW_HTTP": "true"}.items():
        monkeypatch.setenv(name, value)


def _dataset(path: str, combine: str | None = None) -> DatasetConfig:
    return DatasetConfig(name="daily", path=path, combine=combine, schema="unused.yaml")


def test_a_bucket_glob_concatenates_every_matching_file(s3_env, tmp_path):
    access = SourceAccess()
    frame = read_dataset(_dataset("s3://exports/daily/*.csv", "concat"), tmp_path, access)
    assert sorted(frame["amount"].to_list()) == [1, 2, 3]
    assert access.origins["daily"]["files"] == ["s3://exports/daily/a-2026-01-02.csv",
                                                "s3://exports/daily/b-2026-01-01.csv"]
    assert (access.stage / "daily.parquet").exists()


def test_a_bucket_glob_takes_only_the_newest_file(s3_env, tmp_path):
    access = SourceAccess()
    frame = read_dataset(_dataset("s3://exports/daily/*.csv", "latest"), tmp_path, access)
    assert frame["amount"].to_list() == [3]
    assert access.origins["daily"]["files"] == ["s3://exports/daily/a-2026-01-02.csv"]


def test_files_with_other_columns_are_refused_naming_both(s3_env, tmp_path):
    with pytest.raises(DataError, match=r"same columns in every file: s3://exports/odd/x.csv has \['day', "
                                        r"'amount'\], s3://exports/odd/y.csv has \['day', 'total'\]"):
        read_dataset(_dataset("s3://exports/odd/*.csv", "concat"), tmp_path, SourceAccess())


def test_a_glob_matching_nothing_says_so(s3_env, tmp_path):
    with pytest.raises(DataError, match=r"^dataset 'daily' \(s3://exports/none/\*.csv\): no file matches$"):
        read_dataset(_dataset("s3://exports/none/*.csv", "concat"), tmp_path, SourceAccess())


def test_a_local_folder_glob_concatenates_or_takes_the_newest(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "2.csv").write_text("day,amount\n2026-01-02,5\n")
    (tmp_path / "in" / "1.csv").write_text("day,amount\n2026-01-01,4\n")
    import os
    os.utime(tmp_path / "in" / "2.csv", (1_700_000_000, 1_700_000_000))  # the older file sorts last
    assert sorted(read_dataset(_dataset("in/*.csv", "concat"), tmp_path)["amount"].to_list()) == [4, 5]
    assert read_dataset(_dataset("in/*.csv", "latest"), tmp_path)["amount"].to_list() == [4]
