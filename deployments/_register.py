"""Register deployments on the Prefect server, for a work pool's workers (``analyst deploy``)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound

from tasks.errors import AnalystError

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment


class DeployError(AnalystError):
    """A deployment or its work pool could not be registered on the Prefect server."""


def ensure_work_pool(name: str) -> tuple[str, bool]:
    """The type of work pool ``name``, creating it as a process pool if missing: (type, created).

    A process pool runs each flow run as a subprocess of ``prefect worker start --pool NAME``,
    on the worker's machine, which therefore needs this project installed.
    """
    from prefect.workers.process import ProcessWorker  # noqa: PLC0415 - 0.2 s, only when a pool is created

    with get_client(sync_client=True) as client:
        try:
            return client.read_work_pool(name).type, False
        except ObjectNotFound:
            pass
        try:
            client.create_work_pool(WorkPoolCreate(
                name=name, type=ProcessWorker.type,
                base_job_template=ProcessWorker.get_default_base_job_template(),
            ))
        except Exception as exc:  # noqa: BLE001 - an invalid name or an unreachable server: say which
            raise DeployError(f"could not create the process work pool {name!r}: {_reason(exc)}") from exc
    return ProcessWorker.type, True


def register(deployment: RunnerDeployment, work_pool_name: str | None = None) -> UUID:
    """Create or update the deployment on the server (with its schedule); returns its id."""
    try:
        return deployment.apply(work_pool_name=work_pool_name)
    except Exception as exc:  # noqa: BLE001 - Prefect raises HTTP, validation and apply errors alike
        raise DeployError(f"could not register the deployment {deployment.flow_name}/{deployment.name}: "
                          f"{_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    try:
        detail = response.json().get("detail") if response is not None else None
    except ValueError:
        detail = None
    return str(detail or exc)
