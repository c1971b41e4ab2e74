"""Step 6: write the report files and register the report, results and usage as Prefect artifacts."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from tasks.transcript import Transcript
from tasks.prefect.artifacts import publish_report, publish_results, publish_usage
from tasks.prefect.publisher import ArtifactPublisher
from tasks.reports import write_run_reports


# Runs after failures too (what was done is never lost); rendering is deterministic, so no retries.
@task(name="collect-artifacts", cache_policy=NONE)
def collect_artifacts(transcript: Transcript, run_dir: Path, publisher: ArtifactPublisher | None = None
                      ) -> dict[str, Path]:
    """Raises ``ReportsNotWritten`` after publishing, when a report file could not be written. With a
    ``publisher``, the report artifact is rendered here and sent from its thread while the files are
    written (it renders on its own: a file that fails does not keep it back). The results and usage
    tables are ``publish_outcome``'s."""
    publish_report(transcript, run_dir, publisher)
    written = write_run_reports(transcript, run_dir)
    get_run_logger().info("Report: %s", written["markdown"])
    return written


def publish_outcome(transcript: Transcript, publisher: ArtifactPublisher | None = None) -> None:
    """The results and usage tables. They do not show the trend chart, which the report waits for: the flow
    sends them first, and the server stores them while the chart is drawn."""
    publish_results(transcript, publisher)
    publish_usage(transcript.analysis, transcript, publisher)
