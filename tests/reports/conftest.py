"""Fixtures: a small finished run on disk (see run_factory.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.transcript import Transcript
from tests.reports.run_factory import build_transcript


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "outputs" / "monthly-sales-review" / "20261126-070000"


@pytest.fixture
def transcript(run_dir: Path) -> Transcript:
    return build_transcript(run_dir)
