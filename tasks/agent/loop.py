"""The agentic loop as plain code: Claude writes Python, the sandbox runs it, the result goes back.

One ``step()`` is one iteration: one model turn and the execution of every tool call in it; ``run()``
drives the steps to the end, with the budget checks and the final report. The flow hands ``run()``
its Prefect tasks as the step and the final report; nothing here needs Prefect, so the loop also runs
(and is tested and benchmarked) on its own. The transcript is saved after every step, so a run that
fails at iteration 7 keeps iterations 1 to 6. Progress goes out through ``tasks.agent.events``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.agent import events
from tasks.agent.context import ask_within_context, make_room
from pydantic import BaseModel

from tasks.agent.prompts import (CONTINUE_AFTER_CONTEXT_WINDOW, CONTINUE_AFTER_MAX_TOKENS, FINAL_REPORT_REQUEST,
                                 RESULTS_REQUEST)
from tasks.agent.tool_results import invalid_call, invalid_call_block, tool_result_block
from tasks.transcript import TRANSCRIPT_FILE, CellRecord, IterationRecord, Transcript, now_iso
from tasks.config import AnalysisConfig
from tasks.image_safety import chart_file_name, keep_image
from tasks.models.base import NO_TEXT, RUN_PYTHON_TOOL, ModelProvider, ModelRequest, ModelTurn
from tasks.results import MAX_SUBMISSIONS, SUBMIT_RESULTS_TOOL, Submission, check_submission, not_submitted
from tasks.sandbox.base import ExecutionResult, Sandbox

MAX_CONSECUTIVE_CUTOFFS = 3  # cut-off turns in a row before we stop asking Claude to continue
CONTEXT_WINDOW_STOP = "model_context_window_exceeded"  # the reply reached the end of the context window
CUT_OFF = {"max_tokens", CONTEXT_WINDOW_STOP}


@dataclass(frozen=True)
class LoopLimits:
    max_iterations: int
    max_tokens: int
    code_timeout: float
    max_cost_usd: float | None = None
    max_total_tokens: int | None = None

    @classmethod
    def from_config(cls, config: AnalysisConfig) -> LoopLimits:
        return cls(config.model.max_iterations, config.model.max_tokens, config.sandbox.timeout,
                   config.model.max_cost_usd, config.model.max_total_tokens)


class AnalysisLoop:
    def __init__(
        self,
        provider: ModelProvider,
        sandbox: Sandbox,
        transcript: Transcript,
        run_dir: Path,
        limits: LoopLimits,
        results: type[BaseModel] | None = None,
    ):
        """``results``: the model of the config's declared results (``tasks.results.results_model``);
        when given, the run ends only once Claude has submitted valid values, or failed to twice."""
        self.provider = provider
        self.results = results
        self._invalid: list[Submission] = []  # submissions refused, in order
        self.sandbox = sandbox
        self.transcript = transcript
        self.run_dir = run_dir
        self.limits = limits
        self._cut_text: list[str] = []  # text of turns cut at max_tokens, joined to the final answer
        self._cutoffs = 0
        if not transcript.messages:
            transcript.messages.append({"role": "user", "content": transcript.prompt})

    @property
    def transcript_path(self) -> Path:
        return self.run_dir / TRANSCRIPT_FILE

    @property
    def done(self) -> bool:
        return self.transcript.status != "running"

    @property
    def iterations(self) -> int:
        return len(self.transcript.iterations)

    def run(self, step: Callable[[], IterationRecord] | None = None,
            final_report: Callable[[], ModelTurn | None] | None = None,
            after_iteration: Callable[[IterationRecord], None] | None = None) -> None:
        """Iterate until Claude answers, the budget would be passed or ``max_iterations`` is reached;
        after the limit, ask for the final report. ``step`` and ``final_report`` run one iteration and
        the final report (default: ``self.step`` and ``self.write_final_report``; the flow passes its
        tasks that call them); ``after_iteration`` sees each iteration's record."""
        step = step or self.step
        final_report = final_report or self.write_final_report
        while not self.done and self.iterations < self.limits.max_iterations:
            if reason := self.budget_exhausted():
                self.stop_for_budget(reason)
                break
            record = step()
            if after_iteration is not None:
                after_iteration(record)
        if not self.done:
            final_report()

    def step(self) -> IterationRecord:
        """One iteration: ask the model, run its code, record everything."""
        number = self.iterations + 1
        events.emit("model_request", {"iteration": number})
        turn = self._ask(allow_tools=True)
        record = IterationRecord(number, turn)
        self.transcript.iterations.append(record)
        self.transcript.messages.append({"role": "assistant", "content": _sendable(turn)})
        events.emit("model_turn", {"iteration": number, "turn": turn, "text": turn.text})
        try:
            self._handle(turn, record)
            if self._goes_on():
                self.provider.ask_ahead(self._request(allow_tools=True))
        finally:
            record.finished_at = now_iso()
            self.save()
        return record

    def _goes_on(self) -> bool:
        """Whether ``run`` asks for another iteration after this one (the final report is asked differently)."""
        return not self.done and self.iterations < self.limits.max_iterations and self.budget_exhausted() is None

    def budget_exhausted(self) -> str | None:
        """Why the next turn would pass the budget, or None. Each turn re-sends the whole
        conversation, so the next one is projected from the last two: the last plus its growth."""
        turns = [record.turn for record in self.transcript.iterations]
        if not turns:
            return None
        usage, cost = self.transcript.usage, self.transcript.cost_usd
        tokens = _next_turn([t.usage.total_tokens for t in turns[-2:]])
        if self.limits.max_total_tokens and usage.total_tokens + tokens > self.limits.max_total_tokens:
            return (f"the next turn would pass model.max_total_tokens ({self.limits.max_total_tokens:,}): "
                    f"{usage.total_tokens:,} used, about {tokens:,.0f} for the next turn")
        next_cost = _next_turn([t.cost_usd or 0.0 for t in turns[-2:]])
        if self.limits.max_cost_usd and cost is not None and cost + next_cost > self.limits.max_cost_usd:
            return (f"the next turn would pass model.max_cost_usd (${self.limits.max_cost_usd:.2f}): "
                    f"${cost:.4f} spent, about ${next_cost:.4f} for the next turn")
        return None

    def stop_for_budget(self, reason: str) -> None:
        """End without another model call: the report is what Claude has written so far."""
        notes = "\n\n".join(t.text for t in self.transcript.turns if t.text)
        self.transcript.final_report = (
            f"> **Stopped early:** {reason}.\n\n{notes}" if notes else f"> **Stopped early:** {reason}."
        )
        self._finish("budget_exceeded", reason)

    def write_final_report(self) -> ModelTurn | None:
        """After max_iterations: ask for the report with tools defined but not callable, unless that
        turn would pass the budget (then stop as ``stop_for_budget`` does, and return None)."""
        if reason := self.budget_exhausted():
            self.stop_for_budget(reason)
            return None
        request = FINAL_REPORT_REQUEST.format(limit=self.limits.max_iterations)
        self._append_user_text(request)
        number = self.iterations + 1
        events.emit("model_request", {"iteration": number, "final": True})
        turn = self._ask(allow_tools=False)
        record = IterationRecord(number, turn, finished_at=now_iso())
        self.transcript.iterations.append(record)
        self.transcript.messages.append({"role": "assistant", "content": _sendable(turn)})
        self.transcript.final_report = self._answer(turn)
        self._end("max_iterations", f"stopped after {self.limits.max_iterations} iterations")
        return turn

    def save(self) -> None:
        self.transcript.save(self.transcript_path)

    # -- one turn -------------------------------------------------------------------------------

    def _ask(self, *, allow_tools: bool, force_tool: str | None = None) -> ModelTurn:
        return ask_within_context(
            lambda: self.provider.next_turn(self._request(allow_tools, force_tool)), self.transcript.messages,
            on_trim=lambda count, why: events.emit("context_trimmed", {"outputs": count, "reason": why}),
        )

    def _request(self, allow_tools: bool, force_tool: str | None = None) -> ModelRequest:
        return ModelRequest(self.transcript.system, self.transcript.messages, self.transcript.tools, allow_tools,
                            force_tool)

    def _handle(self, turn: ModelTurn, record: IterationRecord) -> None:
        reason = turn.stop_reason
        if reason in CUT_OFF:
            self._after_cutoff(turn)
            return
        self._cutoffs = 0
        if reason == "tool_use" and turn.tool_calls:
            self._cut_text.clear()  # the cut reply went on into code: its text is not part of a later answer
            results = [self._run_call(call, record) for call in turn.tool_calls]
            self.transcript.messages.append({"role": "user", "content": results})
        elif reason == "pause_turn":
            pass  # the API paused a long turn; sending the conversation back as it is resumes it
        elif reason == "refusal":
            self.transcript.final_report = self._answer(turn) or "Claude declined to carry out this analysis."
            self._finish("refused", "the model refused the request")
        else:  # end_turn, stop_sequence, or tool_use without a call: Claude has answered
            self.transcript.final_report = self._answer(turn)
            self._end("completed", "")

    def _after_cutoff(self, turn: ModelTurn) -> None:
        self._cutoffs += 1
        if turn.text:
            self._cut_text.append(turn.text)
        detail = ", before its code could run" if turn.tool_calls else ""
        if turn.stop_reason == CONTEXT_WINDOW_STOP:
            self._after_context_window(detail)
            return
        if self._cutoffs >= MAX_CONSECUTIVE_CUTOFFS:
            self.transcript.final_report = "\n\n".join(self._cut_text) or None
            self._finish("failed", f"{self._cutoffs} replies in a row were cut off at model.max_tokens "
                                   f"({self.limits.max_tokens}); raise model.max_tokens")
            return
        self._append_user_text(CONTINUE_AFTER_MAX_TOKENS.format(max_tokens=self.limits.max_tokens, detail=detail))

    def _after_context_window(self, detail: str) -> None:
        """The reply filled the context window: the next request would too, so trim the oldest outputs
        first, as for a request the API refuses as too long; end if nothing is left to trim."""
        trimmed = make_room(self.transcript.messages) if self._cutoffs < MAX_CONSECUTIVE_CUTOFFS else 0
        if not trimmed:
            self.transcript.final_report = "\n\n".join(self._cut_text) or None
            self._finish("failed", "Claude's reply was cut off at the end of the model's context window and no "
                                   "earlier code output is left to trim; shorten the prompt or the datasets, lower "
                                   "sandbox.max_output_chars or model.max_iterations, or use a model with a larger "
                                   "context window")
            return
        events.emit("context_trimmed",
                    {"outputs": trimmed, "reason": "the reply reached the end of the context window"})
        self._append_user_text(CONTINUE_AFTER_CONTEXT_WINDOW.format(detail=detail))

    def _run_call(self, call: dict[str, Any], record: IterationRecord) -> dict[str, Any]:
        if self.results is not None and call.get("name") == SUBMIT_RESULTS_TOOL:
            return self._submit(call)
        if problem := invalid_call(call, RUN_PYTHON_TOOL):
            return invalid_call_block(call["id"], problem)
        code = call["input"]["code"]
        events.emit("code_start", {"iteration": record.number, "code": code})
        result = self.sandbox.run_code(code, timeout=self.limits.code_timeout)
        cell = self._record_cell(call["id"], code, result, record)
        events.emit("code_done", {"iteration": record.number, "cell": cell})
        return tool_result_block(cell, self.limits.code_timeout)

    def _record_cell(self, tool_use_id: str, code: str, result: ExecutionResult, record: IterationRecord) -> CellRecord:
        charts_dir = self.run_dir / "charts"
        paths: list[str] = []
        notes = list(result.warnings)
        for chart in result.charts:
            kept = keep_image(chart.png)
            if kept.note:
                notes.append(f"{chart.name}: {kept.note}")
            if kept.png is None:
                continue
            charts_dir.mkdir(parents=True, exist_ok=True)
            index = sum(len(c.charts) for c in record.cells) + len(paths) + 1
            path = charts_dir / chart_file_name(record.number, index, chart.name if chart.source == "file" else None)
            path.write_bytes(kept.png)
            paths.append(path.relative_to(self.run_dir).as_posix())
        error = None
        if result.error:
            error = {"name": result.error.name, "message": result.error.message, "traceback": result.error.traceback}
        cell = CellRecord(tool_use_id, code, result.stdout, result.stderr, error, result.timed_out,
                          result.state_reset, paths, round(result.duration_s, 3), notes)
        record.cells.append(cell)
        return cell

    # -- results --------------------------------------------------------------------------------

    def _submit(self, call: dict[str, Any]) -> dict[str, Any]:
        assert self.results is not None
        submission = check_submission(self.results, call.get("input"))
        if submission.values is None:
            self._invalid.append(submission)
            events.emit("results_invalid", {"problems": submission.problems})
            return invalid_call_block(call["id"], submission.message)
        self.transcript.results = submission.values
        events.emit("results", {"results": submission.values})
        return {"type": "tool_result", "tool_use_id": call["id"], "content": submission.message}

    def _end(self, status: str, detail: str) -> None:
        """Finish with ``status``, once the declared results are in: ask for them (tool_choice forces
        submit_results) while none valid came and Claude has one more chance, within the budget."""
        while self.results is not None and self.transcript.results is None:
            if len(self._invalid) >= MAX_SUBMISSIONS:
                problems = self._invalid[-1].summary(self.results)
                self._finish("results_invalid", f"no valid results after {len(self._invalid)} submissions ({problems})")
                return
            if reason := self.budget_exhausted():
                self._finish("budget_exceeded", f"{reason}; the results were not submitted")
                return
            self._ask_for_results()
        self._finish(status, detail)

    def _ask_for_results(self) -> None:
        """One extra turn, recorded and counted like any other, that must call submit_results."""
        assert self.results is not None
        last = self.transcript.messages[-1]
        if not (last["role"] == "user" and isinstance(last["content"], list)
                and any(b.get("type") == "tool_result" for b in last["content"])):
            self._append_user_text(RESULTS_REQUEST)  # after an invalid submission its errors say it all
        number = self.iterations + 1
        events.emit("model_request", {"iteration": number, "results": True})
        turn = self._ask(allow_tools=True, force_tool=SUBMIT_RESULTS_TOOL)
        record = IterationRecord(number, turn)
        self.transcript.iterations.append(record)
        self.transcript.messages.append({"role": "assistant", "content": _sendable(turn)})
        events.emit("model_turn", {"iteration": number, "turn": turn, "text": turn.text})
        calls = [] if turn.stop_reason in CUT_OFF else turn.tool_calls
        if not any(c.get("name") == SUBMIT_RESULTS_TOOL for c in calls):
            self._invalid.append(not_submitted(self.results))
        if calls:
            self.transcript.messages.append({"role": "user", "content": [
                self._submit(c) if c.get("name") == SUBMIT_RESULTS_TOOL
                else invalid_call_block(c["id"], "error: not run; only submit_results may be called now.")
                for c in calls]})
        record.finished_at = now_iso()
        self.save()

    # -- helpers --------------------------------------------------------------------------------

    def _answer(self, turn: ModelTurn) -> str:
        answer = "\n\n".join([*self._cut_text, turn.text]).strip()
        self._cut_text.clear()
        return answer

    def _append_user_text(self, text: str) -> None:
        """Join the text to a trailing user turn (tool results) so that roles keep alternating."""
        block = {"type": "text", "text": text}
        last = self.transcript.messages[-1] if self.transcript.messages else None
        if last and last["role"] == "user" and isinstance(last["content"], list):
            last["content"].append(block)
        else:
            self.transcript.messages.append({"role": "user", "content": [block]})

    def _finish(self, status: str, detail: str) -> None:
        self.transcript.finish(status, detail)
        self.save()
        events.emit("finished", {"status": status, "detail": detail})


def _next_turn(amounts: list[float]) -> float:
    """The last amount plus its growth over the one before (never less than the last)."""
    return amounts[-1] + max(0.0, amounts[-1] - amounts[0])


def _sendable(turn: ModelTurn) -> list[dict[str, Any]]:
    """The assistant content to send back. A turn cut off (max_tokens, context window) may end in a
    half-written tool call that cannot run and would need a result: drop those. The API refuses
    text blocks that are empty or only whitespace (a blank line before a tool call), and an empty message."""
    content = turn.content
    if turn.stop_reason in CUT_OFF:
        content = [b for b in content if b.get("type") != "tool_use"]
    content = [b for b in content if not (b.get("type") == "text" and not str(b.get("text", "")).strip())]
    return content or [{"type": "text", "text": NO_TEXT}]
