"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_api import FakeAnthropicAPI


@pytest.fixture
def anthropic_api() -> Iterator[FakeAnthropicAPI]:
    """A scripted stand-in for the Anthropic Messages API on 127.0.0.1 (see tests/fakes/anthropic_api.py).

    Point ``ModelConfig(base_url=anthropic_api.base_url)`` or ``anthropic.Anthropic(base_url=...)`` at it,
    enqueue turns and faults, then assert on ``anthropic_api.requests``.
    """
    with FakeAnthropicAPI() as api:
        yield api
