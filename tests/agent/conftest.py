"""The loop below the flow: one real local sandbox per test module, and a loop built on the real SDK
pointed at the stand-in Messages API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.agent.loop import AnalysisLoop, LoopLimits
from tasks.config import ModelConfig, SandboxConfig
from tasks.models.anthropic_provider import AnthropicProvider
from tasks.models.tools import tool_definitions
from tasks.results import submit_results_tool
from tasks.sandbox import create_sandbox
from tasks.transcript import Transcript
from tests.fakes.anthropic_api import FakeAnthropicAPI

MODEL = "claude-sonnet-5-5"


@pytest.fixture(scope="module")
def sandbox() -> Iterator:
    with create_sandbox(SandboxConfig(timeout=20, memory="2GiB")) as box:
        yield box


def make_loop(api: FakeAnthropicAPI, sandbox: Any, run_dir: Path, *, analysis: str = "loop-test",
              results: Any = None, **limits: Any) -> AnalysisLoop:
    """``results`` is a results model (``tasks.results.results_model``): its tool is offered too."""
    config = ModelConfig(name=MODEL, base_url=api.base_url, max_tokens=4096, timeout=10)
    provider = AnthropicProvider(config, "sk-test", max_retries=1, stream_retries=1, stream_retry_delay=0.01)
    tools = [*tool_definitions(), *([submit_results_tool(results)] if results is not None else [])]
    transcript = Transcript(analysis=analysis, model=MODEL, provider="anthropic", system="You analyse data.",
                            prompt="How many rows?", tools=tools)
    settings = {"max_iterations": 5, "max_tokens": 4096, "code_timeout": 20, **limits}
    return AnalysisLoop(provider, sandbox, transcript, run_dir, LoopLimits(**settings), results)
