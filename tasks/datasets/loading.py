"""Read a dataset (local file or http(s) URL) into polars.

Readers, each given ``read_options`` as keyword arguments:

- csv: ``polars.scan_csv`` (the options of ``polars.read_csv``; ``columns`` selects columns),
  collected with the streaming engine. Defaults: ``infer_schema_length=10000``, and a tab
  separator for ``.tsv``.
- parquet: ``polars.scan_parquet``.
- json: ``polars.read_json`` for an array of records, ``polars.scan_ndjson`` for JSON lines
  (``.jsonl``/``.ndjson``, or a ``.json`` file whose first character is ``{``).
- xlsx: ``pandas.read_excel(engine="openpyxl")``, converted with ``polars.from_pandas``.

Scans stay lazy so that validation can parse columns while the file streams in, batch by batch
(``Reader.stream``): a 1 GB CSV never has to exist in memory as a whole.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pandas as pd
import polars as pl

from tasks.config.schema import DatasetConfig
from tasks.config.source_schema import is_object_store
from tasks.datasets.file_checks import copy_with_lf_line_ends, has_lone_carriage_returns, xlsx_bomb_reason
from tasks.datasets.sources import CredentialUnavailable, SourceAccess
from tasks.datasets.staging import needs_staging, restore_kept, stage_dataset
from tasks.errors import DataError

DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_SNIFF_BYTES = 64 * 1024
_MAX_RETYPED_COLUMNS = 16
BATCH_BYTES = 16 * 1024**2  # of parsed data per batch: pandera's fixed cost per run against the memory held
_MAX_BATCH_ROWS = 1_000_000
_SAMPLE_ROWS = 1_000
# polars' streaming CSV reader reads ahead in chunks of 32 MiB by default, several at once: ~300 MB held
# whatever the file's size. 4 MiB chunks read as fast (benchmarks/validate_large.py). polars reads this
# from the environment only, when a scan starts; set once, here, before any scan; a value the user set wins.
os.environ.setdefault("POLARS_CSV_CHUNK_SIZE", str(4 * 1024**2))
_UNPARSEABLE = re.compile(r"could not parse `(.*?)` as dtype `(.*?)` at column '(.*?)'")
_BOMS = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32",
         codecs.BOM_UTF16_LE: "UTF-16", codecs.BOM_UTF16_BE: "UTF-16"}


def source_of(dataset: DatasetConfig, base_dir: Path) -> str:
    """Where the data comes from, as shown to people: the URL, the resolved local path, or the
    query's connection by the name of where it is kept (never the URL: it may hold a password)."""
    if dataset.sql is not None:
        ref = dataset.sql.connection
        return f"query on {ref.block}" if ref.block else f"query on ${ref.env}"
    assert dataset.path is not None
    return dataset.path if dataset.is_url or is_object_store(dataset.path) else str(_local_path(dataset, base_dir))


def _local_path(dataset: DatasetConfig, base_dir: Path) -> Path:
    path = Path(str(dataset.path)).expanduser()
    return path if path.is_absolute() else (base_dir / path)


@contextmanager
def dataset_file(dataset: DatasetConfig, base_dir: Path, access: SourceAccess | None = None) -> Iterator[Path]:
    """A local file holding the dataset: the file itself, a download deleted on exit, or (for a
    query, object storage or a glob) the file fetched once into ``access.stage`` for the run; or the
    kept data that stands in for the source (``access.kept``)."""
    source = source_of(dataset, base_dir)
    if access is not None and dataset.name in access.kept:
        yield restore_kept(dataset, access.kept[dataset.name], access.stage)
        return
    if needs_staging(dataset):
        access = access or SourceAccess()  # held until exit: its stage folder goes with it
        yield stage_dataset(dataset, base_dir, access)
        return
    if not dataset.is_url:
        path = Path(source)
        if not path.exists():
            raise DataError(dataset.name, source, "file not found (a relative path is read from the config's folder)")
        if not path.is_file():
            raise DataError(dataset.name, source, "is not a file")
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="analyst-data-"))
    try:
        path = folder / f"{dataset.name}.{dataset.format}"
        _download(source, path, dataset.name, _headers(dataset, access))
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _headers(dataset: DatasetConfig, access: SourceAccess | None) -> dict[str, str]:
    credential = (access or SourceAccess()).credential if dataset.headers else None
    try:
        return {header: credential(ref) for header, ref in dataset.headers.items()} if credential else {}
    except CredentialUnavailable as exc:
        raise DataError(dataset.name, str(dataset.path), f"cannot read a header's value: {exc}") from None


def _download(url: str, dest: Path, name: str, headers: dict[str, str] | None = None) -> None:
    # Streamed to disk: a large file must not have to fit in memory twice.
    try:
        with httpx.stream("GET", url, headers=headers, timeout=DOWNLOAD_TIMEOUT,
                          follow_redirects=True) as response:
            if response.status_code >= 400:
                raise DataError(name, url, f"download failed: HTTP {response.status_code} {response.reason_phrase}")
            with dest.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
    except httpx.TimeoutException:
        raise DataError(name, url, f"download timed out (connect {DOWNLOAD_TIMEOUT.connect:.0f} s, "
                                   f"read {DOWNLOAD_TIMEOUT.read:.0f} s)") from None
    except httpx.HTTPError as exc:
        raise DataError(name, url, f"cannot download: {exc or type(exc).__name__}") from None


