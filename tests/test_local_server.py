"""The local Prefect server behind `analyst run` / `analyst server`.

Every test uses a temporary ANALYST_HOME and a free port, so none touches a developer's server.
The slow tests share one server (a cold start costs 10-20 s on a 2-core machine): two processes
start it concurrently, the lifecycle test reuses it, runs a flow on it and stops it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from cli import local_server
from cli.local_server import ServerError

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return {**env, "ANALYST_HOME": str(home), "ANALYST_SERVER_PORT": str(port), "PREFECT_LOGGING_LEVEL": "WARNING"}


def _run_python(code: str, env: dict[str, str], timeout: float = 90) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON object as its last stdout line."""
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _get(url: str) -> dict:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ANALYST_HOME", str(tmp_path / "analyst"))
    monkeypatch.setenv("ANALYST_SERVER_PORT", str(_free_port()))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return tmp_path / "analyst" / "prefect"


# --- fast ----------------------------------------------------------------------------------


def test_prefect_api_url_from_environment_starts_nothing(home, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    assert local_server.ensure_server() == "http://prefect.example:4200/api"
    assert not home.exists()


def test_stopped_without_state(home):
    st = local_server.status()
    assert (st.state, st.url, st.pid, st.note) == ("stopped", None, None, "")
    assert st.db == home / "prefect.db" and st.log == home / "server.log"
    assert local_server.stop().state == "stopped"  # idempotent


def test_stale_state_file_is_detected_and_removed(home):
    gone = subprocess.Popen(["true"])
    gone.wait()
    for pid in (gone.pid, os.getpid()):  # a dead pid, and a live pid that is not a prefect server
        home.mkdir(parents=True, exist_ok=True)
        (home / "server.json").write_text(json.dumps({"pid": pid, "port": int(os.environ["ANALYST_SERVER_PORT"])}))
        st = local_server.status()
        assert st.state == "stale" and str(pid) in st.note
        assert local_server.stop().state == "stale"
        assert not (home / "server.json").exists()
        assert local_server.status().state == "stopped"


def test_port_held_by_another_program(home):
    port = int(os.environ["ANALYST_SERVER_PORT"])
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        st = local_server.status()
        assert st.state == "stopped" and f"port {port} is held by another program" in st.note
        assert local_server.choose_port() > port
    assert local_server.choose_port() == port


def test_bad_port_setting(home, monkeypatch):
    monkeypatch.setenv("ANALYST_SERVER_PORT", "http")
    with pytest.raises(ServerError, match="ANALYST_SERVER_PORT"):
        local_server.status()


def test_the_background_server_gets_no_api_key(home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-planted-for-the-server")
    monkeypatch.setenv("DAYTONA_API_KEY", "dtn-planted-for-the-server")
    monkeypatch.setenv("ANALYST_KEEP_ME", "kept")
    env = local_server._server_env(local_server.paths(), 4299)
    assert "ANTHROPIC_API_KEY" not in env and "DAYTONA_API_KEY" not in env
    assert env["ANALYST_KEEP_ME"] == "kept" and env["PREFECT_SERVER_API_PORT"] == "4299"


def test_flow_run_url(monkeypatch):
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    assert local_server.flow_run_url("http://127.0.0.1:4200/api", "abc") == "http://127.0.0.1:4200/v2/runs/flow-run/abc"
    cloud = "https://api.prefect.cloud/api/accounts/A1/workspaces/W2"
    assert local_server.flow_run_url(cloud, "abc") == "https://app.prefect.cloud/account/A1/workspace/W2/runs/flow-run/abc"
    monkeypatch.setenv("PREFECT_UI_URL", "https://prefect.example/")
    assert local_server.flow_run_url("https://prefect.example/api", "abc") == "https://prefect.example/runs/flow-run/abc"


def test_cli_status_and_stop_when_stopped(home):
    from typer.testing import CliRunner

    from cli.server import server_app

    runner = CliRunner()
    result = runner.invoke(server_app, ["status"])
    assert result.exit_code == 1 and "stopped" in result.output
    result = runner.invoke(server_app, ["stop"])
    assert result.exit_code == 0 and "Not running" in result.output


# --- slow: one real server -----------------------------------------------------------------

ENSURE = """
import json, time
t = time.monotonic()
from cli import local_server
url = local_server.ensure_server()
print(json.dumps({"url": url, "pid": local_server.status().pid, "seconds": time.monotonic() - t}))
"""

TINY_FLOW = """
import json, sys, time
import prefect  # imported first: configure_prefect must switch settings prefect has already loaded
from prefect import flow, task
from prefect.client.orchestration import get_client
from cli import local_server

@task
def double(x):
    return 2 * x

@flow(name="local-server-smoke")
def smoke():
    return double(21)

url = local_server.configure_prefect()
t = time.monotonic()
state = smoke(return_state=True)
seconds = time.monotonic() - t
with get_client(sync_client=True) as client:
    run = client.read_flow_run(state.state_details.flow_run_id)
    print(json.dumps({
        "url": url, "client_url": str(client.api_url), "flow_run_id": str(run.id),
        "state": run.state_type.value, "result": state.result(), "seconds": seconds,
        "temporary_server_module_loaded": "prefect.server.api.server" in sys.modules,
    }))
"""


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """Two processes call ensure_server() at once on a fresh home; stopped at teardown."""
    home, port = tmp_path_factory.mktemp("shared") / "analyst", _free_port()
    env = {**_env(home, port), "ANTHROPIC_API_KEY": "sk-ant-planted-for-the-server"}
    procs = [
        subprocess.Popen([sys.executable, "-c", ENSURE], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
        results = [json.loads(o.strip().splitlines()[-1]) if p.returncode == 0 else {"error": e}
                   for p, (o, e) in zip(procs, outs)]
        yield SimpleNamespace(home=home, port=port, results=results)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ANALYST_HOME", str(home))
            mp.setenv("ANALYST_SERVER_PORT", str(port))
            local_server.stop()


@pytest.fixture
def at_shared(shared_server, monkeypatch):
    monkeypatch.setenv("ANALYST_HOME", str(shared_server.home))
    monkeypatch.setenv("ANALYST_SERVER_PORT", str(shared_server.port))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return shared_server


@pytest.mark.slow
def test_concurrent_ensure_server_starts_one_server(at_shared):
    a, b = at_shared.results
    assert "error" not in a and "error" not in b, (a, b)
    assert a["url"] == b["url"] == f"http://127.0.0.1:{at_shared.port}/api"
    assert a["pid"] == b["pid"] == local_server.status().pid
    log = (at_shared.home / "prefect" / "server.log").read_text()
    assert log.count("analyst starts prefect server") == 1


@pytest.mark.slow
def test_cli_start_and_status_when_running(at_shared):  # before the lifecycle test, which stops the server
    from typer.testing import CliRunner

    from cli.server import server_app

    result = CliRunner().invoke(server_app, ["start"])
    assert result.exit_code == 0 and "Already running" in result.output, result.output
    result = CliRunner().invoke(server_app, ["status"])
    assert result.exit_code == 0 and "running" in result.output and str(at_shared.port) in result.output


@pytest.mark.slow
def test_the_running_server_holds_no_api_key(at_shared):
    import psutil

    st = local_server.status()
    env = psutil.Process(st.pid).environ()
    assert "ANTHROPIC_API_KEY" not in env and env["PREFECT_HOME"] == str(at_shared.home / "prefect")


@pytest.mark.slow
def test_lifecycle_reuse_flow_and_stop(at_shared):
    st = local_server.status()
    assert st.running and st.port == at_shared.port and st.db.exists()

    t = time.monotonic()
    assert local_server.ensure_server() == st.url  # reused: same server, no new process
    assert time.monotonic() - t < 1.0
    assert local_server.start().pid == st.pid

    run = _run_python(TINY_FLOW, _env(at_shared.home, at_shared.port))
    assert run["url"] == run["client_url"].rstrip("/") == st.url
    assert (run["state"], run["result"]) == ("COMPLETED", 42)
    assert not run["temporary_server_module_loaded"]
    stored = _get(f"{st.url}/flow_runs/{run['flow_run_id']}")  # recorded by *this* server
    assert stored["state_type"] == "COMPLETED"
    assert local_server.flow_run_url(st.url, run["flow_run_id"]).startswith(f"{st.ui_url}/v2/runs/flow-run/")

    stopped = local_server.stop()
    assert stopped.pid == st.pid and not local_server._pid_alive(st.pid)
    assert local_server.status().state == "stopped"
    assert not (at_shared.home / "prefect" / "server.json").exists()
    assert local_server.stop().state == "stopped"  # idempotent
