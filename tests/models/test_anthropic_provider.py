"""The Anthropic provider, with the real SDK against the stand-in API on loopback (tests/fakes/anthropic_api.py)."""

from __future__ import annotations

import copy
import time
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from pydantic import ValidationError

from tasks.config.schema import ModelConfig
from tasks.errors import ModelError
from tasks.models.anthropic_provider import AnthropicProvider, with_message_breakpoint
from tasks.models.base import ModelRequest, Usage
from tasks.models.credentials import anthropic_api_key
from tasks.prefect.secret_blocks import read_secret_block
from tasks.models.pricing import turn_cost
from tasks.models.tools import RUN_PYTHON_DESCRIPTION, tool_definitions
from tests.fakes.anthropic_api import FakeAnthropicAPI, run_python, text_block, thinking_block

KEY = "sk-ant-api03-TESTKEY-do-not-leak-0123456789"
MODEL = "claude-sonnet-5-5"
SYSTEM = "You are a careful data analyst. " * 20


def provider_for(api: FakeAnthropicAPI, *, max_retries: int = 2, stream_retries: int = 2,
                 **model: object) -> AnthropicProvider:
    config = ModelConfig(**{"name": MODEL, "base_url": api.base_url, "max_tokens": 2048, "timeout": 10, **model})
    return AnthropicProvider(config, KEY, max_retries=max_retries, stream_retries=stream_retries,
                             stream_retry_delay=0.01)


def request(messages: list | None = None, **kwargs: object) -> ModelRequest:
    messages = messages if messages is not None else [{"role": "user", "content": "Analyse sales.csv"}]
    return ModelRequest(system=SYSTEM, messages=messages, tools=tool_definitions(), **kwargs)


def breakpoints(body: dict) -> list[str]:
    """Where cache_control sits in a request body, as readable paths."""
    found = [f"system[{i}]" for i, b in enumerate(body.get("system") or []) if "cache_control" in b]
    found += [f"tools[{i}]" for i, t in enumerate(body.get("tools") or []) if "cache_control" in t]
    for m, message in enumerate(body["messages"]):
        if isinstance(message["content"], list):
            found += [f"messages[{m}][{i}]" for i, b in enumerate(message["content"]) if "cache_control" in b]
    return found


# --- turns -------------------------------------------------------------------------------------


def test_text_turn(anthropic_api):
    anthropic_api.enqueue_text("Revenue grew 12% year on year, driven by the north region.")
    turn = provider_for(anthropic_api).next_turn(request())

    assert turn.stop_reason == "end_turn"
    assert turn.model == MODEL
    assert turn.content == [{"type": "text", "text": "Revenue grew 12% year on year, driven by the north region."}]
    assert turn.text == "Revenue grew 12% year on year, driven by the north region."
    assert turn.tool_calls == []
    sent = anthropic_api.requests[0]
    assert sent.path == "/v1/messages" and sent.body["stream"] is True
    assert sent.body["model"] == MODEL and sent.body["max_tokens"] == 2048
    assert "temperature" not in sent.body and "tool_choice" not in sent.body
    assert sent.api_key == KEY


def test_tool_use_turn_with_two_calls(anthropic_api):
    code_a = "import pandas as pd\ndf = pd.read_csv('sales.csv')\nprint(df.describe())"
    code_b = 'print({"rows": len(df), "quote": "it\'s"})'
    anthropic_api.enqueue_tool_use(code=[code_a, code_b], text="Let me look at the data.")
    turn = provider_for(anthropic_api).next_turn(request())

    assert turn.stop_reason == "tool_use"
    assert turn.text == "Let me look at the data."
    calls = turn.tool_calls
    assert [c["name"] for c in calls] == ["run_python_code", "run_python_code"]
    assert [c["input"] for c in calls] == [{"code": code_a}, {"code": code_b}]  # reassembled from json chunks
    assert calls[0]["id"] != calls[1]["id"] and all(c["id"].startswith("toolu_") for c in calls)
    # The blocks go back to the API as they are: plain JSON, no SDK-only fields.
    assert all(set(c) == {"type", "id", "name", "input"} for c in calls)


