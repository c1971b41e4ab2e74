"""The local sandbox: isolation, limits, output capture and lifecycle, against a real bwrap kernel.

One sandbox is shared by the module (provisioning costs ~1 s); tests that restart or tear down
their kernel make their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox import create_sandbox
from tasks.sandbox.local.bubblewrap import userns_works
from tasks.sandbox.local.limits import CFS_PERIOD_US, MemoryCgroup
from tasks.sandbox.local import LocalSandbox
from tasks.sandbox.output_buffer import OutputBuffer

SECRET = f"sk-test-{random.getrandbits(64):016x}"
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
CONFIG = SandboxConfig(memory="512MiB", timeout=20, max_output_chars=2000, cpus=1)


def _cgroup_available() -> bool:
    probe = MemoryCgroup.create(512 * 1024**2)
    if probe is None:
        return False
    probe.remove()
    return True


needs_cgroup = pytest.mark.skipif(not _cgroup_available(), reason="no writable cgroup v1 memory controller")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    with pytest.MonkeyPatch.context() as mp:
        # Planted before provisioning: nothing of the host environment may reach the sandbox.
        mp.setenv("ANALYST_TEST_SECRET", SECRET)
        mp.setenv("ANTHROPIC_API_KEY", SECRET)
        with LocalSandbox(CONFIG, work_root=tmp_path_factory.mktemp("work")) as sb:
            yield sb


def run_ok(sb, code, **kw):
    result = sb.run_code(code, **kw)
    assert result.error is None and not result.timed_out, (result.error, result.stderr, result.warnings)
    return result


def inside_json(sb, code):
    """Run code that prints one JSON document as its last line; return it."""
    return json.loads(run_ok(sb, code).stdout.strip().splitlines()[-1])


# -- isolation -------------------------------------------------------------------------------


def test_network_blocked(sandbox):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # reachable from the host
        outcome = inside_json(sandbox, f"""
import json, socket
out = {{}}
for host, port in (("1.1.1.1", 53), ("127.0.0.1", {port})):
    try:
        socket.create_connection((host, port), timeout=2).close()
        out[host] = "connected"
    except OSError as exc:
        out[host] = type(exc).__name__
print(json.dumps(out))
""")
    finally:
        server.close()
    assert outcome["1.1.1.1"] != "connected"
    assert outcome["127.0.0.1"] != "connected"


def test_no_host_environment_anywhere(sandbox):
    seen = inside_json(sandbox, f"""
import glob, json, os
blobs = {{}}
for path in glob.glob("/proc/[0-9]*/environ"):
    try:
        blobs[path] = open(path, "rb").read().decode("utf-8", "replace")
    except OSError:
        pass
values = [kv.partition("=")[2] for b in blobs.values() for kv in b.split("\\0") if kv]
print(json.dumps({{"read": sorted(blobs), "hits": [p for p, b in blobs.items() if {SECRET!r} in b],
                  "pid1": blobs.get("/proc/1/environ"), "env": dict(os.environ), "values": values}}))
""")
    assert "/proc/1/environ" in seen["read"] and len(seen["read"]) >= 2
    assert seen["hits"] == []
    assert seen["pid1"] == ""  # bwrap itself was started with an empty environment
    assert SECRET not in json.dumps(seen["env"])
    assert "ANTHROPIC_API_KEY" not in seen["env"] and "ANALYST_TEST_SECRET" not in seen["env"]
    # No host variable's value shows up inside at all (short ones like "1" would match by chance).
    host_values = {v for v in os.environ.values() if len(v) >= 8 and v != sys.prefix}
    assert host_values & (set(seen["values"]) | set(seen["env"].values())) == set()


def test_host_files_invisible(sandbox):
    planted = Path.home() / f".analyst-planted-{random.getrandbits(32):08x}"
    planted.write_text(SECRET)
    project = Path(__file__).resolve().parents[2]
    try:
        seen = inside_json(sandbox, f"""
import json, os
def probe(path):
    try:
        return open(path).read()[:20]
    except OSError as exc:
        return type(exc).__name__
print(json.dumps({{"planted": probe({str(planted)!r}), "pyproject": probe({str(project / 'pyproject.toml')!r}),
                  "passwd": probe("/etc/passwd"), "home": os.path.isdir({str(Path.home() / '.ssh')!r})}}))
""")
    finally:
        planted.unlink()
    assert seen["planted"] == "FileNotFoundError"
    assert seen["pyproject"] == "FileNotFoundError"
    assert seen["passwd"].startswith("sandbox:")  # ours, not the host's
    assert seen["home"] is False


def test_writes_only_in_work_folder(sandbox):
    targets = ["/usr/analyst-probe", "/etc/analyst-probe", f"{sys.prefix}/analyst-probe",
               f"{sys.base_prefix}/analyst-probe", "/analyst-probe", "/sandbox/outputs/ok.txt", "/tmp/ok.txt"]
    seen = inside_json(sandbox, f"""
