"""When analyses run: each config becomes the Prefect deployment ``analyze/<name>``, with its schedule.

``analyst serve`` serves them from one long-running process; ``analyst deploy`` registers them
for a work pool and its workers (see ``flows/cli/deploy.py``).
"""

from ._build import build_deployment, build_deployments, find_configs, load_configs
from ._describe import describe_schedule
from ._register import DeployError, ensure_work_pool, register

__all__ = [
    "DeployError",
    "build_deployment",
    "build_deployments",
    "describe_schedule",
    "ensure_work_pool",
    "find_configs",
    "load_configs",
    "register",
]
