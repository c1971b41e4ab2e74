"""The sample run the report tests render, for the artifact tests."""

from tests.reports.conftest import run_dir, transcript

__all__ = ["run_dir", "transcript"]
