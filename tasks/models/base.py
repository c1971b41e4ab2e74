"""The model-provider interface: given the conversation so far, produce the assistant's next turn.

Messages use the Anthropic Messages format (plain dicts) everywhere: it is what the one real
provider speaks and what transcripts store, so replay reads back exactly what was sent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from tasks.models.messages import ContentBlock, Message, ToolDefinition

RUN_PYTHON_TOOL = "run_python_code"
NO_TEXT = "(no text)"  # stands in for a message left with no content: the API refuses an empty one


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{k: getattr(self, k) + getattr(other, k) for k in asdict(self)})

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class ModelTurn:
    """One assistant message and what it cost."""

    content: list[ContentBlock]  # text, tool_use, thinking, ...
    stop_reason: str  # end_turn | tool_use | max_tokens | model_context_window_exceeded | pause_turn | refusal | ...
    model: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None  # None when the price of the model is unknown

    @property
    def text(self) -> str:
        return "\n\n".join(b["text"] for b in self.content if b.get("type") == "text" and b.get("text"))

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [b for b in self.content if b.get("type") == "tool_use"]

    def to_dict(self) -> dict[str, Any]:
        return {"content": self.content, "stop_reason": self.stop_reason, "model": self.model,
                "usage": self.usage.to_dict(), "cost_usd": self.cost_usd}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelTurn:
        return cls(content=data["content"], stop_reason=data["stop_reason"], model=data["model"],
                   usage=Usage(**data.get("usage", {})), cost_usd=data.get("cost_usd"))


@dataclass
class ModelRequest:
    """Everything a provider needs for one turn."""

    system: str
    messages: list[Message]
    tools: list[ToolDefinition]
    allow_tools: bool = True  # False: the final-report turn, tools defined but not callable
    force_tool: str | None = None  # the tool this turn must call (tool_choice type "tool")


class ModelProvider(ABC):
    name: str  # the provider: "anthropic", "replay"
    model: str  # the model it asks (a replay: the model that was recorded)
    max_tokens: int | None = None  # the cap on one reply, where the provider sets one

    @abstractmethod
    def next_turn(self, request: ModelRequest) -> ModelTurn:
        """Return the assistant's next turn. Raise ``ModelError`` once transient errors are exhausted."""

    def ask_ahead(self, request: ModelRequest) -> None:  # noqa: B027 - optional hook
        """``request`` is the one ``next_turn`` gets next, unless the run stops first: a provider whose
        bookkeeping around a request costs time may send it now, so that it overlaps the model's wait."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
