"""The Messages API's shapes: for type checkers, the anthropic SDK's own parameter TypedDicts; at run
time, plain dicts (importing anthropic costs 1.6 s), with ``Message`` checked loosely where a
transcript is read back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict
from typing_extensions import TypedDict

if TYPE_CHECKING:
    from anthropic.types import ContentBlockParam as ContentBlock
    from anthropic.types import MessageParam as Message
    from anthropic.types import ToolParam as ToolDefinition
else:
    ContentBlock = dict[str, Any]
    ToolDefinition = dict[str, Any]

    class Message(TypedDict):
        """One message of the conversation, kept whole: it is what the model was sent, and what the
        turn cache's keys are made of."""

        __pydantic_config__ = ConfigDict(extra="allow")
        role: Literal["user", "assistant"]
        content: str | list[ContentBlock]

__all__ = ["ContentBlock", "Message", "ToolDefinition"]
