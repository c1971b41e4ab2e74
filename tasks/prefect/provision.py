"""Steps 3, 4 and 7: provision the sandbox, upload the datasets, tear the sandbox down.

A new run provisions while its data is validated (``SandboxStart``): provisioning mostly waits on
another process (the kernel starting, the Daytona API), which can go on while validation runs. The
upload comes before Claude's first request: a run whose upload fails never calls the model.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from tasks.agent.fingerprint import UploadedData, file_sha256
from tasks.config import LoadedConfig
from tasks.datasets.kept_data import keep_data
from tasks.errors import SandboxError
from tasks.prefect.background import in_background, settled
from tasks.prefect.sandbox_slots import SandboxSlot, read_limit
from tasks.prefect.secret_blocks import read_secret_block
from tasks.sandbox import Sandbox, create_sandbox
from tasks.prefect.source_blocks import source_access


def _transient(task, task_run, state) -> bool:
    """Retry provisioning failures that may pass (a slow start, a busy API), never a bad setup."""
    try:
        state.result()
    except SandboxError as exc:
        return getattr(exc, "transient", False)
    except Exception:  # noqa: BLE001 - unexpected errors (network, OS) may well be transient
        return True
    return False


# Prefect owns the retries of provisioning: the sandbox providers do not retry on their own.
@task(name="provision-sandbox", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=_transient,
      cache_policy=NONE)
def provision_sandbox(loaded: LoadedConfig, labels: dict[str, str]) -> Sandbox:
    sandbox = create_sandbox(loaded.config.sandbox, labels=labels, config_dir=loaded.base_dir,
                             read_secret=read_secret_block)
    try:
        sandbox.provision()
    except BaseException:
        sandbox.teardown()
        raise
    get_run_logger().info("Sandbox ready (%s)", loaded.config.sandbox.provider)
    return sandbox


@task(name="upload-datasets", retries=1, retry_delay_seconds=[2], cache_policy=NONE)
def upload_datasets(sandbox: Sandbox, loaded: LoadedConfig, run_dir: Path) -> UploadedData:
    """Upload every dataset and hash it (read while the upload has the file in the page cache), which
    a resumed run compares with the run it continues; keep it in ``run_dir`` with ``outputs.keep_data``.
    Data read from an earlier run's kept files is kept again, so this run can be replayed in turn."""
    from tasks.datasets import dataset_file, source_of  # noqa: PLC0415 - polars: validation imported it already

    access = source_access(loaded)
    uploaded, seen = [], UploadedData(read_kept={name: str(path) for name, path in access.kept.items()})
    for dataset in loaded.config.datasets:
        with dataset_file(dataset, loaded.base_dir, access) as local_path:
            uploaded.append(sandbox.upload(local_path, dataset.sandbox_filename))
            seen.digests[dataset.name] = file_sha256(local_path)
            if loaded.config.outputs.keep_data or dataset.name in access.kept:
                kept = keep_data(dataset, local_path, source_of(dataset, loaded.base_dir), run_dir,
                                 access.kept.get(dataset.name))
                seen.kept[dataset.name] = kept.relative_to(run_dir).as_posix()
                seen.kept_hashes[dataset.name] = file_sha256(kept)
    seen.origins = {name: dict(origin) for name, origin in access.origins.items()}
    get_run_logger().info("Uploaded %s", ", ".join(uploaded))
    if seen.kept:
        get_run_logger().info("Kept the data in %s: %s", run_dir / "data", ", ".join(seen.kept.values()))
    return seen


@task(name="teardown-sandbox", retries=2, retry_delay_seconds=[1, 5], cache_policy=NONE)
def teardown_sandbox(sandbox: Sandbox) -> None:
    sandbox.teardown()


class SandboxStart:
    """A new run's sandbox, provisioned in a background thread while the run validates its data.

    It starts only when a sandbox slot is free at once: a run that would wait for one takes it after
    validation (``sandbox()`` is then None), so that a run whose data is invalid never queues for a
    slot. ``sandbox()`` waits for it and raises provisioning's error; ``settle()`` waits without
    raising, for the clean-up, which tears down what it returns whatever else happened.
    """

    def __init__(self, provision: Callable[[], Sandbox], slot: SandboxSlot):
        self._future: Future[Sandbox | None] = in_background(self._start, provision, slot, name="provision-sandbox")

    @staticmethod
    def _start(provision: Callable[[], Sandbox], slot: SandboxSlot) -> Sandbox | None:
        limit = read_limit(slot.limit_name)
        if limit is not None and limit.active and limit.active_slots >= limit.limit:
            return None
        slot.acquire(limit)  # one server round trip fewer on the way to the first request
        return provision()

    def sandbox(self) -> Sandbox | None:
        return self._future.result()

    def settle(self) -> Sandbox | None:
        return settled(self._future)

