"""Fetch a dataset that is not one local file into the run's stage folder, once per run: a query's
result, an object in a bucket, or the files of a glob (the newest one, or all of them as one table);
or, on a replay or resume, the data an earlier run kept (``outputs.keep_data``) in its place.

Once: validation and the upload then see the same bytes, however the database or bucket moves on.
What was fetched (the rendered query, the files a glob matched) is kept in ``access.origins``.
"""

from __future__ import annotations

import glob
import shutil
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
from sqlalchemy import make_url

from tasks.config.schema import DatasetConfig
from tasks.config.source_schema import is_glob, is_object_store
from tasks.datasets import object_store
from tasks.datasets.sources import CredentialUnavailable, SourceAccess
from tasks.datasets.sql import first_line, masked, query_to_parquet
from tasks.errors import DataError


def needs_staging(dataset: DatasetConfig) -> bool:
    path = dataset.path or ""
    return dataset.sql is not None or is_object_store(path) or is_glob(path)


def stage_dataset(dataset: DatasetConfig, base_dir: Path, access: SourceAccess) -> Path:
    dest = access.stage / dataset.sandbox_filename
    if dataset.name in access.origins and dest.exists():
        return dest
    dest.unlink(missing_ok=True)
    if dataset.sql is not None:
        origin = _run_query(dataset, access, dest)
    else:
        origin = _fetch_files(dataset, base_dir, access, dest)
    access.origins[dataset.name] = origin
    return dest


def _run_query(dataset: DatasetConfig, access: SourceAccess, dest: Path) -> dict:
    from tasks.datasets.loading import source_of  # noqa: PLC0415 - an import cycle: loading imports this module

    assert dataset.sql is not None
    source = source_of(dataset, Path())
    try:
        url = access.credential(dataset.sql.connection)
    except CredentialUnavailable as exc:
        raise DataError(dataset.name, source, f"no database connection: {exc}") from None
    query = access.render(dataset.sql.query)
    password = _password(url)
    try:
        rows = query_to_parquet(url, query, dest, dataset.sql.batch_rows)
    except Exception as exc:  # noqa: BLE001 - drivers raise many types; each becomes one line without secrets
        dest.unlink(missing_ok=True)
        raise DataError(dataset.name, source, f"the query failed: {first_line(exc, (password, url))}") from None
    return {"query": query, "connection": masked(url), "rows": rows}


def _password(url: str) -> str:
    try:
        return make_url(url).password or ""
    except Exception:  # noqa: BLE001 - then the whole URL is what is cut out of messages
        return ""


def _fetch_files(dataset: DatasetConfig, base_dir: Path, access: SourceAccess, dest: Path) -> dict:
    from tasks.datasets.loading import Reader, source_of  # noqa: PLC0415 - an import cycle, as above

    assert dataset.path is not None
    source = source_of(dataset, base_dir)
    remote = is_object_store(dataset.path)
    try:
        options = access.storage_options(dataset.credentials) if remote else {}
        files = object_store.matching(dataset.path, options) if remote else _local_matches(source)
    except CredentialUnavailable as exc:
        raise DataError(dataset.name, source, f"no storage credentials: {exc}") from None
    except (FileNotFoundError, OSError, ValueError, RuntimeError) as exc:
        raise DataError(dataset.name, source, f"cannot list the files: {first_line(exc, ())}") from None
    if not files:
        raise DataError(dataset.name, source, "no file matches" + (" (a relative glob is read from the config's "
                                                                    "folder)" if not remote else ""))
    if not is_glob(dataset.path) or dataset.combine == "latest":
        newest = max(files, key=lambda f: f.modified)
        _fetch(dataset, newest.url, dest, options, remote)
        return {"files": [newest.url]}
    parts = dest.parent / f"{dataset.name}-parts"
    parts.mkdir(exist_ok=True)
    try:
        frames, first = [], None
        for index, file in enumerate(files):
            local = parts / f"{index:06d}{Path(file.url).suffix}"
            _fetch(dataset, file.url, local, options, remote)
            frame = Reader(dataset, local, file.url, staged=False).scan()
            schema = frame.collect_schema()
            if first is None:
                first = (file.url, schema)
            elif schema.names() != first[1].names():
                raise DataError(dataset.name, source, f"combine: concat needs the same columns in every file: "
                                                      f"{first[0]} has {first[1].names()}, {file.url} has "
                                                      f"{schema.names()}")
            frames.append(frame)
        try:
            pl.concat(frames, how="vertical_relaxed").sink_parquet(dest)
        except Exception as exc:  # noqa: BLE001 - polars' many errors: one line naming the dataset
            raise DataError(dataset.name, source, f"cannot concatenate the files: {first_line(exc, ())}") from None
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return {"files": [f.url for f in files]}


def _local_matches(pattern: str) -> list[object_store.RemoteFile]:
    paths = [Path(p) for p in glob.glob(pattern, recursive=True)] if is_glob(pattern) else [Path(pattern)]
    return [object_store.RemoteFile(str(p), datetime.fromtimestamp(p.stat().st_mtime, timezone.utc))
            for p in sorted(paths) if p.is_file()]


def _fetch(dataset: DatasetConfig, url: str, dest: Path, options: dict[str, str], remote: bool) -> None:
    try:
        if remote:
            object_store.download(url, dest, options)
        else:
            shutil.copyfile(url, dest)
    except Exception as exc:  # noqa: BLE001 - obstore's and the OS's errors: one line naming the file
        dest.unlink(missing_ok=True)
        raise DataError(dataset.name, url, f"cannot fetch: {first_line(exc, ())}") from None


def restore_kept(dataset: DatasetConfig, kept: Path, stage: Path) -> Path:
    """The kept Parquet file in the format the sandbox got, under the same name, so that the recorded
    code reads it as it read the source. A kept Parquet file is the staged file itself; other formats
    are written back from its rows (a CSV with the separator its read_options name)."""
    fmt = dataset.staged_format
    if fmt == "parquet":
        return kept
    dest = stage / "kept" / dataset.sandbox_filename
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    frame = pl.read_parquet(kept)
    if fmt == "csv":
        tsv = (dataset.path or "").split("?", 1)[0].lower().endswith(".tsv")
        frame.write_csv(dest, separator=dataset.read_options.get("separator", "\t" if tsv else ","))
    elif fmt == "json":
        if (dataset.path or "").split("?", 1)[0].lower().endswith((".jsonl", ".ndjson")):
            frame.write_ndjson(dest)
        else:
            frame.write_json(dest)
    else:
        frame.to_pandas().to_excel(dest, index=False, engine="openpyxl")
    return dest