def read_dataset(dataset: DatasetConfig, base_dir: Path, access: SourceAccess | None = None) -> pl.DataFrame:
    """The whole dataset as a polars DataFrame, read as described in the module docstring."""
    with dataset_file(dataset, base_dir, access) as path:
        reader = Reader(dataset, path, source_of(dataset, base_dir))
        return reader.collect(reader.scan())


class Reader:
    """Reads one local file; turns every failure into a DataError that says what to fix."""

    def __init__(self, dataset: DatasetConfig, path: Path, source: str, *, staged: bool = True):
        """``staged``: ``path`` is the file the sandbox gets (Parquet for a query or concatenated
        files); False reads one of the files a glob matched, in the dataset's own format."""
        self.name, self.path, self.source = dataset.name, path, source
        self.original = path  # self.path may become a copy with LF line ends (file_checks.py)
        self.format = dataset.staged_format if staged else (dataset.format or "csv")
        # read_options are for the dataset's own format, not for the Parquet file its files became
        same = self.format == (dataset.format or "csv")
        self.options: dict[str, Any] = dict(dataset.read_options) if same else {}
        self.suffix = PurePosixPath((dataset.path or "").split("?", 1)[0]).suffix.lower()
        self.text_columns: set[str] = set()  # CSV columns re-read as text after a late parse error

    def error(self, message: str) -> DataError:
        return DataError(self.name, self.source, message)

    def scan(self) -> pl.LazyFrame:
        self._sniff()
        try:
            return self._scan()
        except (TypeError, ValueError) as exc:  # a read option the reader does not take
            raise self.error(f"read_options rejected by the {self.format} reader: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - readers raise many types; each becomes a DataError
            raise self._translate(exc) from None

    def collect(self, frame: pl.LazyFrame, build=lambda lf: lf) -> pl.DataFrame:
        """Collect ``build(frame)``. A CSV column whose type polars guessed from the first rows
        but which later holds other values is re-read as text, so that validation reports the
        offending values by row instead of the whole read failing."""
        while True:
            try:
                return build(frame).collect(engine="streaming")
            except pl.exceptions.ComputeError as exc:
                frame = self._rescan_as_text(exc)
            except Exception as exc:  # noqa: BLE001 - as in scan()
                raise self._translate(exc) from None

    def _rescan_as_text(self, exc: pl.exceptions.ComputeError) -> pl.LazyFrame:
        """The file scanned again with the CSV column that would not parse read as text; the error,
        translated, when it is not that or too many columns were re-read already."""
        match = _UNPARSEABLE.search(str(exc))
        if (self.format != "csv" or not match or match.group(3) in self.text_columns
                or len(self.text_columns) >= _MAX_RETYPED_COLUMNS):
            raise self._translate(exc) from None
        self.text_columns.add(match.group(3))
        return self.scan()

    def stream(self, frame: pl.LazyFrame, build: Callable[[pl.LazyFrame], pl.LazyFrame],
               start: Callable[[pl.LazyFrame], Callable[[pl.DataFrame], None]], rows: int | None = None) -> None:
        """Feed ``build(frame)`` to a consumer in batches, with polars' streaming engine, so that
        the whole table never sits in memory. ``start`` gets the query and returns the consumer;
        a CSV column re-read as text (as in ``collect``) starts the pass over with a new one.
        ``rows``: rows per batch (default: about ``BATCH_BYTES`` of data, from a sample)."""
        while True:
            try:
                query = build(frame)
                consume = start(query)
                for batch in query.collect_batches(chunk_size=rows or self._batch_rows(query)):
                    consume(batch)
                return
            except pl.exceptions.ComputeError as exc:
                frame = self._rescan_as_text(exc)
            except DataError:
                raise
            except Exception as exc:  # noqa: BLE001 - as in scan()
                raise self._translate(exc) from None

    def _batch_rows(self, query: pl.LazyFrame) -> int:
        sample = query.head(_SAMPLE_ROWS).collect(engine="streaming")
        per_row = sample.estimated_size() / max(sample.height, 1)
        return max(1, min(_MAX_BATCH_ROWS, int(BATCH_BYTES / max(per_row, 1))))

    def _scan(self) -> pl.LazyFrame:
        options = self.options
        if self.format == "csv":
            options = {"infer_schema_length": 10_000, **options}
            if self.suffix == ".tsv":
                options.setdefault("separator", "\t")
            if options.pop("use_pyarrow", None):
                raise self.error("read_options: use_pyarrow is not supported (the polars reader is used)")
            columns = options.pop("columns", None)
            if self.text_columns:
                options["schema_overrides"] = {**(options.get("schema_overrides") or {}),
                                               **{c: pl.String for c in self.text_columns}}
            frame = pl.scan_csv(self.path, **options)
            names = frame.collect_schema().names()
            if blank := {n: f"Unnamed: {i}" for i, n in enumerate(names) if not n.strip()}:
                frame = frame.rename(blank)  # pandas' names, which the analysis code will see
            if columns is not None:
                names = frame.collect_schema().names()
                frame = frame.select([names[c] if isinstance(c, int) else c for c in columns])
            return frame
        if self.format == "parquet":
            return pl.scan_parquet(self.path, **options)
        if self.format == "json":
            if self._json_lines():
                return pl.scan_ndjson(self.path, **options)
            return pl.read_json(self.path, **options).lazy()
        return self._read_xlsx().lazy()

    def _json_lines(self) -> bool:
        if self.suffix in (".jsonl", ".ndjson"):
            return True
        with self.path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES).lstrip(codecs.BOM_UTF8).lstrip()
        return head.startswith(b"{")

    def _read_xlsx(self) -> pl.DataFrame:
        frame = pd.read_excel(self.path, engine="openpyxl", **self.options)
        if isinstance(frame, dict):
            raise self.error("read_options: sheet_name must name one sheet, not several")
        frame.columns = [str(c) for c in frame.columns]
        try:
            return pl.from_pandas(frame)
        except Exception as exc:  # noqa: BLE001 - typically pyarrow refusing a column mixing numbers and text
            mixed = [c for c in frame.columns if frame[c].dtype == object
                     and frame[c].dropna().map(type).nunique() > 1]
            hint = f" (columns mixing types: {', '.join(mixed)})" if mixed else ""
            raise self.error(f"cannot convert the sheet to a table{hint}: {exc}") from None

    def _sniff(self) -> None:
        """Reject, with a clear reason, files the reader would crash on or misread silently."""
        with self.path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
        if not head:
            raise self.error("file is empty (0 bytes)")
        if self.format == "parquet" and not head.startswith(b"PAR1"):
            raise self.error("is not a Parquet file (no PAR1 signature)")
        if self.format == "xlsx":
            if head.startswith(b"\xd0\xcf\x11\xe0"):
                raise self.error("is a legacy .xls workbook: save it as .xlsx")
            if not head.startswith(b"PK"):
                raise self.error("is not an .xlsx workbook (an .xlsx file is a zip archive)")
            if reason := xlsx_bomb_reason(self.path):
                raise self.error(reason)
        if self.format not in ("csv", "json"):
            return
        for bom, encoding in _BOMS.items():  # UTF-16 text is valid UTF-8 byte-wise: polars would misread it
            if head.startswith(bom):
                raise self.error(f"is {encoding} text: save it as UTF-8")
        if b"\x00" in head:
            raise self.error(f"looks like a binary file, not {self.format.upper()} text (it contains NUL bytes)")
        if self.options.get("encoding", "utf8") == "utf8":
            try:
                codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _SNIFF_BYTES)
            except UnicodeDecodeError as exc:
                raise self.error(f"is not UTF-8 text (byte 0x{head[exc.start]:02x} at offset {exc.start}): "
                                 "save it as UTF-8, or set read_options encoding: utf8-lossy") from None
        if self.format == "csv" and self.path == self.original and has_lone_carriage_returns(head):
            self.path = copy_with_lf_line_ends(self.original)
            weakref.finalize(self, self.path.unlink, missing_ok=True)

    def _translate(self, exc: BaseException) -> DataError:
        if isinstance(exc, DataError):
            return exc
        text = str(exc).strip()
        first = text.split("\n\n", 1)[0].strip() or type(exc).__name__
        what = f"cannot read as {self.format.upper()}"
        if "more fields than defined" in text:
            return self.error(f"{what}: {self._ragged_line()} Fix the file, or set read_options "
                              "truncate_ragged_lines: true to drop the extra fields.")
        if "invalid utf-8" in text.lower():
            return self.error(f"{what}: it is not UTF-8 text; save it as UTF-8, or set read_options "
                              "encoding: utf8-lossy")
        if isinstance(exc, pl.exceptions.NoDataError):
            return self.error(f"{what}: the file holds no data ({first})")
        if match := _UNPARSEABLE.search(text):
            return self.error(f"{what}: column '{match.group(3)}' holds `{match.group(1)}`, which is not "
                              f"a {match.group(2)}; set read_options schema_overrides for that column")
        if self.format == "json" and self._json_lines() and self.suffix == ".json":
            first += " (expected a JSON array of records, or JSON lines: one object per line)"
        if isinstance(exc, OSError):
            return self.error(f"cannot read the file: {exc.strerror or exc}")
        return self.error(f"{what}: {first}")

    def _ragged_line(self) -> str:
        """Name the first line with too many fields (looks at the first million lines only)."""
        separator = self.options.get("separator", "\t" if self.suffix == ".tsv" else ",")
        try:
            with self.path.open(encoding="utf-8", errors="replace", newline="") as handle:
                rows = csv.reader(handle, delimiter=separator)
                header = next(rows)
                for row in rows:
                    if len(row) > len(header):
                        return f"line {rows.line_num} has {len(row)} fields but the header has {len(header)}."
                    if rows.line_num > 1_000_000:
                        break
        except (csv.Error, StopIteration, OSError):
            pass
        return "a row has more fields than the header."
