"""The config's ``memory`` and ``history``: what a run is told of the runs before it, and how many it lists."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MemoryConfig(_Strict):
    """``memory: false`` turns it off; ``memory: {runs: 3}`` gives Claude the last three completed runs."""

    enabled: bool = Field(True, description=(
        "Give Claude the previous completed runs' results, report summary and window, and ask it what changed "
        "('memory: false' is short for 'memory: {enabled: false}')."))
    runs: int = Field(1, ge=1, le=20, description="How many previous completed runs Claude is given, newest first.")

    @model_validator(mode="before")
    @classmethod
    def _from_bool(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value


class HistoryConfig(_Strict):
    """The ``<name>-history`` artifact and ``analyst history``: one row per run, newest first."""

    runs: int = Field(20, ge=1, le=500, description=(
        "How many runs the history table (artifact <name>-history, `analyst history`) and the trend charts hold."))
