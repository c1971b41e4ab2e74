"""The warm runner (cli/warm_runner.py, cli/warm_client.py): which environments share one, and, end to
end through the real ``analyst`` script, that a run handed to it behaves as a run in its own process:
output, exit codes, Ctrl-C, a SIGKILL of the command, and the runner's end with the server."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli import warm_client
from cli.warm_client import SWITCH, address, enabled
from tests.fakes.demo_script import RESULTS as DEMO_RESULTS
from tests.scaleout.processes import clean_env, descendants, free_port

ROOT = Path(__file__).resolve().parents[1]
ANALYST = str(Path(sys.executable).with_name("analyst"))
DEMO = ROOT / "configs" / "retail-sales.yaml"
TRANSCRIPT = ROOT / "configs" / "retail-sales.transcript.json"


def test_one_runner_serves_one_environment_whatever_the_shell_or_the_secrets(tmp_path) -> None:
    env = {"ANALYST_HOME": str(tmp_path / "a"), "LANG": "C.UTF-8", "PWD": "/x", "ANTHROPIC_API_KEY": "sk-ant-1"}
    same = address(env)
    assert same.startswith("\0analyst-runner-")
    assert address({**env, "PWD": "/y", "OLDPWD": "/x", "SHLVL": "3", "_": "/usr/bin/analyst"}) == same
    assert address({**env, "ANTHROPIC_API_KEY": "sk-ant-2", "SLACK_WEBHOOK_TOKEN": "t"}) == same
    assert address({**env, "LANG": "C"}) != same  # read at import by some library: another runner
    assert address({**env, "POLARS_MAX_THREADS": "1"}) != same
    assert address({**env, "ANALYST_HOME": str(tmp_path / "b")}) != same  # another project, another server


def test_an_edited_source_file_or_a_new_one_changes_the_signature(tmp_path) -> None:
    source = tmp_path / "tasks" / "thing.py"
    source.parent.mkdir()
    source.write_text("X = 1\n")

    def signature() -> str:
        digest = __import__("hashlib").sha256()
        warm_client._code_signature(digest, tmp_path)
        return digest.hexdigest()

    first = signature()
    assert signature() == first
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 1_000_000))
    edited = signature()
    assert edited != first
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "new.py").write_text("")
    assert signature() != edited


def test_only_the_local_server_on_linux_and_not_when_turned_off() -> None:
    assert enabled({}) == (sys.platform == "linux")
    assert not enabled({"PREFECT_API_URL": "http://127.0.0.1:4200/api"})
    assert not enabled({SWITCH: "0"}) and not enabled({SWITCH: "false"})


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_the_runner_refuses_another_user(tmp_path, monkeypatch) -> None:
    from cli.local_server import ServerStatus
    from cli.warm_runner import Runner

    where = f"\0analyst-runner-test-{os.getpid()}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(where)
    listener.listen(1)
    runner = Runner(listener, ServerStatus("running", None, None, None, tmp_path, tmp_path), lambda: True)
    # Were it served, the fork of this test process must not go on running the tests.
    monkeypatch.setattr(Runner, "become_run", lambda *_: os._exit(3))
    reply_from, reply_to = os.pipe()
    intruder = os.fork()
    if intruder == 0:  # another uid asks for a run, with a request that would otherwise be served
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(where)
                request = json.dumps({"argv": ["--version"], "cwd": "/", "env": {}, "umask": 0o22}).encode()
                try:
                    socket.send_fds(conn, [warm_client.HEADER.pack(len(request))], [0, 1, 2])
                    conn.sendall(request)
                    answer = conn.recv(100)
                except OSError:  # closed before or after the request was sent
                    answer = b""
                os.write(reply_to, answer or b"closed")
        finally:
            os._exit(0)
    os.close(reply_to)
    try:
        runner.accept()
        os.waitpid(intruder, 0)
    finally:
        listener.close()
    reply = os.read(reply_from, 100)
    os.close(reply_from)
    assert runner.runs == {}  # nothing forked
    assert reply == b"closed"


# --- end to end, through the console script ---------------------------------------------------


@pytest.fixture
def project(tmp_path):
    """An environment of its own (home, server port) for the `analyst` script; its server, and so
    its runner, are stopped after the test."""
    env = clean_env(ANALYST_HOME=str(tmp_path / "home"), ANALYST_SERVER_PORT=str(free_port()),
                    PREFECT_SERVER_ANALYTICS_ENABLED="false", ANTHROPIC_API_KEY="sk-ant-test")
    env.pop(SWITCH, None)
    try:
        yield env
    finally:
        subprocess.run([ANALYST, "server", "stop"], env=env, cwd=tmp_path, capture_output=True, timeout=60)


def analyst(env, cwd, *args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYST, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=300,
                          **kwargs)


def runner_log(env) -> str:
    path = Path(env["ANALYST_HOME"]) / "prefect" / "runner.log"
    return path.read_text() if path.exists() else ""


def wait_for(condition, timeout: float, what) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f} s waiting for {what() if callable(what) else what}")
        time.sleep(0.2)


def wait_for_runner(env) -> int:
    wait_for(lambda: warm_client.ready(env), 180, lambda: f"the runner; its log:\n{runner_log(env)}")
    [pid] = {int(p) for p in re.findall(r"runner (\d+): ready", runner_log(env))}
    return pid


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_a_second_run_goes_through_the_runner_and_ends_as_the_first(project, tmp_path) -> None:
    out = tmp_path / "out"
    args = ("run", DEMO, "--replay", TRANSCRIPT, "--json", "--set", f"outputs.dir={out}")
    first = analyst(project, tmp_path, *args)
    assert first.returncode == 0, first.stderr
    runner = wait_for_runner(project)
    assert "run " not in runner_log(project)  # the first run ran in its own process

    second = analyst(project, tmp_path, *args)
    assert second.returncode == 0, second.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert re.findall(r"run \d+: exit (-?\d+)", runner_log(project)) == ["0"]  # the second one did
    assert two["status"] == one["status"] == "completed"
    assert second.stderr == first.stderr  # no Prefect console logs: only our own progress and summary
    assert two["iterations"] == one["iterations"] and two["results"] == one["results"]
    assert [Path(c).name for c in two["charts"]] == [Path(c).name for c in one["charts"]]
    assert two["run_dir"] != one["run_dir"] and Path(two["run_dir"], "report.md").is_file()

    # A user's mistake: the same message and exit code as in the command's own process.
    bad = ("run", DEMO, "--set", "model.max_iterations=many")
    warm = analyst(project, tmp_path, *bad)
    cold = analyst({**project, SWITCH: "0"}, tmp_path, *bad)
    assert re.findall(r"run \d+: exit (-?\d+)", runner_log(project)) == ["0", "2"]
    assert warm.returncode == cold.returncode == 2
    assert warm.stderr == cold.stderr and "model.max_iterations" in warm.stderr

    stopped = analyst(project, tmp_path, "server", "stop")
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: not alive(runner), 30, lambda: f"the runner to end with the server:\n{runner_log(project)}")
    assert "stops taking runs: the local Prefect server stopped" in runner_log(project)


def sandbox_of(pid: int) -> list[int]:
    return [p for p, cmdline in descendants(pid) if "bwrap" in cmdline.split(" ", 1)[0] or "ipykernel" in cmdline]


@pytest.mark.slow
def test_ctrl_c_and_a_killed_command_reach_the_run_and_its_sandbox(project, anthropic_api, tmp_path) -> None:
    out = tmp_path / "out"
    sets = ("--set", f"model.base_url={anthropic_api.base_url}", "--set", f"outputs.dir={out}")
    anthropic_api.enqueue_text("Report.")  # the first run, which leaves the runner
    anthropic_api.enqueue_results(DEMO_RESULTS)
    first = analyst(project, tmp_path, "run", DEMO, *sets)
    assert first.returncode == 0, first.stderr
    runner = wait_for_runner(project)

    def start_a_long_cell(env) -> tuple[subprocess.Popen, list[int]]:
        """A run whose first cell sleeps: returns the command and its sandbox's processes."""
        seen = len(anthropic_api.requests)
        anthropic_api.enqueue_tool_use(code="import time\ntime.sleep(120)")
        command = subprocess.Popen([ANALYST, "run", str(DEMO), *sets], env=env, cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(anthropic_api.requests) > seen, 120, "the run's first request")
        where = (lambda: int(re.findall(r"run (\d+): analyst", runner_log(env))[-1])) if SWITCH not in env else (
            lambda: command.pid)
        wait_for(lambda: len(sandbox_of(where())) >= 2, 60, "the sandbox")
        time.sleep(1.0)  # the cell is running
        return command, sandbox_of(where())

    results = {}
    for name, env in (("warm", project), ("cold", {**project, SWITCH: "0"})):
        command, sandbox = start_a_long_cell(env)
        command.send_signal(signal.SIGINT)  # what Ctrl-C sends the command
        _, err = command.communicate(timeout=120)
        wait_for(lambda: not any(alive(p) for p in sandbox), 30, f"the {name} run's sandbox to go")  # noqa: B023
        results[name] = (command.returncode, err.strip().splitlines()[-1:])
    assert results["warm"] == results["cold"], results
    assert results["warm"][0] != 0

    command, sandbox = start_a_long_cell(project)
    run = int(re.findall(r"run (\d+): analyst", runner_log(project))[-1])
    command.send_signal(signal.SIGKILL)
    command.wait(10)
    wait_for(lambda: not alive(run) and not any(alive(p) for p in sandbox), 30,
             lambda: f"the run and its sandbox to be killed:\n{runner_log(project)}")
    assert f"run {run}: its client went away; killing the run" in runner_log(project)
    assert alive(runner)  # and it serves the next run
    anthropic_api.enqueue_text("Report.")
    anthropic_api.enqueue_results(DEMO_RESULTS)
    again = analyst(project, tmp_path, "run", DEMO, *sets)
    assert again.returncode == 0, again.stderr
    assert re.findall(r"run \d+: exit (-?\d+)", runner_log(project))[-1] == "0"


