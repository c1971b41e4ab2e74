"""Datasets: read them, load their pandera schemas, validate them, and summarise them for a prompt."""

from tasks.datasets.loading import dataset_file, read_dataset, source_of
from tasks.datasets.report import CheckCount, DatasetReport, Failure, render_summary
from tasks.datasets.drafting import infer_schema_yaml
from tasks.datasets.schemas import load_schema
from tasks.datasets.validation import validate_dataset

__all__ = [
    "CheckCount", "DatasetReport", "Failure", "dataset_file", "infer_schema_yaml", "load_schema", "read_dataset",
    "render_summary", "source_of", "validate_dataset",
]
