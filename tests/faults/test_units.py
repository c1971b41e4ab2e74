"""The fault matrix's pieces below the flow, fast: the provider's handling of tool input that is not
JSON and of a conversation past the context window, the loop's trimming, and the local sandbox's
file-size and output limits."""

from __future__ import annotations

import json
import shutil

import pytest

from tasks.agent.context import MAX_TRIMS, TRIMMED, ask_within_context, trim_oldest_outputs
from tasks.agent.tool_results import invalid_call
from tasks.config.schema import ModelConfig, SandboxConfig
from tasks.errors import ContextWindowExceeded, ModelError
from tasks.models.anthropic_provider import AnthropicProvider
from tasks.models.base import ModelRequest, Usage
from tasks.models.pricing import turn_cost
from tasks.models.tools import tool_definitions
from tasks.sandbox.local import LocalSandbox

MODEL = "claude-sonnet-5-5"
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def provider_for(api, **kwargs) -> AnthropicProvider:
    config = ModelConfig(name=MODEL, base_url=api.base_url, max_tokens=1024, timeout=10)
    return AnthropicProvider(config, "sk-test", max_retries=1, stream_retries=2, stream_retry_delay=0.01, **kwargs)


def request() -> ModelRequest:
    return ModelRequest("You analyse data.", [{"role": "user", "content": "Go"}], tool_definitions())


# --- tool calls that cannot run ----------------------------------------------------------------------------


def test_tool_input_that_is_not_json_is_asked_again(anthropic_api) -> None:
    anthropic_api.enqueue_raw_tool_use('{"code": print(1)}')
    anthropic_api.enqueue_tool_use(code="print(1)")
    turn = provider_for(anthropic_api).next_turn(request())
    assert turn.tool_calls[0]["input"] == {"code": "print(1)"}
    assert len(anthropic_api.requests) == 2


def test_requests_re_sent_after_a_broken_reply_are_counted(anthropic_api) -> None:
    anthropic_api.enqueue_raw_tool_use('{"code": print(1)}')
    anthropic_api.enqueue_stream_cut(after_events=4)
    anthropic_api.enqueue_tool_use(code="print(1)")
    turn = provider_for(anthropic_api).next_turn(request())
    billed = [r.usage for r in anthropic_api.requests]
    assert len(billed) == 3
    assert turn.usage.input_tokens == sum(u["input_tokens"] for u in billed)
    assert turn.usage.cache_creation_input_tokens == sum(u["cache_creation_input_tokens"] for u in billed)
    assert turn.cost_usd > turn_cost(MODEL, Usage(**{k: v for k, v in billed[-1].items() if k != "service_tier"}))


def test_tool_input_that_is_never_json_ends_with_the_cause(anthropic_api) -> None:
    for _ in range(3):
        anthropic_api.enqueue_raw_tool_use("not json at all")
    with pytest.raises(ModelError, match="tool call came with input that is not valid JSON 3 times in a row") as caught:
        provider_for(anthropic_api).next_turn(request())
    assert caught.value.transient and "Unable to parse tool parameter JSON" in str(caught.value)


def test_tool_input_cut_short_arrives_without_code_and_is_answered_with_an_error(anthropic_api) -> None:
    anthropic_api.enqueue_raw_tool_use('{"code": "print(')  # the SDK keeps what parsed: {}
    [call] = provider_for(anthropic_api).next_turn(request()).tool_calls
    assert call["input"] == {}
    assert "needs a 'code' key holding the Python to run (got no keys)" in invalid_call(call, "run_python_code")


@pytest.mark.parametrize(("call", "expected"), [
    ({"name": "run_sql", "input": {"code": "x"}}, "no tool named 'run_sql'"),
    ({"name": "run_python_code", "input": ["print(1)"]}, "must be a JSON object"),
    ({"name": "run_python_code", "input": {"source": "x"}}, "needs a 'code' key"),
    ({"name": "run_python_code", "input": {"code": 42}}, "'code' must be a string"),
    ({"name": "run_python_code", "input": {"code": "print(1)"}}, None),
])
def test_what_is_wrong_with_a_call(call, expected) -> None:
    problem = invalid_call(call, "run_python_code")
    assert problem is None if expected is None else expected in problem


# --- the context window ---------------------------------------------------------------------------------


def test_prompt_too_long_is_a_context_window_error_with_the_apis_numbers(anthropic_api) -> None:
    anthropic_api.context_window = 10
    with pytest.raises(ContextWindowExceeded) as caught:
        provider_for(anthropic_api).next_turn(request())
    error = caught.value
    assert error.limit == 10 and error.tokens > 10 and not error.transient
    assert f"prompt is too long: {error.tokens} tokens > 10 maximum" in str(error)


def conversation(*outputs: str) -> list[dict]:
    messages = [{"role": "user", "content": "Go"}]
    for i, output in enumerate(outputs):
        messages.append({"role": "assistant", "content": [{"type": "tool_use", "id": f"t{i}", "name": "run_python_code",
                                                           "input": {"code": "x"}}]})
        messages.append({"role": "user",
                         "content": [{"type": "tool_result", "tool_use_id": f"t{i}", "content": output}]})
    return messages


def results(messages: list[dict]) -> list[str]:
    return [b["content"] for m in messages[1:] if m["role"] == "user" for b in m["content"]]


