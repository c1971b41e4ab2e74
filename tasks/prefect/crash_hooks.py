"""The flow hook that runs when a flow run crashes or is cancelled: delete the run's Daytona sandboxes.

It cannot rely on the flow's own ``finally``: a crash or a cancellation may kill the process that
held the sandbox object, and Prefect then runs ``on_crashed`` / ``on_cancellation`` hooks elsewhere.
So it looks the run's sandboxes up by the ``flow-run`` label every sandbox carries.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from prefect.logging.loggers import flow_run_logger

from tasks.config.loading import load_config
from tasks.config.schema import SandboxConfig
from tasks.prefect.secret_blocks import read_secret_block
from tasks.sandbox.daytona.cleanup import delete_found, find_sandboxes
from tasks.sandbox.daytona.client import connect

log = logging.getLogger(__name__)


def delete_flow_run_sandboxes(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect flow hook (``on_crashed``, ``on_cancellation``): delete the Daytona sandboxes of this
    flow run. Never raises: a hook's failure must not hide the run's own outcome."""
    logger: Any = log
    try:
        logger = flow_run_logger(flow_run, flow)
        config, config_dir = _sandbox_config(flow_run.parameters or {})
        if config.provider != "daytona":
            return
        found = find_sandboxes(connect(config, config_dir, read_secret_block), {"flow-run": str(flow_run.id)})
        deleted, failures = delete_found(found)
        if deleted:
            logger.info("Deleted Daytona sandbox(es) of this run: %s", ", ".join(deleted))
        for failure in failures:
            logger.warning("Could not delete a Daytona sandbox of this run (%s); `analyst sandboxes cleanup` "
                           "deletes leftovers", failure)
    except Exception as exc:  # noqa: BLE001 - see docstring
        logger.warning("Could not look for this run's Daytona sandboxes (%s: %s); they stop when idle and are "
                       "then deleted, or run `analyst sandboxes cleanup`", type(exc).__name__, exc)


def _sandbox_config(parameters: dict[str, Any]) -> tuple[SandboxConfig, Path]:
    loaded = load_config(str(parameters["config"]), parameters.get("overrides"))
    return loaded.config.sandbox, loaded.base_dir
