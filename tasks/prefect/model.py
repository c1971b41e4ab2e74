"""``PrefectModel``: a model provider whose every turn is a Prefect task with a persisted result.

The result is stored under a key over the conversation so far (``ModelTurnInputs``). A retried or
resumed run that sends the same conversation again gets the stored turn back instead of paying for it
twice (see ``tasks/agent/resume.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.filesystems import LocalFileSystem, RemoteFileSystem
from prefect import get_run_logger, task
from prefect.blocks.core import Block
from prefect.transactions import CommitMode, transaction
from prefect.utilities.annotations import quote

from tasks.config import LoadedConfig
from tasks.errors import ConfigError, Problem
from tasks.models.base import ModelProvider, ModelRequest, ModelTurn
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

    def next_turn(self, request: ModelRequest) -> ModelTurn:
        # Written as soon as it arrives: by default Prefect commits a nested task's result only with
        # its parent's (the iteration's), and the process may die while the turn's code runs.
        with self.ledger.open("a", encoding="utf-8") as ledger:  # first: the process may die mid-request
            ledger.write(turn_key(self.wrapped, request, self.scope) + "\n")
        # quote: Prefect would otherwise walk every value of the conversation twice per turn (looking for
        # upstream futures there can be none of), a cost that grows with each turn; the cache policy
        # still sees the values themselves.
        with transaction(commit_mode=CommitMode.EAGER):
            return ModelTurn.from_dict(self._task(quote(self.wrapped), quote(request), self.scope))

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
        self.wrapped.close()


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
