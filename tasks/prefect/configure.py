"""Step 1: load and check the analysis config."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from tasks.config import LoadedConfig, config_warnings, load_config


# A bad config is the user's to fix: retrying cannot help, so no retries.
@task(name="load-config", cache_policy=NONE)
def load_analysis_config(config_path: str, overrides: dict[str, Any] | None = None,
                         as_of: str | None = None) -> LoadedConfig:
    loaded = load_config(config_path, overrides, as_of=as_of)
    logger = get_run_logger()
    for warning in config_warnings(loaded.config):
        logger.warning(warning)
    logger.info("Loaded analysis %r from %s", loaded.config.name, loaded.path)
    window = loaded.run_time.window
    logger.info("Run time %s%s", loaded.run_time.as_of.isoformat(),
                f", window {window.start.isoformat()} to {window.end.isoformat()} (exclusive)" if window else "")
    return loaded
