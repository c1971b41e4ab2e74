"""The Daytona provider: the same sandbox interface as the local one, in a Daytona cloud sandbox.

A Daytona sandbox is billed while it runs, so every path out of ``provision`` that fails deletes
what it created (including a sandbox whose creation answer was lost: each attempt carries its own
label, looked up on failure), ``teardown`` deletes and is idempotent, and the sandbox is created
with ``auto_stop_interval`` / ``auto_delete_interval`` as the safety net for a crashed process.
Retries: this class never retries; it marks errors ``transient`` and the provisioning task (Prefect)
retries those with backoff (see tasks/prefect/provision.py), so there is one retry layer only.
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path
from typing import Any

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox.base import DATA_DIR, DEFAULT_WARM_IMPORTS, ExecutionResult, Sandbox
from tasks.sandbox.daytona.client import connect, create_params, translate
from tasks.sandbox.daytona.stateful import StatefulRunner
from tasks.sandbox.daytona.stateless import StatelessRunner
from tasks.secrets import SecretReader

log = logging.getLogger(__name__)

CREATE_TIMEOUT_SNAPSHOT_S = 180.0
CREATE_TIMEOUT_IMAGE_S = 1200.0  # building from a raw image takes minutes
DELETE_TIMEOUT_S = 60.0
ATTEMPT_LABEL = "analyst-attempt"


class DaytonaSandbox(Sandbox):
    def __init__(self, config: SandboxConfig, labels: dict[str, str] | None = None, *,
                 config_dir: Path | None = None, create_timeout: float | None = None,
                 warm_imports: tuple[str, ...] = DEFAULT_WARM_IMPORTS, read_secret: SecretReader | None = None):
        self.config = config
        self.read_secret = read_secret
        self.labels = dict(labels or {})
        self.config_dir = config_dir
        self.create_timeout = create_timeout or (CREATE_TIMEOUT_IMAGE_S if config.image else CREATE_TIMEOUT_SNAPSHOT_S)
        self.warm_imports = tuple(warm_imports)  # once, at provisioning
        self._attempt = ""
        self._client: Any = None
        self._sandbox: Any = None
        self._runner: StatefulRunner | StatelessRunner | None = None
        self._work_dir: str | None = None
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: SandboxConfig, *, labels: dict[str, str] | None = None,
                    config_dir: Path | None = None, **options: Any) -> DaytonaSandbox:
        return cls(config, labels, config_dir=config_dir, **options)

    @property
    def sandbox_id(self) -> str | None:
        return None if self._sandbox is None else self._sandbox.id

    @property
    def work_dir(self) -> str:
        """The sandbox's working directory (absolute, inside the sandbox): holds data/ and outputs/."""
        self.require()
        assert self._work_dir is not None
        return self._work_dir

    def require(self) -> Any:
        """The SDK's sandbox, or a SandboxError once it is torn down (or before it is provisioned)."""
        if self._sandbox is None or self._work_dir is None:
            raise SandboxError("the sandbox was torn down" if self._closed else "the sandbox is not provisioned")
        return self._sandbox

    # -- provision / teardown ----------------------------------------------------------------

    def provision(self) -> None:
        if self._closed:
            raise SandboxError("this sandbox was torn down; create a new one")
        if self._sandbox is not None:
            return
        try:
            self._provision()
        except BaseException:
            self._release(quiet=True)  # nothing billed may outlive a failed provision
            raise

    def _provision(self) -> None:
        from daytona import DaytonaError, DaytonaTimeoutError

        self._client = connect(self.config, self.config_dir, self.read_secret)
        self._attempt = uuid.uuid4().hex[:16]
        params = create_params(self.config, {**self.labels, ATTEMPT_LABEL: self._attempt})
        try:
            self._sandbox = self._client.create(params, timeout=self.create_timeout)
        except DaytonaTimeoutError as exc:
            if getattr(exc, "sandbox_id", None):
                self._delete_quietly(exc.sandbox_id)
            if getattr(exc, "status_code", None) is not None:  # an HTTP 408/504, not the start wait
                raise translate(exc, "creating the sandbox") from exc
            raise SandboxError(
                f"the Daytona sandbox did not start within {self.create_timeout:g} s (it was deleted); this is "
                f"retried: if it keeps happening, check Daytona's status or use a snapshot rather than an image",
                transient=True) from exc
        except DaytonaError as exc:
            raise translate(exc, "creating the sandbox") from exc
        try:
            self._work_dir = self._sandbox.get_work_dir().rstrip("/") or "/"
            self._runner = (StatefulRunner(self.require, self._work_dir, self.config, self.warm_imports)
                            if self.config.stateful else StatelessRunner(self.require, self._work_dir, self.config))
            self._runner.start()
        except DaytonaError as exc:
            raise translate(exc, "preparing the sandbox") from exc
        log.info("Daytona sandbox %s ready (work dir %s)", self._sandbox.id, self._work_dir)

    def teardown(self) -> None:
        self._closed = True
        self._release(quiet=False)

    def _release(self, quiet: bool) -> None:
        from daytona import DaytonaError, DaytonaNotFoundError

        sandbox = self._sandbox
        if sandbox is None:
            if quiet and self._client is not None and self._attempt:
                self._delete_orphans()
            return
        try:
            sandbox.delete(timeout=DELETE_TIMEOUT_S)
        except DaytonaNotFoundError:
            pass
        except DaytonaError as exc:
            error = translate(exc, f"deleting sandbox {sandbox.id}")
            message = (f"{error} It stops after {self.config.auto_stop_minutes} min without activity and is then "
                       f"deleted; `analyst sandboxes cleanup` deletes it now.")
            if quiet:
                log.warning("%s", message)
            else:
                raise SandboxError(message, transient=error.transient) from exc
        self._sandbox = self._runner = None
        self._work_dir = None

    def _delete_quietly(self, sandbox_id: str) -> None:
        try:
            self._client.get(sandbox_id).delete(timeout=DELETE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - best effort; the labels and auto-delete remain
            log.warning("could not delete Daytona sandbox %s after a failed start: %s", sandbox_id, exc)

    def _delete_orphans(self) -> None:
        """A creation whose answer was lost (a 5xx, a dropped connection) may still have made one."""
        from daytona import ListSandboxesQuery

        try:
            for found in self._client.list(ListSandboxesQuery(labels={ATTEMPT_LABEL: self._attempt})):
                self._delete_quietly(found.id)
        except Exception as exc:  # noqa: BLE001 - e.g. the 401 that failed the creation itself
            log.debug("could not look for sandboxes of attempt %s: %s", self._attempt, exc)

    # -- upload ---------------------------------------------------------------------------

    def upload(self, local_path: Path, name: str) -> str:
        from daytona import DaytonaError

        if not name or "/" in name or "\0" in name or name in (".", "..") or len(name.encode()) > 255:
            raise SandboxError(f"invalid dataset file name {name!r}: expected a plain file name")
        sandbox, work = self.require(), self.work_dir
        if not Path(local_path).is_file():
            raise SandboxError(f"cannot upload {local_path}: not a readable file")
        # Streamed to a temporary name, then renamed: a cut-off upload never leaves a partial
        # file under the dataset's name.
        part, final = f"{work}/{DATA_DIR}/.upload-{uuid.uuid4().hex}.part", f"{work}/{DATA_DIR}/{name}"
        try:
            sandbox.fs.upload_file_stream(str(local_path), part)
            sandbox.fs.move_files(part, final)
        except DaytonaError as exc:
            try:
                sandbox.fs.delete_file(part)
            except Exception:  # noqa: BLE001 - the part may not exist; it is hidden anyway
                pass
            raise translate(exc, f"uploading {Path(local_path).name} to {DATA_DIR}/{name}") from exc
        return f"{DATA_DIR}/{name}"

    # -- run ------------------------------------------------------------------------------

    def run_code(self, code: str, timeout: float | None = None) -> ExecutionResult:
        with self._lock:
            self.require()
            assert self._runner is not None
            return self._runner.run(code, self.config.timeout if timeout is None else timeout)
