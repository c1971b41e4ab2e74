"""Stream a query's result to a Parquet file, one batch of rows at a time.

SQLAlchemy with a server-side cursor (``stream_results``): every database it has a driver for, and
memory bounded by one batch. Each batch is written as its own Parquet part, then the parts are
concatenated by polars' streaming engine with types relaxed to a common supertype, so a column
that is all NULL in one batch and numbers in the next still lands as numbers.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import polars as pl
import sqlalchemy as sa


def masked(url: str) -> str:
    """The URL as shown to people: the password hidden (never logged, stored or reported)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL is not shown at all: it may hold a password anywhere
        return "<database URL that SQLAlchemy cannot parse>"


def query_to_parquet(url: str, query: str, dest: Path, batch_rows: int) -> int:
    """Run ``query`` and write its rows to ``dest``; returns the number of rows."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    parts = Path(tempfile.mkdtemp(prefix="sql-parts-", dir=dest.parent))
    rows = 0
    try:
        with engine.connect() as connection:
            # exec_driver_sql: the query goes to the driver as written; text() would read ':name' as a parameter
            result = connection.execution_options(stream_results=True, max_row_buffer=batch_rows,
                                                  yield_per=batch_rows).exec_driver_sql(query)
            columns = list(result.keys())
            paths = []
            for index, batch in enumerate(result.partitions(batch_rows)):
                frame = pl.DataFrame(batch, schema=columns, orient="row", infer_schema_length=None)
                paths.append(parts / f"{index:07d}.parquet")
                frame.write_parquet(paths[-1])
                rows += frame.height
        if not paths:
            pl.DataFrame(schema={c: pl.Null for c in columns}).write_parquet(dest)
        else:
            pl.concat([pl.scan_parquet(p) for p in paths], how="vertical_relaxed").sink_parquet(dest)
    finally:
        engine.dispose()
        shutil.rmtree(parts, ignore_errors=True)
    return rows


def first_line(exc: BaseException, secrets: tuple[str, ...]) -> str:
    """The driver's own message, first line only, any secret cut out (SQLAlchemy appends the SQL)."""
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
