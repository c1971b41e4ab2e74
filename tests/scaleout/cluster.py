"""Driving a fleet as its users do, shared by the scale-out tests and benchmarks/fleet.py: the
`analyst` command in its own process pointed at the server, and runs triggered all at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from tests.scaleout.prefect_server import PrefectServer


def analyst(server: PrefectServer, *args: object, timeout: float = 300.0) -> str:
    """The installed `analyst` command, in its own process, pointed at the server as a user's shell is;
    its output, or RuntimeError with everything it printed."""
    done = subprocess.run([sys.executable, "-c", "from cli import app; app()", *map(str, args)],
                          env=server.client_env(COLUMNS="200"), capture_output=True, text=True, check=False,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"analyst {' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def trigger_runs(server: PrefectServer, deployment_ids: Sequence[UUID],
                 parameters: Mapping[str, Any]) -> list[UUID]:
    """One flow run per id (an id may repeat), all requested at once through the API."""
    return asyncio.run(_trigger(server, deployment_ids, parameters))


async def _trigger(server: PrefectServer, deployment_ids: Sequence[UUID], parameters: Mapping[str, Any]) -> list[UUID]:
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(server.api_url) as client:
        runs = await asyncio.gather(*(
            client.create_flow_run_from_deployment(deployment_id, parameters=dict(parameters))
            for deployment_id in deployment_ids
        ))
    return [run.id for run in runs]
