"""Step 5: the loop's iterations, one Prefect task each, and the final report after the limit.

Every model request is a task of its own whose result Prefect persists under a key over the
conversation so far (``_turn_key``). A retried or resumed run that sends the same conversation again
gets the stored turn back instead of paying for it twice (see ``tasks/agent/resume.py``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.blocks.core import Block
from prefect.cache_policies import NONE
from prefect.transactions import CommitMode, transaction

from tasks.agent import resume
from tasks.agent.loop import AnalysisLoop
from tasks.agent.transcript import IterationRecord, Transcript
from tasks.config import LoadedConfig
from tasks.errors import ConfigError, Problem
from tasks.models.base import ModelProvider, ModelRequest, ModelTurn
from tasks.sandbox.base import Sandbox

RESULTS_FOLDER = ".results"  # under outputs.dir, when outputs.results_storage names no block

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


# --- the model-turn cache -------------------------------------------------------------------------


def _turn_key(context: Any, parameters: dict[str, Any]) -> str:
    """Everything that decides the model's answer, and the run it belongs to; never a timestamp.

    ``scope`` is the run key shared by a run and its retries and resumes: without it a new run of an
    unchanged analysis would get last week's answers back instead of asking Claude.
    """
    request: ModelRequest = parameters["request"]
    provider = parameters["provider"]
    config = getattr(provider, "config", None)
    payload = {
        "scope": parameters["scope"], "provider": provider.name,
        "model": getattr(config, "name", getattr(provider, "model", None)),
        "max_tokens": getattr(config, "max_tokens", None),
        "system": request.system, "tools": request.tools, "messages": request.messages,
        "allow_tools": request.allow_tools,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode())
    return f"model-turn-{digest.hexdigest()}"


@task(name="model-request", retries=0, persist_result=True, result_serializer="json", cache_key_fn=_turn_key)
def request_turn(provider: ModelProvider, request: ModelRequest, scope: str) -> dict[str, Any]:
    return provider.next_turn(request).to_dict()


class PersistedTurns(ModelProvider):
    """A provider whose turns go through ``request_turn``: asked once per conversation and run."""

    def __init__(self, inner: ModelProvider, scope: str, storage: Any):
        self.inner, self.scope = inner, scope
        self.name = inner.name
        self._task = request_turn.with_options(result_storage=storage)

    def __getattr__(self, name: str) -> Any:  # model, config, ...: the inner provider's
        return getattr(self.inner, name)

    def next_turn(self, request: ModelRequest) -> ModelTurn:
        # Written as soon as it arrives: by default Prefect commits a nested task's result only with
        # its parent's (the iteration's), and the process may die while the turn's code runs.
        with transaction(commit_mode=CommitMode.EAGER):
            return ModelTurn.from_dict(self._task(self.inner, request, self.scope))

    def close(self) -> None:
        self.inner.close()


def persist_turns(provider: ModelProvider, scope: str, loaded: LoadedConfig) -> ModelProvider:
    """``provider`` with its turns persisted in the configured results storage. A replay costs
    nothing and reads its turns from a file already: it is left as it is."""
    if provider.name == "replay":
        return provider
    return PersistedTurns(provider, scope, results_storage(loaded))


def results_storage(loaded: LoadedConfig) -> Any:
    """The Prefect block named in ``outputs.results_storage``, else the folder ``.results`` under
    outputs.dir. Checked here, before the sandbox exists, rather than at the first model turn."""
    slug = loaded.config.outputs.results_storage
    if slug is None:
        return Path(loaded.outputs_dir) / RESULTS_FOLDER
    try:
        block = Block.load(slug, _sync=True)
    except Exception as exc:  # noqa: BLE001 - unknown type, missing block, unreachable server: one message
        raise ConfigError([Problem(str(loaded.path), "outputs.results_storage", (
            f"cannot load the Prefect block '{slug}' ({type(exc).__name__}: {exc}); create it on the server "
            "(`prefect block ls` lists them) or remove the key to use the folder .results under outputs.dir"))]) \
            from None
    if not hasattr(block, "write_path"):
        raise ConfigError([Problem(str(loaded.path), "outputs.results_storage", (
            f"the block '{slug}' is not a filesystem Prefect can write results to; use e.g. a local-file-system, "
            "remote-file-system, s3-bucket, gcs-bucket or azure-blob-storage-container block"))])
    return block
