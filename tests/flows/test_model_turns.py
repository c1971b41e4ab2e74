"""Model turns as Prefect tasks: each request leaves before Prefect's work around it, is stored under the
conversation it sent, and is never sent when an earlier attempt stored its answer."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from prefect import flow, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.analysis import analyze
from tasks.config import ModelConfig
from tasks.errors import ModelError
from tasks.models.anthropic_provider import AnthropicProvider
from tasks.models.base import ModelRequest
from tasks.prefect.cache_policies import turn_key
from tasks.prefect.model import PrefectModel
from tests.fakes.demo_script import RESULTS as DEMO_RESULTS

DEMO = Path(__file__).resolve().parents[2] / "configs" / "retail-sales.yaml"
SCOPE = "run-key-1"


def provider(api) -> AnthropicProvider:
    return AnthropicProvider(ModelConfig(name="claude-sonnet-5-5", base_url=api.base_url, max_tokens=1024, timeout=10),
                             "sk-test-turns", max_retries=0, stream_retries=0)


def request(*questions: str) -> ModelRequest:
    messages = [{"role": "user", "content": q} for q in questions]
    return ModelRequest("You analyse data.", messages, [])


def wait_until(condition, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def questions(api) -> list[str]:
    """The first user message of each request the stand-in received (the provider sends text blocks)."""
    return [r.body["messages"][0]["content"][0]["text"] for r in api.requests]


def stored_keys(storage: Path) -> set[str]:
    return {p.name for p in storage.glob("model-turn-*")}


def task_runs(flow_run_id: str) -> list:
    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def test_a_request_asked_ahead_leaves_at_once_and_is_the_answer_of_the_turn(prefect_api, anthropic_api,
                                                                            tmp_path) -> None:
    anthropic_api.enqueue_text("Forty-two.")
    storage = tmp_path / "results"
    asked = request("How many rows?")

    @flow
    def turns() -> tuple[str, int, int]:
        model = PrefectModel(provider(anthropic_api), SCOPE, storage, tmp_path)
        model.ask_ahead(asked)
        wait_until(lambda: len(anthropic_api.requests) == 1, "the request asked ahead to arrive")
        sent_before_the_turn = len(anthropic_api.requests)
        turn = model.next_turn(asked)
        model.close()
        return turn.text, sent_before_the_turn, len(anthropic_api.requests)

    assert turns() == ("Forty-two.", 1, 1)
    assert questions(anthropic_api) == ["How many rows?"]
    assert stored_keys(storage) == {turn_key(provider(anthropic_api), asked, SCOPE)}


def test_a_turn_an_earlier_attempt_stored_is_read_back_and_never_sent(prefect_api, anthropic_api, tmp_path) -> None:
    anthropic_api.enqueue_text("Stored answer.")
    anthropic_api.enqueue_text("A second, paid answer.")
    storage = tmp_path / "results"

    @flow
    def attempt() -> str:
        model = PrefectModel(provider(anthropic_api), SCOPE, storage, tmp_path)
        model.ask_ahead(request("How many rows?"))
        text = model.next_turn(request("How many rows?")).text
        model.close()
        return text

    assert attempt() == "Stored answer."
    assert attempt() == "Stored answer."  # the retry: same scope, same conversation
    assert len(anthropic_api.requests) == 1


def test_an_answer_asked_ahead_for_another_conversation_is_not_used(prefect_api, anthropic_api, tmp_path) -> None:
    anthropic_api.enqueue_text("Answer to the guess.")
    anthropic_api.enqueue_text("Answer to the real question.")

    @flow
    def turns() -> str:
        model = PrefectModel(provider(anthropic_api), SCOPE, tmp_path / "results", tmp_path)
        model.ask_ahead(request("A guess"))
        wait_until(lambda: len(anthropic_api.requests) == 1, "the request asked ahead to arrive")
        text = model.next_turn(request("The real question")).text
        model.close()
        return text

    assert turns() == "Answer to the real question."
    assert questions(anthropic_api) == ["A guess", "The real question"]


def test_a_turn_is_stored_under_the_conversation_it_sent_though_the_caller_adds_to_it_at_once(
        prefect_api, anthropic_api, tmp_path) -> None:
    """The task that stores the turn runs beside the loop, which appends the answer straight away: with the
    answer already in when the turn is taken, the loop's appends come before the task has begun."""
    anthropic_api.enqueue_text("Forty-two.")
    storage = tmp_path / "results"
    asked = request("How many rows?")
    key = turn_key(provider(anthropic_api), asked, SCOPE)

    @flow
    def turn() -> None:
        model = PrefectModel(provider(anthropic_api), SCOPE, storage, tmp_path)
        model.ask_ahead(asked)
        wait_until(lambda: len(anthropic_api.requests) == 1, "the request asked ahead to arrive")
        time.sleep(0.5)  # its answer is back
        answer = model.next_turn(asked)
        asked.messages.append({"role": "assistant", "content": answer.text})
        asked.messages.append({"role": "user", "content": "And by region?"})
        model.settle()
        model.close()

    turn()
    assert stored_keys(storage) == {key}


