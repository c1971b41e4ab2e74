"""Resuming a transcript, piece by piece (no server, no sandbox): what is kept, dropped, re-run, refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.agent.prompts import FINAL_REPORT_REQUEST
from tasks.agent.resume import (
    EarlierRun,
    RESTART,
    check_same_data,
    cells_to_rerun,
    check_same_conversation,
    continue_transcript,
    drop_unfinished,
    find_earlier_run,
    read_resumable,
    rebuild_steps,
    transcript_file,
)
from tasks.agent.fingerprint import sandbox_settings
from tasks.transcript import CellRecord, IterationRecord, Transcript
from tasks.config.schema import SandboxConfig
from tasks.errors import ConfigError
from tasks.models.base import ModelTurn


def tool_turn(code: str, call_id: str) -> ModelTurn:
    return ModelTurn([{"type": "tool_use", "id": call_id, "name": "run_python_code", "input": {"code": code}}],
                     "tool_use", "claude-sonnet-5-5")


def transcript_with(cells: list[list[CellRecord]], *, finished_last: bool = True) -> Transcript:
    """A transcript whose iteration n ran ``cells[n-1]``; the last one without its results if not finished."""
    t = Transcript("sales", "claude-sonnet-5-5", "anthropic", "system", "question", tools=[{"name": "run_python_code"}],
                   flow_run_id="11111111-aaaa", run_key="11111111-aaaa")
    t.messages.append({"role": "user", "content": "question"})
    for number, iteration_cells in enumerate(cells, 1):
        turn = tool_turn(iteration_cells[0].code if iteration_cells else "", f"call{number}")
        t.iterations.append(IterationRecord(number, turn, list(iteration_cells)))
        t.messages.append({"role": "assistant", "content": turn.content})
        if number < len(cells) or finished_last:
            t.messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"call{number}",
                                                             "content": "ok"}]})
    return t


def cell(code: str, **kwargs) -> CellRecord:
    return CellRecord(f"id-{code}", code, **kwargs)


def test_an_iteration_whose_code_never_finished_is_dropped_to_be_asked_again() -> None:
    t = transcript_with([[cell("a = 1")], [cell("b = 2")]], finished_last=False)
    drop_unfinished(t)
    assert len(t.iterations) == 1 and t.messages[-1]["role"] == "user"
    assert t.messages[-1]["content"][0]["tool_use_id"] == "call1"


def test_finished_iterations_are_kept_whole() -> None:
    t = transcript_with([[cell("a = 1")], [cell("b = 2")]])
    before = [dict(m) for m in t.messages]
    drop_unfinished(t)
    assert len(t.iterations) == 2 and t.messages == before


def test_an_unanswered_final_report_request_is_taken_back() -> None:
    t = transcript_with([[cell("a = 1")]])
    t.messages[-1]["content"].append({"type": "text", "text": FINAL_REPORT_REQUEST.format(limit=1)})
    drop_unfinished(t)
    assert [b["type"] for b in t.messages[-1]["content"]] == ["tool_result"]


def test_cells_are_rerun_after_the_last_session_restart_and_without_timeouts() -> None:
    t = transcript_with([[cell("a = 1")], [cell("loop()", timed_out=True, state_reset=True)],
                         [cell("b = 2"), cell("sleep()", timed_out=True)], [cell("c = 3")]])
    assert [(n, c.code) for n, c in cells_to_rerun(t)] == [(3, "b = 2"), (4, "c = 3")]


DIED = {"name": "KernelDied", "message": "the Python session exited unexpectedly and was restarted", "traceback": ""}


def test_a_cell_run_in_a_session_restarted_before_it_keeps_its_variables() -> None:
    died = DIED
    t = transcript_with([[cell("write_file()")], [cell("crash()", error=died, state_reset=True)],
                         [cell("a = 1", state_reset=True)], [cell("b = a")]])
    assert [(n, c.code) for n, c in cells_to_rerun(t)] == [(3, "a = 1"), (4, "b = a")]


def test_every_cell_is_rerun_for_its_files_with_the_session_restarted_where_it_was() -> None:
    died = DIED
    t = transcript_with([[cell("fresh = 1", state_reset=True)], [cell("write_file()")],
                         [cell("crash()", error=died, state_reset=True)],
                         [cell("hang()", timed_out=True, state_reset=True)], [cell("a = 1", state_reset=True)],
                         [cell("b = a")], [cell("crash()", error=died, state_reset=True)]])
    assert [(n, c if c is RESTART else c.code) for n, c in rebuild_steps(t)] == [
        (1, "fresh = 1"), (2, "write_file()"), (5, RESTART), (5, "a = 1"), (6, "b = a"), (7, RESTART)]


def test_continuing_keeps_the_run_key_and_records_where_it_came_from(tmp_path: Path) -> None:
    t = transcript_with([[cell("a = 1")]])
    t.finish("failed", "ModelError: boom")
    t.final_report = "partial"
    continued = continue_transcript(t, flow_run_id="22222222-bbbb", source=tmp_path / "run" / "transcript.json",
                                    retry=False)
    assert (continued.status, continued.stop_detail, continued.final_report) == ("running", "", None)
    assert continued.flow_run_id == "22222222-bbbb" and continued.run_key == "11111111-aaaa"
    assert continued.resumed_from == [str(tmp_path / "run")]


def test_a_retry_finds_the_folder_of_its_own_first_attempt(tmp_path: Path) -> None:
    t = transcript_with([[cell("a = 1")]])
    t.flow_run_id = "11111111-aaaa-bbbb"
    t.save(tmp_path / "20261126-101010-11111111" / "transcript.json")
    other = transcript_with([])
    other.flow_run_id = "11111111-ffff-0000"  # same first 8 characters, another run
    other.save(tmp_path / "20261126-090909-11111111" / "transcript.json")
    found = find_earlier_run(tmp_path, "11111111-aaaa-bbbb", None)
    assert found == EarlierRun(tmp_path / "20261126-101010-11111111" / "transcript.json", retry=True)
    assert find_earlier_run(tmp_path, "99999999-0000", None) is None


def test_resume_refuses_another_analysis_a_finished_run_and_a_missing_folder(tmp_path: Path) -> None:
    t = transcript_with([[cell("a = 1")]])
    file = tmp_path / "run" / "transcript.json"
    t.save(file)
    with pytest.raises(ConfigError) as caught:
        read_resumable(transcript_file(file.parent), "weekly-sales")
    [problem] = caught.value.problems
    assert problem.file == str(file) and problem.key == "analysis"
    assert "a run of 'sales', not of 'weekly-sales'" in problem.message

    t.finish("completed")
    t.save(file)
    with pytest.raises(ConfigError, match="already ended \\(completed\\).*without --resume"):
        read_resumable(file, "sales")

    with pytest.raises(ConfigError, match="no such folder; expected the folder of an earlier run"):
        transcript_file(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no transcript.json in it"):
        transcript_file(tmp_path / "empty")


def test_resume_refuses_a_conversation_that_changed(tmp_path: Path) -> None:
    earlier, fresh = transcript_with([]), transcript_with([])
    check_same_conversation(earlier, fresh, tmp_path / "transcript.json")  # the same: fine
    fresh.system = "other data"
    with pytest.raises(ConfigError) as caught:
        check_same_conversation(earlier, fresh, tmp_path / "transcript.json")
    [problem] = caught.value.problems
    assert problem.key == "system" and "the data or the sandbox settings" in problem.message
    assert "undo the change to resume, or start a new run without --resume" in problem.message


def test_a_retry_of_a_resumed_run_goes_on_from_its_own_attempt(tmp_path: Path) -> None:
    crashed = transcript_with([[cell("a = 1")]])
    crashed.save(tmp_path / "20261126-090000-11111111" / "transcript.json")
    attempt = transcript_with([[cell("a = 1")], [cell("b = 2")]])
    attempt.flow_run_id = "22222222-bbbb"
    attempt.save(tmp_path / "20261126-100000-22222222" / "transcript.json")
    assert find_earlier_run(tmp_path, "22222222-bbbb", tmp_path / "20261126-090000-11111111") == \
        EarlierRun(tmp_path / "20261126-100000-22222222" / "transcript.json", retry=True)
    assert find_earlier_run(tmp_path, "33333333-cccc", tmp_path / "20261126-090000-11111111") == \
        EarlierRun(tmp_path / "20261126-090000-11111111" / "transcript.json", retry=False)


def test_resume_refuses_other_sandbox_settings_and_other_data_naming_each(tmp_path: Path) -> None:
    earlier, fresh = transcript_with([[cell("a = 1")]]), transcript_with([])
    earlier.fingerprint = {"sandbox": sandbox_settings(SandboxConfig(memory="4GiB", cpus=1)),
                           "datasets": {"sales": "sha256:aa"}}
    fresh.fingerprint = {"sandbox": sandbox_settings(SandboxConfig(memory="4096MiB", cpus=1))}
    check_same_conversation(earlier, fresh, tmp_path / "t.json")  # the same size, written otherwise
    fresh.fingerprint = {"sandbox": sandbox_settings(SandboxConfig(memory="1GiB", cpus=2))}
    with pytest.raises(ConfigError) as caught:
        check_same_conversation(earlier, fresh, tmp_path / "t.json")
    assert [p.key for p in caught.value.problems] == ["sandbox.cpus", "sandbox.memory"]
    assert "(4294967296, now 1073741824)" in caught.value.problems[1].message

    check_same_data(earlier, {"sales": "sha256:aa"}, tmp_path / "t.json")
    with pytest.raises(ConfigError) as caught:
        check_same_data(earlier, {"sales": "sha256:bb"}, tmp_path / "t.json")
    assert [p.key for p in caught.value.problems] == ["datasets.sales"]
    check_same_data(fresh, {"sales": "sha256:bb"}, None)  # a new run records its data
    assert fresh.fingerprint["datasets"] == {"sales": "sha256:bb"}


def test_data_read_from_kept_files_is_checked_by_the_kept_files_hash(tmp_path) -> None:
    """A resume on kept data: the source moved on (its digest differs), the kept file did not."""
    earlier = transcript_with([[cell("a = 1")]])
    earlier.fingerprint = {"datasets": {"sales": "sha256:aa", "stores": "sha256:cc"}}
    earlier.data = {"sales": {"kept_hash": "sha256:k1"}}
    check_same_data(earlier, {"sales": "sha256:bb", "stores": "sha256:cc"}, tmp_path / "t.json", {"sales": "sha256:k1"})
    with pytest.raises(ConfigError) as caught:
        check_same_data(earlier, {"sales": "sha256:bb", "stores": "sha256:cc"}, tmp_path / "t.json",
                        {"sales": "sha256:k2"})
    assert [p.key for p in caught.value.problems] == ["datasets.sales"]
