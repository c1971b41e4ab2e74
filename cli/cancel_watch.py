"""Cancelling a run that `analyst run` started (from the Prefect UI or `prefect flow-run cancel`).

A served or worker-run flow is cancelled by its Prefect runner: it watches the server and stops the
flow's process with SIGTERM. `analyst run` runs the flow in its own process, with no runner, so a
cancelled run would stay "Cancelling" while the analysis went on to the end (seen with prefect
3.9). This watcher plays the runner's part: it polls the flow run's state and, once it is
Cancelling, sends this process SIGTERM, which Prefect turns into an exception inside the flow (its
``finally`` saves the transcript and tears the sandbox down); ``finish`` then marks the run Cancelled.

Why not Prefect's own runner (prefect 3.9, read in the installed package):
- ``prefect.runner.Runner`` only runs a flow run in a child process it starts itself (for a
  deployment it serves); its in-process path, ``Runner.execute_flow_run``, is gone (only a
  deprecation shim for ``ProcessMapEntry`` is left). `analyst run` runs the flow in this process,
  so that its live console output, ``--json`` summary and exit code come from the flow itself.
- The parts the runner is made of are private: ``prefect._internal.observers.FlowRunCancellingObserver``
  (events over a websocket, polling as a fallback) needs its own event loop and is told the flow
  run id, which the engine creates only once the flow is called; and the engine marks a run
  Cancelled itself (and runs ``on_cancellation`` hooks) only when a supervisor has sent the
  "cancel" intent over ``prefect.runner._control_channel.ControlChannel``, a loopback protocol
  whose port and one-time token must be in the environment (``PREFECT__CONTROL_PORT``,
  ``PREFECT__CONTROL_TOKEN``) and registered for the flow run id before the flow starts.
  Wiring three private modules together would be a runner written by hand all the same, on APIs
  that change between releases; one GET every 2 s on the public client is the smaller dependency.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
POLL_S = 2.0  # one small GET to the server per poll
CANCELLED_MESSAGE = "Cancelled from the Prefect UI or `prefect flow-run cancel`; the sandbox was torn down."


class CancelWatch:
    def __init__(self, flow_run_id: Callable[[], str | None], every: float = POLL_S):
        self._flow_run_id = flow_run_id
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cancel-watch", daemon=True)
        self.cancelled = False
        self._previous: signal._HANDLER = signal.SIG_DFL

    def __enter__(self) -> CancelWatch:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals belong to the main thread: no watch (and no change) elsewhere
        # Prefect's own SIGTERM handler, once the flow has unwound, hands the signal on to the one it
        # replaced (by default: the process dies). This one ends the process as before for a SIGTERM
        # from outside, and lets the run end normally for the one the watch sent.
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm) or signal.SIG_DFL
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._thread.ident:  # never started
            return
        self._stop.set()
        self._thread.join()
        signal.signal(signal.SIGTERM, self._previous)

    def _on_sigterm(self, signum: int, frame: object) -> None:
        if self.cancelled:
            return
        signal.signal(signal.SIGTERM, self._previous)
        os.kill(os.getpid(), signum)

    def _watch(self) -> None:
        from prefect.client.orchestration import get_client
        from prefect.utilities.engine import is_prefect_sigterm_handler_installed

        with get_client(sync_client=True) as client:
            while not self._stop.wait(self._every):
                run_id = self._flow_run_id()
                if not run_id:
                    continue
                try:
                    state = client.read_flow_run(run_id).state
                except Exception as exc:  # noqa: BLE001 - the server may be restarting: look again later
                    log.debug("could not read flow run %s: %s", run_id, exc)
                    continue
                # Only while Prefect's SIGTERM handler is in place (the flow is running): it turns the
                # signal into an exception inside the flow.
                if state is not None and state.is_cancelling() and is_prefect_sigterm_handler_installed():
                    self.cancelled = True
                    os.kill(os.getpid(), signal.SIGTERM)
                    return

    def finish(self) -> None:
        """Once the flow has stopped: mark its run Cancelled (Prefect recorded a crash: no runner asked)."""
        run_id = self._flow_run_id()
        if not (self.cancelled and run_id):
            return
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelled

        try:
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(run_id, Cancelled(message=CANCELLED_MESSAGE), force=True)
        except Exception as exc:  # noqa: BLE001 - the run is stopped either way; the server shows it crashed
            log.warning("could not mark flow run %s Cancelled: %s", run_id, exc)