def test_a_failed_request_fails_its_task_run_and_reaches_the_caller(prefect_api, anthropic_api, tmp_path) -> None:
    anthropic_api.enqueue_error(400, message="messages: roles must alternate")

    @flow
    def turn() -> str:
        from prefect.runtime import flow_run

        model = PrefectModel(provider(anthropic_api), SCOPE, tmp_path / "results", tmp_path)
        with pytest.raises(ModelError, match="roles must alternate"):
            model.next_turn(request("How many rows?"))
        model.close()
        return str(flow_run.get_id())

    flow_run_id = turn()
    wait_until(lambda: [r.state.type.value for r in task_runs(flow_run_id) if r.state] == ["FAILED"],
               "the model-request task run to be stored as Failed", timeout=30)
    assert stored_keys(tmp_path / "results") == set()


@pytest.mark.slow
def test_each_model_request_is_a_child_of_its_iteration_and_ends_before_it(prefect_api, anthropic_api, monkeypatch,
                                                                           tmp_path) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-turns")
    anthropic_api.enqueue_tool_use(code="print(1)", latency=0.1)
    anthropic_api.enqueue_tool_use(code="print(2)", latency=0.1)
    anthropic_api.enqueue_text("# Report\nDone.", latency=0.1)
    anthropic_api.enqueue_results(DEMO_RESULTS)

    result = analyze(str(DEMO), {"model.base_url": anthropic_api.base_url, "outputs.dir": str(tmp_path / "out")})

    assert result["status"] == "completed"
    runs = {r.id: r for r in task_runs(result["flow_run_id"])}
    requests = [r for r in runs.values() if r.name.startswith("model-request")]
    assert len(requests) == 4 == len(anthropic_api.requests)
    for run in requests:
        parents = [runs[p.id] for p in run.task_inputs.get("__parents__", [])]
        assert [p.name for p in parents] in (["iteration-1"], ["iteration-2"], ["iteration-3"]), run.name
        assert run.state.is_completed() and run.end_time <= parents[0].end_time


class Stopped(Exception):
    """What the signal handler below raises in the main thread, as Prefect's does on a cancellation."""


@pytest.mark.slow
def test_a_turn_stopped_while_the_model_answers_stops_at_once(prefect_api, anthropic_api, tmp_path) -> None:
    """A cancellation reaches the loop's thread as an exception raised by a signal handler; the request and its
    task are in other threads, and the loop must not wait for the answer to stop."""
    anthropic_api.enqueue_text("Too late.", latency=6)
    previous = signal.signal(signal.SIGUSR1, lambda *_: (_ for _ in ()).throw(Stopped()))

    def interrupt_once_sent() -> None:
        wait_until(lambda: len(anthropic_api.requests) == 1, "the request to arrive")
        os.kill(os.getpid(), signal.SIGUSR1)

    @flow
    def turn() -> float:
        model = PrefectModel(provider(anthropic_api), SCOPE, tmp_path / "results", tmp_path)
        threading.Thread(target=interrupt_once_sent, daemon=True).start()
        start = time.monotonic()
        with pytest.raises(Stopped):
            model.next_turn(request("How many rows?"))
        model.close()
        return time.monotonic() - start

    try:
        waited = turn()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert waited < 3, f"the turn held the stop for {waited:.1f} s: until the model's answer (6 s)?"
