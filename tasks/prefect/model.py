"""``PrefectModel``: a model provider whose every turn is a Prefect task with a persisted result.

The result is stored under a key over the conversation so far (``ModelTurnInputs``). A retried or
resumed run that sends the same conversation again gets the stored turn back instead of paying for it
twice (see ``tasks/agent/resume.py``).

The request itself is sent from a thread as soon as the conversation is known (``ask_ahead``: at the
end of the iteration before), and the task that records it runs in a thread of its own while the loop
goes on with the answer: Prefect's work around a turn (the iteration's end and start, the request
task's start, its stored result and states) overlaps the model's wait and the code's run instead of
delaying each turn. A turn already stored is never sent: its task reads it back, in the loop's thread.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prefect.filesystems import LocalFileSystem, RemoteFileSystem
from prefect import get_run_logger, task
from prefect.blocks.core import Block
from prefect.results import ResultStore
from prefect.transactions import CommitMode, transaction
from prefect.utilities.annotations import quote

from tasks.config import LoadedConfig
from tasks.errors import ConfigError, Problem
from tasks.models.base import ModelProvider, ModelRequest, ModelTurn
from tasks.prefect.background import in_background
from tasks.prefect.cache_policies import ModelTurnInputs, turn_key

RESULTS_FOLDER = ".results"  # under outputs.dir, when outputs.results_storage names no block
# In the run folder: the keys of the turns the run saved, across its retries, so that they can be deleted
# once it ends (a retry or a resume does not ask again for the turns its transcript already holds).
SAVED_TURNS_FILE = "saved-turns.txt"


@task(name="model-request", retries=0, persist_result=True, result_serializer="json", cache_policy=ModelTurnInputs())
def request_turn(provider: ModelProvider, request: ModelRequest, scope: str) -> dict[str, Any]:
    return provider.next_turn(request).to_dict()


class PrefectModel(ModelProvider):
    """Wraps a provider: its turns go through ``request_turn``, asked once per conversation and run."""

    def __init__(self, wrapped: ModelProvider, scope: str, storage: Any, run_dir: Path):
        self.wrapped, self.scope, self.storage = wrapped, scope, storage
        self.name, self.model, self.max_tokens = wrapped.name, wrapped.model, wrapped.max_tokens
        self.ledger = run_dir / SAVED_TURNS_FILE
        self._task = request_turn.with_options(result_storage=storage)
        # A folder as Prefect makes it a block for the task's option, without the server client that
        # prefect.results.resolve_result_storage creates first (22 ms per run).
        self._stored = ResultStore(result_storage=LocalFileSystem(basepath=str(storage))
                                   if isinstance(storage, Path) else storage)
        self._ahead: _SentAhead | None = None
        self._recording: _Recording | None = None

    def ask_ahead(self, request: ModelRequest) -> None:
        key = turn_key(self.wrapped, request, self.scope)
        if self._ahead is not None and self._ahead.key == key:
            return
        # A request sent ahead for another conversation is left to end on its own; its answer goes unused.
        self._ahead = None
        # Written before the request leaves: the process may die while it is out or while the turn's code runs.
        with self.ledger.open("a", encoding="utf-8") as ledger:
            ledger.write(key + "\n")
        if self._stored.exists(key):  # an earlier attempt's answer: the task reads it back, nothing is sent
            return
        # A copy of the list: the loop adds the answer to its conversation while the send may still be going on.
        sent = replace(request, messages=list(request.messages))
        self._ahead = _SentAhead(key, in_background(self.wrapped.next_turn, sent, name="model-request"))

    def next_turn(self, request: ModelRequest) -> ModelTurn:
        self.settle()
        self.ask_ahead(request)
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return self._record(self.wrapped, request)
        # The task is started here, inside the caller's task run (the iteration), whose child it is.
        task = in_background(self._record, _Answered(self.wrapped, ahead), request, name="model-turn-task")
        self._recording = _Recording(ahead.answer, task)
        try:
            return ahead.answer.result()
        except BaseException:
            self.settle(quietly=True)  # a failed request: its task records the failure before the loop hears of it
            raise

    def settle(self, quietly: bool = False) -> None:
        """Wait for the task recording the last turn to end; raise what stopped it unless ``quietly``. The
        iteration calls it before it ends, so that its child task never outlives it. ``quietly`` is for a
        step that is failing: it never waits on a request still out, so a cancellation is not held up until
        the model answers (that task ends when the answer comes, or with the process)."""
        recording, self._recording = self._recording, None
        if recording is None or (quietly and not recording.answer.done()):
            return
        error = recording.task.exception()
        if error is not None and not quietly:
            raise error

    def _record(self, provider: ModelProvider, request: ModelRequest) -> ModelTurn:
        # Committed as soon as the task ends: by default Prefect commits a nested task's result only with
        # its parent's (the iteration's), and the process may die while the turn's code runs.
        # quote: Prefect would otherwise walk every value of the conversation twice per turn (looking for
        # upstream futures there can be none of), a cost that grows with each turn.
        with transaction(commit_mode=CommitMode.EAGER):
            return ModelTurn.from_dict(self._task(quote(provider), quote(request), self.scope))

    def forget_turns(self, run_dirs: list[Path]) -> int:
        """Delete the turns saved by the runs in ``run_dirs`` (this one and those it resumed): a run that
        ended is never resumed, so they would only pile up. Returns how many were deleted."""
        keys: dict[str, None] = {}
        for folder in run_dirs:
            ledger = Path(folder) / SAVED_TURNS_FILE
            if ledger.is_file():
                keys.update(dict.fromkeys(ledger.read_text(encoding="utf-8").split()))
        return delete_saved_turns(self.storage, keys)

    def close(self) -> None:
        self.settle(quietly=True)
        self.wrapped.close()


@dataclass
class _SentAhead:
    key: str  # turn_key of the conversation sent
    answer: Future[ModelTurn]


@dataclass
class _Recording:
    answer: Future[ModelTurn]  # the request's
    task: Future[ModelTurn]  # the model-request task's, which waits for it


class _Answered(ModelProvider):
    """The provider as ``request_turn`` sees it once the request is on its way: its answer is waited for.
    It knows its turn's key: the conversation it was sent may have grown since, in the loop's thread."""

    def __init__(self, wrapped: ModelProvider, sent: _SentAhead):
        self.name, self.model, self.max_tokens = wrapped.name, wrapped.model, wrapped.max_tokens
        self.sent = sent

    @property
    def turn_key(self) -> str:
        return self.sent.key

    def next_turn(self, request: ModelRequest) -> ModelTurn:
        return self.sent.answer.result()


def persist_turns(provider: ModelProvider, scope: str, loaded: LoadedConfig, run_dir: Path) -> ModelProvider:
    """``provider`` with its turns persisted in the configured results storage. A replay costs
    nothing and reads its turns from a file already: it is left as it is."""
    if provider.name == "replay":
        return provider
    return PrefectModel(provider, scope, results_storage(loaded), run_dir)


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


def settle_turns(provider: ModelProvider, quietly: bool = False) -> None:
    """``PrefectModel.settle`` for a provider whose turns are recorded by tasks; nothing for a replay."""
    if isinstance(provider, PrefectModel):
        provider.settle(quietly)


def forget_turns(provider: ModelProvider, run_dirs: list[Path]) -> int:
    """``PrefectModel.forget_turns`` for a provider whose turns are saved; nothing for a replay."""
    return provider.forget_turns(run_dirs) if isinstance(provider, PrefectModel) else 0


def delete_saved_turns(storage: Any, keys: Any) -> int:
    """Delete the stored results named ``keys`` from a results storage: a folder, a local-file-system or a
    remote-file-system block (fsspec). Other blocks (s3-bucket, ...) have no delete: their bucket's own
    lifecycle rules are the way to expire them."""
    deleted = 0
    for key in keys:
        if isinstance(storage, (Path, LocalFileSystem)):
            path = Path(storage if isinstance(storage, Path) else storage.basepath or ".").expanduser() / key
            if path.is_file():
                path.unlink()
                deleted += 1
        elif isinstance(storage, RemoteFileSystem):
            target = f"{storage.basepath.rstrip('/')}/{key}"
            if storage.filesystem.exists(target):
                storage.filesystem.rm(target)
                deleted += 1
        else:
            get_run_logger().info("Saved model turns are not deleted from a %s block: expire them with the "
                                  "storage's own lifecycle rules", type(storage).__name__)
            return deleted
    return deleted
