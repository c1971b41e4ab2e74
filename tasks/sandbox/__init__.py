"""Sandboxes that run the analysis code: one interface, one provider per place it can run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox.base import Chart, CodeError, ExecutionResult, Sandbox
from tasks.secrets import SecretReader

__all__ = ["Chart", "CodeError", "ExecutionResult", "Sandbox", "SandboxError", "create_sandbox"]


def create_sandbox(config: SandboxConfig, *, labels: dict[str, str] | None = None,
                   config_dir: Path | None = None, read_secret: SecretReader | None = None, **kw: Any) -> Sandbox:
    """The provider the config names, not yet provisioned (use it as a context manager).

    ``labels`` name the analysis and flow run on cloud sandboxes, so leftovers can be found; a local
    sandbox dies with its process and needs none. ``config_dir`` is the analysis config's folder,
    whose ``.env`` may hold a cloud provider's API key (default: the current directory's);
    ``read_secret`` reads the Secret block named in ``sandbox.api_key_secret``.
    """
    if config.provider == "local":
        from tasks.sandbox.local import LocalSandbox

        return LocalSandbox(config, **kw)
    if config.provider == "daytona":
        from tasks.sandbox.daytona import DaytonaSandbox

        return DaytonaSandbox(config, labels, config_dir=config_dir, read_secret=read_secret, **kw)
    raise SandboxError(f"unknown sandbox provider {config.provider!r}")
