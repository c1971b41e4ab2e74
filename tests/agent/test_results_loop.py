"""Declared results through the loop: the real anthropic SDK against the stand-in Messages API,
which checks ``tool_choice`` as the real API does; code runs in a local sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.agent.loop import AnalysisLoop
from tasks.config.schema import AnalysisConfig
from tasks.errors import ModelError
from tasks.results import results_model
from tests.agent.conftest import make_loop as make_results_loop
from tests.fakes.anthropic_api import FakeAnthropicAPI

FORCED = {"type": "tool", "name": "submit_results"}
CONFIG = AnalysisConfig.model_validate({
    "name": "rows", "prompt": "How many rows?", "datasets": [{"name": "s", "path": "s.csv", "schema": "s.yaml"}],
    "results": {"rows": {"type": "integer", "description": "Rows in the data", "minimum": 0},
                "biggest": {"type": "enum", "description": "The biggest group", "values": ["a", "b"]}}})
VALID = {"rows": 3, "biggest": "a"}


def make_loop(api: FakeAnthropicAPI, sandbox, run_dir: Path, **limits) -> AnalysisLoop:
    return make_results_loop(api, sandbox, run_dir, analysis="rows", results=results_model(CONFIG), **limits)


def test_results_submitted_unasked_need_no_extra_turn(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_tool_use(code="rows = 3\nprint(rows)")
    anthropic_api.enqueue_results(VALID, text="Recording the numbers.")
    anthropic_api.enqueue_text("There are **3** rows.")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    loop.run()

    assert loop.transcript.status == "completed" and loop.transcript.results == VALID
    assert len(anthropic_api.requests) == 3 and all("tool_choice" not in b for b in anthropic_api.bodies)
    [answer] = anthropic_api.requests[2].body["messages"][-1]["content"]
    assert answer["type"] == "tool_result" and answer["content"] == "Results recorded." and "is_error" not in answer
    assert loop.transcript.cells[0].stdout == "3\n"  # a submission is no code cell
    assert json.loads((tmp_path / "transcript.json").read_text())["results"] == VALID


def test_an_answer_without_results_is_followed_by_a_forced_turn(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_text("There are **3** rows.")
    anthropic_api.enqueue_results(VALID)
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    loop.run()

    first, forced = anthropic_api.bodies
    assert "tool_choice" not in first and forced["tool_choice"] == FORCED
    assert [t["name"] for t in forced["tools"]] == ["run_python_code", "submit_results"]
    assert "submit the results" in forced["messages"][-1]["content"][-1]["text"]
    assert loop.transcript.status == "completed" and loop.transcript.results == VALID
    assert loop.transcript.final_report == "There are **3** rows."
    assert len(loop.transcript.iterations) == 2  # the extra turn is recorded, and counted in usage
    assert loop.transcript.usage.total_tokens == sum(r.usage["input_tokens"] + r.usage["output_tokens"] +
                                                     r.usage["cache_read_input_tokens"] +
                                                     r.usage["cache_creation_input_tokens"]
                                                     for r in anthropic_api.requests)


def test_an_invalid_submission_goes_back_once_with_its_errors(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_text("Done.")
    anthropic_api.enqueue_results({"rows": -1, "biggest": "c"})
    anthropic_api.enqueue_results(VALID)
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    loop.run()

    retry = anthropic_api.bodies[2]
    assert retry["tool_choice"] == FORCED
    [errors] = retry["messages"][-1]["content"]  # the errors alone: they say what to do
    assert errors["type"] == "tool_result" and errors["is_error"] is True
    assert "- rows: Input should be greater than or equal to 0" in errors["content"]
    assert "- biggest: Input should be 'a' or 'b'" in errors["content"]
    assert loop.transcript.status == "completed" and loop.transcript.results == VALID


def test_still_invalid_after_the_retry_ends_results_invalid_naming_the_fields(anthropic_api, sandbox,
                                                                              tmp_path) -> None:
    anthropic_api.enqueue_text("Done.")
    anthropic_api.enqueue_results({"rows": "many", "biggest": "a"})
    anthropic_api.enqueue_results({"biggest": "z"})
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    loop.run()

    assert len(anthropic_api.requests) == 3  # no third chance
    assert loop.transcript.status == "results_invalid" and loop.transcript.results is None
    assert loop.transcript.stop_detail.startswith("no valid results after 2 submissions (rows: Field required; "
                                                  "biggest: Input should be 'a' or 'b')")
    assert loop.transcript.final_report == "Done."  # the written report is kept
    # The last tool call is answered, so the conversation stays one the API accepts.
    assert loop.transcript.messages[-1]["content"][0]["type"] == "tool_result"


def test_after_the_iteration_limit_the_final_report_then_the_results(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_tool_use(code="print(1)")
    anthropic_api.enqueue_text("# Report\nPartial.")
    anthropic_api.enqueue_results(VALID)
    loop = make_loop(anthropic_api, sandbox, tmp_path, max_iterations=1)
    loop.run()

    assert [b.get("tool_choice") for b in anthropic_api.bodies] == [None, {"type": "none"}, FORCED]
    assert loop.transcript.status == "max_iterations" and loop.transcript.results == VALID


def test_the_results_turn_keeps_to_the_budget(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_text("Done.", usage={"input_tokens": 900})
    loop = make_loop(anthropic_api, sandbox, tmp_path, max_total_tokens=1000)
    loop.run()

    assert len(anthropic_api.requests) == 1
    assert loop.transcript.status == "budget_exceeded" and loop.transcript.results is None
    detail = loop.transcript.stop_detail
    assert "max_total_tokens" in detail and "results were not submitted" in detail
    assert loop.transcript.final_report == "Done."


def test_a_script_that_ignores_a_forced_tool_is_refused_like_the_real_api_never_would(anthropic_api, sandbox,
                                                                                     tmp_path) -> None:
    anthropic_api.enqueue_text("Done.")
    anthropic_api.enqueue_text("I will not call the tool.")
    loop = make_loop(anthropic_api, sandbox, tmp_path)
    with pytest.raises(ModelError, match="tool_choice forces 'submit_results'"):
        loop.run()
