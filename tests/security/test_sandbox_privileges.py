"""The local sandbox's code is never host root and cannot reach the host kernel's settings.

CI runs as root, the case where bwrap alone would make the analysis code host uid 0. Nothing here
writes a kernel setting: files are opened for writing and closed at once, and every system call is
made with arguments that do nothing even where it is allowed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox.local import bubblewrap, seccomp
from tasks.sandbox.local import LocalSandbox
from tasks.sandbox.local.process_tree import descendants

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
CONFIG = SandboxConfig(memory="512MiB", timeout=120, max_output_chars=20_000, cpus=1)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with LocalSandbox(CONFIG, work_root=tmp_path_factory.mktemp("work"), warm_imports=()) as sb:
        yield sb


def inside_json(sb: LocalSandbox, code: str) -> dict:
    result = sb.run_code(code)
    assert result.error is None and not result.timed_out, (result.error, result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_no_kernel_setting_can_be_opened_for_writing(sandbox):
    seen = inside_json(sandbox, """
import json, os
paths = ["/proc/sysrq-trigger"]
for top in ("/proc/sys", "/sys"):
    for folder, _dirs, files in os.walk(top):
        paths += [os.path.join(folder, name) for name in files]
opened = []
for path in paths:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        continue
    os.close(fd)  # opened only: nothing is ever written
    opened.append(path)
print(json.dumps({"tried": len(paths), "opened": opened}))
""")
    assert seen["tried"] > 100  # /proc/sys is there to be tried
    assert seen["opened"] == []


def test_the_sandbox_processes_are_not_host_root(sandbox):
    sandbox.run_code("import time; time.sleep(0)")
    proc = sandbox._session.proc
    tree = [proc.pid, *descendants(proc.pid)]
    uids = {}
    for pid in tree:
        status = Path(f"/proc/{pid}/status").read_text()
        uids[pid] = [int(v) for v in status.split("Uid:")[1].split("\n")[0].split()]  # real, effective, saved, fs
    assert len(tree) >= 2  # bwrap and the kernel at least
    assert all(0 not in ids for ids in uids.values()), uids
    if os.geteuid() == 0:
        assert {ids[0] for ids in uids.values()} == {bubblewrap.HOST_UID}


def test_the_sandbox_uid_cannot_read_what_the_caller_owns(sandbox, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the sandbox runs as the caller's own uid when the caller is not root")
    secret = tmp_path / "run" / ".env"
    secret.parent.mkdir()
    secret.write_text("ANTHROPIC_API_KEY=x\n")
    secret.chmod(0o644)  # world-readable, in a folder of the caller's (pytest's are 0700)
    host_view = inside_json(sandbox, f"""
import json, os
print(json.dumps({{"exists": os.path.exists({str(secret)!r})}}))
""")
    assert host_view == {"exists": False}
    uid, gid = bubblewrap.HOST_UID, bubblewrap.HOST_GID
    probe = __import__("subprocess").run(["cat", str(secret)], user=uid, group=gid, extra_groups=[],
                                         capture_output=True, text=True)
    assert probe.returncode != 0 and "Permission denied" in probe.stderr


REFUSED = ["unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
           "io_uring_setup", "ptrace", "mount", "umount2", "pivot_root", "kexec_load", "init_module",
           "finit_module", "delete_module", "reboot", "swapon", "swapoff", "clock_settime", "settimeofday"]


def test_refused_system_calls_fail_with_eperm(sandbox):
    import pyseccomp

    numbers = {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in REFUSED}
    seen = inside_json(sandbox, f"""
import ctypes, json, os, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def call(number, *args):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
    return [result, ctypes.get_errno()]

out = {{name: call(number, 0, 0, 0, 0, 0, 0) for name, number in {numbers!r}.items()}}
out["unshare"] = call({numbers["unshare"]}, 0)  # no flags: a no-op wherever it is allowed
out["setns"] = call({numbers["setns"]}, -1, 0)
out["clone_newnet"] = call({pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, "clone")}, 0x40000000 | 17, 0, 0, 0, 0)
out["clone3"] = call({pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, "clone3")}, 0, 0)
box = []
worker = threading.Thread(target=box.append, args=("thread",))
worker.start(); worker.join()
pid = os.fork()
if pid == 0:
    os._exit(7)
out["fork_exit"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
out["thread"] = box
print(json.dumps(out))
""")
    for name in [*REFUSED, "clone_newnet"]:
        assert seen[name] == [-1, errno.EPERM], (name, seen[name])
    assert seen["clone3"] == [-1, errno.ENOSYS]  # glibc then falls back to clone
    assert seen["thread"] == ["thread"] and seen["fork_exit"] == 7


def test_without_libseccomp_the_sandbox_refuses_to_start(tmp_path, monkeypatch):
    import pyseccomp

    def missing(*_args, **_kw):
        raise OSError("libseccomp.so.2: cannot open shared object file")

    seccomp.compiled_filter.cache_clear()
    monkeypatch.setattr(pyseccomp, "SyscallFilter", missing)
    try:
        with pytest.raises(SandboxError, match="apt-get install libseccomp2"):
            LocalSandbox(CONFIG, work_root=tmp_path).provision()
    finally:
        seccomp.compiled_filter.cache_clear()
    assert list(tmp_path.iterdir()) == []  # refused before anything was made


def test_a_private_temp_folder_still_works(tmp_path, monkeypatch):
    # The run folder (sockets, log) lives in TMPDIR; a folder only its owner can search must not
    # stop the sandbox's uid from reaching what it is given, nor give it the rest.
    private = Path(tempfile.mkdtemp(prefix="p-", dir="/tmp"))  # short: the socket paths live under it
    try:
        monkeypatch.setattr("tempfile.tempdir", str(private))
        with LocalSandbox(CONFIG, work_root=private / "work", warm_imports=()) as sandbox:
            assert sandbox.run_code("print(1)").stdout == "1\n"
    finally:
        shutil.rmtree(private)
