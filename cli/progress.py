"""Live progress of a run in the terminal: iteration, what Claude is doing, tokens and cost so far."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.status import Status
from rich.text import Text

from tasks.agent import events
from tasks.models.base import RUN_PYTHON_TOOL
from tasks.results import SUBMIT_RESULTS_TOOL
from tasks.text_safety import printable


def quiet_prefect_console() -> None:
    """Our progress and summary replace Prefect's console logs (a failed task logs its traceback at
    ERROR); they still reach the server and its UI. Prefect reads this when it is imported."""
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL",
                          "DEBUG" if os.environ.get("ANALYST_DEBUG") else "CRITICAL")


class LiveProgress:
    def __init__(self, console: Console, analysis: str, max_iterations: int):
        self.console = console
        self.analysis = analysis
        self.max_iterations = max_iterations
        self.iterations = 0
        self.flow_run_id: str | None = None
        self.run_dir: str | None = None
        self.tokens = 0
        self.cost = 0.0
        self._status: Status | None = None
        self._listening = events.listening(self._on_event)

    def __enter__(self) -> LiveProgress:
        self._listening.__enter__()
        self._status = self.console.status(f"{self.analysis}: starting")
        self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)
        self._listening.__exit__(None, None, None)

    def _say(self, *parts: str | tuple[str, str]) -> None:
        # Text, never markup: paths and Claude's text hold brackets (df[["a"]], a folder "[old]").
        self.console.print(Text.assemble(*parts))

    def _spin(self, text: str) -> None:
        if self._status is not None:
            self._status.update(Text(f"{self.analysis}: {text}"))

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "flow_run":  # before validation: a run that fails there still has its link
            self.flow_run_id = data.get("flow_run_id")
        elif kind == "started":
            self.flow_run_id, self.run_dir = data.get("flow_run_id"), data.get("run_dir")
            self._say((self.analysis, "bold"), f": run folder {self.run_dir}")
        elif kind == "resumed":
            self.iterations = data["iterations"]
            self._say(f"resuming {data['from']} after iteration {data['iterations']}: its turns are reused, "
                      "its code runs again in the new sandbox")
        elif kind == "model_request":
            self.iterations = data["iteration"]
            what = ("writing the final report" if data.get("final")
                    else "submitting the results" if data.get("results") else "thinking")
            self._spin(f"iteration {data['iteration']}/{self.max_iterations}: Claude is {what}")
        elif kind == "model_turn":
            turn = data["turn"]
            self.tokens += turn.usage.total_tokens
            self.cost += turn.cost_usd or 0.0
            first_line = next((line for line in printable(data["text"]).splitlines() if line.strip()), "")
            names = [call.get("name") for call in turn.tool_calls]
            calls = names.count(RUN_PYTHON_TOOL)
            action = (f"runs {calls} code cell{'s' if calls > 1 else ''}" if calls
                      else "submits the results" if SUBMIT_RESULTS_TOOL in names else "answers")
            spent = f" ({self.tokens:,} tokens, ${self.cost:.4f} so far)" if self.tokens else ""  # replay: none
            self._say((f"iteration {data['iteration']}", "cyan"), f" Claude {action}",
                      f": {_clip(first_line)}" if first_line else "", (spent, "dim"))
        elif kind == "code_start":
            self._spin(f"iteration {data['iteration']}: running code")
        elif kind == "code_done":
            cell = data["cell"]
            charts = f", {len(cell.charts)} chart{'s' if len(cell.charts) > 1 else ''}" if cell.charts else ""
            if cell.error:
                mark = (f"✗ {_clip(cell.error['name'], 40)}: {_clip(cell.error['message'], 80)}", "red")
            elif cell.timed_out:
                mark = ("✗ timed out", "red")
            else:
                mark = ("✓ ran", "green")
            self._say("    ", mark, (f" in {cell.duration_s:.1f} s{charts}", "dim"))
        elif kind == "finished":
            self._spin(f"finished: {data['status']}; writing the report")


def _clip(text: str, limit: int = 100) -> str:
    """One line of the model's or the sandbox's text, without the escape sequences a terminal would obey."""
    text = printable(text).strip().lstrip("#").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
