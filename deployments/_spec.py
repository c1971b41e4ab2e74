"""What the deployment of one config carries, and the check that none of it is a secret.

Both ``build_deployment`` (``analyst serve`` / ``analyst deploy``) and the generated prefect.yaml
(``analyst deploy --prefect-yaml``) take their fields from here, so the two paths register the
same deployment.

Deployment fields are stored on the Prefect server and shown in its UI, to anyone who can read
the deployment. API keys never belong there: runs read them from Prefect Secret blocks
(``model.api_key_secret``, ``sandbox.api_key_secret``) or from the environment of the process that
runs the flow (``analyst serve``, a worker). The parameters are only the config's path, but the
description and tags come from the config, where ``${VAR}`` could pull a key in: refused.

The job variables carry the config's ``retries`` and ``retry_delay`` to workers. A worker runs the
flow by importing ``flows.analysis.analyze`` afresh, so ``with_options(retries=...)`` (what
``analyst run`` and ``analyst serve`` use) is lost there; Prefect's flow decorator reads its default
retries from ``PREFECT_FLOWS_DEFAULT_RETRIES`` at import, the flow engine copies the flow's retries
into a deployment run's retry policy (the server leaves it unset), and a worker starts the run with
the job variable ``env`` over its own environment. The values are always set, 0 included, so a
worker's own default does not override what the config says.
"""

from __future__ import annotations

import json
from typing import Any

from tasks.config import LoadedConfig
from tasks.config.loading import dotenv_environment
from tasks.errors import ConfigError, Problem
from tasks.secrets import SECRET_NAME

MIN_SECRET_LENGTH = 8  # shorter values ("1", "true") would match by accident, and are not keys anyway


def deployment_fields(loaded: LoadedConfig) -> dict[str, Any]:
    """Name, description, tags, parameters, concurrency and job variables of the deployment ``analyze/<name>``.

    The schedule is left to the callers (a Prefect object for ``to_deployment``, plain YAML for
    prefect.yaml). The concurrency limit is ``concurrency.runs``; a run over it waits for a slot
    (ENQUEUE) or, with ``when_busy: cancel``, is cancelled (CANCEL_NEW). The job variables are for a
    work pool only (Prefect refuses them on a deployment without one, such as ``analyst serve``'s).
    """
    cfg = loaded.config
    fields: dict[str, Any] = {
        "name": cfg.name,
        "description": cfg.description or None,  # None: the flow's docstring
        "tags": list(cfg.tags),
        "parameters": {"config": str(loaded.path)},  # absolute: load_config resolves it
        "concurrency_limit": {
            "limit": cfg.concurrency.runs,
            "collision_strategy": "ENQUEUE" if cfg.concurrency.when_busy == "wait" else "CANCEL_NEW",
        },
        "job_variables": {"env": retry_environment(loaded)},
    }
    refuse_secrets(loaded, fields, fields["job_variables"])
    return fields


def retry_environment(loaded: LoadedConfig) -> dict[str, str]:
    """The settings that give a worker-run ``analyze`` the config's ``retries`` and ``retry_delay``."""
    return {
        "PREFECT_FLOWS_DEFAULT_RETRIES": str(loaded.config.retries),
        "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS": str(loaded.config.retry_delay_seconds),
    }


def refuse_secrets(loaded: LoadedConfig, fields: dict[str, Any], job_variables: dict[str, Any] | None = None) -> None:
    """ConfigError if a deployment field holds the value of a secret environment variable (or .env entry)."""
    secrets = {name: value for name, value in dotenv_environment(loaded.base_dir).items()
               if value and len(value.strip()) >= MIN_SECRET_LENGTH and SECRET_NAME.search(name)}
    if not secrets:
        return
    where = {"description": fields.get("description") or "", "parameters": fields.get("parameters") or {},
             "job_variables": job_variables or {}}
    where |= {f"tags[{i}]": tag for i, tag in enumerate(fields.get("tags") or [])}
    problems = []
    for key, value in where.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        for name, secret in secrets.items():
            if secret.strip() in text:
                problems.append(Problem(str(loaded.path), key, (
                    f"holds the value of {name} (from the environment or .env); deployment fields are stored on the "
                    f"Prefect server and shown in its UI: remove ${{{name}}} from {key}. API keys reach runs through "
                    "Prefect Secret blocks (model.api_key_secret, sandbox.api_key_secret) or the environment of "
                    "the process that runs them (analyst serve, a worker)")))
    if problems:
        raise ConfigError(problems)
