"""Which run ``previous.*`` reads: the one Claude was told of when memory is on, else the newest completed
run before this one in the history, never this run itself."""

from __future__ import annotations

from tasks.prefect.alerts import previous_record
from tasks.run_history import RunRecord

HISTORY = [RunRecord("run-3", "2026-11-16T06:00:00+00:00", "completed", results={"total_revenue": 3.0}),
           RunRecord("run-2", "2026-11-09T06:00:00+00:00", "failed"),
           RunRecord("run-1", "2026-11-02T06:00:00+00:00", "max_iterations", results={"total_revenue": 1.0})]


def test_the_newest_completed_run_before_this_one() -> None:
    assert previous_record(None, HISTORY, "2026-11-10T06:00:00+00:00", "run-x")["flow_run_id"] == "run-1"
    assert previous_record(None, HISTORY, "2026-11-16T06:00:00+00:00", "run-3")["flow_run_id"] == "run-1"
    assert previous_record(None, HISTORY, "2026-11-02T06:00:00+00:00", "run-x") is None


def test_with_memory_the_run_claude_was_told_of() -> None:
    told = [RunRecord("run-0", "2026-10-26T06:00:00+00:00", "completed").to_dict()]
    assert previous_record(told, HISTORY, "2026-11-20T06:00:00+00:00", "run-x") == told[0]
    assert previous_record([], HISTORY, "2026-11-20T06:00:00+00:00", "run-x") is None  # memory on, a first run
