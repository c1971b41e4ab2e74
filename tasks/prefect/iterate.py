"""Step 5: the loop's iterations, one Prefect task each, and the final report after the limit.

Every model request inside them is a task of its own, persisted (``tasks/prefect/model.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from tasks.agent import resume
from tasks.agent.loop import AnalysisLoop
from tasks.prefect.model import settle_turns
from tasks.transcript import IterationRecord, Transcript
from tasks.models.base import ModelTurn
from tasks.sandbox.base import Sandbox

T = TypeVar("T")

# Retries live in one layer only: the Anthropic SDK retries failed requests (connection errors,
# 429 with retry-after, 529, 5xx) and the provider retries a stream cut mid-message. A Prefect retry
# here would repeat them all, and re-run code cells whose side effects are already in the sandbox.
# An error in the analysis code is not a failure: it goes back to Claude as the tool result.
# No task timeout either: each model request and each code run has its own (model.timeout,
# sandbox.timeout), and interrupting this thread from outside would leave the kernel mid-cell.


# Named by its number through the run-name template: renaming the task per call (``with_options``)
# builds a new Task each iteration, a millisecond on the loop's path.
@task(name="iteration", task_run_name="iteration-{number}", retries=0, cache_policy=NONE)
def run_iteration(loop: AnalysisLoop, number: int) -> IterationRecord:
    """``number`` is the iteration's, for its run's name: the one ``loop.step()`` runs next."""
    return _settled(loop, loop.step)


@task(name="final-report", retries=0, cache_policy=NONE)
def write_final_report(loop: AnalysisLoop) -> ModelTurn | None:
    return _settled(loop, loop.write_final_report)


def _settled(loop: AnalysisLoop, step: Callable[[], T]) -> T:
    """``step()``, once the tasks recording its model turns have ended: a task run ends after its children."""
    try:
        done = step()
    except BaseException:
        settle_turns(loop.provider, quietly=True)
        raise
    settle_turns(loop.provider)
    return done


@task(name="rebuild-sandbox", retries=0, cache_policy=NONE)
def rebuild_sandbox(sandbox: Sandbox, transcript: Transcript, timeout: float) -> int:
    """Run the cells of the iterations a resumed run keeps; returns how many ran."""
    logger = get_run_logger()
    steps = resume.rebuild_steps(transcript)
    cells = sum(1 for _, cell in steps if cell is not resume.RESTART)
    restarts = len(steps) - cells
    logger.info("Resuming after iteration %d: running its %d recorded code cell(s) again%s",
                len(transcript.iterations), cells,
                f", restarting the Python session {restarts} time(s) where it was restarted" if restarts else "")
    for note in resume.rebuild_sandbox(sandbox, transcript, timeout):
        logger.warning("Rebuilding the sandbox: %s", note)
    return cells
