"""Prefect global concurrency limits this tool uses (``sandboxes``), read and set on the server.

``analyst limits`` sets, shows and removes them; ``analyst serve`` and ``analyst deploy`` apply
``concurrency.sandboxes`` from the configs. Each deployment's own limit (``concurrency.runs``) is
part of the deployment; Prefect keeps it as a global limit named ``deployment:<id>``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.client.schemas.filters import FlowFilter, FlowFilterName

from tasks.config import LoadedConfig
from tasks.errors import AnalystError, ConfigError, Problem
from tasks.prefect.sandbox_slots import SANDBOX_LIMIT, read_limit

from ._register import _reason

KNOWN_LIMITS = {SANDBOX_LIMIT: "sandboxes alive at once, across all analyses"}
DEPLOYMENT_LIMIT_PREFIX = "deployment:"


class LimitError(AnalystError):
    """A concurrency limit could not be read or changed on the Prefect server, or is not one we know."""


@dataclass(frozen=True)
class LimitState:
    name: str
    limit: int
    in_use: int
    active: bool


def sandbox_cap(loaded: Iterable[LoadedConfig]) -> tuple[int, LoadedConfig] | None:
    """The ``concurrency.sandboxes`` the configs set (and the first config that sets it), or None.

    It is one limit for the whole server: two configs that set different values are a ConfigError
    naming both files.
    """
    first: tuple[int, LoadedConfig] | None = None
    problems: list[Problem] = []
    for item in loaded:
        value = item.config.concurrency.sandboxes
        if value is None:
            continue
        if first is None:
            first = (value, item)
        elif value != first[0]:
            problems.append(Problem(str(item.path), "concurrency.sandboxes", (
                f"{value} disagrees with {first[0]} in {first[1].path}; it is one limit for "
                "all analyses on the server: set the same number in both, or keep it in one config only")))
    if problems:
        raise ConfigError(problems)
    return first


def check_known(name: str) -> str:
    if name not in KNOWN_LIMITS:
        close = difflib.get_close_matches(name, list(KNOWN_LIMITS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise LimitError(f"unknown limit {name!r}: {hint}this tool uses: "
                         + ", ".join(f"{k} ({v})" for k, v in KNOWN_LIMITS.items()))
    return name


def check_value(name: str, limit: int) -> int:
    if limit < 1:
        raise LimitError(f"{name}: expected at least 1 (0 would block every run); to lift the cap, "
                         f"remove it: analyst limits remove {name}")
    return limit


def set_limit(name: str, limit: int) -> tuple[LimitState | None, LimitState]:
    """Create or update the global concurrency limit ``name`` (active); returns (before, after)."""
    check_value(name, limit)
    before = read_limit_state(name)
    with get_client(sync_client=True) as client:
        try:
            if before is None:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
            else:
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit, active=True))
        except Exception as exc:  # noqa: BLE001 - HTTP and validation errors alike: say which
            raise LimitError(f"could not set the concurrency limit {name!r} to {limit}: {_reason(exc)}") from exc
    after = read_limit_state(name)
    assert after is not None
    return before, after


def remove_limit(name: str) -> LimitState | None:
    """Delete the global concurrency limit ``name``; returns what it was (None: there was none)."""
    before = read_limit_state(name)
    if before is not None:
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name(name)
    return before


def read_limit_state(name: str) -> LimitState | None:
    return _state(read_limit(name))


def read_all_limits() -> list[LimitState]:
    """Every global concurrency limit on the server, by name (deployment limits included)."""
    with get_client(sync_client=True) as client:
        limits, offset = [], 0
        while page := client.read_global_concurrency_limits(limit=200, offset=offset):
            limits += page
            offset += len(page)
    return sorted((state for x in limits if (state := _state(x))), key=lambda s: s.name)


def deployment_names() -> dict[str, str]:
    """``{"deployment:<id>": "analyze/<name>"}`` for the deployments of the analyze flow."""
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=["analyze"])))
    return {f"{DEPLOYMENT_LIMIT_PREFIX}{d.id}": f"analyze/{d.name}" for d in deployments}


def _state(limit: Any) -> LimitState | None:
    if limit is None:
        return None
    return LimitState(str(limit.name), int(limit.limit), int(limit.active_slots), bool(limit.active))