import json
out = {{}}
for path in {targets!r}:
    try:
        open(path, "w").write("x")
        out[path] = "written"
    except OSError as exc:
        out[path] = type(exc).__name__
print(json.dumps(out))
""")
    assert [p for p, v in seen.items() if v == "written"] == ["/sandbox/outputs/ok.txt", "/tmp/ok.txt"]
    assert (sandbox.work_dir / "outputs" / "ok.txt").read_text() == "x"
    for path in targets[:5]:
        assert not os.path.exists(path)


def test_unprivileged_and_cpu_limited(sandbox):
    seen = inside_json(sandbox, """
import json, os
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")]
print(json.dumps({"uid": os.getuid(), "caps": caps[0], "cpus": len(os.sched_getaffinity(0)),
                  "omp": os.environ.get("OMP_NUM_THREADS"), "cwd": os.getcwd(), "ls": sorted(os.listdir("."))}))
""")
    assert int(seen["caps"], 16) == 0
    if userns_works(shutil.which("bwrap")):
        assert seen["uid"] != 0
    cpu_group = sandbox._cpu_cgroup  # a CFS quota where the machine allows one, else pinned cores
    if cpu_group is not None:
        assert (cpu_group.path / "cpu.cfs_quota_us").read_text().strip() == str(CFS_PERIOD_US)
        assert cpu_group.pids(), "the kernel runs inside the quota's cgroup"
    else:
        assert seen["cpus"] == 1
    assert seen["omp"] == "1"
    assert seen["cwd"] == "/sandbox" and {"data", "outputs"} <= set(seen["ls"])


# -- running code -----------------------------------------------------------------------------

def test_state_persists_between_runs(sandbox):
    run_ok(sandbox, "import statistics\nnumbers = [3, 1, 2]")
    assert run_ok(sandbox, "numbers.append(10)\nprint(statistics.median(numbers))").stdout == "2.5\n"
    assert run_ok(sandbox, "numbers").stdout.strip() == "[3, 1, 2, 10]"  # last expression, as in a notebook


def test_code_error_is_a_result(sandbox):
    result = sandbox.run_code("def f():\n    return {}['missing']\nprint('before')\nf()")
    assert result.stdout == "before\n" and not result.timed_out
    assert result.error is not None
    assert result.error.name == "KeyError" and result.error.message == "'missing'"
    assert "\x1b" not in result.error.traceback
    assert "return {}['missing']" in result.error.traceback and "f()" in result.error.traceback
    assert run_ok(sandbox, "print('still fine')").stdout == "still fine\n"


def test_stderr_captured(sandbox):
    result = run_ok(sandbox, "import sys, subprocess\nprint('to err', file=sys.stderr)\n"
                             "subprocess.run(['sh', '-c', 'echo from-child'])")
    assert "to err" in result.stderr
    assert "from-child" in result.stdout  # fd-level output of subprocesses is captured too


def test_output_cut_keeps_head_and_tail(sandbox):
    result = run_ok(sandbox, "print('A' * 5000 + 'MIDDLE' + 'Z' * 5000)")
    assert result.stdout.startswith("A" * 900) and result.stdout.endswith("Z" * 900 + "\n")
    assert "MIDDLE" not in result.stdout
    assert "[... 8,007 characters cut ...]" in result.stdout  # 10,007 printed, 2,000 kept
    assert len(result.stdout) < 2100


def test_flood_of_output_stays_bounded(sandbox):
    started = time.monotonic()
    result = run_ok(sandbox, "for i in range(4000):\n    print(f'{i:06d}' + 'x' * 5000)\nprint('END')")
    assert time.monotonic() - started < 5
    assert len(result.stdout) < 2100
    assert result.stdout.startswith("000000x") and result.stdout.endswith("END\n")
    assert "characters cut" in result.stdout


def test_output_buffer_any_chunking():
    text = "".join(chr(97 + i % 26) for i in range(10_000))
    for _ in range(20):
        buf, pos = OutputBuffer(300), 0
        while pos < len(text):
            step = random.choice([1, 7, 150, 299, 300, 301, 4000])
            buf.write(text[pos:pos + step])
            pos += step
        assert buf.getvalue() == f"{text[:150]}\n[... 9,700 characters cut ...]\n{text[-150:]}"
    small = OutputBuffer(300)
    small.write("hello")
    assert small.getvalue() == "hello"


# -- timeouts, memory, crashes ------------------------------------------------------------------

@pytest.mark.parametrize("code", ["while True:\n    pass", "import time\ntime.sleep(1000)"])
def test_timeout_interrupts_and_keeps_state(sandbox, code):
    run_ok(sandbox, "kept = 42")
    started = time.monotonic()
    result = sandbox.run_code(code, timeout=1)
    assert time.monotonic() - started < 4
    assert result.timed_out and not result.state_reset and not result.ok
    assert any("time limit" in w for w in result.warnings)
    assert run_ok(sandbox, "print(kept)").stdout == "42\n"


def test_memory_limit_large_allocation(sandbox):
    run_ok(sandbox, "kept = 'yes'")
    result = sandbox.run_code("block = bytearray(2 * 10**9)")
    assert result.error is not None and result.error.name == "MemoryError"
    assert "512 MiB" in result.error.message and "memory" in result.error.message
    assert run_ok(sandbox, "print(kept)").stdout == "yes\n"


@needs_cgroup
def test_memory_limit_covers_subprocesses(sandbox):
    # Each child fits its own address-space cap (512 MiB + slack); together they pass the sandbox's RAM.
    result = run_ok(sandbox, "import subprocess, sys\n"
                             "code = 'import time; b = b\"x\" * (700 << 20); time.sleep(3)'\n"
                             "children = [subprocess.Popen([sys.executable, '-c', code]) for _ in range(2)]\n"
                             "print(sorted(child.wait() for child in children))")
    assert -9 in json.loads(result.stdout)


@pytest.fixture
def own_sandbox(tmp_path):
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    sb = LocalSandbox(CONFIG, work_root=tmp_path, warm_imports=())
    sb.provision()
    yield sb
    sb.teardown()


def test_unresponsive_code_restarts_the_session(own_sandbox):
    run_ok(own_sandbox, "kept = 1")
    started = time.monotonic()
    result = own_sandbox.run_code("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
                                  timeout=1)
    assert time.monotonic() - started < 6
    assert result.timed_out and result.state_reset
    after = own_sandbox.run_code("print(kept)")
    assert after.error is not None and after.error.name == "NameError"
    assert run_ok(own_sandbox, "print('alive')").stdout == "alive\n"


def test_kernel_death_is_a_result(own_sandbox):
    result = own_sandbox.run_code("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert result.error is not None and result.error.name == "KernelDied"
    assert "restarted" in result.error.message and result.state_reset
    assert run_ok(own_sandbox, "print('alive')").stdout == "alive\n"


def test_a_session_that_died_between_runs_is_restarted_once(own_sandbox):
    # The restart sends the kernel's set-up code; the cell that follows must not swallow its reply,
    # or the next run would wait for it, time out and restart the session again.
    run_ok(own_sandbox, "print('warm')")
    own_sandbox._session.proc.kill()
    own_sandbox._session.proc.wait()
    first = own_sandbox.run_code("kept = 1")
    assert first.state_reset and first.error is None
    second = own_sandbox.run_code("print(kept)")
    assert second.error is None and not second.state_reset and second.stdout == "1\n"


def test_memory_limit_many_small_allocations_keep_state(own_sandbox):
    run_ok(own_sandbox, "kept = 'yes'")
    result = own_sandbox.run_code("chunks = []\nwhile True:\n    chunks.append(b'x' * (4 << 20))")
    assert result.error is not None and result.error.name == "MemoryError", result.error
    assert "512 MiB" in result.error.message and not result.state_reset
    assert run_ok(own_sandbox, "del chunks\nprint(kept)").stdout == "yes\n"


@needs_cgroup
def test_ram_past_the_limit_in_tmp_kills_the_session_and_says_so(own_sandbox):
    # Files in /dev/shm are RAM no address-space cap sees: only the cgroup stops them.
    result = own_sandbox.run_code("chunks = [b'x' * (4 << 20) for _ in range(150)]\n"
                                  "with open('/dev/shm/fill', 'wb') as f:\n"
                                  "    for _ in range(120):\n        f.write(b'y' * (4 << 20))\n"
                                  "print('survived')")
    assert "survived" not in result.stdout
    assert result.error is not None and result.error.name == "MemoryLimitKill", result.error
    assert "1 GiB" in result.error.message and "killed" in result.error.message and result.state_reset
    assert run_ok(own_sandbox, "print('alive')").stdout == "alive\n"


# -- charts and files ---------------------------------------------------------------------------

# Figures and image files are in the contract suite (tests/sandbox/test_contract.py), run on local too.


def test_symlinks_in_outputs_are_not_followed(sandbox, tmp_path):
    secret_png = tmp_path / "host-secret.png"
    secret_png.write_bytes(b"\x89PNG\r\n\x1a\n" + SECRET.encode())
    result = run_ok(sandbox, f"import os\nos.symlink({str(secret_png)!r}, 'outputs/leak.png')\n"
                             f"os.symlink({str(tmp_path)!r}, 'outputs/dir')")
    assert result.charts == []


def test_upload_streams_file_into_data(sandbox, tmp_path):
    source = tmp_path / "big.csv"
    payload = b"a,b\n" + b"1,2\n" * 750_000  # 3 MB
    source.write_bytes(payload)
    assert sandbox.upload(source, "sales.csv") == "data/sales.csv"
    seen = inside_json(sandbox, "import hashlib, json\n"
                                "print(json.dumps(hashlib.sha256(open('data/sales.csv','rb').read()).hexdigest()))")
    assert seen == hashlib.sha256(payload).hexdigest()
    for bad in ("../escape.csv", "a/b.csv", "", ".."):
        with pytest.raises(SandboxError):
            sandbox.upload(source, bad)


def test_upload_does_not_follow_a_planted_symlink(sandbox, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("host file")
    run_ok(sandbox, f"import os\nos.symlink({str(victim)!r}, 'data/trap.csv')")
    source = tmp_path / "real.csv"
    source.write_text("x\n1\n")
    sandbox.upload(source, "trap.csv")
    assert victim.read_text() == "host file"
    assert run_ok(sandbox, "print(open('data/trap.csv').read(), end='')").stdout == "x\n1\n"


# -- lifecycle ----------------------------------------------------------------------------------

def _host_processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


@needs_bwrap
def test_no_process_left_after_teardown(tmp_path):
    marker = f"1000.{random.getrandbits(30)}"
    sb = LocalSandbox(CONFIG, work_root=tmp_path, warm_imports=())
    with sb:
        run_ok(sb, f"""
