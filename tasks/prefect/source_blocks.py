"""The Prefect side of reading datasets: load the blocks a config names (SqlAlchemyConnector,
Secret, AwsCredentials, GcpCredentials) and hand the domain their plain values through a
``SourceAccess``. One per loaded config, so validation and the upload share what was fetched."""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Callable
from pathlib import Path

from prefect import get_run_logger

from prefect.blocks.core import Block

from tasks.config import LoadedConfig
from tasks.config.source_schema import CredentialRef
from tasks.datasets.kept_data import kept_files
from tasks.datasets.sources import CredentialUnavailable, SourceAccess

_ACCESS: dict[int, SourceAccess] = {}


def source_access(loaded: LoadedConfig, render: Callable[[str], str] | None = None) -> SourceAccess:
    """The run's SourceAccess for ``loaded`` (made on the first call; ``render`` renders queries)."""
    key = id(loaded)
    if key not in _ACCESS:
        access = SourceAccess(credential=credential, storage_options=storage_options)
        if render is not None:
            access.render = render
        _ACCESS[key] = access
        weakref.finalize(loaded, _ACCESS.pop, key, None)
    return _ACCESS[key]


def use_kept_data(loaded: LoadedConfig, earlier_transcript: Path | None) -> dict[str, Path]:
    """Read each dataset that the run at ``earlier_transcript`` kept (``outputs.keep_data``: data/<name>.parquet
    beside its transcript) from that file instead of its source, and say so in the run's log."""
    if earlier_transcript is None:
        return {}
    kept = kept_files(earlier_transcript.parent, loaded.config.datasets)
    source_access(loaded).kept.update(kept)
    for name, path in kept.items():
        get_run_logger().info("Dataset %s: reading the data the earlier run kept (%s) instead of its source",
                              name, path)
    return kept


def _load(slug: str):
    try:
        return Block.load(slug)
    except ValueError as exc:  # Prefect's "Unable to find block document named ..."
        raise CredentialUnavailable(f"no block {slug} (see `prefect block ls`): {str(exc).splitlines()[0]}") from None


def credential(ref: CredentialRef) -> str:
    """A database URL or a token: a SqlAlchemyConnector's URL, a Secret's value, or the environment's."""
    if ref.env is not None:
        if not (value := os.environ.get(ref.env)):
            raise CredentialUnavailable(f"the environment variable {ref.env} is not set")
        return value
    assert ref.block is not None
    block = _load(ref.block)
    info = getattr(block, "connection_info", None)
    if info is not None:  # prefect-sqlalchemy's SqlAlchemyConnector
        url = info.create_url() if hasattr(info, "create_url") else info
        return url if isinstance(url, str) else url.render_as_string(hide_password=False)
    if hasattr(block, "get"):  # a Secret block
        value = block.get()
        return value if isinstance(value, str) else json.dumps(value)
    raise CredentialUnavailable(f"the block {ref.block} is a {type(block).__name__}: expected a "
                                "SqlAlchemyConnector (a database) or a Secret (a token)")


def storage_options(slug: str | None) -> dict[str, str]:
    """obstore's config from an AwsCredentials or GcpCredentials block; None: the environment."""
    if slug is None:
        return {}
    block = _load(slug)
    kind = type(block).__name__
    if kind == "AwsCredentials":
        secret = block.aws_secret_access_key
        params = getattr(block, "aws_client_parameters", None)
        values = {"aws_access_key_id": block.aws_access_key_id,
                  "aws_secret_access_key": secret.get_secret_value() if secret else None,
                  "aws_session_token": block.aws_session_token, "aws_region": block.region_name,
                  "aws_endpoint": getattr(params, "endpoint_url", None)}
        return {key: value for key, value in values.items() if value}
    if kind == "GcpCredentials":
        if block.service_account_file:
            return {"google_service_account": str(block.service_account_file)}
        if block.service_account_info:
            return {"google_service_account_key": json.dumps(block.service_account_info.get_secret_value())}
        return {}
    raise CredentialUnavailable(f"the block {slug} is a {kind}: expected AwsCredentials or GcpCredentials")
