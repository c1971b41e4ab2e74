"""What a run's results depend on beyond its conversation: the bytes of its data and the sandbox
settings that shape what its code can do. Recorded in the transcript; a resume with other values is
refused, since the recorded outputs would no longer be what the code produces."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.config.schema import SandboxConfig, parse_size
from tasks.datasets.report import DatasetReport

# Settings that change what the code sees or may do. Left out: how long Daytona keeps a stopped
# sandbox, where it runs, and which secret holds its key.
SHAPING_SETTINGS = ("provider", "isolation", "stateful", "memory", "cpus", "disk", "timeout", "max_output_chars",
                    "network", "snapshot", "image")


def sandbox_settings(config: SandboxConfig) -> dict[str, Any]:
    """The shaping settings, sizes in bytes (``4GiB`` and ``4096MiB`` are the same setting)."""
    values = {name: getattr(config, name) for name in SHAPING_SETTINGS}
    for size in ("memory", "disk"):
        if values[size] is not None:
            values[size] = parse_size(values[size])
    return values


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def changed(earlier: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The keys whose values differ, in a stable order (a key only one side has counts)."""
    return sorted(key for key in earlier.keys() | now.keys() if earlier.get(key) != now.get(key))


def data_fingerprint(source: str, rows: int, columns: list[str], content_hash: str,
                     origin: dict[str, Any] | None = None, window: Any = None) -> dict[str, Any]:
    """What a run records of one dataset, for its transcript and its report's data section: where it came
    from (path or URL, the rendered query and its masked connection, a glob's files), its rows and columns,
    the hash of the bytes the sandbox got, and the run's window."""
    return {"source": source, **(origin or {}), "rows": rows, "columns": columns, "content_hash": content_hash,
            "window": window}


@dataclass
class UploadedData:
    """What the upload saw of each dataset, by name: hashed while the file was read for the upload, so
    that recording it reads no data again."""

    digests: dict[str, str] = field(default_factory=dict)  # of the bytes the sandbox got
    origins: dict[str, dict[str, Any]] = field(default_factory=dict)  # the rendered query, a glob's files
    kept: dict[str, str] = field(default_factory=dict)  # the run folder's kept file (data/<name>.parquet)
    kept_hashes: dict[str, str] = field(default_factory=dict)
    # An earlier run's kept files, read instead of the sources (a replay or resume on kept data).
    read_kept: dict[str, str] = field(default_factory=dict)


def data_fingerprints(reports: list[DatasetReport], uploaded: UploadedData, window: Any = None,
                      earlier: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Each dataset's record by name. Rows and columns come from validation, the hash from the upload.
    A dataset read from kept data keeps what ``earlier`` (the run it continues) recorded of its origin."""
    records = {}
    for report in reports:
        name = report.name
        origin = uploaded.origins.get(name) or _origin_of((earlier or {}).get(name, {}))
        record = data_fingerprint(report.source, report.rows, list(report.columns), uploaded.digests[name],
                                  origin, window)
        if name in uploaded.read_kept:
            record["read_from_kept"] = uploaded.read_kept[name]
        if name in uploaded.kept:
            record["kept"], record["kept_hash"] = uploaded.kept[name], uploaded.kept_hashes[name]
        records[name] = record
    return records


_ORIGIN_KEYS = ("query", "connection", "files")


def _origin_of(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record[key] for key in _ORIGIN_KEYS if key in record}
