"""Stateful runs (the default): the SDK's code interpreter context keeps variables between runs.

Daytona's interpreter returns no charts, so after each cell a harvest run saves open figures and
lists new images under ``outputs/``, which are then downloaded in one request. Output is cut to
``max_output_chars`` as locally, and timeouts read as they do locally.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox.base import CodeError, ExecutionResult
from tasks.sandbox.daytona.charts import ChartFetcher
from tasks.sandbox.daytona.client import translate
from tasks.sandbox.daytona.harness import Harvest, display_last_expression, harvest_code, parse_harvest, setup_code
from tasks.sandbox.notes import STATE_GONE, timed_out_interrupted, timed_out_restarted
from tasks.sandbox.output_buffer import OutputBuffer
from tasks.text_safety import printable

log = logging.getLogger(__name__)

GUARD_S = 30.0  # past timeout + this, a run whose daemon never answers is given up (never a hang)
HARVEST_TIMEOUT_S = 30
SETUP_TIMEOUT_S = 120


class StatefulRunner:
    def __init__(self, require: Callable[[], Any], work_dir: str, config: SandboxConfig,
                 warm_imports: tuple[str, ...]):
        self._require = require  # the live SDK sandbox, or a SandboxError once it is torn down
        self._work_dir = work_dir
        self._config = config
        self._warm_imports = warm_imports
        self._context: Any = None
        self._charts = ChartFetcher(require, work_dir)

    def start(self) -> None:
        """A fresh interpreter context with the harness loaded (used again after a restart)."""
        interpreter = self._require().code_interpreter
        old, self._context = self._context, None
        if old is not None:
            try:
                interpreter.delete_context(old)
            except Exception as exc:  # noqa: BLE001 - a dead context may be gone already
                log.debug("could not delete interpreter context %s: %s", old.id, exc)
        self._context = interpreter.create_context(cwd=self._work_dir)
        reply = interpreter.run_code(setup_code(self._work_dir, self._warm_imports), context=self._context,
                                     timeout=SETUP_TIMEOUT_S)
        if reply.error is not None:
            raise SandboxError(f"could not prepare the Python session in the Daytona sandbox: "
                               f"{reply.error.name}: {reply.error.value}")

    def run(self, code: str, timeout: float) -> ExecutionResult:
        result = ExecutionResult()
        out, err = OutputBuffer(self._config.max_output_chars), OutputBuffer(self._config.max_output_chars)
        started = time.perf_counter()
        status, reply = self._interpret(display_last_expression(code), timeout, out, err)
        result.duration_s = time.perf_counter() - started
        if status == "ok" and reply.error is not None:
            e = reply.error
            result.error = CodeError(str(e.name or "Error"), str(e.value or ""), printable(str(e.traceback or "")))
        if status in ("timeout", "hung"):
            result.timed_out = True
        harvest = None if status == "hung" else self._harvest()
        if harvest is None or harvest.missing:
            self._restart()
            result.state_reset = True
            if result.timed_out:
                result.warnings.append(timed_out_restarted(timeout))
            else:
                result.error = result.error or CodeError(
                    "KernelDied", f"the Python session exited unexpectedly and was restarted: {STATE_GONE}", "")
                if status == "lost":
                    result.warnings.append("the connection to the sandbox dropped during the run")
            harvest = self._harvest() or Harvest()
        elif result.timed_out:
            result.warnings.append(timed_out_interrupted(timeout))
        elif status == "lost":
            raise SandboxError("lost the connection to the Daytona sandbox during a run (the session is still "
                               "alive; its output is lost)", transient=True)
        result.charts, notes = self._charts.fetch(harvest)
        result.warnings.extend(notes)
        result.stdout, result.stderr = printable(out.getvalue()), printable(err.getvalue())
        return result

    def _restart(self) -> None:
        from daytona import DaytonaError

        try:
            self.start()
        except DaytonaError as exc:
            raise translate(exc, "restarting the Python session") from exc

    def _interpret(self, code: str, timeout: float, out: OutputBuffer, err: OutputBuffer) -> tuple[str, Any]:
        """("ok", reply) | ("timeout", None) | ("lost", None) | ("hung", None). Runs in a thread so that
        a daemon that never answers cannot hang the flow: past ``timeout + GUARD_S`` it is given up."""
        from daytona import DaytonaConnectionError, DaytonaError, DaytonaTimeoutError

        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["reply"] = self._require().code_interpreter.run_code(
                    code, context=self._context, timeout=max(1, math.ceil(timeout)),
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

    def _harvest(self) -> Harvest | None:
        """What the cell left (figures, new images): None when the session does not answer in time."""
        from daytona import DaytonaConnectionError, DaytonaError, DaytonaTimeoutError

        try:
            reply = self._require().code_interpreter.run_code(harvest_code(), context=self._context,
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
