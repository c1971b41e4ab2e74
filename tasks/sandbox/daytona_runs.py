"""Running one cell in a Daytona sandbox and turning what came back into an ``ExecutionResult``.

Stateful (default): the SDK's code interpreter context, then a harvest run that saves open figures
and lists new images under ``outputs/``, which are then downloaded in one request. Stateless
(``stateful: false``): ``process.code_run`` with its native chart artifacts, a fresh interpreter each
time. Output is cut to ``max_output_chars`` by the local provider's ``OutputBuffer``, and timeouts
read as they do locally.
"""

from __future__ import annotations

import base64
import math
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from tasks.errors import SandboxError
from tasks.sandbox.base import Chart, CodeError, ExecutionResult
from tasks.sandbox.daytona_client import translate
from tasks.sandbox.daytona_harness import (Harvest, display_last_expression, display_prelude, harvest_code,
                                          parse_harvest, stateless_script)
from tasks.sandbox.local import strip_ansi
from tasks.sandbox.output_buffer import OutputBuffer
from tasks.sandbox.work_folder import MAX_FILE_BYTES, PNG_SIGNATURE, _to_png

if TYPE_CHECKING:
    from tasks.sandbox.daytona import DaytonaSandbox

GUARD_S = 30.0  # past timeout + this, a run whose daemon never answers is given up (never a hang)
HARVEST_TIMEOUT_S = 30
GONE = "variables, imports and loaded data are gone"
_LAST_ERROR = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")


def run_stateful(box: DaytonaSandbox, code: str, timeout: float) -> ExecutionResult:
    result = ExecutionResult()
    out, err = OutputBuffer(box.config.max_output_chars), OutputBuffer(box.config.max_output_chars)
    started = time.perf_counter()
    status, reply = _interpret(box, display_last_expression(code), timeout, out, err)
    result.duration_s = time.perf_counter() - started
    if status == "ok" and reply.error is not None:
        e = reply.error
        result.error = CodeError(str(e.name or "Error"), str(e.value or ""), strip_ansi(str(e.traceback or "")))
    if status in ("timeout", "hung"):
        result.timed_out = True
    harvest = None if status == "hung" else _harvest(box)
    if harvest is None or harvest.missing:
        _restart(box)
        result.state_reset = True
        if result.timed_out:
            result.warnings.append(f"the code ran past its {timeout:g} s time limit and did not stop when "
                                   f"interrupted; the Python session was restarted: {GONE}")
        else:
            result.error = result.error or CodeError(
                "KernelDied", f"the Python session exited unexpectedly and was restarted: {GONE}", "")
            if status == "lost":
                result.warnings.append("the connection to the sandbox dropped during the run")
        harvest = _harvest(box) or Harvest()
    elif result.timed_out:
        result.warnings.append(f"the code ran past its {timeout:g} s time limit and was interrupted "
                               "(variables defined before are kept)")
    elif status == "lost":
        raise SandboxError("lost the connection to the Daytona sandbox during a run (the session is still "
                           "alive; its output is lost)", transient=True)
    result.charts, notes = fetch_charts(box, harvest)
    result.warnings.extend(notes)
    result.stdout, result.stderr = strip_ansi(out.getvalue()), strip_ansi(err.getvalue())
    return result


def _interpret(box: DaytonaSandbox, code: str, timeout: float, out: OutputBuffer,
               err: OutputBuffer) -> tuple[str, Any]:
    """("ok", reply) | ("timeout", None) | ("lost", None) | ("hung", None). Runs in a thread so that
    a daemon that never answers cannot hang the flow: past ``timeout + GUARD_S`` it is given up."""
    from daytona import DaytonaConnectionError, DaytonaError, DaytonaTimeoutError

    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["reply"] = box.require().code_interpreter.run_code(
                code, context=box.context, timeout=max(1, math.ceil(timeout)),
                on_stdout=lambda m: out.write(m.output), on_stderr=lambda m: err.write(m.output))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=call, name="daytona-run", daemon=True)
    worker.start()
    worker.join(timeout + GUARD_S)
    if worker.is_alive():
        return "hung", None
    exc = outcome.get("error")
    if exc is None:
        return "ok", outcome["reply"]
    if isinstance(exc, DaytonaConnectionError):
        return "lost", None
    if isinstance(exc, DaytonaTimeoutError):
        return "timeout", None
    if isinstance(exc, DaytonaError):
        raise translate(exc, "running code") from exc
    raise exc


def _harvest(box: DaytonaSandbox) -> Harvest | None:
    """What the cell left (figures, new images): None when the session does not answer in time."""
    from daytona import DaytonaConnectionError, DaytonaError, DaytonaTimeoutError

    try:
        reply = box.require().code_interpreter.run_code(harvest_code(), context=box.context,
                                                        timeout=HARVEST_TIMEOUT_S)
    except DaytonaTimeoutError:
        return None
    except DaytonaConnectionError:
        return Harvest(missing=True)  # the context went away with its process
    except DaytonaError as exc:
        raise translate(exc, "collecting charts") from exc
    if reply.error is not None:
        raise SandboxError(f"collecting charts failed in the sandbox: {reply.error.name}: {reply.error.value}")
    return parse_harvest(reply.stdout) or Harvest(missing=True)


def _restart(box: DaytonaSandbox) -> None:
    from daytona import DaytonaError

    try:
        box.start_session()
    except DaytonaError as exc:
        raise translate(exc, "restarting the Python session") from exc


