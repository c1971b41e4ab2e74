"""Rebuilding a resumed run's sandbox against real bwrap kernels: one records a run with restarts, a
fresh one is rebuilt from that record and must hold the same variables and files."""

from __future__ import annotations

import shutil

import pytest

from tasks.agent.resume import rebuild_sandbox
from tasks.transcript import CellRecord, IterationRecord, Transcript
from tasks.config.schema import SandboxConfig
from tasks.models.base import ModelTurn
from tasks.sandbox.local import LocalSandbox

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
STATE = ("from pathlib import Path\n"
         "print([k for k in ('before_crash', 'after_restart', 'total') if k in globals()], "
         "Path('outputs/clean.csv').exists())")
CONFIG = SandboxConfig(memory="512MiB", timeout=20, max_output_chars=2000, cpus=1)


def record(sandbox: LocalSandbox, code: str) -> CellRecord:
    result = sandbox.run_code(code)
    error = {"name": result.error.name, "message": result.error.message, "traceback": ""} if result.error else None
    return CellRecord(f"id-{len(code)}", code, result.stdout, result.stderr, error, result.timed_out,
                      result.state_reset)


def transcript_of(cells: list[CellRecord]) -> Transcript:
    t = Transcript("sales", "claude-sonnet-5-5", "anthropic", "system", "question")
    for number, cell in enumerate(cells, 1):
        t.iterations.append(IterationRecord(number, ModelTurn([], "tool_use", "claude-sonnet-5-5"), [cell]))
    return t


def test_a_rebuilt_sandbox_has_the_files_and_variables_the_recorded_one_ended_with(tmp_path) -> None:
    with LocalSandbox(CONFIG, work_root=tmp_path / "first") as first:
        cells = [record(first, "import os\nopen('outputs/clean.csv', 'w').write('a,b\\n')\nbefore_crash = 1")]
        cells.append(record(first, "os.kill(os.getpid(), 9)"))  # takes its session down with it
        cells.append(record(first, "print(before_crash)"))  # NameError: gone with the session
        first._session.proc.kill()  # the session dies between runs: the next cell gets a fresh one
        first._session.proc.wait()
        cells.append(record(first, "after_restart = 2"))
        cells.append(record(first, "total = after_restart + 1"))
        recorded = first.run_code(STATE)
    assert [c.state_reset for c in cells] == [False, True, False, True, False]
    assert cells[3].error is None and cells[4].error is None

    with LocalSandbox(CONFIG, work_root=tmp_path / "second") as second:
        notes = rebuild_sandbox(second, transcript_of(cells), timeout=20)
        rebuilt = second.run_code(STATE)
    assert recorded.error is None and rebuilt.error is None, (recorded.error, rebuilt.error)
    assert recorded.stdout == rebuilt.stdout == "['after_restart', 'total'] True\n"
    assert notes == []
