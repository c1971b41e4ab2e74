"""The agentic loop, end to end below the flow: the real anthropic SDK against the stand-in
Messages API, and code run for real in a local sandbox."""

from __future__ import annotations

import json

import pytest

from tasks.agent.loop import AnalysisLoop
from tasks.transcript import Transcript
from tasks.errors import ModelError
from tests.agent.conftest import make_loop
from tests.fakes.anthropic_api import run_python, text_block

def run_to_end(loop: AnalysisLoop) -> None:
    loop.run()


def tool_results(body: dict) -> list[dict]:
    return [b for b in body["messages"][-1]["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]


def test_tool_use_then_answer(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_tool_use(code="rows = 3\nprint('rows:', rows)", text="Let me count.")
    anthropic_api.enqueue_text("There are **3** rows.")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    run_to_end(loop)

    assert loop.transcript.status == "completed"
    assert loop.transcript.final_report == "There are **3** rows."
    [result] = tool_results(anthropic_api.requests[1].body)
    assert "status: ok" in result["content"] and "rows: 3" in result["content"]
    cell = loop.transcript.cells[0]
    assert cell.stdout == "rows: 3\n" and cell.error is None
    saved = json.loads((tmp_path / "transcript.json").read_text())
    assert saved["status"] == "completed" and len(saved["iterations"]) == 2
    assert saved["usage"]["output_tokens"] > 0 and saved["cost_usd"] > 0


def test_several_tool_calls_in_one_turn_share_state_and_charts_are_saved(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_tool_use(code=[
        "import matplotlib.pyplot as plt\nvalues = [1, 3, 2]",
        "plt.plot(values); plt.title('Values'); print(sum(values))",
    ])
    anthropic_api.enqueue_text("Sum is 6; see the chart 'Values'.")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    run_to_end(loop)

    results = tool_results(anthropic_api.requests[1].body)
    assert [r["tool_use_id"] for r in results] == [c["id"] for c in anthropic_api.requests[1].body["messages"][-2]
                                                     ["content"] if c["type"] == "tool_use"]
    assert "6" in results[1]["content"] and "charts captured: 1" in results[1]["content"]
    [chart] = loop.transcript.cells[1].charts
    assert chart == "charts/iteration-01-chart-1.png"
    assert (tmp_path / chart).read_bytes().startswith(b"\x89PNG")


def test_code_error_goes_back_to_claude_who_fixes_it(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_tool_use(code="print(undefined_name)")
    anthropic_api.enqueue_tool_use(code="undefined_name = 41 + 1\nprint(undefined_name)")
    anthropic_api.enqueue_text("The answer is 42.")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    run_to_end(loop)

    [failed] = tool_results(anthropic_api.requests[1].body)
    assert failed["is_error"] is True
    assert "error: NameError: name 'undefined_name' is not defined" in failed["content"]
    [fixed] = tool_results(anthropic_api.requests[2].body)
    assert "is_error" not in fixed and "42" in fixed["content"]
    assert loop.transcript.status == "completed"
    assert [c.status for c in loop.transcript.cells] == ["error", "ok"]


def test_max_tokens_drops_the_cut_tool_call_and_asks_to_continue(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_turn([text_block("Starting the analysis"), run_python("print('half")],
                               stop_reason="max_tokens")
    anthropic_api.enqueue_text("Done after continuing.")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    run_to_end(loop)

    sent = anthropic_api.requests[1].body["messages"]
    assert [b["type"] for b in sent[-2]["content"]] == ["text"]  # the half-written call is not sent back
    assert "cut off at the max_tokens limit (4096 tokens), before its code could run" in \
        sent[-1]["content"][0]["text"]
    assert loop.transcript.cells == []  # the truncated code never ran
    assert loop.transcript.final_report == "Starting the analysis\n\nDone after continuing."


def test_repeated_max_tokens_ends_cleanly(anthropic_api, sandbox, tmp_path) -> None:
    for _ in range(3):
        anthropic_api.enqueue_turn([text_block("Very long")], stop_reason="max_tokens")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    run_to_end(loop)
    assert loop.transcript.status == "failed"
    assert "raise model.max_tokens" in loop.transcript.stop_detail
    assert anthropic_api.pending == 0 and len(anthropic_api.requests) == 3


def test_max_iterations_asks_for_a_final_report_without_tools(anthropic_api, sandbox, tmp_path) -> None:
    for i in range(2):
        anthropic_api.enqueue_tool_use(code=f"print({i})")
    anthropic_api.enqueue_text("# Report\nPartial findings.")
    loop = make_loop(anthropic_api, sandbox, tmp_path, max_iterations=2)
    run_to_end(loop)

    final = anthropic_api.requests[2].body
    assert final["tool_choice"] == {"type": "none"} and final["tools"]
    assert "limit of 2 code runs" in final["messages"][-1]["content"][-1]["text"]
    assert final["messages"][-1]["content"][0]["type"] == "tool_result"  # results and request in one turn
    assert loop.transcript.status == "max_iterations"
    assert loop.transcript.final_report == "# Report\nPartial findings."


def test_refusal_stops_the_loop(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_turn([text_block("I can't help with that.")], stop_reason="refusal")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    run_to_end(loop)
    assert loop.transcript.status == "refused"
    assert loop.transcript.final_report == "I can't help with that."
    assert len(anthropic_api.requests) == 1


def test_pause_turn_is_resumed(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_turn([text_block("Working on it")], stop_reason="pause_turn")
    anthropic_api.enqueue_text("Finished.")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    run_to_end(loop)
    assert anthropic_api.requests[1].body["messages"][-1]["role"] == "assistant"
    assert loop.transcript.status == "completed"


def test_budget_stops_before_a_turn_would_pass_it(anthropic_api, sandbox, tmp_path) -> None:
    for i in range(4):
        anthropic_api.enqueue_tool_use(code=f"print({i})", text=f"Step {i}")
    loop = make_loop(anthropic_api, sandbox, tmp_path, max_total_tokens=1)
    run_to_end(loop)
    assert loop.transcript.status == "budget_exceeded"
    assert len(anthropic_api.requests) == 1  # stopped before the second turn
    assert "model.max_total_tokens" in loop.transcript.final_report and "Step 0" in loop.transcript.final_report

    anthropic_api.reset_cache()
    loop = make_loop(anthropic_api, sandbox, tmp_path / "cost", max_cost_usd=1e-9)
    run_to_end(loop)
    assert loop.transcript.status == "budget_exceeded" and "model.max_cost_usd" in loop.transcript.stop_detail


def test_the_transcript_survives_a_failure_mid_run(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_tool_use(code="print('one')")
    anthropic_api.enqueue_tool_use(code="print('two')")
    anthropic_api.enqueue_error(401, message="invalid x-api-key")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    with pytest.raises(ModelError):
        run_to_end(loop)
    saved = Transcript.load(tmp_path / "transcript.json")
    assert [c.stdout for c in saved.cells] == ["one\n", "two\n"]
    assert len(saved.iterations) == 2


# --- what the API refuses, budgets, and replies cut off ---------------------------------------------------


def flat_usage(tokens: int) -> dict[str, int]:
    """A turn's usage made exactly ``tokens`` input tokens, so budget tests know the numbers."""
    return {"input_tokens": tokens, "output_tokens": 0, "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0}


def test_whitespace_only_text_before_a_tool_call_is_not_sent_back(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_tool_use(code="print(1)", text="\n\n")  # what Claude often writes before a call
    anthropic_api.enqueue_text("Done.")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    run_to_end(loop)

    assert loop.transcript.status == "completed" and loop.transcript.final_report == "Done."
    sent = anthropic_api.requests[1].body["messages"][1]["content"]
    assert [b["type"] for b in sent] == ["tool_use"]
    assert [r.status for r in anthropic_api.requests] == [200, 200]


def test_context_window_stop_reason_trims_old_outputs_and_asks_again(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_tool_use(code="print('x' * 3000)")
    anthropic_api.enqueue_tool_use(code="print('y' * 3000)")
    anthropic_api.enqueue_turn([text_block("The totals are"), run_python("print(")],
                               stop_reason="model_context_window_exceeded")
    anthropic_api.enqueue_text("The totals are 42.")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    run_to_end(loop)

    assert loop.transcript.status == "completed"
    assert loop.transcript.final_report == "The totals are\n\nThe totals are 42."
    again = anthropic_api.requests[3].body["messages"]
    assert tool_results({"messages": again[:3]})[0]["content"] == "[output trimmed to fit the context window]"
    assert [b["type"] for b in again[-2]["content"]] == ["text"]  # the cut call is not sent back


def test_context_window_stop_reason_with_nothing_to_trim_ends_with_the_reason(anthropic_api, sandbox,
                                                                              tmp_path) -> None:
    anthropic_api.enqueue_turn([text_block("Half an answer")], stop_reason="model_context_window_exceeded")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    run_to_end(loop)

    assert loop.transcript.status == "failed"
    assert "context window" in loop.transcript.stop_detail and "sandbox.max_output_chars" in \
        loop.transcript.stop_detail
    assert len(anthropic_api.requests) == 1


def test_the_final_report_turn_is_not_asked_for_past_the_budget(anthropic_api, sandbox, tmp_path) -> None:
    for i in range(2):
        anthropic_api.enqueue_tool_use(code=f"print({i})", text=f"Step {i}", usage=flat_usage(100))
    anthropic_api.enqueue_text("# Report", usage=flat_usage(100))
    loop = make_loop(anthropic_api, sandbox, tmp_path, max_iterations=2, max_total_tokens=250)
    run_to_end(loop)

    assert loop.transcript.status == "budget_exceeded"
    assert len(anthropic_api.requests) == 2 and loop.transcript.usage.total_tokens <= 250
    assert "Step 1" in loop.transcript.final_report


def test_the_budget_projection_allows_for_a_growing_conversation(anthropic_api, sandbox, tmp_path) -> None:
    for i, tokens in enumerate([100, 200, 300, 400]):
        anthropic_api.enqueue_tool_use(code=f"print({i})", usage=flat_usage(tokens))
    loop = make_loop(anthropic_api, sandbox, tmp_path, max_total_tokens=550)
    run_to_end(loop)

    assert loop.transcript.status == "budget_exceeded"
    assert loop.transcript.usage.total_tokens <= 550 and len(anthropic_api.requests) == 2


def test_text_of_an_old_cut_reply_does_not_join_a_later_answer(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_turn([text_block("Half a thought")], stop_reason="max_tokens")
    anthropic_api.enqueue_tool_use(code="print(1)")
    anthropic_api.enqueue_text("The answer.")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    run_to_end(loop)

    assert loop.transcript.status == "completed" and loop.transcript.final_report == "The answer."
