"""At a run's end: forget its saved model turns if it is over, and apply ``outputs.retention``."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger

from tasks.agent.resume import RESUMABLE
from tasks.config import LoadedConfig
from tasks.models.base import ModelProvider
from tasks.prefect.model import RESULTS_FOLDER, forget_turns
from tasks.retention import plan_prune
from tasks.transcript import Transcript


def tidy_up_after_run(loaded: LoadedConfig, provider: ModelProvider, transcript: Transcript, run_dir: Path) -> None:
    """A run that can be resumed (failed, or still running when killed) keeps its turns until it is
    resumed or ``max_age`` passes; any other is over and never resumed."""
    logger = get_run_logger()
    status = transcript.status
    if status not in RESUMABLE and (count := forget_turns(provider, [run_dir, *map(Path, transcript.resumed_from)])):
        logger.info("Deleted the run's %d saved model turn(s): it ended (%s) and is never resumed", count, status)
    results_dir = None if loaded.config.outputs.results_storage else loaded.outputs_dir / RESULTS_FOLDER
    plan = plan_prune(loaded.outputs_dir / loaded.config.name, loaded.config.outputs.retention, results_dir,
                      keep=frozenset({run_dir}))
    plan.apply()
    if plan.run_dirs or plan.saved_turns:
        logger.info("outputs.retention: deleted %d run folder(s) and %d saved model turn(s)",
                    len(plan.run_dirs), len(plan.saved_turns))
