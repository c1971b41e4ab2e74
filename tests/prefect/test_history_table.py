"""The ``<name>-history`` table stays within what one Prefect request may carry."""

from __future__ import annotations

import json

from tasks.prefect.history import fit_rows


def test_the_oldest_rows_go_when_the_table_would_pass_its_budget():
    rows = [{"flow_run": f"run-{i}", "notes": "x" * 1000} for i in range(10)]  # newest first
    kept = fit_rows(rows, 3500)
    assert [r["flow_run"] for r in kept] == ["run-0", "run-1", "run-2"]
    assert len(json.dumps(kept).encode()) <= 3500
    assert fit_rows(rows, 10) == rows[:1]  # the newest run is always listed
    assert fit_rows(rows, 10**6) == rows
