"""Validate a large CSV against a pandera schema, against the cost of merely reading it.

``infer-schema`` (the draft) is measured beside them. On request, a ~10 GB CSV, generated into a
temporary folder and deleted after, is validated alone (polars would need ~18 GB to read it).

Targets, on the ~1 GB file: ``validate_dataset``'s time <= 1.2x the time ``polars.read_csv``
alone takes on the same file, measured in the same run; its peak memory <= 0.5x the file's size.
On the ~10 GB file: it completes, with its time and peak reported.

    .venv/bin/python benchmarks/validate_large.py                          # ~1 GB, 10M rows (cached)
    .venv/bin/python benchmarks/validate_large.py --big-rows 100000000     # then ~10 GB (~10 min more)
    make bench                        # the same (BENCH_BIG_ROWS=100000000 there; BENCH_BIG_ROWS=0 skips it)
    .venv/bin/python benchmarks/validate_large.py --rows 200000

Each measurement runs in its own interpreter, so one's memory cannot inflate the other's peak;
the peak is the child's own peak RSS, VmHWM (imports included), the time is the call alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_ROWS = 100_000  # tasks.datasets.drafting.SAMPLE_ROWS, without importing the project here
DATA = Path(__file__).resolve().parent / "data"
DISTINCT_CHUNKS = 10
CATEGORIES = ["books", "garden", "toys", "grocery", "electronics", "clothing", "sports", "beauty"]

# The pandas-format YAML that pandera's to_yaml/infer_schema speak: what a user would write.
SCHEMA = r"""
schema_type: dataframe
columns:
  order_id: {dtype: int64, unique: true, greater_than_or_equal_to: 1}
  customer_id: {dtype: int64, in_range: {min_value: 1, max_value: 200000}}
  unit_price: {dtype: float64, greater_than_or_equal_to: 0, less_than_or_equal_to: 10000}
  discount: {dtype: float64, nullable: true, in_range: {min_value: 0, max_value: 1}}
  category: {dtype: str, isin: [books, garden, toys, grocery, electronics, clothing, sports, beauty]}
  email:
    dtype: str
    str_matches: '^[a-z0-9._]+@[a-z0-9-]+\.[a-z]+$'
    str_length: {max_value: 64}
  order_date:
    dtype: datetime64[ns]
    greater_than_or_equal_to: '2020-01-01 00:00:00'
    less_than_or_equal_to: '2025-12-31 00:00:00'
  created_at:
    dtype: datetime64[ns]
    greater_than_or_equal_to: '2020-01-01 00:00:00'
    less_than: '2026-01-01 00:00:00'