def test_other_stop_reasons_and_thinking_blocks(anthropic_api):
    anthropic_api.enqueue_turn([thinking_block("Look at nulls first."), text_block("Partial report")],
                               stop_reason="max_tokens")
    anthropic_api.enqueue_turn([], stop_reason="refusal")
    provider = provider_for(anthropic_api)

    turn = provider.next_turn(request())
    assert turn.stop_reason == "max_tokens"
    assert turn.content[0]["type"] == "thinking" and turn.content[0]["thinking"] == "Look at nulls first."
    assert turn.content[0]["signature"]
    assert provider.next_turn(request()).stop_reason == "refusal"


# --- usage, cost, caching ------------------------------------------------------------------------


def test_usage_and_cost_over_a_cached_conversation(anthropic_api):
    provider = provider_for(anthropic_api)
    messages = [{"role": "user", "content": "Analyse sales.csv"}]
    anthropic_api.enqueue_tool_use(code="print(df.head())")
    first = provider.next_turn(request(messages))
    messages += [{"role": "assistant", "content": first.content},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.tool_calls[0]["id"],
                                               "content": "   region  revenue\n0  north  1200\n" * 10}]}]
    anthropic_api.enqueue_text("Revenue is highest in the north.")
    second = provider.next_turn(request(messages))

    for turn, sent in zip((first, second), anthropic_api.requests):
        assert turn.usage == Usage(**{k: sent.usage[k] for k in Usage().to_dict()})  # what the API reported
    # First turn writes the prefix to the cache; the second reads it and writes only the new part.
    assert first.usage.cache_read_input_tokens == 0 and first.usage.cache_creation_input_tokens > 100
    assert second.usage.cache_read_input_tokens >= first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens > 0

    for turn in (first, second):
        u = turn.usage
        expected = calc_price(PriceUsage(
            input_tokens=u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens,
            output_tokens=u.output_tokens, cache_read_tokens=u.cache_read_input_tokens,
            cache_write_tokens=u.cache_creation_input_tokens), MODEL, provider_id="anthropic").total_price
        assert turn.cost_usd is not None and turn.cost_usd > 0
        assert turn.cost_usd == pytest.approx(float(expected))


def test_cost_prices_cache_tokens_at_their_own_rates():
    per_million = {k: turn_cost(MODEL, Usage(**{k: 1_000_000})) for k in Usage().to_dict()}
    price = calc_price(PriceUsage(input_tokens=1, output_tokens=1), MODEL, provider_id="anthropic").model_price
    assert Decimal(str(per_million["input_tokens"])) == price.input_mtok
    assert Decimal(str(per_million["output_tokens"])) == price.output_mtok
    assert Decimal(str(per_million["cache_read_input_tokens"])) == price.cache_read_mtok
    assert Decimal(str(per_million["cache_creation_input_tokens"])) == price.cache_write_mtok
    assert (per_million["cache_read_input_tokens"] < per_million["input_tokens"]
            < per_million["cache_creation_input_tokens"])


def test_unknown_model_has_no_cost_and_does_not_crash(anthropic_api):
    assert turn_cost("no-such-model-xyz", Usage(input_tokens=10, output_tokens=5)) is None
    anthropic_api.enqueue_text("hi", model="no-such-model-xyz")
    turn = provider_for(anthropic_api, name="no-such-model-xyz").next_turn(request())
    assert turn.model == "no-such-model-xyz" and turn.cost_usd is None and turn.usage.output_tokens > 0


