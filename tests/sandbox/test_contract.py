"""The sandbox contract, the same tests for every provider: the local bubblewrap kernel, and Daytona
(the real ``daytona`` SDK against the stand-in API, which runs the code for real).

What the flow relies on: state kept between runs, the last expression shown, errors as results,
timeouts that interrupt and keep state, output cut the same way, charts from figures and from
image files under outputs/, a streamed upload into data/, and a teardown that is safe twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
import tracemalloc

import pytest

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox import create_sandbox

CONFIG = SandboxConfig(memory="512MiB", timeout=20, max_output_chars=2000, cpus=1)
PROVIDERS = ["local", "daytona"]


def _make(provider: str, tmp_path_factory, monkeypatch, daytona_server):
    if provider == "local":
        if shutil.which("bwrap") is None:
            pytest.skip("bubblewrap is not installed")
        return create_sandbox(CONFIG, work_root=tmp_path_factory.mktemp("work"))
    for name, value in daytona_server.env().items():
        monkeypatch.setenv(name, value)
    return create_sandbox(CONFIG.model_copy(update={"provider": "daytona"}),
                          labels={"analysis": "contract", "flow-run": "contract-run"})


@pytest.fixture(scope="module", params=PROVIDERS)
def sandbox(request, tmp_path_factory, daytona_server):
    with pytest.MonkeyPatch.context() as monkeypatch:
        with _make(request.param, tmp_path_factory, monkeypatch, daytona_server) as sb:
            yield sb


def run_ok(sb, code, **kw):
    result = sb.run_code(code, **kw)
    assert result.error is None and not result.timed_out, (result.error, result.stderr, result.warnings)
    return result


def is_png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n")


def test_state_persists_and_the_last_value_is_shown(sandbox):
    run_ok(sandbox, "import statistics\nnumbers = [3, 1, 2]")
    assert run_ok(sandbox, "numbers.append(10)\nprint(statistics.median(numbers))").stdout == "2.5\n"
    assert run_ok(sandbox, "numbers").stdout.strip() == "[3, 1, 2, 10]"
    assert run_ok(sandbox, "numbers;").stdout == ""  # a trailing semicolon hides it, as in Jupyter
    seen = json.loads(run_ok(sandbox, "import json, os\nprint(json.dumps(sorted(os.listdir('.'))))").stdout)
    assert {"data", "outputs"} <= set(seen)


def test_code_error_is_a_result(sandbox):
    result = sandbox.run_code("def f():\n    return {}['missing']\nprint('before')\nf()")
    assert result.stdout == "before\n" and not result.timed_out and not result.ok
    assert result.error is not None
    assert result.error.name == "KeyError" and result.error.message == "'missing'"
    assert "return {}['missing']" in result.error.traceback and "\x1b" not in result.error.traceback
    assert run_ok(sandbox, "print('still fine')").stdout == "still fine\n"


def test_stderr_is_captured(sandbox):
    assert "to err" in run_ok(sandbox, "import sys\nprint('to err', file=sys.stderr)").stderr


def test_timeout_interrupts_and_keeps_state(sandbox):
    run_ok(sandbox, "kept = 42")
    started = time.monotonic()
    result = sandbox.run_code("import time\ntime.sleep(1000)", timeout=1)
    assert time.monotonic() - started < 6
    assert result.timed_out and not result.state_reset and not result.ok
    assert any("time limit" in w for w in result.warnings)
    assert run_ok(sandbox, "print(kept)").stdout == "42\n"


def test_output_cut_keeps_head_and_tail(sandbox):
    result = run_ok(sandbox, "print('A' * 5000 + 'MIDDLE' + 'Z' * 5000)")
    assert result.stdout.startswith("A" * 900) and result.stdout.endswith("Z" * 900 + "\n")
    assert "MIDDLE" not in result.stdout
    assert "[... 8,007 characters cut ...]" in result.stdout
    flood = run_ok(sandbox, "for i in range(2000):\n    print(f'{i:06d}' + 'x' * 2000)\nprint('END')")
    assert len(flood.stdout) < 2100 and flood.stdout.startswith("000000x") and flood.stdout.endswith("END\n")


def test_charts_from_figures_and_output_files(sandbox):
    shown = run_ok(sandbox, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\nprint('done')")
    assert [c.source for c in shown.charts] == ["figure"] and is_png(shown.charts[0].png)
    two = run_ok(sandbox, "fig1 = plt.figure(); plt.plot([1, 0])\nfig2 = plt.figure(); plt.bar([1, 2], [3, 4])\nNone")
    assert len(two.charts) == 2 and all(is_png(c.png) for c in two.charts)
    assert len({c.name for c in shown.charts + two.charts}) == 3
    assert run_ok(sandbox, "print(len(plt.get_fignums()))").charts == []  # returned once, not again

    files = run_ok(sandbox, """
from matplotlib.figure import Figure  # not pyplot: only the files bring these back
from PIL import Image
fig = Figure(); fig.add_subplot().plot([1, 2]); fig.savefig("outputs/x.png")
Image.new("RGB", (40, 30), (200, 10, 10)).save("outputs/photo.jpg")
open("outputs/notes.txt", "w").write("not an image")
""")
    by_name = {c.name: c for c in files.charts}
    assert set(by_name) == {"outputs/x.png", "outputs/photo.png"}
    assert all(c.source == "file" and is_png(c.png) for c in files.charts)
    from PIL import Image

    assert Image.open(io.BytesIO(by_name["outputs/photo.png"].png)).size == (40, 30)
    assert run_ok(sandbox, "print('unchanged')").charts == []
    again = run_ok(sandbox, "from PIL import Image\nImage.new('RGB', (5, 5)).save('outputs/x.png')")
    assert [c.name for c in again.charts] == ["outputs/x.png"]


def test_upload_streams_a_large_file_into_data(sandbox, tmp_path):
    source = tmp_path / "big.csv"
    with open(source, "wb") as f:
        for _ in range(24):
            f.write(b"a,b\n" + b"1,2\n" * 262_144)  # 24 x 1 MiB
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    tracemalloc.start()
    try:
        assert sandbox.upload(source, "sales.csv") == "data/sales.csv"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024**2, f"the upload held {peak:,} bytes at once"  # never the 24 MiB file
    inside = run_ok(sandbox, "import hashlib\nprint(hashlib.sha256(open('data/sales.csv', 'rb').read()).hexdigest())")
    assert inside.stdout.strip() == digest
    for bad in ("../escape.csv", "a/b.csv", "", ".."):
        with pytest.raises(SandboxError):
            sandbox.upload(source, bad)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_teardown_twice_and_no_use_after(provider, tmp_path_factory, monkeypatch, daytona_server):
    sb = _make(provider, tmp_path_factory, monkeypatch, daytona_server)
    with sb:
        run_ok(sb, "print(1)")
        sandbox_id = getattr(sb, "sandbox_id", None)
    sb.teardown()  # twice is fine
    with pytest.raises(SandboxError):
        sb.run_code("print(1)")
    if provider == "daytona":
        assert sandbox_id in daytona_server.deleted and sandbox_id not in daytona_server.sandboxes
