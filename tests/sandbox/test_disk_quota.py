"""``sandbox.disk`` holds for every folder on the host's disk the local sandbox can write, and
between cells as well as during them."""

from __future__ import annotations

import shutil
import time

import pytest

from tasks.config.schema import SandboxConfig
from tasks.sandbox.local.disk_quota import usage_bytes
from tasks.sandbox.local import LocalSandbox

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
QUOTA = 32 * 1024**2
CONFIG = SandboxConfig(memory="512MiB", timeout=60).model_copy(update={"disk": QUOTA})  # below the key's minimum


def test_the_kernel_socket_folder_counts_toward_the_quota(tmp_path):
    with LocalSandbox(CONFIG, work_root=tmp_path, warm_imports=()) as sandbox:
        result = sandbox.run_code("import time\nchunk = b'x' * (4 << 20)\nfor i in range(64):\n"
                                  "    open(f'/run/kernel/part-{i}.bin', 'wb').write(chunk)\n    time.sleep(0.05)")
        assert result.error is not None and result.error.name == "DiskQuotaExceeded", result.error
        ipc = sandbox._run_dir / "ipc"
        assert usage_bytes(ipc) < 128 << 20  # stopped near the quota, not at 256 MiB


def test_a_thread_writing_between_cells_is_stopped_at_the_quota(tmp_path):
    with LocalSandbox(CONFIG, work_root=tmp_path, warm_imports=()) as sandbox:
        started = sandbox.run_code(
            "import threading, time\n"
            "def fill():\n"
            "    for i in range(48):\n"
            "        open(f'outputs/bg-{i}.bin', 'wb').write(b'x' * (4 << 20))\n"
            "        time.sleep(0.05)\n"
            "    open('outputs/done', 'w').close()\n"
            "threading.Thread(target=fill, daemon=True).start()")
        assert started.error is None
        outputs = sandbox.work_dir / "outputs"
        deadline = time.monotonic() + 120  # a bound on the wait only: the assertions are on sizes
        while sandbox._session.alive and not (outputs / "done").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        written = usage_bytes(outputs)
        assert written is not None and written < 96 << 20  # 192 MiB without the quota
        assert not (outputs / "done").exists()
        after = sandbox.run_code("print('alive')")
        assert after.state_reset and after.stdout == "alive\n"
        assert any("disk quota (sandbox.disk, 32 MiB)" in w for w in after.warnings), after.warnings
