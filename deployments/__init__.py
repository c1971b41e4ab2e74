"""When analyses run: each config becomes the Prefect deployment ``analyze/<name>``, with its schedule.

``analyst serve`` serves them from one long-running process; ``analyst deploy`` registers them
for a work pool and its workers, or writes them to a prefect.yaml (see ``cli/deploy.py``).
``analyst limits`` manages the global cap on live sandboxes (see ``cli/limits.py``).
"""

from ._build import build_deployment, build_deployments, find_configs, load_configs, serve_deployments
from ._crash_notifications import sync_crash_notifications
from ._describe import describe_schedule
from ._limits import (
    KNOWN_LIMITS,
    LimitError,
    LimitState,
    check_known,
    check_value,
    deployment_names,
    read_all_limits,
    read_limit_state,
    remove_limit,
    sandbox_cap,
    set_limit,
)
from ._prefect_yaml import DEFAULT_WORK_POOL, prefect_yaml, write_prefect_yaml
from ._register import DeployError, ensure_work_pool, register
from ._spec import deployment_fields, refuse_secrets

__all__ = [
    "DEFAULT_WORK_POOL",
    "DeployError",
    "KNOWN_LIMITS",
    "LimitError",
    "LimitState",
    "build_deployment",
    "build_deployments",
    "check_known",
    "check_value",
    "deployment_fields",
    "deployment_names",
    "describe_schedule",
    "ensure_work_pool",
    "find_configs",
    "load_configs",
    "prefect_yaml",
    "read_all_limits",
    "read_limit_state",
    "refuse_secrets",
    "register",
    "remove_limit",
    "sandbox_cap",
    "serve_deployments",
    "set_limit",
    "sync_crash_notifications",
    "write_prefect_yaml",
]
