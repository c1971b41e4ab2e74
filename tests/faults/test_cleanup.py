"""The end of a run: every clean-up step runs whatever the others do, on a disk that is really full."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments import read_limit_state
from tasks.prefect.publisher import ArtifactPublisher
from tasks.prefect.sandbox_slots import SANDBOX_LIMIT


@pytest.fixture
def full_run_folder(tmp_path: Path) -> Iterator[Path]:
    """The analysis's folder under outputs.dir on a 4 KiB tmpfs: its first transcript does not fit
    (the turn cache, in outputs/.results, is on the ordinary disk)."""
    folder = tmp_path / "out" / "faults"
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def sandbox_limit(cli) -> Iterator[None]:
    assert cli("limits", "set", SANDBOX_LIMIT, 1).exit_code == 0
    try:
        yield
    finally:
        cli("limits", "remove", SANDBOX_LIMIT)


@pytest.mark.slow
def test_a_transcript_that_cannot_be_saved_fails_the_run_and_everything_is_still_cleaned_up(
        run, anthropic_api, full_run_folder, sandbox_limit) -> None:
    anthropic_api.enqueue_tool_use(code="x = 1\nprint(x)")
    anthropic_api.enqueue_text("# Report\nDone.")

    outcome = run(as_json=False)  # checks that no sandbox process or folder is left

    assert outcome.exit_code != 0 and "No space left on device" in outcome.output
    assert read_limit_state(SANDBOX_LIMIT).in_use == 0
    assert not [t for t in threading.enumerate() if t.name == "artifact-publisher" and t.is_alive()]
    [run_dir] = full_run_folder.glob("*/")  # the run folder; history.jsonl may sit beside it
    assert not (run_dir / "transcript.json").exists()


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def publisher_log() -> Iterator[Captured]:
    """What the publisher logs (Prefect's logging set-up replaces the root handlers caplog uses)."""
    logger, handler = logging.getLogger("tasks.prefect.publisher"), Captured()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_artifacts_still_queued_at_shutdown_are_counted_and_logged(publisher_log) -> None:
    server_back = threading.Event()  # a Prefect server that does not answer until the run has ended
    publisher = ArtifactPublisher()
    for _ in range(3):
        publisher.submit(server_back.wait)

    assert publisher.close(timeout=0.2) == 3
    [line] = publisher_log.lines
    assert line.startswith("3 Prefect artifact(s) were still unpublished after 0.2 s (is the Prefect server slow")
    server_back.set()


def test_a_publish_call_that_raises_is_logged_and_the_next_ones_still_run(publisher_log) -> None:
    published = []

    def outage() -> None:
        raise ConnectionError("the Prefect server is down")

    with ArtifactPublisher() as publisher:
        publisher.submit(outage)
        publisher.submit(published.append, "report")
    assert published == ["report"] and publisher_log.lines == ["Could not publish an artifact with outage"]


def test_only_the_last_of_the_queued_progress_updates_is_sent_and_the_others_still_in_order() -> None:
    server_back, sent = threading.Event(), []  # the publisher is held up while the loop goes on
    with ArtifactPublisher() as publisher:
        publisher.submit(server_back.wait)
        for percent in (10, 20, 30):
            publisher.submit(sent.append, f"progress {percent}", latest="progress")
            publisher.submit(sent.append, f"iteration {percent // 10}")
        server_back.set()
    assert sent == ["iteration 1", "iteration 2", "progress 30", "iteration 3"]
    with ArtifactPublisher() as publisher:  # with nothing queued after it, each update is sent
        publisher.submit(sent.append, "progress 40", latest="progress")
    assert sent[-1] == "progress 40"
