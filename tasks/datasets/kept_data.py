"""``outputs.keep_data``: the exact data a run analysed, saved as Parquet in its run folder
(data/<name>.parquet), so that a replay or a resume reads the same rows whatever the source holds by then."""

from __future__ import annotations

import shutil
from pathlib import Path

from tasks.config.schema import DatasetConfig
from tasks.datasets.loading import Reader

KEPT_FOLDER = "data"


def kept_path(run_dir: Path, dataset: DatasetConfig) -> Path:
    return run_dir / KEPT_FOLDER / f"{dataset.name}.parquet"


def keep_data(dataset: DatasetConfig, local_path: Path, source: str, run_dir: Path) -> Path:
    """Save the file the sandbox got as Parquet: copied when it is Parquet already, else read by the
    dataset's own reader and written by polars' streaming engine."""
    dest = kept_path(run_dir, dataset)
    dest.parent.mkdir(parents=True, exist_ok=True)
    reader = Reader(dataset, local_path, source)
    if reader.format == "parquet":
        shutil.copyfile(local_path, dest)
    else:
        reader.collect(reader.scan()).write_parquet(dest)
    return dest
