"""Config models of where a dataset's data comes from beyond a file or a plain URL: a SQL query,
object storage and globs, HTTP headers. Credentials are named here (a Prefect block or an
environment variable), never written: the config is a text file that people copy and commit."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

BLOCK_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*/[a-z0-9]+(?:-[a-z0-9]+)*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
OBJECT_STORE_SCHEMES = ("s3://", "gs://", "az://")
GLOB_CHARS = ("*", "?", "[")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CredentialRef(_Strict):
    """Where a credential is kept: exactly one of a Prefect block or an environment variable."""

    block: str | None = Field(None, description=(
        "A Prefect block, as 'block-type/block-name': 'sqlalchemy-connector/warehouse' or "
        "'database-credentials/warehouse' for a database, 'secret/api-token' for a header "
        "(see `prefect block ls`)."))
    env: str | None = Field(None, description="An environment variable of the process that runs the flow.")

    @model_validator(mode="after")
    def _one(self) -> CredentialRef:
        if (self.block is None) == (self.env is None):
            raise ValueError("give exactly one of 'block' (a Prefect block, 'block-type/block-name') or 'env' "
                             "(an environment variable's name)")
        if self.block is not None and not BLOCK_SLUG.match(self.block):
            raise ValueError("'block' is a Prefect block as 'block-type/block-name', e.g. "
                             "'sqlalchemy-connector/warehouse' (this value is not shown, in case it is a secret)")
        if self.env is not None and not ENV_NAME.match(self.env):
            raise ValueError("'env' is the name of an environment variable (letters, digits and '_'), not its "
                             "value (this value is not shown, in case it is a secret)")
        return self


class SqlSource(_Strict):
    """A dataset read from a database by one query, streamed to a Parquet file."""

    query: str = Field(min_length=1, description=(
        "The SELECT to run. Rendered with the run's window before it runs; the rendered query is recorded "
        "in the run folder."))
    connection: CredentialRef = Field(description=(
        "The database: a Prefect SqlAlchemyConnector or DatabaseCredentials block (block: "
        "'sqlalchemy-connector/<name>'), or an environment variable holding a SQLAlchemy URL (env: NAME), "
        "e.g. postgresql+psycopg://user:password@host/db."))
    batch_rows: int = Field(50_000, ge=1, le=10_000_000, description=(
        "Rows fetched and written at a time: memory is bounded by one batch, whatever the result's size."))


Combine = Literal["concat", "latest"]


def is_glob(path: str) -> bool:
    return any(char in path for char in GLOB_CHARS) and not path.startswith(("http://", "https://"))


def is_object_store(path: str) -> bool:
    return path.startswith(OBJECT_STORE_SCHEMES)