def test_cache_breakpoints_on_system_last_tool_and_last_block_without_touching_the_callers_messages(anthropic_api):
    tools = tool_definitions() + [{"name": "other", "description": "x", "input_schema": {"type": "object"}}]
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Analyse", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [text_block("Looking"), run_python("print(1)", id="toolu_1")]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "1"},
                                     {"type": "text", "text": "Keep going"}]},
    ]
    before = copy.deepcopy(messages)
    anthropic_api.enqueue_text("ok")
    provider_for(anthropic_api).next_turn(ModelRequest(system=SYSTEM, messages=messages, tools=tools))

    body = anthropic_api.bodies[0]
    assert body["system"] == [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    assert breakpoints(body) == ["system[0]", "tools[1]", "messages[2][1]"]  # the stale one dropped: <= 4
    assert body["messages"][2]["content"][1] == {"type": "text", "text": "Keep going",
                                                 "cache_control": {"type": "ephemeral"}}
    assert messages == before  # nothing added to, or removed from, the caller's list or blocks
    assert "cache_control" not in tools[-1]


def test_string_content_and_empty_or_thinking_last_blocks():
    out = with_message_breakpoint([{"role": "user", "content": "hello"}])
    assert out == [{"role": "user",
                    "content": [{"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}]
    blocks = [text_block("answer"), thinking_block("hmm"), text_block("")]
    out = with_message_breakpoint([{"role": "assistant", "content": blocks}])
    assert [("cache_control" in b) for b in out[0]["content"]] == [True, False, False]


def test_final_report_turn_keeps_tools_but_forbids_calls(anthropic_api):
    anthropic_api.enqueue_text("Final report")
    provider_for(anthropic_api).next_turn(request(allow_tools=False))
    body = anthropic_api.bodies[0]
    assert body["tool_choice"] == {"type": "none"}
    assert [t["name"] for t in body["tools"]] == ["run_python_code"]


def test_a_forced_tool_is_sent_as_tool_choice(anthropic_api):
    anthropic_api.enqueue_tool_use(code="print(1)")
    turn = provider_for(anthropic_api).next_turn(request(force_tool="run_python_code"))
    assert anthropic_api.bodies[0]["tool_choice"] == {"type": "tool", "name": "run_python_code"}
    assert "thinking" not in anthropic_api.bodies[0]  # the API refuses a forced tool with thinking on
    assert turn.tool_calls[0]["name"] == "run_python_code"


def test_forcing_a_tool_that_is_not_defined_is_refused(anthropic_api):
    anthropic_api.enqueue_tool_use(code="print(1)")
    with pytest.raises(ModelError, match="'submit_results' was not found in the tools provided"):
        provider_for(anthropic_api).next_turn(request(force_tool="submit_results"))
    assert anthropic_api.pending == 1  # refused before any scripted answer


@pytest.mark.parametrize(("changes", "problem"), [
    ({"tool_choice": {"type": "required"}}, "Input tag 'required' found using 'type' does not match"),
    ({"tool_choice": {"type": "tool"}}, "tool_choice.tool.name: Field required"),
    ({"tool_choice": {"type": "any"}, "tools": []}, "tool_choice may only be specified while providing tools"),
    ({"tool_choice": {"type": "any"}, "thinking": {"type": "enabled", "budget_tokens": 1024}},
     "Thinking may not be enabled when tool_choice forces tool use."),
])
def test_the_stand_in_checks_tool_choice_like_the_api(anthropic_api, changes, problem):
    body = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
            "tools": tool_definitions(), **changes}
    answer = httpx.post(f"{anthropic_api.base_url}/v1/messages", json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and problem in error["message"]


# --- retries: the SDK's, for request-level failures ------------------------------------------------


def test_429_honours_retry_after_then_succeeds(anthropic_api):
    anthropic_api.enqueue_error(429, retry_after=1).enqueue_text("ok")
    started = time.monotonic()
    turn = provider_for(anthropic_api).next_turn(request())
    assert turn.text == "ok"
    assert time.monotonic() - started >= 0.9  # the SDK waited as told
    assert [r.status for r in anthropic_api.requests] == [429, 200]
    assert [r.headers["x-stainless-retry-count"] for r in anthropic_api.requests] == ["0", "1"]


def test_529_overloaded_then_succeeds(anthropic_api):
    anthropic_api.enqueue_error(529, retry_after=0.01).enqueue_text("ok")
    assert provider_for(anthropic_api).next_turn(request()).text == "ok"
    assert [r.status for r in anthropic_api.requests] == [529, 200]


def test_500_exhausted_is_a_transient_model_error(anthropic_api):
    for _ in range(3):
        anthropic_api.enqueue_error(500, retry_after=0.01)
    anthropic_api.enqueue_text("never reached")
    with pytest.raises(ModelError) as caught:
        provider_for(anthropic_api, max_retries=2).next_turn(request())
    assert caught.value.transient
    assert len(anthropic_api.requests) == 3  # max_retries + 1, and no second layer of retries on top
    assert "500 api_error" in str(caught.value) and "after 3 attempts" in str(caught.value)
    assert anthropic_api.pending == 1


def test_unreachable_api_is_a_transient_model_error():
    with FakeAnthropicAPI() as api:
        config = ModelConfig(name=MODEL, base_url=api.base_url, timeout=5)
    provider = AnthropicProvider(config, KEY, max_retries=0)  # the port is closed now
    with pytest.raises(ModelError) as caught:
        provider.next_turn(request())
    assert caught.value.transient and "could not connect" in str(caught.value)
    assert config.base_url in str(caught.value)


# --- retries: ours, for streams broken mid-message -------------------------------------------------


def test_stream_cut_mid_message_is_retried_by_the_provider(anthropic_api):
    anthropic_api.enqueue_stream_cut(after_events=4).enqueue_text("complete answer")
    turn = provider_for(anthropic_api).next_turn(request())
    assert turn.text == "complete answer"
    assert [r.status for r in anthropic_api.requests] == [200, 200]
    assert [r.headers["x-stainless-retry-count"] for r in anthropic_api.requests] == ["0", "0"]  # ours, not the SDK's


def test_stream_ending_before_message_stop_is_retried_by_the_provider(anthropic_api):
    anthropic_api.enqueue_stream_cut(after_events=6, graceful=True).enqueue_text("complete answer")
    assert provider_for(anthropic_api).next_turn(request()).text == "complete answer"
    assert len(anthropic_api.requests) == 2


def test_stream_error_event_is_retried_by_the_provider(anthropic_api):
    anthropic_api.enqueue_stream_error("overloaded_error", after_events=3).enqueue_text("complete answer")
    assert provider_for(anthropic_api).next_turn(request()).text == "complete answer"
    assert len(anthropic_api.requests) == 2


def test_stream_cut_every_time_is_a_transient_model_error(anthropic_api):
    for _ in range(3):
        anthropic_api.enqueue_stream_cut(after_events=5)
    anthropic_api.enqueue_text("never reached")
    with pytest.raises(ModelError) as caught:
        provider_for(anthropic_api, stream_retries=2).next_turn(request())
    assert caught.value.transient
    assert len(anthropic_api.requests) == 3 and anthropic_api.pending == 1
    assert "broke mid-message 3 times" in str(caught.value)


# --- errors no retry can fix -----------------------------------------------------------------------


def test_401_is_not_transient_and_not_retried(anthropic_api):
    anthropic_api.enqueue_error(401).enqueue_text("never reached")
    with pytest.raises(ModelError) as caught:
        provider_for(anthropic_api).next_turn(request())
    assert not caught.value.transient
    assert len(anthropic_api.requests) == 1
    message = str(caught.value)
    assert "401 authentication_error: invalid x-api-key" in message and "ANTHROPIC_API_KEY" in message


def test_unknown_model_is_not_transient(anthropic_api):
    anthropic_api.enqueue_error(404, message="model: claude-nope")
    with pytest.raises(ModelError) as caught:
        provider_for(anthropic_api, name="claude-nope").next_turn(request())
    assert not caught.value.transient and len(anthropic_api.requests) == 1
    assert "model: claude-nope" in str(caught.value) and "check model.name ('claude-nope'" in str(caught.value)


def test_bad_request_is_not_transient(anthropic_api):
    anthropic_api.enqueue_error(400, message="max_tokens: 999999 > 64000, the maximum for this model")
    with pytest.raises(ModelError) as caught:
        provider_for(anthropic_api).next_turn(request())
    assert not caught.value.transient and "max_tokens: 999999" in str(caught.value)


def test_the_api_key_never_appears_in_errors(anthropic_api):
    faults = [
        lambda: anthropic_api.enqueue_error(401),
        lambda: anthropic_api.enqueue_error(403),
        lambda: anthropic_api.enqueue_error(400, message=f"echoing the header x-api-key: {KEY}"),  # a rude proxy
        lambda: [anthropic_api.enqueue_error(529, retry_after=0.01) for _ in range(2)],
        lambda: [anthropic_api.enqueue_stream_error("api_error") for _ in range(2)],
    ]
    provider = provider_for(anthropic_api, max_retries=1, stream_retries=1)
    assert KEY not in repr(provider)
    for enqueue in faults:
        enqueue()
        with pytest.raises(ModelError) as caught:
            provider.next_turn(request())
        assert KEY not in str(caught.value) and KEY not in repr(caught.value)
        assert "TESTKEY" not in str(caught.value)


# --- credentials ------------------------------------------------------------------------------------


@pytest.fixture
def no_key_env(monkeypatch, tmp_path):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    config_dir = tmp_path / "analysis"
    config_dir.mkdir()
    return config_dir


def test_key_from_environment(no_key_env, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    assert anthropic_api_key(ModelConfig(), no_key_env) == "sk-from-env"


def test_key_from_dotenv_beside_the_config(no_key_env):
    (no_key_env / ".env").write_text("ANTHROPIC_API_KEY=sk-from-dotenv\n")
    assert anthropic_api_key(ModelConfig(), no_key_env) == "sk-from-dotenv"


def test_missing_key_says_how_to_fix(no_key_env):
    with pytest.raises(ModelError) as caught:
        anthropic_api_key(ModelConfig(), no_key_env)
    assert not caught.value.transient
    assert ("set ANTHROPIC_API_KEY in the environment or .env, or name a Prefect Secret block in "
            "model.api_key_secret") in str(caught.value)


def test_key_from_prefect_secret_block_wins(no_key_env, monkeypatch):
    from prefect.blocks import system

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    loaded = []

    class FakeSecret:
        def __init__(self, value):
            self.value = value

        def get(self):
            return self.value

    def load(name, **kwargs):
        loaded.append(name)
        if name != "anthropic-key":
            raise ValueError(f"Unable to find block document named {name} for block type secret")
        return FakeSecret("sk-from-block")

    monkeypatch.setattr(system.Secret, "load", load)
    key = anthropic_api_key(ModelConfig(api_key_secret="anthropic-key"), no_key_env, read_secret_block)
    assert key == "sk-from-block"
    with pytest.raises(ModelError) as caught:
        anthropic_api_key(ModelConfig(api_key_secret="typo-key"), no_key_env, read_secret_block)
    assert not caught.value.transient and "no Prefect Secret block named 'typo-key'" in str(caught.value)
    assert loaded == ["anthropic-key", "typo-key"]


def test_provider_from_config_uses_the_resolved_key(anthropic_api, no_key_env: Path):
    (no_key_env / ".env").write_text(f"ANTHROPIC_API_KEY={KEY}\n")
    anthropic_api.enqueue_text("ok")
    config = ModelConfig(name=MODEL, base_url=anthropic_api.base_url)
    AnthropicProvider.from_config(config, no_key_env).next_turn(request())
    assert anthropic_api.requests[0].api_key == KEY


def test_run_python_tool_definition():
    (tool,) = tool_definitions()
    assert tool["name"] == "run_python_code"
    assert tool["input_schema"]["required"] == ["code"]
    assert tool["input_schema"]["properties"]["code"]["type"] == "string"
    assert "persist" in RUN_PYTHON_DESCRIPTION and "outputs/" in RUN_PYTHON_DESCRIPTION
    assert "still open" in RUN_PYTHON_DESCRIPTION


# --- what the API refuses ------------------------------------------------------------------------


def test_a_conversation_with_whitespace_only_text_is_sent_without_it(anthropic_api):
    # As an earlier transcript (resumed or replayed) may hold it: "\n\n" before a tool call.
    call = run_python("print(1)")
    messages = [{"role": "user", "content": "Go"},
                {"role": "assistant", "content": [text_block("\n\n"), call]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "1"}]},
                {"role": "assistant", "content": [text_block("Working on it \n")]}]
    anthropic_api.enqueue_text("Done.")
    turn = provider_for(anthropic_api).next_turn(request(copy.deepcopy(messages)))

    assert turn.text == "Done."
    sent = anthropic_api.requests[0].body["messages"]
    assert [b["type"] for b in sent[1]["content"]] == ["tool_use"]
    assert sent[3]["content"][0]["text"] == "Working on it"  # a final assistant message may not end in whitespace


BAD_CONVERSATIONS = {
    "text content blocks must contain non-whitespace text": [
        {"role": "user", "content": [text_block(" \n")]}],
    "final assistant content cannot end with trailing whitespace": [
        {"role": "user", "content": "Go"}, {"role": "assistant", "content": [text_block("So \n")]}],
    "first message must use the \"user\" role": [{"role": "assistant", "content": "Hi"}],
    "roles must alternate": [{"role": "user", "content": "Go"}, {"role": "user", "content": "Again"}],
    "`tool_use` ids were found without `tool_result` blocks immediately after": [
        {"role": "user", "content": "Go"}, {"role": "assistant", "content": [run_python("1", id="toolu_1")]},
        {"role": "user", "content": [text_block("first"),
                                     {"type": "tool_result", "tool_use_id": "toolu_1", "content": "1"}]}],
    "unexpected `tool_use_id` found in `tool_result` blocks": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "1"}]}],
    "A maximum of 4 blocks with cache_control may be provided. Found 5.": [
        {"role": "user", "content": [{**text_block(str(i)), "cache_control": {"type": "ephemeral"}}
                                     for i in range(5)]}],
}