import os, subprocess
subprocess.Popen(["sleep", "{marker}"])
subprocess.Popen(["sleep", "{marker}"], start_new_session=True)
os.system("setsid sleep {marker} >/dev/null 2>&1 &")
""")
        deadline = time.monotonic() + 3
        while len(_host_processes_with(marker)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_host_processes_with(marker)) >= 3  # the scan does see them while they run
    assert _host_processes_with(marker) == []
    assert list(tmp_path.iterdir()) == []
    sb.teardown()  # twice is fine
    with pytest.raises(SandboxError):
        sb.run_code("print(1)")


@needs_bwrap
def test_teardown_after_failed_provision(tmp_path, monkeypatch):
    monkeypatch.setattr(LocalSandbox, "_kernel_argv", lambda self, connection_file: ["/usr/bin/false"])
    sb = LocalSandbox(CONFIG, work_root=tmp_path, warm_imports=())
    with pytest.raises(SandboxError, match="exited during start-up"):
        with sb:
            pass
    sb.teardown()
    sb.teardown()
    assert list(tmp_path.iterdir()) == []


def _without_bwrap(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real_which(name, *a, **k))


def test_missing_bwrap_is_refused_with_the_install_command(tmp_path, monkeypatch):
    _without_bwrap(monkeypatch)
    sb = LocalSandbox(CONFIG, work_root=tmp_path)
    with pytest.raises(SandboxError, match="apt-get install bubblewrap"):
        sb.provision()
    sb.teardown()
    assert list(tmp_path.iterdir()) == []


def test_isolation_none_runs_and_warns_every_time(tmp_path, monkeypatch):
    _without_bwrap(monkeypatch)
    config = CONFIG.model_copy(update={"isolation": "none"})
    with LocalSandbox(config, work_root=tmp_path, warm_imports=()) as sb:
        for _ in range(2):
            result = run_ok(sb, "import os\nprint(os.path.basename(os.getcwd()).startswith('sandbox-'))")
            assert result.stdout == "True\n"
            assert any("isolation" in w for w in result.warnings)


def test_factory():
    from tasks.sandbox.daytona import DaytonaSandbox

    assert isinstance(create_sandbox(CONFIG), LocalSandbox)
    assert isinstance(create_sandbox(CONFIG.model_copy(update={"provider": "daytona"})), DaytonaSandbox)


def test_python_roots_are_bound_after_the_private_tmp(tmp_path, monkeypatch):
    # Seen in a checkout under /tmp: a virtualenv bound before `--tmpfs /tmp` was hidden by it.
    from tasks.sandbox.local import bubblewrap

    monkeypatch.setattr(bubblewrap, "python_roots", lambda: ["/tmp/checkout/.venv"])
    cmd = bubblewrap.build_command(bwrap=shutil.which("bwrap") or "bwrap", work_dir=tmp_path, ipc_dir=tmp_path,
                                   identity_files={}, env={}, tmp_bytes=1 << 20, argv=["python"],
                                   stage=bubblewrap.Staging(None), seccomp_fd=3)
    venv_bind = cmd.index("/tmp/checkout/.venv")
    tmp_mount = max(i for i, arg in enumerate(cmd) if arg == "/tmp" and cmd[i - 1] == "--tmpfs")
    assert tmp_mount < venv_bind
