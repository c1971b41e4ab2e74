"""Errors meant for the person running an analysis.

Each says what went wrong, where (file and key), and how to fix it. The CLI prints them as plain
lines, never as tracebacks; set ``ANALYST_DEBUG=1`` to get the traceback back.
"""

from __future__ import annotations

from dataclasses import dataclass


class AnalystError(Exception):
    """Base class of every error that is the user's to fix, not a bug of ours."""


@dataclass(frozen=True)
class Problem:
    """One problem in one input: the file, the key path inside it, and what was expected."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}"


class ConfigError(AnalystError):
    """The analysis config is wrong. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class DataError(AnalystError):
    """A dataset cannot be read, or its schema cannot be used."""

    def __init__(self, dataset: str, source: str, message: str):
        self.dataset = dataset
        self.source = source
        super().__init__(f"dataset '{dataset}' ({source}): {message}")


class SandboxError(AnalystError):
    """The sandbox cannot be provisioned or used (not an error in the analysis code itself).

    ``transient``: the same call may well succeed later (a rate limit, a 5xx, a slow start); the
    provisioning task retries those and never a configuration problem such as a bad API key.
    """

    def __init__(self, message: str, *, transient: bool = False):
        self.transient = transient
        super().__init__(message)


class ModelError(AnalystError):
    """The model could not be reached or refused the request, after the retries that make sense."""

    def __init__(self, message: str, *, transient: bool = False):
        self.transient = transient
        super().__init__(message)


class ContextWindowExceeded(ModelError):
    """The conversation no longer fits the model's context window; ``tokens`` and ``limit`` are the
    API's own numbers when it gave them. The loop trims old code outputs and asks again."""

    def __init__(self, message: str, *, tokens: int | None = None, limit: int | None = None):
        self.tokens, self.limit = tokens, limit
        super().__init__(message, transient=False)
