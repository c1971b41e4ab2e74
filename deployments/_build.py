"""Analysis configs -> Prefect deployments of the ``analyze`` flow, one per config.

A deployment is named after the config's ``name`` (``analyze/<name>``), carries the config's
schedule, tags, description and ``concurrency.runs`` (as its concurrency limit), and passes the
config's absolute path as the ``config`` parameter, so ``prefect deployment run analyze/<name>``
works from any folder. The flow reloads the YAML at every run: prompt, model or data changes apply
to the next run; schedule, tags, description and concurrency are read when the deployment is built
(restart ``analyst serve`` or re-run ``analyst deploy`` after changing them).

The entrypoint is the module path ``flows.analysis.analyze``, not a file path relative to the
folder the command ran in: a process worker runs each flow in a fresh temporary folder, where
a relative file path points nowhere, while the module imports wherever the project is installed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.exceptions import TerminationSignal

from tasks.config import LoadedConfig, load_config
from tasks.config.yaml_guard import read_config_yaml
from tasks.errors import ConfigError, Problem
from tasks.prefect.schedules import prefect_schedule

from ._spec import deployment_fields

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

YAML_SUFFIXES = (".yaml", ".yml")
CONFIG_KEYS = ("prompt", "datasets")  # a YAML file in a folder with neither is not an analysis config


def find_configs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The config files named by ``paths``: files as given, folders as the analysis configs in them.

    A folder contributes its ``*.yaml``/``*.yml`` files (not its sub-folders) whose top level is a
    mapping with a ``prompt`` or ``datasets`` key; other YAML there (pandera schemas, say) is
    skipped. A file that is not valid YAML is kept, so loading reports it rather than hiding it.
    A file named twice counts once. Raises ConfigError for every missing path and empty folder.
    """
    found: dict[Path, None] = {}
    problems: list[Problem] = []
    for given in paths:
        path = Path(given).expanduser().resolve()
        if path.is_dir():
            configs = [f for f in sorted(path.iterdir())
                       if f.suffix in YAML_SUFFIXES and f.is_file() and _looks_like_config(f)]
            if not configs:
                problems.append(Problem(str(path), "", "no analysis configs here: expected *.yaml or *.yml "
                                        f"files with a {' or '.join(map(repr, CONFIG_KEYS))} key"))
            found.update(dict.fromkeys(configs))
        elif path.is_file():
            found[path] = None
        else:
            problems.append(Problem(str(path), "", "no such file or folder; expected an analysis YAML "
                                    "config or a folder of them"))
    if problems:
        raise ConfigError(problems)
    return list(found)


def _looks_like_config(path: Path) -> bool:
    try:
        raw = read_config_yaml(path)  # a huge file or an alias bomb is kept, for loading to refuse it clearly
    except (UnicodeDecodeError, yaml.YAMLError, ConfigError):
        return True
    return isinstance(raw, dict) and any(k in raw for k in CONFIG_KEYS)


def build_deployment(config_path: str | os.PathLike[str] | LoadedConfig,
                     work_pool: str | None = None) -> RunnerDeployment:
    """The deployment ``analyze/<name>`` of one config (not registered yet: see ``.apply()``).

    With ``work_pool``, it is for that pool's workers and carries the job variables of
    ``deployment_fields`` (the config's retries); without, it is for ``analyst serve``.
    """
    loaded = config_path if isinstance(config_path, LoadedConfig) else load_config(config_path)
    flow, options = _flow_and_options(loaded, work_pool)
    return flow.to_deployment(**options)


def serve_deployments(loaded: Iterable[LoadedConfig]) -> None:
    """Run the configs' scheduled and triggered runs in this process until stopped (Ctrl+C, SIGTERM).

    What ``prefect.serve`` does (pausing the schedules on shutdown), except that each deployment
    is added with its flow object: ``prefect.serve(*deployments)`` starts every run with a fresh
    import of the entrypoint, where the config's retries (``with_options``) are lost, while a
    Runner given the flow object runs that object, retries included.
    """
    from prefect.runner import Runner  # noqa: PLC0415 - 0.5 s, only for `analyst serve`

    runner = Runner(pause_on_shutdown=True)
    for item in loaded:
        flow, options = _flow_and_options(item)
        runner.add_flow(flow, **options)
    try:
        asyncio.run(runner.start())
    except (KeyboardInterrupt, TerminationSignal):
        pass  # the runner has stopped its runs and paused the schedules


def _flow_and_options(loaded: LoadedConfig, work_pool: str | None = None) -> tuple[Flow, dict[str, Any]]:
    """The ``analyze`` flow with the config's retries, and the deployment's fields for ``to_deployment``
    (with ``work_pool``: that pool and the job variables)."""
    from prefect.deployments.runner import EntrypointType  # noqa: PLC0415 - 0.5 s, only once a deployment is wanted

    from flows.analysis import analyze  # noqa: PLC0415 - 5 s (the whole flow), only once a deployment is wanted

    fields = deployment_fields(loaded)  # refuses a secret in any of them
    schedule = loaded.config.schedule
    # Retries resume where the failed attempt stopped (tasks/agent/resume.py). They hold for the runs
    # of this flow object (analyst serve); a worker imports the module afresh: the job variables.
    flow = analyze.with_options(retries=loaded.config.retries, retry_delay_seconds=loaded.config.retry_delay_seconds)
    pool = {"work_pool_name": work_pool, "job_variables": fields["job_variables"]} if work_pool else {}
    return flow, pool | {
        "name": fields["name"],
        "parameters": fields["parameters"],
        "schedules": [prefect_schedule(schedule)] if schedule else None,
        "tags": fields["tags"],
        "description": fields["description"],
        "concurrency_limit": ConcurrencyLimitConfig(**fields["concurrency_limit"]),
        "entrypoint_type": EntrypointType.MODULE_PATH,
    }


def load_configs(paths: Iterable[str | os.PathLike[str]]) -> list[LoadedConfig]:
    """Every config named by ``paths`` (see ``find_configs``), checked together.

    Raises one ConfigError with every problem of every file, and a problem for each config whose
    ``name`` another one already uses (two deployments cannot share ``analyze/<name>``).
    """
    loaded: list[LoadedConfig] = []
    problems: list[Problem] = []
    for path in find_configs(paths):
        try:
            loaded.append(load_config(path))
        except ConfigError as exc:
            problems.extend(exc.problems)
    first_of: dict[str, LoadedConfig] = {}
    for item in loaded:
        name = item.config.name
        if name in first_of:
            problems.append(Problem(str(item.path), "name", f"{name!r} is also the name of {first_of[name].path}; "
                                    "each analysis needs its own name (it names the deployment analyze/<name>)"))
        else:
            first_of[name] = item
    if problems:
        raise ConfigError(problems)
    return loaded


def build_deployments(paths: Iterable[str | os.PathLike[str]]) -> list[RunnerDeployment]:
    """One deployment per config named by ``paths`` (files, or folders of configs)."""
    return [build_deployment(item) for item in load_configs(paths)]
