"""Keeping the conversation inside the model's context window.

Every code run adds its output to the conversation, so a long analysis can outgrow the window; the
API then refuses the request ("prompt is too long: N tokens > M maximum"). The outputs of the
oldest code runs are what Claude needs least (it has read them and written down what mattered), so
their text is replaced by a short marker, oldest first, until the conversation should fit by the
API's own numbers, and the request is sent again. The code, Claude's words and the latest results
stay. The full outputs are kept in the transcript's cells; ``messages`` is what was sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from tasks.errors import ContextWindowExceeded

log = logging.getLogger(__name__)

TRIMMED = "[output trimmed to fit the context window]"
MAX_TRIMS = 4  # rounds of trimming for one request before giving up
SAFETY = 1.2  # cut a fifth more than the API's numbers say, so one round usually does it

T = TypeVar("T")


def ask_within_context(ask: Callable[[], T], messages: list[dict[str, Any]],
                       on_trim: Callable[[int, str], None] | None = None) -> T:
    """``ask()``, trimming the oldest tool outputs in ``messages`` (in place) and asking again while
    the API says the conversation is too long. Ends with a ``ContextWindowExceeded`` that says what
    to change when nothing is left to trim or ``MAX_TRIMS`` rounds did not suffice."""
    for round_ in range(MAX_TRIMS + 1):
        try:
            return ask()
        except ContextWindowExceeded as exc:
            trimmed = 0 if round_ == MAX_TRIMS else trim_oldest_outputs(messages, chars_to_cut(exc, messages))
            if not trimmed:
                raise ContextWindowExceeded(
                    f"{exc}; the loop trimmed earlier code outputs ({count_trimmed(messages)} of them) and it still "
                    "does not fit. Shorten the prompt or the datasets, lower sandbox.max_output_chars or "
                    "model.max_iterations, or use a model with a larger context window",
                    tokens=exc.tokens, limit=exc.limit) from exc
            log.warning("The conversation was over the context window (%s); trimmed the oldest %d code output(s)",
                        exc, trimmed)
            if on_trim is not None:
                on_trim(trimmed, str(exc))
    raise AssertionError("unreachable")  # pragma: no cover


def chars_to_cut(exc: ContextWindowExceeded, messages: list[dict[str, Any]]) -> int:
    """How many characters of tool output to drop: the share of the conversation the API says is
    over the limit, plus ``SAFETY``; half of what is left when the API gave no numbers."""
    if not exc.tokens or not exc.limit or exc.tokens <= exc.limit:
        return _half_of_the_outputs(messages)
    chars = len(json.dumps(messages, ensure_ascii=False))
    return max(1, int(chars * (exc.tokens - exc.limit) / exc.tokens * SAFETY))


def make_room(messages: list[dict[str, Any]]) -> int:
    """Trim the oldest half of the tool outputs (by size) when there are no numbers to go by, as
    after a reply cut off at the end of the context window; return how many were trimmed."""
    return trim_oldest_outputs(messages, _half_of_the_outputs(messages))


def _half_of_the_outputs(messages: list[dict[str, Any]]) -> int:
    return max(1, sum(_size(b) for b in _untrimmed_results(messages)) // 2)


def trim_oldest_outputs(messages: list[dict[str, Any]], chars: int) -> int:
    """Replace the content of the oldest untrimmed tool results until at least ``chars`` characters
    are gone (or none is left); return how many were trimmed. Outputs no longer than the marker stay:
    replacing them would make the conversation longer."""
    trimmed = removed = 0
    for block in _untrimmed_results(messages):
        if _size(block) <= len(TRIMMED):
            continue
        if removed >= chars:
            break
        removed += _size(block) - len(TRIMMED)
        block["content"] = TRIMMED
        trimmed += 1
    return trimmed


def count_trimmed(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages for b in _blocks(m)
               if b.get("type") == "tool_result" and b.get("content") == TRIMMED)


def _untrimmed_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for m in messages if m.get("role") == "user" for b in _blocks(m)
            if b.get("type") == "tool_result" and b.get("content") != TRIMMED]


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _size(block: dict[str, Any]) -> int:
    content = block.get("content")
    return len(content) if isinstance(content, str) else len(json.dumps(content, ensure_ascii=False))
