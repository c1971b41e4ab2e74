import json

from tasks.run_history import (HISTORY_FILE, RunRecord, append_record, merge_records, previous_completed, table_rows,
                               read_local_records, utc_iso)


def _record(run: str, time: str, status: str = "completed", **kw) -> RunRecord:
    return RunRecord(flow_run_id=run, time=time, status=status, **kw)


def test_a_row_of_the_table_reads_back_as_the_record_it_came_from():
    record = _record("abc", "2026-11-02T07:00:00+00:00", window="2026-10-26..2026-11-01", cost_usd=0.12,
                     results={"total_revenue": 10.5, "best_region": "north"}, alerts=["drop", "spike"],
                     summary="Revenue fell.")
    assert RunRecord.from_row(record.to_row()) == record
    assert RunRecord.from_row({"time": 3}) is None


def test_merge_keeps_one_record_per_run_newest_time_first():
    server = [_record("b", "2026-11-09T00:00:00+00:00", results={"x": 2})]
    local = [_record("b", "2026-11-09T00:00:00+00:00", results={"x": 99}), _record("a", "2026-11-02T00:00:00+00:00")]
    merged = merge_records(server, local)
    assert [r.flow_run_id for r in merged] == ["b", "a"]
    assert merged[0].results == {"x": 2}  # the first source wins


def test_previous_completed_is_by_the_time_a_run_is_for_and_skips_failures_and_itself():
    records = [_record("w3", "2026-11-16T00:00:00+00:00"), _record("w2", "2026-11-09T00:00:00+00:00", "failed"),
               _record("w1", "2026-11-02T00:00:00+00:00"), _record("w0", "2026-10-26T00:00:00+00:00")]
    assert [r.flow_run_id for r in previous_completed(records, "2026-11-10T00:00:00+00:00")] == ["w1"]
    assert [r.flow_run_id for r in previous_completed(records, "2026-11-17T00:00:00+00:00", exclude="w3",
                                                      runs=2)] == ["w1", "w0"]
    assert previous_completed(records, "2026-10-01T00:00:00+00:00") == []


def test_times_in_other_zones_sort_as_utc():
    assert utc_iso("2026-11-02T07:00:00+02:00") == "2026-11-02T05:00:00+00:00"
    assert utc_iso("2026-11-02T07:00:00") == "2026-11-02T07:00:00+00:00"


def test_history_file_survives_a_cut_line_and_the_last_line_of_a_run_wins(tmp_path):
    append_record(tmp_path, _record("a", "2026-11-02T00:00:00+00:00", "failed"))
    with (tmp_path / HISTORY_FILE).open("a") as handle:
        handle.write('{"flow_run_id": "cut", "ti\n')
        handle.write('{"flow_run_id": "edited", "time": "2026-11-03", "status": "completed", "results": [1]}\n')
    append_record(tmp_path, _record("a", "2026-11-02T00:00:00+00:00", "completed"))
    append_record(tmp_path, _record("b", "2026-11-09T00:00:00+00:00"))
    records = read_local_records(tmp_path, limit=10)
    assert [(r.flow_run_id, r.status) for r in records] == [("b", "completed"), ("a", "completed")]
    assert json.loads((tmp_path / HISTORY_FILE).read_text().splitlines()[0])["status"] == "failed"


def test_a_record_of_the_runs_end_beats_an_unfinished_one_from_any_source():
    # another host listed the run while it went on, and published that after the run's own row
    newest_version = [_record("a", "2026-11-02T00:00:00+00:00", "unfinished")]
    older_version = [_record("a", "2026-11-02T00:00:00+00:00", "completed", results={"x": 1})]
    for sources in ((newest_version, older_version), (older_version, newest_version)):
        [merged] = merge_records(*sources)
        assert (merged.status, merged.results) == ("completed", {"x": 1})


def _run_folder(analysis_dir, name: str, status: str) -> None:
    from tasks.transcript import TRANSCRIPT_FILE, Transcript

    transcript = Transcript(analysis="a", model="m", provider="anthropic", system="", prompt="p",
                            flow_run_id=name.rsplit("-", 1)[-1] + "-0000", status=status,
                            run_time={"as_of": f"{name[:4]}-{name[4:6]}-{name[6:8]}T07:00:00+00:00", "window": None})
    transcript.save(analysis_dir / name / TRANSCRIPT_FILE)


def test_a_run_folder_whose_transcript_records_no_end_is_listed_unfinished_never_completed(tmp_path):
    _run_folder(tmp_path, "20261109-070000-bbbbbbbb", "running")  # killed before it could add its line
    append_record(tmp_path, _record("aaaaaaaa-0000", "2026-11-02T07:00:00+00:00"))
    records = read_local_records(tmp_path, limit=10)
    assert [(r.flow_run_id, r.status) for r in records] == [("bbbbbbbb-0000", "unfinished"),
                                                           ("aaaaaaaa-0000", "completed")]
    assert RunRecord.from_row(records[0].to_row()).status == "unfinished"
    assert [r.flow_run_id for r in previous_completed(records, "2026-12-01")] == ["aaaaaaaa-0000"]


def test_history_rows_outlive_the_run_folders_retention_prunes(tmp_path):
    from tasks.config.upkeep_schema import RetentionConfig
    from tasks.retention import plan_prune

    for name, time in (("20261102-070000-aaaaaaaa", "2026-11-02T07:00:00+00:00"),
                       ("20261109-070000-bbbbbbbb", "2026-11-09T07:00:00+00:00")):
        _run_folder(tmp_path, name, "completed")
        append_record(tmp_path, _record(name.rsplit("-", 1)[-1] + "-0000", time, results={"x": 1}))
    plan = plan_prune(tmp_path, RetentionConfig(keep_runs=1))
    assert [p.name for p in plan.run_dirs] == ["20261102-070000-aaaaaaaa"]
    plan.apply()
    assert not (tmp_path / "20261102-070000-aaaaaaaa").exists()
    records = read_local_records(tmp_path, limit=10)
    assert [(r.flow_run_id, r.results) for r in records] == [("bbbbbbbb-0000", {"x": 1}), ("aaaaaaaa-0000", {"x": 1})]


def test_every_row_of_the_table_has_every_result_column_the_declared_first():
    # The Prefect UI takes a table's columns from its first row: a newest run that failed must not hide them.
    records = [_record("c", "2026-11-16T00:00:00+00:00", "failed"),
               _record("b", "2026-11-09T00:00:00+00:00", results={"dropped_since": 4, "x": 2}),
               _record("a", "2026-11-02T00:00:00+00:00", results={"x": 1})]
    rows = table_rows(records, declared=["x"])
    assert [list(row) for row in rows] == [["time", "window", "status", "cost_usd", "x", "dropped_since", "alerts",
                                            "summary", "flow_run"]] * 3
    assert [(row["x"], row["dropped_since"]) for row in rows] == [(None, None), (2, 4), (1, None)]
    assert [RunRecord.from_row(row) for row in rows] == records
