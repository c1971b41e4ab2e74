"""What a run remembers of the runs before it: which runs (``recall``), how Claude is told of them
(``memory_text``), and what changed in the results since the last one (``result_changes``).

The records come from the history (``tasks/run_history.py``) and their summaries were written by a model
that read untrusted data: Claude gets them as quoted data inside markers, never as instructions, and
within ``MEMORY_CHARS`` whatever the history holds. The differences in the report are computed here,
from the values, so the table never depends on the model's arithmetic.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tasks.agent.prompts import FIRST_RUN_NOTE, MEMORY_CLOSE, MEMORY_INTRO, MEMORY_OPEN, MEMORY_REQUEST
from tasks.config.memory_schema import MemoryConfig
from tasks.models.base import ModelProvider
from tasks.models.replay import ReplayProvider
from tasks.models.messages import Message
from tasks.results import results_value
from tasks.run_history import RunRecord, previous_completed, record_of
from tasks.text_safety import printable
from tasks.transcript import Transcript

MEMORY_CHARS = 4000  # the whole memory text Claude is given, however many runs and results the history holds
VALUE_CHARS = 200  # one result's value, as Claude is told it
_FIELD_CHARS = 64  # a time, a window or a status read back from the server's table


def recall(config: MemoryConfig, transcript: Transcript, earlier: Iterable[RunRecord],
           provider: ModelProvider | None = None) -> list[dict[str, Any]] | None:
    """The runs this one is told of, as ``RunRecord`` dicts newest first: the last ``config.runs``
    completed runs for a time before this run's; [] when there is none; None when memory is off.

    A replay is told what the run it replays was told (None if that run recorded nothing), never the
    history as it is now: runs since then did not exist when its turns were written."""
    if not config.enabled:
        return None
    if isinstance(provider, ReplayProvider):
        return copy.deepcopy(provider.source.memory)
    this_run = record_of(transcript)
    return [r.to_dict() for r in previous_completed(earlier, this_run.time, exclude=this_run.flow_run_id,
                                                    runs=config.runs)]


def first_user_message(prompt: str, memory: list[dict[str, Any]] | None) -> Message:
    """The conversation's opening: the config's prompt, then the memory as a block of its own (the
    system prompt stays the same from run to run, so its cache is shared)."""
    if memory is None:
        return {"role": "user", "content": prompt}
    return {"role": "user", "content": [{"type": "text", "text": prompt},
                                        {"type": "text", "text": memory_text(memory)}]}


def memory_text(memory: list[dict[str, Any]]) -> str:
    """What Claude is told of the earlier runs, at most ``MEMORY_CHARS`` characters: the newest runs
    that fit whole, the newest one cut if even it does not."""
    if not memory:
        return FIRST_RUN_NOTE
    head = MEMORY_INTRO.format(runs=len(memory)) + "\n\n" + MEMORY_OPEN + "\n"
    tail = "\n" + MEMORY_CLOSE + "\n\n" + MEMORY_REQUEST
    left_out_note = "(and {n} earlier run(s), left out to keep this short)"
    budget = MEMORY_CHARS - len(head) - len(tail) - len(left_out_note) - 4
    blocks: list[str] = []
    for number, record in enumerate(memory, 1):
        block = _run_block(number, record)
        used = sum(len(b) + 1 for b in blocks)
        if used + len(block) > budget:
            if not blocks:
                blocks.append(block[: budget - 1] + "…")
            break
        blocks.append(block)
    left_out = len(memory) - len(blocks)
    body = "\n".join(blocks) + (("\n" + left_out_note.format(n=left_out)) if left_out else "")
    return head + body + tail


def _run_block(number: int, record: Mapping[str, Any]) -> str:
    """One run, a few lines; every value JSON-quoted, so nothing in it can start a line of its own."""
    when = "the last run" if number == 1 else f"{number} runs ago"
    window = record.get("window")
    lines = [f"Run {number} ({when}): for {_quoted(record.get('time'), _FIELD_CHARS)}"
             + (f", window {_quoted(window, _FIELD_CHARS)}" if window else "")
             + f", status {_quoted(record.get('status'), _FIELD_CHARS)}"]
    results = record.get("results")
    if isinstance(results, Mapping) and results:
        values = ", ".join(f"{_quoted(name, _FIELD_CHARS)}: {_quoted(value, VALUE_CHARS)}"
                           for name, value in results.items())
        lines.append(f"  results: {{{values}}}")
    summary = record.get("summary")
    if summary:
        lines.append(f"  report summary: {_quoted(summary, 600)}")
    return "\n".join(lines)


def _quoted(value: Any, limit: int) -> str:
    """``value`` as JSON, clipped, with ``<`` and ``>`` escaped so that no text in it reads as a marker."""
    if isinstance(value, str):
        text = printable(value)
        text = json.dumps(text if len(text) <= limit else text[: limit - 1] + "…", ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
        if len(text) > limit:
            text = json.dumps(text[: limit - 1] + "…", ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


@dataclass(frozen=True)
class ResultChange:
    """One result, this run against the last: ``difference`` and ``percent`` for numbers only."""

    name: str
    previous: Any
    current: Any
    change: str  # "+14,953 (+0.44%)", "unchanged", "changed", "new", "no value this run"
    difference: float | int | None = None
    percent: float | None = None


def result_changes(current: Mapping[str, Any] | None, previous: Mapping[str, Any] | None) -> list[ResultChange]:
    """One row per result either run has, this run's order first."""
    current, previous = current or {}, previous or {}
    names = [*current, *(n for n in previous if n not in current)]
    return [_change(str(name), previous.get(name), current.get(name), name in previous, name in current)
            for name in names]


def _change(name: str, old: Any, new: Any, had: bool, has: bool) -> ResultChange:
    if not has or new is None:
        return ResultChange(name, old, None, "no value this run")
    if not had or old is None:
        return ResultChange(name, None, new, "new")
    if _is_number(old) and _is_number(new):
        difference = new - old
        if isinstance(difference, float):
            difference = round(difference, 9)  # 0.1 + 0.2 - 0.3 is not news
        if difference == 0:
            return ResultChange(name, old, new, "unchanged", 0, 0.0)
        percent = difference / abs(old) * 100 if old else None
        text = ("+" if difference > 0 else "-") + results_value(abs(difference))
        text += f" ({percent:+.2f}%)" if percent is not None else ""
        return ResultChange(name, old, new, text, difference, percent)
    return ResultChange(name, old, new, "unchanged" if old == new else "changed")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
