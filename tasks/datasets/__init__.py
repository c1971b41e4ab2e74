"""Datasets: read them, load their pandera schemas, validate them, and summarise them for a prompt.

The names below are imported on first use: most modules here import pandas, polars or pandera (about
a second), and what only needs a report or a path (the CLI, the flow's module, the prompt) should not
pay for them before the data is read.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.datasets.drafting import infer_schema_yaml
    from tasks.datasets.loading import dataset_file, read_dataset, source_of
    from tasks.datasets.report import CheckCount, DatasetReport, Failure, render_summary
    from tasks.datasets.schemas import load_schema
    from tasks.datasets.validation import validate_dataset

_HOMES = {
    "CheckCount": "report", "DatasetReport": "report", "Failure": "report", "render_summary": "report",
    "dataset_file": "loading", "read_dataset": "loading", "source_of": "loading",
    "infer_schema_yaml": "drafting", "load_schema": "schemas", "validate_dataset": "validation",
}

__all__ = [
    "CheckCount", "DatasetReport", "Failure", "dataset_file", "infer_schema_yaml", "load_schema", "read_dataset",
    "render_summary", "source_of", "validate_dataset",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
