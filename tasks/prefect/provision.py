"""Steps 3, 4 and 7: provision the sandbox, upload the datasets, tear the sandbox down."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from tasks.agent.fingerprint import file_sha256
from tasks.config import LoadedConfig
from tasks.datasets import dataset_file
from tasks.errors import SandboxError
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
def upload_datasets(sandbox: Sandbox, loaded: LoadedConfig) -> dict[str, str]:
    """Upload every dataset; returns each one's content hash by name (read while the upload has the
    file in the page cache), which a resumed run compares with the run it continues."""
    uploaded, digests = [], {}
    for dataset in loaded.config.datasets:
        with dataset_file(dataset, loaded.base_dir, source_access(loaded)) as local_path:
            uploaded.append(sandbox.upload(local_path, dataset.sandbox_filename))
            digests[dataset.name] = file_sha256(local_path)
    get_run_logger().info("Uploaded %s", ", ".join(uploaded))
    return digests


@task(name="teardown-sandbox", retries=2, retry_delay_seconds=[1, 5], cache_policy=NONE)
def teardown_sandbox(sandbox: Sandbox) -> None:
    sandbox.teardown()
