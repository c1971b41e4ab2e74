"""Faults from the stand-in Daytona API, each ending as the provider promises, with no sandbox left
in the stand-in's records. (The provisioning retries themselves are Prefect's: test_daytona_flow.py.)"""

from __future__ import annotations

import time

import pytest

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox import create_sandbox

CONFIG = SandboxConfig(provider="daytona", timeout=20, max_output_chars=2000)
LABELS = {"analysis": "faults", "flow-run": "fault-run"}


def make(**kw):
    return create_sandbox(CONFIG, labels=LABELS, warm_imports=(), **kw)


def creations(api) -> int:
    return sum(1 for r in api.requests if r.method == "POST" and r.path == "/api/sandbox")


def test_failed_creations_are_transient_and_leave_nothing(daytona_api):
    daytona_api.fail_creates(503)
    daytona_api.fail_creates(500, create_anyway=True)  # made, but the answer was lost
    daytona_api.fail_creates(429)
    messages = []
    for _ in range(3):
        with pytest.raises(SandboxError) as caught:
            make().provision()
        assert caught.value.transient
        messages.append(str(caught.value))
        assert daytona_api.sandboxes == {}  # the orphan of the lost answer was found by label and deleted
    assert "HTTP 503" in messages[0] and "HTTP 500" in messages[1] and "rate limiting" in messages[2]
    with make() as sb:  # the next attempt (Prefect's retry) succeeds
        assert sb.run_code("print('up')").stdout == "up\n"
    assert creations(daytona_api) == 4 and len(daytona_api.deleted) >= 2 and daytona_api.sandboxes == {}


def test_a_slow_start_is_waited_for(daytona_api):
    daytona_api.start_delay = 0.3
    with make() as sb:
        assert sb.run_code("print(1)").ok
    assert any(r.method == "GET" and r.path.startswith("/api/sandbox/") for r in daytona_api.requests)
    assert daytona_api.sandboxes == {}


def test_a_sandbox_that_never_starts_is_deleted(daytona_api):
    daytona_api.never_start = True
    started = time.monotonic()
    with pytest.raises(SandboxError, match=r"did not start within 1\.5 s \(it was deleted\)") as caught:
        make(create_timeout=1.5).provision()
    assert caught.value.transient and time.monotonic() - started < 5
    assert creations(daytona_api) == 1 and daytona_api.sandboxes == {}


def test_a_rejected_key_is_not_retried(daytona_api, monkeypatch):
    monkeypatch.setenv("DAYTONA_API_KEY", "dtn-wrong-key")
    sb = make()
    with pytest.raises(SandboxError, match="rejected the API key.*HTTP 401.*DAYTONA_API_KEY") as caught:
        sb.provision()
    assert caught.value.transient is False
    assert creations(daytona_api) == 1 and daytona_api.sandboxes == {}
    sb.teardown()


def test_an_upload_cut_off_leaves_no_partial_dataset(daytona_api, tmp_path):
    source = tmp_path / "big.csv"
    source.write_bytes(b"a,b\n" + b"1,2\n" * 500_000)  # 2 MB
    with make() as sb:
        daytona_api.cut_uploads(after_bytes=256 * 1024)
        with pytest.raises(SandboxError, match="uploading big.csv to data/big.csv") as caught:
            sb.upload(source, "big.csv")
        assert caught.value.transient
        files = sb.run_code("import os\nprint(sorted(os.listdir('data')))").stdout
        assert files.strip() == "[]"  # neither the dataset's name nor the hidden part file
        assert sb.upload(source, "big.csv") == "data/big.csv"  # the upload task's retry
        assert sb.run_code("import os\nprint(os.path.getsize('data/big.csv'))").stdout.strip() == "2000004"
    assert daytona_api.uploads[-1]["headers"].get("transfer-encoding") == "chunked"  # streamed, no length
    assert daytona_api.sandboxes == {}


def test_runs_that_time_out_hang_or_kill_the_session(daytona_api):
    with make() as sb:
        assert sb.run_code("kept = 1").ok
        slow = sb.run_code("import time\ntime.sleep(60)", timeout=1)
        assert slow.timed_out and not slow.state_reset
        assert sb.run_code("print(kept)").stdout == "1\n"
        started = time.monotonic()
        hung = sb.run_code("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)",
                           timeout=1)
        assert time.monotonic() - started < 8
        assert hung.timed_out and hung.state_reset
        assert any("restarted" in w for w in hung.warnings)
        gone = sb.run_code("print(kept)")
        assert gone.error is not None and gone.error.name == "NameError"
        died = sb.run_code("import os\nos._exit(3)")
        assert died.error is not None and died.error.name == "KernelDied" and died.state_reset
        assert sb.run_code("import matplotlib.pyplot as plt\nplt.plot([1])").charts  # harness back in place
    assert daytona_api.sandboxes == {}


def test_a_daemon_that_never_answers_is_given_up(daytona_api, monkeypatch):
    from tasks.sandbox.daytona import stateful

    monkeypatch.setattr(stateful, "GUARD_S", 0.5)
    with make() as sb:
        assert sb.run_code("kept = 1").ok
        daytona_api.hang_next_execution = True
        started = time.monotonic()
        result = sb.run_code("print('never answered')", timeout=1)
        assert time.monotonic() - started < 5
        assert result.timed_out and result.state_reset and result.stdout == ""
        assert sb.run_code("print('fresh session')").stdout == "fresh session\n"
    assert daytona_api.sandboxes == {}


def test_a_failed_delete_says_what_is_left_and_can_be_retried(daytona_api):
    sb = make()
    sb.provision()
    sandbox_id = sb.sandbox_id
    daytona_api.fail_deletes(503)
    with pytest.raises(SandboxError, match=f"deleting sandbox {sandbox_id}.*analyst sandboxes cleanup") as caught:
        sb.teardown()
    assert caught.value.transient and sandbox_id in daytona_api.sandboxes
    sb.teardown()  # the teardown task's retry
    sb.teardown()
    assert daytona_api.sandboxes == {}
