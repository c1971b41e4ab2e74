"""Artifacts round-trip through a real (temporary) Prefect server: keys, types, embedded charts."""

from __future__ import annotations


import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from tasks.prefect.artifacts import (create_progress, publish_iteration, publish_report, publish_results,
                                    publish_usage, publish_validation, update_progress)
from tests.reports.test_results_section import with_results

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _server(prefect_api: str) -> str:
    """The session's local Prefect server (tests/conftest.py)."""
    return prefect_api


def read_latest(key: str):
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact with key {key!r}"
    return max(found, key=lambda a: a.created)


def test_publish_functions_create_artifacts(transcript, run_dir):
    name = transcript.analysis

    @flow(name="publish-reports-test")
    def publish_all() -> None:
        progress = create_progress(name, total=3)
        for iteration in transcript.iterations:
            publish_iteration(name, iteration, run_dir)
            update_progress(progress, 100 * iteration.number / 3)
        publish_validation(name, transcript.datasets)
        publish_usage(name, transcript)
        publish_report(transcript, run_dir)

    publish_all()

    report = read_latest("monthly-sales-review-report")
    assert report.type == "markdown" and "data:image/png;base64," in report.data
    assert report.description.startswith("Monthly Sales Review: Completed")
    iteration = read_latest("monthly-sales-review-iteration-2")
    assert iteration.type == "markdown" and iteration.data.count("data:image/png;base64,") == 2
    assert read_latest("monthly-sales-review-iteration-1").type == "markdown"

    validation = read_latest("monthly-sales-review-validation")
    assert validation.type == "table" and "costs" in validation.data and "on_invalid" in validation.data
    failures = read_latest("monthly-sales-review-validation-failures")
    assert failures.type == "table" and "greater_than(0)" in failures.data
    usage = read_latest("monthly-sales-review-usage")
    assert usage.type == "table" and "total" in usage.data and "cache_write" in usage.data
    progress = read_latest("monthly-sales-review-progress")
    assert progress.type == "progress" and float(progress.data) == 100.0


def test_results_are_a_table_artifact(transcript, run_dir):
    @flow(name="publish-results-test")
    def publish() -> object:
        assert publish_results(transcript) is None  # no results submitted: no artifact
        return publish_results(with_results(transcript, {"total_revenue": 3391234.5, "best_region": "east",
                                                         "drivers": ["sandwich", "latte"]}))

    assert publish() is not None
    results = read_latest("monthly-sales-review-results")
    assert results.type == "table" and results.description == "Monthly Sales Review: results"
    rows = results.data if isinstance(results.data, list) else __import__("json").loads(results.data)
    assert rows[0] == {"result": "total_revenue", "value": "3,391,234", "unit": "EUR",
                       "description": "Revenue | all regions"}
    assert [r["value"] for r in rows[1:]] == ["east", "sandwich, latte"]