@pytest.mark.parametrize("problem", list(BAD_CONVERSATIONS))
def test_the_stand_in_refuses_what_the_api_refuses(anthropic_api, problem):
    anthropic_api.enqueue_text("never sent")
    client = anthropic.Anthropic(api_key=KEY, base_url=anthropic_api.base_url, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=BAD_CONVERSATIONS[problem])
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert problem in caught.value.body["error"]["message"]
    assert anthropic_api.pending == 1  # a refused request consumes no script entry


# --- prices ----------------------------------------------------------------------------------------


def test_a_budget_for_a_model_without_a_price_is_a_config_error():
    with pytest.raises(ValidationError, match="no price is known for model 'house-llm'.*model.prices"):
        ModelConfig(name="house-llm", max_cost_usd=1.0)
    ModelConfig(name="house-llm")  # no budget, nothing to price
    ModelConfig(name="house-llm", max_cost_usd=1.0, prices={"input": 1.0, "output": 2.0})


def test_configured_prices_give_the_cost_of_a_turn(anthropic_api):
    anthropic_api.enqueue_text("Done.", usage={"input_tokens": 1_000_000, "output_tokens": 500_000,
                                               "cache_read_input_tokens": 2_000_000,
                                               "cache_creation_input_tokens": 0})
    prices = {"input": 1.0, "output": 4.0, "cache_read": 0.1, "cache_write": 1.25}
    turn = provider_for(anthropic_api, name="house-llm", prices=prices).next_turn(request())
    assert turn.cost_usd == pytest.approx(1.0 + 2.0 + 0.2)
