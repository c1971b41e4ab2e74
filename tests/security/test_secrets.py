"""API keys never reach the sandbox, the transcript, the notebook, the reports, Prefect's artifacts,
logs, events, parameters or states, nor the CLI's output.

Each run plants distinct, recognisable fake keys in every place a key can come from (the process
environment, a ``.env`` beside the config, Prefect Secret blocks), makes one of them the key that is
actually used (the stand-in API only accepts that one, so the run proves it was sent), lets the
scripted model dump what the sandbox can see (its environment, every ``/proc/*/environ``, every file
outside the system folders), and then searches every output for every key and its fragments.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tasks.sandbox.local.bubblewrap import python_roots
from tasks.transcript import Transcript
from tests.fakes.demo_script import RESULTS as DEMO_RESULTS
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.fakes.daytona_api import FakeDaytonaAPI
from tests.security import outputs

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# What the analysis code runs: everything it can find that could hold a key, printed as JSON so the
# run's outputs carry the sandbox's view. It never names the planted keys (that would put them in
# the transcript): it looks for anything key-like.
PROBE = """
import glob, json, os
skip = {skip!r}
found = {{"env": dict(os.environ), "proc": {{}}, "files": [], "key_like": {{}}}}
for path in sorted(glob.glob({proc_glob!r})):
    try:
        found["proc"][path] = open(path, "rb").read().decode("utf-8", "replace")
    except OSError as exc:
        found["proc"][path] = type(exc).__name__
for root, dirs, names in os.walk({walk!r}):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
    for name in names:
        path = os.path.join(root, name)
        found["files"].append(path)
        try:
            text = open(path, "rb").read(1 << 20).decode("utf-8", "replace")
        except OSError:
            continue
        if "sk-ant" in text or "API_KEY" in text or "dtn" in text:
            found["key_like"][path] = text[:500]
