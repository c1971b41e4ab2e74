"""Fault matrix, Model API rows: each fault injected by the stand-in Anthropic API into a real
``analyst run`` (the real SDK, the real local Prefect server, the local sandbox running the code).

Every run first does one code run (``print('before the fault')``), then meets the fault. The run
either completes or fails with a message naming the cause; either way the transcript keeps that
first iteration, Prefect holds the flow run's state and its artifacts, and no sandbox process is
left (the ``run`` fixture checks that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.fakes.anthropic_api import FakeAnthropicAPI, tool_use_block

from tasks.agent.context import TRIMMED

from .conftest import artifact_keys, flow_run, log_messages

pytestmark = pytest.mark.slow

BEFORE = "print('before the fault')"


@dataclass(frozen=True)
class Fault:
    script: Callable[[FakeAnthropicAPI], None]  # what the stand-in does after the first turn
    exit_code: int
    status: str  # the run's status in the summary and transcript
    cause: str = ""  # must appear in the error message (failed runs)
    sets: tuple[str, ...] = ()


def _then_answer(api: FakeAnthropicAPI) -> None:
    api.enqueue_text("North earns most.")


def _retried_then_answer(*errors: Callable[[FakeAnthropicAPI], object]) -> Callable[[FakeAnthropicAPI], None]:
    def script(api: FakeAnthropicAPI) -> None:
        for error in errors:
            error(api)
        _then_answer(api)
    return script


def _always(error: Callable[[FakeAnthropicAPI], object], times: int) -> Callable[[FakeAnthropicAPI], None]:
    def script(api: FakeAnthropicAPI) -> None:
        for _ in range(times):
            error(api)
    return script


def _malformed_calls(api: FakeAnthropicAPI) -> None:
    api.enqueue_turn([tool_use_block("run_python_code", {"source": "print(1)"}),  # no `code`
                      tool_use_block("run_python_code", {"code": ["print(1)"]}),  # `code` not a string
                      tool_use_block("run_sql", {"query": "select 1"})],  # a tool that does not exist
                     stop_reason="tool_use")
    api.enqueue_raw_tool_use('{"code": print(1)}')  # input that is not JSON: the request is sent again
    api.enqueue_tool_use(code="print('after the fault')")
    _then_answer(api)


FAULTS = {
    "429-retry-after": Fault(_retried_then_answer(lambda a: a.enqueue_error(429, retry_after=0.05)), 0, "completed"),
    "529-overloaded": Fault(_retried_then_answer(lambda a: a.enqueue_error(529, retry_after=0.05)), 0, "completed"),
    "500-then-ok": Fault(_retried_then_answer(lambda a: a.enqueue_error(500, retry_after=0.05)), 0, "completed"),
    "500-every-time": Fault(_always(lambda a: a.enqueue_error(500, retry_after=0.01), 5), 1, "failed",
                            "the Anthropic API kept failing (500 api_error: Internal server error) after 5 attempts"),
    "connection-reset": Fault(_retried_then_answer(FakeAnthropicAPI.enqueue_reset), 0, "completed"),
    "stream-cut-mid-message": Fault(_retried_then_answer(lambda a: a.enqueue_stream_cut(after_events=5)), 0,
                                    "completed"),
    "stream-cut-every-time": Fault(_always(lambda a: a.enqueue_stream_cut(after_events=5), 3), 1, "failed",
                                   "response stream broke mid-message 3 times in a row"),
    "malformed-tool-calls": Fault(_malformed_calls, 0, "completed"),
    "401-not-retried": Fault(lambda a: a.enqueue_error(401), 1, "failed",
                             "the Anthropic API rejected the API key (401 authentication_error"),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_model_api_fault(name, run, anthropic_api) -> None:
    fault = FAULTS[name]
    anthropic_api.enqueue_tool_use(code=BEFORE)
    fault.script(anthropic_api)

    outcome = run(*fault.sets)

    assert outcome.exit_code == fault.exit_code, outcome.output
    assert outcome.summary["status"] == fault.status, outcome.summary
    transcript = outcome.transcript
    assert transcript.status == fault.status
    assert transcript.cells[0].stdout == "before the fault\n"  # what was done before is on disk
    state = flow_run(outcome.summary["flow_run_id"]).state
    keys = artifact_keys(outcome.summary["flow_run_id"])
    assert {"faults-iteration-1", "faults-report", "faults-usage"} <= keys, keys
    if fault.exit_code == 0:
        assert state.is_completed() and anthropic_api.pending == 0
        assert transcript.final_report == "North earns most."
    else:
        assert fault.cause in outcome.summary["error"], outcome.summary["error"]
        assert state.is_failed() and fault.cause in state.message, state.message
        assert fault.cause in transcript.stop_detail
        assert "Traceback" not in outcome.summary["error"]
    if name == "401-not-retried":
        assert len(anthropic_api.requests) == 2  # the first turn, then the rejected one: no retry
    if name == "malformed-tool-calls":
        _check_malformed(anthropic_api, transcript)


def _check_malformed(api: FakeAnthropicAPI, transcript) -> None:
    """Each bad call got an is_error result saying what was wrong, and nothing ran for it."""
    [missing, not_string, unknown] = [b for b in api.requests[2].body["messages"][-1]["content"]
                                      if b.get("type") == "tool_result"]
    assert all(r["is_error"] for r in (missing, not_string, unknown))
    assert "needs a 'code' key" in missing["content"] and "'source'" in missing["content"]
    assert "'code' must be a string" in not_string["content"]
    assert "no tool named 'run_sql'" in unknown["content"]
    # The turn whose input was not JSON was asked again: one request more, and no extra iteration.
    assert api.requests[3].body["messages"] == api.requests[2].body["messages"]
    assert [c.stdout for c in transcript.cells] == ["before the fault\n", "after the fault\n"]


def test_context_window_exceeded_trims_old_outputs_and_goes_on(run, anthropic_api) -> None:
    anthropic_api.enqueue_tool_use(code="print('before the fault. ' * 4)")  # longer than the trimmed marker
    anthropic_api.enqueue_tool_use(code="print('x' * 6000)")  # about 1,500 tokens of output
    anthropic_api.enqueue_context_window(headroom=300)  # the next request no longer fits
    anthropic_api.enqueue_tool_use(code="print('third')")
    _then_answer(anthropic_api)

    outcome = run()

    assert outcome.exit_code == 0 and outcome.summary["status"] == "completed", outcome.output
    refused = [r for r in anthropic_api.requests if r.status == 400]
    assert len(refused) == 1  # trimmed once, then it fit
    retried = anthropic_api.requests[anthropic_api.requests.index(refused[0]) + 1].body["messages"]
    results = [b for m in retried if m["role"] == "user" and isinstance(m["content"], list)
               for b in m["content"] if b.get("type") == "tool_result"]
    assert results[0]["content"] == results[1]["content"] == TRIMMED  # the oldest outputs, trimmed
    transcript = outcome.transcript
    assert transcript.cells[1].stdout == "x" * 6000 + "\n"  # the full output stays in the record
    assert [c.stdout for c in transcript.cells][-1] == "third\n"
    assert flow_run(outcome.summary["flow_run_id"]).state.is_completed()
    assert any("to fit the context window" in m for m in log_messages(outcome.summary["flow_run_id"]))


def test_context_window_too_small_even_trimmed_ends_with_a_clear_message(run, anthropic_api) -> None:
    anthropic_api.enqueue_tool_use(code=BEFORE)
    anthropic_api.enqueue_context_window(headroom=-3000)  # smaller than the prompt alone
    _then_answer(anthropic_api)

    outcome = run()

    assert outcome.exit_code == 1 and outcome.summary["status"] == "failed"
    error = outcome.summary["error"]
    assert "prompt is too long" in error and "still does not fit" in error and "sandbox.max_output_chars" in error
    assert outcome.transcript.cells[0].stdout == "before the fault\n"
    state = flow_run(outcome.summary["flow_run_id"]).state
    assert state.is_failed() and "still does not fit" in state.message
    assert "faults-iteration-1" in artifact_keys(outcome.summary["flow_run_id"])
