"""What a run's results depend on beyond its conversation: the bytes of its data and the sandbox
settings that shape what its code can do. Recorded in the transcript; a resume with other values is
refused, since the recorded outputs would no longer be what the code produces."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tasks.config.schema import SandboxConfig, parse_size

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
