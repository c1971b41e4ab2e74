"""Step 5: the loop's iterations, one Prefect task each, and the final report after the limit."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from tasks.agent.loop import AnalysisLoop
from tasks.agent.transcript import IterationRecord
from tasks.models.base import ModelTurn

# Retries live in one layer only: the Anthropic SDK retries failed requests (connection errors,
# 429 with retry-after, 529, 5xx) and the provider retries a stream cut mid-message. A Prefect retry
# here would repeat them all, and re-run code cells whose side effects are already in the sandbox.
# An error in the analysis code is not a failure: it goes back to Claude as the tool result.
# No task timeout either: each model request and each code run has its own (model.timeout,
# sandbox.timeout), and interrupting this thread from outside would leave the kernel mid-cell.


@task(name="iteration", retries=0, cache_policy=NONE)
def run_iteration(loop: AnalysisLoop) -> IterationRecord:
    return loop.step()


@task(name="final-report", retries=0, cache_policy=NONE)
def write_final_report(loop: AnalysisLoop) -> ModelTurn:
    return loop.write_final_report()
