"""``outputs.keep_data``: the exact data a run analysed, saved as Parquet in its run folder
(data/<name>.parquet), so that a replay or a resume reads the same rows whatever the source holds by then.

A replay (``--replay RUN/transcript.json``) or a resume (``--resume RUN``) finds them next to the transcript,
in ``RUN/data/``: a dataset with a kept file there is read from it instead of its source."""

from __future__ import annotations

import shutil
from pathlib import Path

from tasks.config.schema import DatasetConfig

KEPT_FOLDER = "data"


def kept_path(run_dir: Path, dataset: DatasetConfig) -> Path:
    return run_dir / KEPT_FOLDER / f"{dataset.name}.parquet"


def kept_files(earlier_run: Path, datasets: list[DatasetConfig]) -> dict[str, Path]:
    """The kept files of ``earlier_run`` (its folder) by dataset name, for the datasets that have one."""
    found = {dataset.name: kept_path(earlier_run, dataset) for dataset in datasets}
    return {name: path for name, path in found.items() if path.is_file()}


def keep_data(dataset: DatasetConfig, local_path: Path, source: str, run_dir: Path,
              stand_in: Path | None = None) -> Path:
    """Save the file the sandbox got as Parquet: copied when it is Parquet already, else read by the
    dataset's own reader and written by polars' streaming engine. ``stand_in``: the kept file this run
    read instead of the source, copied as it is (its rows are the ones the first run analysed)."""
    dest = kept_path(run_dir, dataset)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if stand_in is not None:
        if stand_in.resolve() != dest.resolve():
            shutil.copyfile(stand_in, dest)
        return dest
    from tasks.datasets.loading import Reader  # noqa: PLC0415 - polars: finding kept files needs none

    reader = Reader(dataset, local_path, source)
    if reader.format == "parquet":
        shutil.copyfile(local_path, dest)
    else:
        reader.collect(reader.scan()).write_parquet(dest)
    return dest
