"""The cache policy of the model-turn task: a key over the conversation so far, never over a timestamp."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext

from tasks.models.base import ModelProvider, ModelRequest


@dataclass
class ModelTurnInputs(CachePolicy):
    """Everything that decides the model's answer, and the run it belongs to.

    The task's ``scope`` input is the run key shared by a run and its retries and resumes: without it
    a new run of an unchanged analysis would get last week's answers back instead of asking Claude.
    """

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str:
        provider = inputs["provider"]
        # A request already sent carries the key of what was sent: the conversation may have grown since.
        return getattr(provider, "turn_key", None) or turn_key(provider, inputs["request"], inputs["scope"])


def turn_key(provider: ModelProvider, request: ModelRequest, scope: str) -> str:
    """The key a model turn is stored under: the file name in the results storage."""
    payload = {
        "scope": scope, "provider": provider.name, "model": provider.model, "max_tokens": provider.max_tokens,
        "system": request.system, "tools": request.tools, "messages": request.messages,
        "allow_tools": request.allow_tools,
        # Only when set, so that the keys of turns stored before a config declared results still match.
        **({"force_tool": request.force_tool} if request.force_tool else {}),
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode())
    return f"model-turn-{digest.hexdigest()}"