def test_trimming_takes_the_oldest_outputs_first_and_only_as_many_as_needed() -> None:
    messages = conversation("a" * 1000, "b" * 1000, "c" * 1000)
    assert trim_oldest_outputs(messages, 1500) == 2
    assert results(messages) == [TRIMMED, TRIMMED, "c" * 1000]
    assert trim_oldest_outputs(messages, 10) == 1 and trim_oldest_outputs(messages, 10) == 0


def test_trimming_leaves_outputs_shorter_than_the_marker_alone() -> None:
    messages = conversation("a" * 10, "b" * 10, "c" * 1000)
    before = len(json.dumps(messages))
    assert trim_oldest_outputs(messages, 500) == 1
    assert results(messages) == ["a" * 10, "b" * 10, TRIMMED]
    assert len(json.dumps(messages)) < before


def test_ask_within_context_trims_and_asks_again_until_it_fits() -> None:
    messages = conversation("a" * 4000, "b" * 4000, "c" * 100)
    sizes = []

    def ask() -> str:
        size = sum(len(r) for r in results(messages))
        sizes.append(size)
        if size > 5000:
            raise ContextWindowExceeded("prompt is too long", tokens=size // 4, limit=5000 // 4)
        return "turn"

    trims = []
    assert ask_within_context(ask, messages, on_trim=lambda n, why: trims.append(n)) == "turn"
    assert results(messages)[0] == TRIMMED and results(messages)[2] == "c" * 100
    assert len(sizes) == 2 and len(trims) == 1  # one round of trimming was enough


def test_ask_within_context_gives_up_with_what_to_change() -> None:
    messages = conversation("a" * 100)
    calls = []

    def ask() -> str:
        calls.append(1)
        raise ContextWindowExceeded("prompt is too long: 900 tokens > 100 maximum", tokens=900, limit=100)

    with pytest.raises(ContextWindowExceeded, match="still does not fit.*sandbox.max_output_chars"):
        ask_within_context(ask, messages)
    assert len(calls) == 2 <= MAX_TRIMS + 1 and results(messages) == [TRIMMED]


# --- the local sandbox's limits --------------------------------------------------------------------------


@needs_bwrap
def test_writing_past_the_file_size_limit_fails_at_the_limit(tmp_path) -> None:
    # A disk below the key's minimum.
    config = SandboxConfig(memory="512MiB", timeout=30).model_copy(update={"disk": 16 * 1024**2})
    with LocalSandbox(config, work_root=tmp_path, warm_imports=()) as sandbox:
        result = sandbox.run_code("import os\nchunk = b'x' * (1 << 20)\nwith open('outputs/big.bin', 'wb') as f:\n"
                                  "    for _ in range(10 * 1024):\n        f.write(chunk)")
        # The file size limit (EFBIG) and the disk watcher both stop it at 16 MiB; which one reports first
        # depends on when the watcher looks, on a loaded machine either.
        assert result.error and ((result.error.name == "OSError" and "File too large" in result.error.message)
                                 or result.error.name == "DiskQuotaExceeded")
        size = sandbox.run_code("import os\nprint(os.path.getsize('outputs/big.bin'))").stdout
        assert int(size) == 16 * 1024**2  # stopped at the limit: 16 MiB written, not 10 GB


@needs_bwrap
def test_a_flood_is_cut_in_the_kernel_and_the_count_stays_exact(tmp_path) -> None:
    config = SandboxConfig(memory="512MiB", timeout=60, max_output_chars=2000)
    with LocalSandbox(config, work_root=tmp_path, warm_imports=()) as sandbox:
        result = sandbox.run_code("import sys\nfor i in range(50_000):\n    sys.stdout.write(f'{i:09d}\\n' * 100)\n"
                                  "print('END')")
        printed = 50_000 * 1000 + 4
        assert f"[... {printed - 2000:,} characters cut ...]" in result.stdout
        assert result.stdout.startswith("000000000\n") and result.stdout.endswith("000049999\nEND\n")


@needs_bwrap
def test_many_files_past_the_disk_quota_interrupt_the_cell_and_deleting_them_goes_on(tmp_path) -> None:
    config = SandboxConfig(memory="512MiB", timeout=60).model_copy(update={"disk": 32 * 1024**2})
    with LocalSandbox(config, work_root=tmp_path, warm_imports=()) as sandbox:
        source = tmp_path / "data.csv"
        source.write_bytes(b"a\n" * (20 << 20))  # 40 MiB uploaded: the datasets do not count
        sandbox.upload(source, "data.csv")
        # 10 GB in 4 MiB files, slowly enough that the watcher (twice a second) stops it near the quota.
        result = sandbox.run_code("import time\nchunk = b'x' * (4 << 20)\nfor i in range(2560):\n"
                                  "    open(f'outputs/part-{i}.bin', 'wb').write(chunk)\n    time.sleep(0.02)")
        assert result.error and result.error.name == "DiskQuotaExceeded", result.error
        assert "sandbox.disk, 32 MiB" in result.error.message
        written = sum(p.stat().st_size for p in (sandbox.work_dir / "outputs").iterdir())
        assert 32 << 20 < written < 256 << 20  # stopped soon after the quota, far from 10 GB
        cleaned = sandbox.run_code("import glob, os\nfor p in glob.glob('outputs/*.bin'):\n    os.remove(p)\n"
                                   "open('outputs/small.bin', 'wb').write(b'x' * (8 << 20))")
        assert cleaned.error is None, cleaned.error
