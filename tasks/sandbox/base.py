"""The sandbox interface every provider implements (local bubblewrap kernel, Daytona).

A sandbox is a stateful Python session in an isolated machine or namespace, with a work folder that
holds ``data/`` (the uploaded datasets) and ``outputs/`` (files the analysis wants brought back).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tasks.config.schema import SandboxConfig
    from tasks.secrets import SecretReader

DATA_DIR = "data"
OUTPUTS_DIR = "outputs"
# Imported once a session starts, while the model is still writing the first cell, so the first
# run does not pay for them itself.
DEFAULT_WARM_IMPORTS = ("numpy", "pandas", "matplotlib.pyplot")
# Set to ``sandbox.cpus`` in every sandbox: numeric libraries size their thread pools from these,
# not from the machine's core count.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class Chart:
    """One image an execution produced, as PNG bytes."""

    name: str  # e.g. "figure-1.png" or the file's path under outputs/
    png: bytes
    source: Literal["figure", "file"]


@dataclass(frozen=True)
class CodeError:
    """An exception raised by the analysis code (not by the sandbox)."""

    name: str
    message: str
    traceback: str


@dataclass
class ExecutionResult:
    stdout: str = ""
    stderr: str = ""
    error: CodeError | None = None
    timed_out: bool = False
    charts: list[Chart] = field(default_factory=list)
    duration_s: float = 0.0
    state_reset: bool = False  # the session had to be restarted (after a hung timeout): variables are gone
    # Notes from the sandbox itself, not printed by the code: running without isolation, a timeout, a
    # restart, an image under outputs/ that could not be returned.
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out


class Sandbox(ABC):
    """Provision, upload, run code, tear down. ``teardown`` is idempotent and safe after a failed
    ``provision``; the context manager guarantees it."""

    @classmethod
    def from_config(cls, config: SandboxConfig, *, labels: dict[str, str] | None = None,
                    config_dir: Path | None = None, read_secret: SecretReader | None = None,
                    **options: Any) -> Sandbox:
        """The provider for ``config`` (see ``create_sandbox``); one that keeps nothing in the cloud
        needs neither ``labels``, ``config_dir`` nor ``read_secret``."""
        return cls(config, **options)  # type: ignore[call-arg]

    @abstractmethod
    def provision(self) -> None: ...

    @abstractmethod
    def upload(self, local_path: Path, name: str) -> str:
        """Stream a local file to ``data/<name>`` without reading it whole; return that relative path."""

    @abstractmethod
    def run_code(self, code: str, timeout: float | None = None) -> ExecutionResult: ...

    @abstractmethod
    def teardown(self) -> None: ...

    def __enter__(self) -> Sandbox:
        try:
            self.provision()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.teardown()
