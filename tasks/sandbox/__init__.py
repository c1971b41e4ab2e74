"""Sandboxes that run the analysis code: one interface, one provider per place it can run."""

from __future__ import annotations

from typing import Any

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox.base import Chart, CodeError, ExecutionResult, Sandbox

__all__ = ["Chart", "CodeError", "ExecutionResult", "Sandbox", "SandboxError", "create_sandbox"]


def create_sandbox(config: SandboxConfig, *, labels: dict[str, str] | None = None, **kw: Any) -> Sandbox:
    """The provider the config names, not yet provisioned (use it as a context manager).

    ``labels`` name the analysis and flow run on cloud sandboxes, so leftovers can be found; a local
    sandbox dies with its process and needs none.
    """
    if config.provider == "local":
        from tasks.sandbox.local import LocalSandbox

        return LocalSandbox(config, **kw)
    if config.provider == "daytona":
        raise SandboxError("the daytona provider is not available yet")
    raise SandboxError(f"unknown sandbox provider {config.provider!r}")
