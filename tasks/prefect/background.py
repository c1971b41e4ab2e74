"""Run one step of a flow in a background thread, inside the flow run's context.

The steps before Claude's first request are mostly waits on other processes (the sandbox's kernel
starting, server round trips): done in turn, each delays the first request by its whole length.
The thread gets a copy of the caller's context, so the Prefect tasks and logs it makes belong to the
flow run, as they do from ``ThreadPoolTaskRunner.submit``. It is a daemon: a step left running never
holds the process open at exit (the flow waits for the ones whose outcome it needs).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


def in_background(fn: Callable[..., T], *args: Any, name: str) -> Future[T]:
    """Start ``fn(*args)`` in a daemon thread named ``name``; its Future holds its result or error."""
    future: Future[T] = Future()
    context = contextvars.copy_context()

    def work() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(context.run(fn, *args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the Future
            future.set_exception(exc)

    threading.Thread(target=work, name=name, daemon=True).start()
    return future


def settled(future: Future[T] | None) -> T | None:
    """Wait for ``future``; its result, or None if it failed (its error is the waiter's to report, not here)."""
    if future is None or future.exception() is not None:  # a cancellation while waiting still raises
        return None
    return future.result()
