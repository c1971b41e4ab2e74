"""Stateless runs (``sandbox.stateful: false``): ``process.code_run``, a fresh interpreter each time,
with its native chart artifacts, plus the image files the run left under ``outputs/``."""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Callable
from typing import Any

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox.base import CodeError, ExecutionResult
from tasks.sandbox.daytona.charts import ChartFetcher
from tasks.sandbox.daytona.client import translate
from tasks.sandbox.daytona.harness import (Harvest, display_last_expression, display_prelude, parse_harvest,
                                           stateless_script)
from tasks.sandbox.output_buffer import OutputBuffer
from tasks.text_safety import printable

SCRIPT_TIMEOUT_S = 30
_LAST_ERROR = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")


class StatelessRunner:
    def __init__(self, require: Callable[[], Any], work_dir: str, config: SandboxConfig):
        self._require = require  # the live SDK sandbox, or a SandboxError once it is torn down
        self._work_dir = work_dir
        self._config = config
        self._charts = ChartFetcher(require, work_dir)

    def start(self) -> None:
        """Install the harness that lists the image files each run leaves."""
        self._check_script(stateless_script(self._work_dir, install=True), "preparing the sandbox")

    def run(self, code: str, timeout: float) -> ExecutionResult:
        from daytona import CodeRunParams, DaytonaConnectionError, DaytonaError, DaytonaTimeoutError

        result = ExecutionResult()
        out = OutputBuffer(self._config.max_output_chars)
        started = time.perf_counter()
        try:
            reply = self._code_run(_in_work_dir(self._work_dir, display_last_expression(code)),
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
            text = printable(reply.result or "")
            if reply.exit_code not in (0, None):
                text, result.error = _split_traceback(text, reply.exit_code)
            out.write(text)
            for chart in getattr(reply.artifacts, "charts", None) or []:
                if chart.png:
                    result.charts.append(self._charts.figure(base64.b64decode(chart.png)))
        listing = self._check_script(stateless_script(self._work_dir, install=False), "collecting charts")
        harvest = parse_harvest(listing)
        files, notes = self._charts.fetch(Harvest(files=harvest.files) if harvest else Harvest())
        result.charts += files
        result.warnings.extend(notes)
        result.stdout = out.getvalue()
        return result

    def _code_run(self, code: str, **kw: Any) -> Any:
        """``process.code_run`` with its errors as ``DaytonaError`` like every other SDK call (this one
        alone lets the generated client's exceptions through in daytona 0.226)."""
        from daytona._utils.errors import intercept_errors  # noqa: PLC2701 - the SDK's own wrapper, as its other calls use

        return intercept_errors(message_prefix="Failed to run code: ")(self._require().process.code_run)(code, **kw)

    def _check_script(self, script: str, doing: str) -> str:
        """Run a helper script; its output, or a SandboxError."""
        from daytona import DaytonaError

        try:
            reply = self._code_run(script, timeout=SCRIPT_TIMEOUT_S)
        except DaytonaError as exc:
            raise translate(exc, doing) from exc
        if reply.exit_code not in (0, None):
            raise SandboxError(f"{doing} failed in the sandbox (exit code {reply.exit_code}): "
                               f"{(reply.result or '').strip()[-500:]}")
        return reply.result or ""


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