PROBE = """
import json, sys
from cli.warm_runner import preload
preload()
before = set(sys.modules)
from cli.commands import app
try:
    app(sys.argv[1:], prog_name="analyst")
except SystemExit as done:
    assert done.code == 0, done.code
print(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.slow
def test_a_run_in_a_runner_imports_only_the_commands_own_modules(prefect_api, anthropic_api, tmp_path) -> None:
    """What a runner imports is what a run needs (cli/warm_runner.PRELOAD), so a run in it imports
    nothing but the CLI's modules, whose consoles must be made in the run's own terminal."""
    env = clean_env(PREFECT_API_URL=prefect_api, ANTHROPIC_API_KEY="sk-ant-test")
    anthropic_api.enqueue_tool_use(code="print(len(open('data/sales.csv').readlines()))")
    anthropic_api.enqueue_text("Report.")
    anthropic_api.enqueue_results(DEMO_RESULTS)
    probe = subprocess.run([sys.executable, "-c", PROBE, "run", str(DEMO), "--json", "--set", f"outputs.dir={tmp_path}",
                            "--set", f"model.base_url={anthropic_api.base_url}"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    imported = json.loads(probe.stdout.strip().splitlines()[-1])
    missing = [m for m in imported if m.split(".")[0] != "cli"]
    assert missing == [], f"add these to cli/warm_runner.PRELOAD: {missing}"
    assert "cli.run" in imported