print(json.dumps(found))
"""


def planted(source: str, prefix: str = "sk-ant-api03") -> str:
    return f"{prefix}-PLANTED-{source}-{secrets.token_hex(12)}"


@pytest.fixture
def keys() -> dict[str, str]:
    return {"env": planted("ENV"), "dotenv": planted("DOTENV"), "block": planted("BLOCK"),
            "daytona-env": planted("DAYTONA-ENV", "dtn"), "daytona-dotenv": planted("DAYTONA-DOTENV", "dtn"),
            "daytona-block": planted("DAYTONA-BLOCK", "dtn")}


@pytest.fixture
def project(tmp_path: Path, keys: dict[str, str]) -> Path:
    """A copy of the demo config with a .env beside it holding planted keys."""
    folder = tmp_path / "project"
    shutil.copytree(CONFIGS, folder, ignore=shutil.ignore_patterns("outputs", "*.json"))
    (folder / ".env").write_text(f"ANTHROPIC_API_KEY={keys['dotenv']}\nDAYTONA_API_KEY={keys['daytona-dotenv']}\n")
    return folder / "retail-sales.yaml"


def save_block(value: str) -> str:
    from prefect.blocks.system import Secret

    name = f"planted-{uuid.uuid4().hex[:8]}"
    Secret(value=value).save(name)
    return name


def local_probe() -> str:
    system = ["/proc", "/sys", "/dev", "/usr", *python_roots()]
    return PROBE.format(skip=system, proc_glob="/proc/[0-9]*/environ", walk="/")


def daytona_probe() -> str:
    # The stand-in runs the code on this machine, unconfined: its own environment and its work folder
    # are what a Daytona sandbox would hold; the rest of this machine is not a Daytona sandbox's view.
    return PROBE.format(skip=[], proc_glob="/proc/self/environ", walk=".")


def run_analysis(cli, config: Path, model_api: FakeAnthropicAPI, tmp_path: Path, probe: str,
                 *sets: str) -> tuple[dict, str]:
    model_api.enqueue_tool_use(code=probe, text="First, what is in this environment?", results=DEMO_RESULTS)
    model_api.enqueue_text("# Report\nNothing to report.")
    # The probe's JSON lists every file it can see (18,581 to 133K characters seen across runs): it must
    # reach the transcript whole, past the usual cut of what goes back to the model.
    result = cli("run", config, "--json", "--set", f"model.base_url={model_api.base_url}",
                 "--set", f"outputs.dir={tmp_path / 'out'}", "--set", "sandbox.max_output_chars=5000000",
                 *[a for s in sets for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed", summary
    return summary, result.output


def sandbox_view(run_dir: Path) -> dict:
    [cell] = Transcript.load(run_dir / "transcript.json").cells
    assert cell.error is None, cell.error
    return json.loads(cell.stdout)


def search_everything(summary: dict, cli_output: str, since: datetime, model_api: FakeAnthropicAPI,
                      keys: dict[str, str], extra: dict[str, str] | None = None) -> dict[str, str]:
    found = outputs.run_folder(Path(summary["run_dir"]))
    assert {"file transcript.json", "file report.md", "file report.html", "file analysis.ipynb"} <= set(found)
    records = outputs.prefect_records(summary["flow_run_id"], since, wait_for_event="prefect.flow-run.Completed")
    assert any(k.startswith("artifact ") for k in records) and any(k.startswith("log ") for k in records)
    assert any(k.startswith("task run iteration-1") for k in records)
    assert any(k.startswith("event prefect.flow-run.Completed") for k in records)
    found |= records
    found["cli output"] = cli_output
    # What was sent to the model: the sandbox's output goes back to Claude as a tool result.
    found |= {f"model request {i}": json.dumps(r.body) for i, r in enumerate(model_api.requests)}
    found |= extra or {}
    leaks = outputs.find(found, keys.values())
    assert leaks == [], "\n".join(leaks)
    return found


@pytest.mark.parametrize("source", ["env", "dotenv", "block"])
def test_no_anthropic_key_reaches_any_output(source, prefect_api, cli, keys, project, tmp_path, monkeypatch):
    since = datetime.now(timezone.utc)
    monkeypatch.setenv("DAYTONA_API_KEY", keys["daytona-env"])  # planted even where it is not used
    sets = []
    if source == "dotenv":
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    else:
        monkeypatch.setenv("ANTHROPIC_API_KEY", keys["env"])
    if source == "block":
        sets.append(f"model.api_key_secret={save_block(keys['block'])}")

    with FakeAnthropicAPI(api_key=keys[source]) as model_api:  # answers 401 to any other key
        summary, cli_output = run_analysis(cli, project, model_api, tmp_path, local_probe(), *sets)

    assert [r.api_key for r in model_api.requests] == [keys[source]] * 2  # this key, and only it, was used
    view = sandbox_view(Path(summary["run_dir"]))
    assert "/proc/1/environ" in view["proc"] and len(view["proc"]) >= 2  # it could look, and did
    assert "/sandbox/data/sales.csv" in view["files"]
    assert view["key_like"] == {}
    assert not {"ANTHROPIC_API_KEY", "DAYTONA_API_KEY"} & set(view["env"])
    search_everything(summary, cli_output, since, model_api, keys)


@pytest.mark.parametrize("source", ["daytona-env", "daytona-dotenv", "daytona-block"])
def test_no_daytona_key_reaches_any_output(source, prefect_api, cli, keys, project, tmp_path, monkeypatch):
    since = datetime.now(timezone.utc)
    monkeypatch.setenv("ANTHROPIC_API_KEY", keys["env"])
    sets = ["sandbox.provider=daytona"]
    if source == "daytona-dotenv":
        monkeypatch.delenv("DAYTONA_API_KEY", raising=False)
    else:
        monkeypatch.setenv("DAYTONA_API_KEY", keys["daytona-env"])
    if source == "daytona-block":
        sets.append(f"sandbox.api_key_secret={save_block(keys['daytona-block'])}")

    with FakeDaytonaAPI(api_key=keys[source]) as daytona, FakeAnthropicAPI(api_key=keys["env"]) as model_api:
        monkeypatch.setenv("DAYTONA_API_URL", daytona.api_url)
        monkeypatch.delenv("DAYTONA_TARGET", raising=False)
        summary, cli_output = run_analysis(cli, project, model_api, tmp_path, daytona_probe(), *sets)
        sent = {f"daytona request {i} {r.method} {r.path}": json.dumps(
            {"query": r.query, "body": r.body, "headers": {k: v for k, v in r.headers.items() if k != "authorization"}})
            for i, r in enumerate(daytona.requests)}
        sent |= {f"daytona execution {i}": code for i, (_, code) in enumerate(daytona.executions)}
        created, authorizations = daytona.created, {r.headers.get("authorization") for r in daytona.requests}
        assert daytona.sandboxes == {}  # torn down

    assert authorizations == {f"Bearer {keys[source]}"}  # this key, and only it, was used
    [body] = created
    assert set(body["env"]) == {"MPLBACKEND", "PYTHONUNBUFFERED", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"}  # fixed values, nothing of the host
    view = sandbox_view(Path(summary["run_dir"]))
    assert view["proc"] and "data/sales.csv" in {os.path.relpath(f, ".") for f in view["files"]}
    assert view["key_like"] == {}
    assert not {"ANTHROPIC_API_KEY", "DAYTONA_API_KEY"} & set(view["env"])
    search_everything(summary, cli_output, since, model_api, keys, sent)


def test_the_search_finds_a_secret_cut_masked_or_split() -> None:
    key = planted("ENV")
    tail = key.rsplit("-", 1)[-1]
    for text in (key, f"key={key[:-6]}…", f"[api key]{key[-16:]}", f"...{tail[:12]}", tail[-12:] + "..."):
        assert outputs.find({"somewhere": text}, [key]), text
    assert outputs.find({"somewhere": "sk-ant-api03-PLANTED-ENV-0000"}, [key]) == []


@pytest.mark.parametrize("mistake", ["model.api_key_secret", "sandbox.api_key_secret", "prompt"])
def test_a_key_put_in_the_config_by_mistake_is_refused_without_showing_it(mistake, prefect_api, cli, keys, project,
                                                                         monkeypatch):
    """The key itself where a Secret block's name goes, or ``${ANTHROPIC_API_KEY}`` in the prompt:
    refused as a config error (exit 2) before any flow run exists, and the message never shows it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, FlowRunFilterStartTime

    since = datetime.now(timezone.utc)
    monkeypatch.setenv("ANTHROPIC_API_KEY", keys["env"])
    value = "Summarise. ${ANTHROPIC_API_KEY}" if mistake == "prompt" else keys["env"]
    result = cli("run", project, "--set", f"{mistake}={value}")

    assert result.exit_code == 2, result.output
    assert mistake in result.output and "API key" in result.output
    assert outputs.find({"cli output": result.output}, keys.values()) == []
    with get_client(sync_client=True) as client:
        # This config's runs only: on the shared server, other tests' schedules create runs meanwhile.
        assert client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[Path(project).stem]), start_time=FlowRunFilterStartTime(after_=since))) == []


def test_a_rejected_key_fails_without_showing_it(prefect_api, cli, keys, project, tmp_path, monkeypatch):
    """The failure path: an error message, a traceback in Prefect's logs, a Failed state."""
    since = datetime.now(timezone.utc)
    monkeypatch.setenv("ANTHROPIC_API_KEY", keys["env"])
    with FakeAnthropicAPI(api_key=planted("OTHER")) as model_api:  # accepts another key only
        result = cli("run", project, "--json", "--set", f"model.base_url={model_api.base_url}",
                     "--set", f"outputs.dir={tmp_path / 'out'}")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert "rejected the API key" in summary["error"] and model_api.requests[0].api_key == keys["env"]
    found = outputs.run_folder(Path(summary["run_dir"])) | {"cli output": result.output}
    records = outputs.prefect_records(summary["flow_run_id"], since, wait_for_event="prefect.flow-run.Failed")
    assert any("rejected the API key" in text for place, text in records.items() if place.startswith("log "))
    leaks = outputs.find(found | records, keys.values())
    assert leaks == [], "\n".join(leaks)
