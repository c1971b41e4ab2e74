"""Stream a large query's result to Parquet (a SQL dataset), against polars reading the same query.

A throwaway PostgreSQL cluster (tests/scaleout/postgres.py) is loaded with dated rows by
``generate_series``; each row count is then read by (a) our SQL dataset reader, which streams the
result to a Parquet file in batches, and (b) polars' ``read_database_uri`` (connectorx), or, where
connectorx is not installed, ``read_database`` over a SQLAlchemy connection (the output says which).

Targets: our peak memory is bounded, whatever the row count (it barely moves from the smallest to
the largest count), and small beside the Parquet file it writes; our time <= 3x polars'.

    .venv/bin/python benchmarks/sql_source.py                         # 1M and 5M rows
    .venv/bin/python benchmarks/sql_source.py --rows 200000 --repeat 1

Each measurement runs in its own interpreter, so one's memory cannot inflate the other's peak;
the peak is the child's own peak RSS, VmHWM (imports included), the time is the read alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = "orders"
BATCH_ROWS = 50_000  # SqlSource.batch_rows' default
# A bounded peak: this many times the peak at the smallest row count, at the largest.
PEAK_GROWTH_TARGET = 1.25


def _query(rows: int) -> str:
    return f"SELECT id, day, region, amount, note FROM {TABLE} WHERE id <= {rows}"


def load(url: str, rows: int) -> None:
    """One table of ``rows`` dated rows, built by the server itself (no rows cross the wire)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute(f"""
            CREATE TABLE {TABLE} AS
            SELECT i AS id,
                   DATE '2020-01-01' + (i % 2191) AS day,
                   (ARRAY['north', 'south', 'east', 'west'])[1 + i % 4] AS region,
                   round((i % 100000) / 100.0, 2)::float8 AS amount,
                   CASE WHEN i % 10 = 0 THEN NULL ELSE 'order ' || i END AS note
            FROM generate_series(1, {rows}) AS i""")
        conn.execute(f"ANALYZE {TABLE}")


def _polars_reader() -> str:
    try:
        import connectorx  # noqa: F401
    except ImportError:
        return "read_database (SQLAlchemy + psycopg; connectorx is not installed)"
    return "read_database_uri (connectorx)"


def _child(mode: str, rows: int, out: str) -> None:
    """Runs in a fresh interpreter; prints one JSON line."""
    import polars as pl

    url = os.environ["BENCH_DB_URL"]

    query = _query(rows)
    if mode == "ours":
        sys.path.insert(0, str(ROOT))
        from tasks.config.schema import DatasetConfig
        from tasks.datasets.sources import SourceAccess
        from tasks.datasets.staging import stage_dataset

        dataset = DatasetConfig(name="orders", sql={"query": query, "connection": {"env": "BENCH_DB_URL"},
                                                    "batch_rows": BATCH_ROWS}, schema="unused.yaml")
        access = SourceAccess(stage=Path(out))
        started = time.perf_counter()
        dest = stage_dataset(dataset, Path(out), access)
        elapsed = time.perf_counter() - started
        info = {"rows": access.origins["orders"]["rows"], "parquet_bytes": dest.stat().st_size}
    elif _polars_reader().startswith("read_database_uri"):
        started = time.perf_counter()
        frame = pl.read_database_uri(query, url.replace("postgresql+psycopg", "postgresql"))
        elapsed = time.perf_counter() - started
        info = {"rows": frame.height}
    else:
        import sqlalchemy as sa

        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        started = time.perf_counter()
        with engine.connect() as connection:
            frame = pl.read_database(query, connection)
        elapsed = time.perf_counter() - started
        info = {"rows": frame.height}
    # VmHWM is this process's own peak; ru_maxrss would carry over the parent's peak through fork and exec
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
    print(json.dumps({"seconds": elapsed, "peak_bytes": peak, **info}))


def measure(mode: str, url: str, rows: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="sql-bench-") as out:
        # the URL (with its password) in the environment, not on a command line that `ps` shows
        result = subprocess.run([sys.executable, __file__, "--child", mode, str(rows), out],
                                env={**os.environ, "BENCH_DB_URL": url}, capture_output=True, text=True,
                                check=False)
    if result.returncode != 0:
        sys.exit(f"{mode} run at {rows:,} rows failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000],
                        help="row counts to read (default 1M and 5M)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, rows, out = args.child
        _child(mode, int(rows), out)
        return

    sys.path.insert(0, str(ROOT))
    from tests.scaleout.postgres import postgres_cluster

    counts = sorted(args.rows)
    with postgres_cluster() as cluster:
        cluster.create_database("bench")
        url = cluster.url("bench", driver="psycopg")
        print(f"loading {counts[-1]:,} rows into PostgreSQL...", flush=True)
        started = time.perf_counter()
        load(url, counts[-1])
        print(f"  loaded in {time.perf_counter() - started:.1f} s", flush=True)
        # Interleaved repeats; the fastest time (the least disturbed by other work on the machine)
        # and the highest peak count.
        results: dict[int, dict[str, dict]] = {}
        for rows in counts:
            runs: dict[str, list[dict]] = {"ours": [], "polars": []}
            for _ in range(args.repeat):
                for mode, found in runs.items():
                    found.append(measure(mode, url, rows))
            results[rows] = {}
            for mode, found in runs.items():
                best = min(found, key=lambda x: x["seconds"])
                best["peak_bytes"] = max(x["peak_bytes"] for x in found)
                results[rows][mode] = best

    print(f"query:   {_query(counts[-1]).replace(str(counts[-1]), 'N')} (5 columns: bigint, date, text, "
          f"float8, text with 10% NULL)")
    print(f"polars:  {_polars_reader()}")
    print(f"runs:    {args.repeat} of each; time = fastest run, peak = highest run (imports included); "
          f"ours in batches of {BATCH_ROWS:,} rows")
    print(f"{'rows':>11} | {'ours: time':>10} {'peak':>9} {'parquet':>9} | {'polars: time':>12} {'peak':>9} | "
          f"{'peak/parquet':>12} {'time/polars':>11} {'peak/polars':>11}")
    for rows, found in results.items():
        ours, theirs = found["ours"], found["polars"]
        assert ours["rows"] == theirs["rows"] == rows, (rows, ours["rows"], theirs["rows"])
        print(f"{rows:>11,} | {ours['seconds']:>8.2f} s {mib(ours['peak_bytes']):>9} "
              f"{ours['parquet_bytes'] / 2**20:>5.1f} MiB | "
              f"{theirs['seconds']:>10.2f} s {mib(theirs['peak_bytes']):>9} | "
              f"{ours['peak_bytes'] / ours['parquet_bytes']:>12.2f} {ours['seconds'] / theirs['seconds']:>11.2f} "
              f"{ours['peak_bytes'] / theirs['peak_bytes']:>11.2f}")
    smallest, largest = results[counts[0]]["ours"], results[counts[-1]]["ours"]
    growth = largest["peak_bytes"] / smallest["peak_bytes"]
    time_ratio = largest["seconds"] / results[counts[-1]]["polars"]["seconds"]
    print(f"our peak at {counts[-1]:,} / at {counts[0]:,} rows = {growth:.2f}  (target < {PEAK_GROWTH_TARGET}: "
          f"bounded)  {'PASS' if growth < PEAK_GROWTH_TARGET else 'FAIL'}")
    print(f"our time / polars time at {counts[-1]:,} rows = {time_ratio:.2f}  (target <= 3)  "
          f"{'PASS' if time_ratio <= 3 else 'FAIL'}")


if __name__ == "__main__":
    main()