def run_stateless(box: DaytonaSandbox, code: str, timeout: float) -> ExecutionResult:
    from daytona import CodeRunParams, DaytonaConnectionError, DaytonaError, DaytonaTimeoutError

    result = ExecutionResult()
    out = OutputBuffer(box.config.max_output_chars)
    started = time.perf_counter()
    try:
        reply = code_run(box, _in_work_dir(box.work_dir, display_last_expression(code)),
                         params=CodeRunParams(env={}), timeout=max(1, math.ceil(timeout)))
    except DaytonaTimeoutError as exc:
        if isinstance(exc, DaytonaConnectionError):
            raise translate(exc, "running code") from exc
        result.timed_out = True
        result.warnings.append(f"the code ran past its {timeout:g} s time limit and was stopped (with "
                               "sandbox.stateful: false every run starts from a fresh interpreter anyway)")
        reply = None
    except DaytonaError as exc:
        raise translate(exc, "running code") from exc
    result.duration_s = time.perf_counter() - started
    if reply is not None:
        text = strip_ansi(reply.result or "")
        if reply.exit_code not in (0, None):
            text, result.error = _split_traceback(text, reply.exit_code)
        out.write(text)
        for chart in getattr(reply.artifacts, "charts", None) or []:
            if chart.png:
                box.figures += 1
                result.charts.append(Chart(f"figure-{box.figures}.png", base64.b64decode(chart.png), "figure"))
    harvest = parse_harvest(check_script(box, stateless_script(box.work_dir, install=False), "collecting charts"))
    files, notes = fetch_charts(box, Harvest(files=harvest.files) if harvest else Harvest())
    result.charts += files
    result.warnings.extend(notes)
    result.stdout = out.getvalue()
    return result


def _in_work_dir(work_dir: str, code: str) -> str:
    # The cell runs from the work folder (data/, outputs/) whatever the daemon's own directory, with
    # its line numbers and source lines intact in tracebacks.
    return (display_prelude() + "import os as _o, linecache as _l\n"
            f"_o.chdir({work_dir!r})\n_c = {code!r}\n"
            "_l.cache['<cell>'] = (len(_c), None, _c.splitlines(True), '<cell>')\n"
            "del _o, _l\nexec(compile(_c, '<cell>', 'exec'))\n")


def _split_traceback(text: str, exit_code: int) -> tuple[str, CodeError]:
    start = text.rfind("Traceback (most recent call last):")
    if start < 0:
        return text, CodeError("ExitCode", f"the code exited with status {exit_code}", "")
    traceback = text[start:].rstrip()
    match = _LAST_ERROR.match(traceback.splitlines()[-1].strip())
    name, message = (match.group(1), match.group(2) or "") if match else ("Error", traceback.splitlines()[-1])
    return text[:start], CodeError(name.rsplit(".", 1)[-1], message, traceback)


def code_run(box: DaytonaSandbox, code: str, **kw: Any) -> Any:
    """``process.code_run`` with its errors as ``DaytonaError`` like every other SDK call (this one
    alone lets the generated client's exceptions through in daytona 0.226)."""
    from daytona._utils.errors import intercept_errors

    return intercept_errors(message_prefix="Failed to run code: ")(box.require().process.code_run)(code, **kw)


def check_script(box: DaytonaSandbox, script: str, doing: str) -> str:
    """Run a helper script with ``process.code_run``; its output, or a SandboxError."""
    from daytona import DaytonaError

    try:
        reply = code_run(box, script, timeout=HARVEST_TIMEOUT_S)
    except DaytonaError as exc:
        raise translate(exc, doing) from exc
    if reply.exit_code not in (0, None):
        raise SandboxError(f"{doing} failed in the sandbox (exit code {reply.exit_code}): "
                           f"{(reply.result or '').strip()[-500:]}")
    return reply.result or ""


def fetch_charts(box: DaytonaSandbox, harvest: Harvest) -> tuple[list[Chart], list[str]]:
    """Download the harvested figures and images (one request), as PNG, within the size limit."""
    from daytona import DaytonaError, FileDownloadRequest

    notes: list[str] = []
    wanted: list[tuple[str, str]] = []  # (path in the sandbox, chart name or "" for a figure)
    for path, size in [(p, s) for p, s in harvest.figures] + [(f"{box.work_dir}/{p}", s) for p, s in harvest.files]:
        shown = path.removeprefix(f"{box.work_dir}/")
        if size > MAX_FILE_BYTES:
            notes.append(f"{shown}: not returned as a chart, {size:,} bytes is over {MAX_FILE_BYTES:,}")
        else:
            wanted.append((path, "" if shown.startswith(".analyst/") else shown))
    if not wanted:
        return [], notes
    try:
        replies = box.require().fs.download_files([FileDownloadRequest(source=p) for p, _ in wanted])
    except DaytonaError as exc:
        return [], notes + [f"could not download the charts: {translate(exc, 'downloading charts')}"]
    charts: list[Chart] = []
    for (_, name), reply in zip(wanted, replies, strict=True):
        if reply.error or not isinstance(reply.result, bytes):
            notes.append(f"{name or 'a figure'}: could not be downloaded ({reply.error})")
        elif not name:
            box.figures += 1
            charts.append(Chart(f"figure-{box.figures}.png", reply.result, "figure"))
        else:
            try:
                png = reply.result if reply.result.startswith(PNG_SIGNATURE) else _to_png(reply.result)
            except Exception as exc:  # noqa: BLE001 - any decoder error: reported, never fatal
                notes.append(f"{name}: not returned as a chart, cannot read it as an image ({exc})")
                continue
            charts.append(Chart(_png_name(name, {c.name for c in charts}), png, "file"))
    return charts, notes


def _png_name(name: str, taken: set[str]) -> str:
    """``outputs/photo.jpg`` comes back as ``outputs/photo.png`` (converted), unless that is taken."""
    if name.lower().endswith(".png"):
        return name
    stem = name.rsplit(".", 1)[0] + ".png"
    return stem if stem not in taken else name + ".png"

