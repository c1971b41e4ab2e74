"""The fault matrix's shared pieces: a small analysis, ``analyst run`` against the real local Prefect
server and the stand-in Anthropic API, and the checks every fault ends with (exit status, the cause
named, the transcript on disk, the flow run and its artifacts in Prefect, no process left)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tasks.transcript import Transcript

CSV = "region,revenue\nnorth,10.5\nsouth,20.0\neast,7.25\n"
CONFIG = """\
name: faults
prompt: Which region earns most?
datasets:
  - name: sales
    path: sales.csv
    schema:
      schema_type: dataframe
      columns:
        region: {dtype: str}
        revenue: {dtype: float64}
model:
  max_iterations: 6
  timeout: 20
sandbox:
  timeout: 10
  memory: 1GiB
"""


@pytest.fixture
def analysis(tmp_path: Path) -> Path:
    """A small analysis config with its data, in its own folder."""
    folder = tmp_path / "analysis"
    folder.mkdir()
    (folder / "sales.csv").write_text(CSV)
    path = folder / "faults.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def run_marker(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A short temp folder of this test's own: the run's sandbox folders are made under it, so every
    process of the run's sandbox carries it in its command line (bwrap binds it)."""
    folder = tempfile.mkdtemp(prefix="flt-", dir="/tmp")
    monkeypatch.setattr(tempfile, "tempdir", folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Outcome:
    exit_code: int
    summary: dict[str, Any]
    output: str

    @property
    def run_dir(self) -> Path:
        return Path(self.summary["run_dir"])

    @property
    def transcript(self) -> Transcript:
        return Transcript.load(self.run_dir / "transcript.json")


@pytest.fixture
def run(cli, prefect_api, anthropic_api, analysis, run_marker, monkeypatch, tmp_path):
    """``run(*sets)``: ``analyst run --json`` of the small analysis with the model at the stand-in;
    checks that nothing of the run's sandbox is left, then returns the ``Outcome``."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-faults")

    def invoke(*sets: str, config: Path = analysis, as_json: bool = True) -> Outcome:
        before = sandbox_processes(run_marker)
        args = ["run", config, "--set", f"model.base_url={anthropic_api.base_url}",
                "--set", f"outputs.dir={tmp_path / 'out'}", *(["--json"] if as_json else [])]
        for item in sets:
            args += ["--set", item]
        result = cli(*args)
        summary = {}
        if as_json:
            try:
                summary = json.loads(result.stdout)
            except ValueError:
                pytest.fail(f"no JSON summary (exit {result.exit_code}):\n{result.output}")
        assert sandbox_processes(run_marker) - before == set(), "a sandbox process outlived its run"
        left = [p.name for p in Path(run_marker).iterdir() if p.name.startswith(("sandbox-", "analyst-k-"))]
        assert not left, f"the sandbox's folders outlived the run: {left}"
        return Outcome(result.exit_code, summary, result.output)

    return invoke


# --- what is left on the machine -------------------------------------------------------------------


def sandbox_processes(marker: str) -> set[int]:
    """Live processes of a local sandbox: any whose command line holds ``marker`` (bwrap binds the
    run's folders), and bwrap or ipykernel processes descending from this test process."""
    mine = _descendants(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "Z":
            continue
        if marker.encode() in cmdline or (pid in mine and (b"bwrap" in cmdline or b"ipykernel" in cmdline)):
            found.add(pid)
    return found


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# --- what Prefect holds ------------------------------------------------------------------------------


def flow_run(flow_run_id: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def latest_flow_run(name: str):
    """The newest flow run named ``name`` (the config file's stem), for runs whose id the CLI could not learn."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        [found] = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])),
                                        sort=FlowRunSort.START_TIME_DESC, limit=1)
    return found


def artifact_keys(flow_run_id: str) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {a.key for a in found if a.key}


def log_messages(flow_run_id: str) -> list[str]:
    """The flow run's logs on the server (this process's pending ones sent first)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        return [log.message for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))]


def task_run_names(flow_run_id: str) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name for r in runs}


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip("\n")