"""


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write the CSV in chunks of 1M rows (bounded memory); about 1 in 10,000 rows breaks a check.
    Past the first ``DISTINCT_CHUNKS``, chunks repeat with new order ids (a 10 GB file's failures are
    then ten times the 1 GB file's); writing the CSV text is most of the time."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    chunk = 1_000_000
    made: list[pl.DataFrame] = []
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            if len(made) == DISTINCT_CHUNKS:
                again = made[(start // chunk) % DISTINCT_CHUNKS].head(n).with_columns(
                    order_id=pl.int_range(start + 1, start + n + 1, dtype=pl.Int64))
                again.write_csv(out, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S")
                continue
            customer = rng.integers(1, 200_001, n)
            price = np.round(rng.uniform(0.5, 500.0, n), 2)
            discount = np.round(rng.uniform(0.0, 0.5, n), 3)
            bad = rng.random(n) < 1e-4
            price[bad] = -price[bad]
            category = np.array(CATEGORIES, dtype=object)[rng.integers(0, 8, n)]
            category[rng.random(n) < 1e-4] = "unknown"
            order_date = pl.Series(rng.integers(0, 2191, n) + 18262, dtype=pl.Int32).cast(pl.Date)  # 2020-2025
            frame = pl.DataFrame(
                {
                    "order_id": np.arange(start + 1, start + n + 1, dtype=np.int64),
                    "customer_id": customer,
                    "unit_price": price,
                    "discount": pl.Series(discount).set(pl.Series(rng.random(n) < 0.1), None),
                    "category": pl.Series(category, dtype=pl.String),
                    "domain": rng.integers(0, 50, n),
                    "order_date": order_date,
                    "seconds": rng.integers(0, 86_400, n),
                }
            ).select(
                "order_id", "customer_id", "unit_price", "discount", "category",
                pl.format("customer.{}@shop-{}.example", "customer_id", "domain").alias("email"),
                "order_date",
                (pl.col("order_date").cast(pl.Datetime("us")) + pl.duration(seconds="seconds")).alias("created_at"),
            )
            frame.write_csv(out, include_header=start == 0, datetime_format="%Y-%m-%d %H:%M:%S")
            if n == chunk:
                made.append(frame)
    tmp.replace(path)


def _child(mode: str, path: str, schema_path: str) -> None:
    """Runs in a fresh interpreter; prints one JSON line."""
    if mode == "read":
        import polars as pl

        started, cpu = time.perf_counter(), time.process_time()
        frame = pl.read_csv(path)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        info = {"rows": frame.height}
    elif mode == "draft":
        sys.path.insert(0, str(ROOT))
        from tasks.datasets import infer_schema_yaml

        started, cpu = time.perf_counter(), time.process_time()
        draft = infer_schema_yaml(path)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        info = {"rows": None, "columns": draft.count("    dtype:")}
    else:
        sys.path.insert(0, str(ROOT))
        from tasks.config.schema import DatasetConfig
        from tasks.datasets import validate_dataset

        dataset = DatasetConfig(name="large", path=path, schema=schema_path, on_invalid="warn")
        started, cpu = time.perf_counter(), time.process_time()
        report = validate_dataset(dataset, Path(path).parent)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        info = {"rows": report.rows, "valid": report.valid, "failure_count": report.failure_count,
                "by_check": [[c.column, c.check, c.count] for c in report.failures_by_check]}
    # VmHWM is this process's own peak; ru_maxrss would carry over the parent's peak through fork and exec
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "peak_bytes": peak, **info}))


def measure(mode: str, path: Path, schema_path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), str(schema_path)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        sys.exit(f"{mode} run failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--big-rows", type=int, default=int(os.environ.get("BENCH_BIG_ROWS", "0")),
                        help="rows of a large file generated and validated alone: 100000000 for ~10 GB, about "
                             "10 minutes here (default: $BENCH_BIG_ROWS, or 0: skipped)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"orders_{args.rows}.csv"
    schema_path = DATA / "orders_schema.yaml"
    schema_path.write_text(SCHEMA)
    if not path.exists():
        print(f"generating {path} ({args.rows:,} rows)...", flush=True)
        started = time.perf_counter()
        generate(path, args.rows)
        print(f"  generated in {time.perf_counter() - started:.1f} s", flush=True)

    size = path.stat().st_size
    # Interleaved repeats; the fastest time (the least disturbed by other work on the machine)
    # and the highest peak count.
    runs: dict[str, list[dict]] = {"read": [], "validate": [], "draft": []}
    for _ in range(args.repeat):
        for mode, results in runs.items():
            results.append(measure(mode, path, schema_path))
    read, validate, draft = (min(r, key=lambda x: x["seconds"]) for r in runs.values())
    read["peak_bytes"], validate["peak_bytes"], draft["peak_bytes"] = (
        max(x["peak_bytes"] for x in r) for r in runs.values())
    memory_ratio = validate["peak_bytes"] / size
    time_ratio = validate["seconds"] / read["seconds"]

    print(f"file:                 {path.name}, {mib(size)}, {read['rows']:,} rows, 8 columns"
          f"{'' if size > 500 * 2**20 else ' (small: imports dominate the peak; the targets are for ~1 GB)'}")
    print(f"runs:                 {args.repeat} of each; time = fastest run, peak = highest run (imports included)")
    print(f"(a) polars read_csv:  {read['seconds']:.2f} s (CPU {read['cpu_seconds']:.2f} s), peak "
          f"{mib(read['peak_bytes'])} (the baseline)")
    print(f"(b) validate_dataset: {validate['seconds']:.2f} s (CPU {validate['cpu_seconds']:.2f} s), peak "
          f"{mib(validate['peak_bytes'])}"
          f" (valid={validate['valid']}, {validate['failure_count']:,} failures)")
    print(f"(c) infer-schema:     {draft['seconds']:.2f} s, peak {mib(draft['peak_bytes'])} (types from the first "
          f"{SAMPLE_ROWS:,} rows, bounds from a streaming pass over the whole file)")
    for column, check, count in validate["by_check"]:
        print(f"      {column}: {check}: {count:,}")
    print(f"time (b) / time (a)     = {time_ratio:.2f}  (target <= 1.2)  {verdict(time_ratio <= 1.2)}")
    print(f"peak (b) / file size    = {memory_ratio:.2f}  (target <= 0.5)  {verdict(memory_ratio <= 0.5)}")
    print(f"peak (a) / file size    = {read['peak_bytes'] / size:.2f}  (polars' eager read, for comparison)")
    if args.big_rows:
        big(args.big_rows, schema_path)


def big(rows: int, schema_path: Path) -> None:
    """Generate a large file in a temporary folder, validate it once, delete it."""
    folder = Path(tempfile.mkdtemp(prefix="validate-large-", dir=DATA))
    try:
        path = folder / f"orders_{rows}.csv"
        print(f"generating {rows:,} rows into {folder} (deleted after)...", flush=True)
        started = time.perf_counter()
        generate(path, rows)
        size = path.stat().st_size
        print(f"  generated {mib(size)} in {time.perf_counter() - started:.0f} s", flush=True)
        result = measure("validate", path, schema_path)
        ratio = result["peak_bytes"] / size
        print(f"large file:           {path.name}, {mib(size)}, {result['rows']:,} rows, 1 run")
        print(f"(d) validate_dataset: {result['seconds']:.1f} s, peak {mib(result['peak_bytes'])} "
              f"(valid={result['valid']}, {result['failure_count']:,} failures)")
        print(f"peak (d) / file size    = {ratio:.3f}  (target: completes without running out of memory)  PASS")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
