"""Fault matrix, Sandbox rows: code that misbehaves in the local sandbox (bubblewrap + ipykernel), and
a Daytona sandbox (the real SDK against the stand-in API) whose provisioning or upload fails, each in
a real ``analyst run``.

A misbehaving cell is a result, not a failure: Claude gets what happened as the tool result and the
loop goes on (the next cell runs); the sandbox's limits hold; nothing of the sandbox is left.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks.sandbox.local.limits import PidsCgroup
from tasks.transcript import CellRecord
from tests.fakes.daytona_api import FakeDaytonaAPI

from .conftest import artifact_keys, flow_run, task_run_names

pytestmark = pytest.mark.slow

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def _process_limit_in_place() -> bool:
    """A fork bomb is only run where something holds it: a pids cgroup, or RLIMIT_NPROC (not root)."""
    probe = PidsCgroup.create(16)
    if probe is not None:
        probe.remove()
        return True
    return os.geteuid() != 0


@dataclass(frozen=True)
class CellFault:
    code: str
    check: Callable[[CellRecord], None]
    state_kept: bool | None  # variables defined before the fault survive it (None: either, as the cell says)
    sets: tuple[str, ...] = ()


def _timed_out(cell: CellRecord) -> None:
    assert cell.timed_out and cell.error is None
    assert any("time limit" in w for w in cell.warnings), cell.warnings


def _kernel_died(cell: CellRecord) -> None:
    assert cell.error and cell.error["name"] == "KernelDied", cell.error
    assert "exited unexpectedly" in cell.error["message"] and cell.state_reset


def _out_of_memory(cell: CellRecord) -> None:
    assert cell.error and cell.error["name"] == "MemoryError", cell.error
    assert "1 GiB" in cell.error["message"]


def _process_limit(cell: CellRecord) -> None:
    assert cell.error and cell.error["name"] in ("ProcessLimitExceeded", "BlockingIOError"), cell.error
    assert "more than 512 processes" in cell.error["message"] and cell.state_reset


def _file_too_large(cell: CellRecord) -> None:
    assert cell.error and cell.error["name"] == "OSError", cell.error
    assert "File too large" in cell.error["message"]


CELL_FAULTS = {
    "loops-forever": CellFault("while True:\n    pass", _timed_out, state_kept=True, sets=("sandbox.timeout=2",)),
    "os-exit": CellFault("import os\nos._exit(3)", _kernel_died, state_kept=False),
    "segfault-via-ctypes": CellFault("import ctypes\nctypes.string_at(0)", _kernel_died, state_kept=False),
    # Past RLIMIT_AS first: a MemoryError, state kept; past the memory cgroup first: killed, restarted.
    "eats-all-memory": CellFault("hog = []\nwhile True:\n    hog.append(b'x' * (64 << 20))", _out_of_memory,
                                 state_kept=None),
    "fork-bomb": pytest.param(
        CellFault("import os, time\nos.system('bomb(){ bomb|bomb& };bomb')\ntime.sleep(3)", _process_limit,
                  state_kept=False),
        marks=pytest.mark.skipif(not _process_limit_in_place(), reason="no pids cgroup and running as root: "
                                                                        "nothing would hold a fork bomb here")),
    # Seeks to 10 GB and writes one byte: RLIMIT_FSIZE refuses it without writing anything to the disk.
    "writes-10-gb": CellFault("with open('outputs/big.bin', 'wb') as f:\n    f.seek(10 * 2**30)\n    f.write(b'x')",
                              _file_too_large, state_kept=True),
}


@needs_bwrap
@pytest.mark.parametrize("fault", list(CELL_FAULTS.values()), ids=list(CELL_FAULTS))
def test_a_cell_that_misbehaves_is_a_result_and_the_loop_goes_on(fault, run, anthropic_api) -> None:
    anthropic_api.enqueue_tool_use(code="kept = 'before the fault'\nprint(kept)")
    anthropic_api.enqueue_tool_use(code=fault.code)
    anthropic_api.enqueue_tool_use(code="print(globals().get('kept', 'state was reset'))")
    anthropic_api.enqueue_text("North earns most.")

    outcome = run(*fault.sets)

    assert outcome.exit_code == 0 and outcome.summary["status"] == "completed", outcome.output
    before, faulty, after = outcome.transcript.cells
    assert before.stdout == "before the fault\n"
    fault.check(faulty)
    kept = not faulty.state_reset if fault.state_kept is None else fault.state_kept
    assert faulty.state_reset is not kept
    assert after.stdout == ("before the fault\n" if kept else "state was reset\n")  # the loop went on
    [result] = [b for b in anthropic_api.requests[2].body["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert result.get("is_error") is True  # Claude was told
    run_id = outcome.summary["flow_run_id"]
    assert flow_run(run_id).state.is_completed()
    assert {"faults-iteration-2", "faults-report"} <= artifact_keys(run_id)


# --- a flood of output, with the host's memory measured --------------------------------------------

_MEASURED_RUN = """
import re, sys
from cli import app
try:
    app(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
status = open("/proc/self/status").read()
print("peak-rss-kib", re.search(r"VmHWM:\\s+(\\d+)", status).group(1), "exit", code, file=sys.stderr)
"""


@needs_bwrap
def test_a_cell_printing_1_gb_is_cut_and_the_hosts_memory_stays_bounded(prefect_api, anthropic_api, analysis,
                                                                       tmp_path) -> None:
    anthropic_api.enqueue_tool_use(code="import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(1 << 20):\n"
                                        "    sys.stdout.write(line)\nprint('END')")
    anthropic_api.enqueue_text("It printed a lot.")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "ANTHROPIC_API_KEY": "sk-test-faults", "COLUMNS": "200"}
    env.pop("ANALYST_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED_RUN, "run", str(analysis), "--json", "--set",
         f"model.base_url={anthropic_api.base_url}", "--set", f"outputs.dir={tmp_path / 'out'}",
         "--set", "sandbox.timeout=120"],
        capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2], timeout=240)
    measured = re.search(r"peak-rss-kib (\d+) exit (\d+)", done.stderr)
    assert measured, done.stderr[-3000:]
    peak_mib, exit_code = int(measured.group(1)) // 1024, int(measured.group(2))
    assert exit_code == 0, done.stderr[-3000:]
    run_dir = Path(__import__("json").loads(done.stdout)["run_dir"])
    from tasks.transcript import Transcript

    [cell] = Transcript.load(run_dir / "transcript.json").cells
    assert cell.stdout.endswith("END\n") and len(cell.stdout) < 20_100
    assert "[... 1,073,721,828 characters cut ...]" in cell.stdout  # 1 GiB + 'END\n', all but 20,000 cut
    # The whole flow (Prefect, polars, the SDK) peaks near 300 MiB here; 1 GB held anywhere would show.
    assert peak_mib < 600, f"the host process peaked at {peak_mib} MiB"


# --- Daytona: provisioning and upload faults ---------------------------------------------------------


@pytest.fixture
def daytona_api(monkeypatch) -> FakeDaytonaAPI:
    with FakeDaytonaAPI() as api:
        for name, value in api.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("DAYTONA_TARGET", raising=False)
        yield api


@pytest.fixture
def no_retry_delays(monkeypatch) -> None:
    """Prefect's retries as configured, without their 2-10 s waits."""
    import flows.analysis as analysis_flow

    monkeypatch.setattr(analysis_flow, "provision_sandbox", analysis_flow.provision_sandbox.with_options(
        retry_delay_seconds=0))
    monkeypatch.setattr(analysis_flow, "upload_datasets", analysis_flow.upload_datasets.with_options(
        retry_delay_seconds=0))


def _creations(api: FakeDaytonaAPI) -> int:
    return sum(1 for r in api.requests if r.method == "POST" and r.path == "/api/sandbox")


def test_provisioning_that_fails_twice_then_succeeds(run, anthropic_api, daytona_api, no_retry_delays) -> None:
    daytona_api.fail_creates(503, 429)
    anthropic_api.enqueue_tool_use(code="print('ran in daytona')")
    anthropic_api.enqueue_text("North earns most.")

    outcome = run("sandbox.provider=daytona")

    assert outcome.exit_code == 0 and outcome.summary["status"] == "completed", outcome.output
    assert outcome.transcript.cells[0].stdout == "ran in daytona\n"
    assert _creations(daytona_api) == 3 and daytona_api.sandboxes == {}  # retried by Prefect, then torn down
    assert any(n.startswith("provision-sandbox") for n in task_run_names(outcome.summary["flow_run_id"]))
    assert flow_run(outcome.summary["flow_run_id"]).state.is_completed()


def test_provisioning_that_never_succeeds_fails_with_the_cause(run, anthropic_api, daytona_api,
                                                               no_retry_delays) -> None:
    daytona_api.fail_creates(503, 503, 503)

    outcome = run("sandbox.provider=daytona")

    assert outcome.exit_code == 1 and outcome.summary["status"] == "failed"
    cause = "HTTP 503 while creating the sandbox"
    assert cause in outcome.summary["error"], outcome.summary["error"]
    assert _creations(daytona_api) == 3 and daytona_api.sandboxes == {} and anthropic_api.requests == []
    transcript = outcome.transcript
    assert transcript.status == "failed" and cause in transcript.stop_detail and transcript.iterations == []
    assert transcript.datasets and transcript.datasets[0]["valid"]  # what was done before: validation
    run_id = outcome.summary["flow_run_id"]
    state = flow_run(run_id).state
    assert state.is_failed() and cause in state.message
    assert {"faults-validation", "faults-report"} <= artifact_keys(run_id)


def test_an_upload_cut_off_is_retried(run, anthropic_api, daytona_api, no_retry_delays, analysis) -> None:
    (analysis.parent / "sales.csv").write_text("region,revenue\n" + "north,10.5\n" * 60_000)  # 660 kB
    daytona_api.cut_uploads(after_bytes=128 * 1024)
    anthropic_api.enqueue_tool_use(code="import os\nprint(os.path.getsize('data/sales.csv'))")
    anthropic_api.enqueue_text("North earns most.")

    outcome = run("sandbox.provider=daytona")

    assert outcome.exit_code == 0, outcome.output
    assert outcome.transcript.cells[0].stdout == f"{(analysis.parent / 'sales.csv').stat().st_size}\n"
    assert len(daytona_api.uploads) >= 2 and daytona_api.sandboxes == {}


def test_an_upload_cut_off_every_time_fails_with_the_cause(run, anthropic_api, daytona_api, no_retry_delays,
                                                           analysis) -> None:
    (analysis.parent / "sales.csv").write_text("region,revenue\n" + "north,10.5\n" * 60_000)
    daytona_api.cut_uploads(count=2, after_bytes=128 * 1024)

    outcome = run("sandbox.provider=daytona")

    assert outcome.exit_code == 1 and outcome.summary["status"] == "failed"
    assert "uploading sales.csv to data/sales.csv" in outcome.summary["error"], outcome.summary["error"]
    assert daytona_api.sandboxes == {} and anthropic_api.requests == []
    assert flow_run(outcome.summary["flow_run_id"]).state.is_failed()

