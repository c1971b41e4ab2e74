"""Checks and fixes on a data file's bytes, before a reader sees it.

- An .xlsx workbook is a zip archive: a small file can expand to gigabytes (one huge shared
  string took a 104 KB file past 3 GiB in openpyxl). The entries' sizes and ratios, as the zip
  directory declares them, are checked before anything is decompressed; a lying directory is
  caught while reading, since ``zipfile`` stops at the declared size.
- polars splits CSV lines on LF only: a file with CR-only line ends (old Mac exports) reads as one
  row of thousands of columns. Such a file is read from a copy with LF line ends.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

MAX_XLSX_ENTRY_BYTES = 512 * 1024**2   # one sheet's or the shared strings' XML, uncompressed
MAX_XLSX_TOTAL_BYTES = 1024**3
MAX_XLSX_RATIO = 200                   # sheet XML compresses 5-30x; a bomb, thousands of times
_RATIO_FLOOR_BYTES = 16 * 1024**2      # small entries may compress as well as they like
_CHUNK = 1 << 20


def xlsx_bomb_reason(path: Path) -> str | None:
    """Why this workbook must not be opened, or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        return f"cannot read as XLSX: an .xlsx workbook is a zip archive, and this one is not readable ({exc})"
    total = sum(e.file_size for e in entries)
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > MAX_XLSX_ENTRY_BYTES or (entry.file_size > _RATIO_FLOOR_BYTES and ratio > MAX_XLSX_RATIO):
            return (f"refused: its entry {entry.filename} would expand {_size(entry.compress_size)} to "
                    f"{_size(entry.file_size)} ({ratio:,.0f}:1), more than a workbook needs (a zip bomb?); "
                    "if the workbook is genuine, save the sheet as CSV and use that")
    if total > MAX_XLSX_TOTAL_BYTES:
        return (f"refused: it would expand to {_size(total)} in all (limit {_size(MAX_XLSX_TOTAL_BYTES)}); "
                "save the sheet as CSV and use that")
    return None


def has_lone_carriage_returns(head: bytes) -> bool:
    """Whether line ends in this start of a file include CR not followed by LF."""
    stripped = head[:-1] if head.endswith(b"\r") else head
    return b"\r" in stripped.replace(b"\r\n", b"")


def copy_with_lf_line_ends(path: Path) -> Path:
    """A temporary copy of ``path`` with CR and CRLF line ends turned into LF; the caller deletes it."""
    handle, name = tempfile.mkstemp(prefix="analyst-lf-", suffix=path.suffix)
    with os.fdopen(handle, "wb") as out, path.open("rb") as source:
        pending = b""
        while chunk := source.read(_CHUNK):
            chunk = pending + chunk
            pending = b"\r" if chunk.endswith(b"\r") else b""  # may be the first half of CRLF
            chunk = chunk[:-1] if pending else chunk
            out.write(chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        out.write(b"\n" if pending else b"")
    return Path(name)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"
