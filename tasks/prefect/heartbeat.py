"""Flow-run heartbeats that end when the flow does.

Prefect's engine sends a flow run's heartbeats (``prefect.flow-run.heartbeat``, which crash detection
watches: flows/crash_detection.py) from a thread that sleeps in 1 s steps, and joins that thread when
the flow ends: a caller that runs the flow in its own process (``analyst run``) would wait 0-1 s after
the run is over. Such a caller wraps the call in :func:`heartbeats_from_the_flow`, which turns Prefect's
off for that call only; the flow then sends the same events itself (:func:`flow_run_heartbeats`) from a
thread that stops at once. A flow run that Prefect starts (a worker, ``analyst serve``) keeps Prefect's.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import __version__ as prefect_version
from prefect.context import FlowRunContext, SettingsContext, get_settings_context
from prefect.events import emit_event
from prefect.events.related import tags_as_related_resources
from prefect.events.schemas.events import RelatedResource
from prefect.flow_engine import MINIMUM_HEARTBEAT_INTERVAL

_SECONDS: contextvars.ContextVar[int | None] = contextvars.ContextVar("analyst_flow_heartbeat_seconds", default=None)
log = logging.getLogger(__name__)


@contextmanager
def heartbeats_from_the_flow() -> Iterator[None]:
    """Around a call of the flow in this process: the flow, not Prefect's engine, sends its heartbeats,
    at ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` as Prefect would (none when it is unset)."""
    context = get_settings_context()
    settings = context.settings
    seconds = settings.flows.heartbeat_frequency
    if seconds is None:
        yield
        return
    # A copy that changes one valid value: Prefect's temporary_settings validates every setting again (40 ms).
    without = settings.model_copy(update={"flows": settings.flows.model_copy(update={"heartbeat_frequency": None})})
    token = _SECONDS.set(max(seconds, MINIMUM_HEARTBEAT_INTERVAL))
    try:
        with SettingsContext(profile=context.profile, settings=without):
            yield
    finally:
        _SECONDS.reset(token)


@contextmanager
def flow_run_heartbeats() -> Iterator[None]:
    """In the flow's body: its heartbeats, when its caller asked for them (:func:`heartbeats_from_the_flow`)."""
    seconds = _SECONDS.get()
    context = FlowRunContext.get()
    if seconds is None or context is None or context.flow_run is None:
        yield
        return
    resource, related = _event_template(context)
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            try:
                emit_event(event="prefect.flow-run.heartbeat", resource=resource, related=related)
            except Exception:  # noqa: BLE001 - a missed heartbeat is not worth a run
                log.debug("Could not emit a heartbeat", exc_info=True)
            stop.wait(seconds)

    # The thread sees this context's settings (the API URL), as the engine's heartbeat thread does.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(beat,), daemon=True,
                              name="flow-run-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)


def _event_template(context: FlowRunContext) -> tuple[dict[str, str], list[RelatedResource]]:
    """The resource and related resources of Prefect's own heartbeat event for this flow run."""
    flow_run = context.flow_run
    assert flow_run is not None
    resource = {"prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
                "prefect.resource.name": flow_run.name or "", "prefect.version": prefect_version}
    related = [RelatedResource.model_validate({"prefect.resource.id": f"prefect.flow.{flow_run.flow_id}",
                                               "prefect.resource.role": "flow",
                                               "prefect.resource.name": context.flow.name if context.flow else ""})]
    if flow_run.deployment_id:
        related.append(RelatedResource.model_validate({
            "prefect.resource.id": f"prefect.deployment.{flow_run.deployment_id}",
            "prefect.resource.role": "deployment"}))
    return resource, related + tags_as_related_resources(set(flow_run.tags or []))
