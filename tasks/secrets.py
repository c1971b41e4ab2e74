"""Secrets as the domain sees them: which variable names hold one, and how a named secret is read.

Reading a named secret (a Prefect Secret block) is the orchestration layer's job: the callers that
can (the flow's tasks, the CLI) pass ``tasks.prefect.secret_blocks.read_secret_block`` down as
``read_secret``. The value is never logged or put in a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

# Names of environment variables whose values are secrets: ANTHROPIC_API_KEY, DAYTONA_API_KEY, *_TOKEN, ...
SECRET_NAME = re.compile(r"(?:^|_)(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)

ErrorFactory = Callable[..., Exception]  # (message, transient=...) -> the caller's error type


class SecretReader(Protocol):
    def __call__(self, name: str, *, key: str, fallback: str, error: ErrorFactory) -> str:
        """The secret stored under ``name``. ``key`` is the config key that named it, ``fallback`` the
        other way to give the value; failures raise ``error(message, transient=...)``."""


def read_named_secret(read_secret: SecretReader | None, name: str, *, key: str, fallback: str,
                      error: ErrorFactory) -> str:
    """``read_secret(name, ...)``, or a clear error when this caller was given no way to read one."""
    if read_secret is None:
        raise error(f"{key}: names the Prefect Secret block {name!r}, which only a run through the flow or the "
                    f"`analyst` CLI can read; run it that way, or unset {key} and {fallback}", transient=False)
    return read_secret(name, key=key, fallback=fallback, error=error)
