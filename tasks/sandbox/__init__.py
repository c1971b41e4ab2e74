"""Sandboxes that run the analysis code: one interface (``base.py``), one folder per provider.

A provider is a ``Sandbox`` subclass in its own package; ``PROVIDERS`` names where each one lives,
imported only when a config asks for it (the Daytona SDK alone takes 1.5 s to import).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox.base import Chart, CodeError, ExecutionResult, Sandbox
from tasks.secrets import SecretReader

__all__ = ["Chart", "CodeError", "ExecutionResult", "Sandbox", "SandboxError", "create_sandbox"]

PROVIDERS = {  # sandbox.provider -> "module:class"
    "local": "tasks.sandbox.local:LocalSandbox",
    "daytona": "tasks.sandbox.daytona:DaytonaSandbox",
}


def create_sandbox(config: SandboxConfig, *, labels: dict[str, str] | None = None,
                   config_dir: Path | None = None, read_secret: SecretReader | None = None, **kw: Any) -> Sandbox:
    """The provider the config names, not yet provisioned (use it as a context manager).

    ``labels`` name the analysis and flow run on cloud sandboxes, so leftovers can be found; a local
    sandbox dies with its process and needs none. ``config_dir`` is the analysis config's folder,
    whose ``.env`` may hold a cloud provider's API key (default: the current directory's);
    ``read_secret`` reads the Secret block named in ``sandbox.api_key_secret``.
    """
    where = PROVIDERS.get(config.provider)
    if where is None:
        raise SandboxError(f"unknown sandbox provider {config.provider!r}")
    module, name = where.split(":")
    provider: type[Sandbox] = getattr(import_module(module), name)
    return provider.from_config(config, labels=labels, config_dir=config_dir, read_secret=read_secret, **kw)
