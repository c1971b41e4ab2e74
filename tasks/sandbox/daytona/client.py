"""Talking to the Daytona API: credentials, the SDK client, create parameters, and SDK errors turned
into ``SandboxError`` (transient or not), shared by the provider, the flow hook and the CLI.

The ``daytona`` SDK takes 1.5 s to import: it is imported inside the functions, never at module load.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.config.loading import dotenv_environment
from tasks.config.schema import SandboxConfig, parse_size
from tasks.errors import SandboxError
from tasks.sandbox.base import THREAD_VARS
from tasks.secrets import SecretReader, read_named_secret

DEFAULT_API_URL = "https://app.daytona.io/api"
# Every sandbox this tool creates carries this label, so `analyst sandboxes` finds them and only them.
CREATED_BY = ("created-by", "analyst")
HOW_TO_FIX = ("set DAYTONA_API_KEY in the environment or .env, or name a Prefect Secret block in "
              "sandbox.api_key_secret")


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_url: str
    target: str | None

    def __repr__(self) -> str:  # never print the key
        return f"Credentials(api_url={self.api_url!r}, target={self.target!r})"


def resolve_credentials(config: SandboxConfig, config_dir: Path | None = None,
                        read_secret: SecretReader | None = None) -> Credentials:
    """The API key from the Prefect Secret block named in ``sandbox.api_key_secret``, else
    ``DAYTONA_API_KEY`` (environment, then the nearest ``.env`` beside the config or in the cwd).

    The API URL is read from the process environment only, as the SDK does: a ``.env`` in a project
    folder must not decide where the key is sent. A ``.env`` that tries is refused, not ignored.
    """
    env = dotenv_environment(Path(config_dir) if config_dir else Path.cwd())
    if config.api_key_secret:
        key = read_named_secret(read_secret, config.api_key_secret, key="sandbox.api_key_secret",
                                fallback="set DAYTONA_API_KEY", error=SandboxError)
    else:
        key = (env.get("DAYTONA_API_KEY") or "").strip()
    if not key:
        raise SandboxError(f"no Daytona API key found: {HOW_TO_FIX}")
    url = (os.environ.get("DAYTONA_API_URL") or "").strip()
    from_file = (env.get("DAYTONA_API_URL") or "").strip()
    if from_file and from_file != url:
        raise SandboxError(
            "DAYTONA_API_URL is set in a .env file, but where the Daytona API key is sent is only read from "
            "the process environment (as the daytona SDK does): export DAYTONA_API_URL instead, or remove it "
            "from .env to use Daytona's cloud")
    target = config.target or (env.get("DAYTONA_TARGET") or "").strip() or None
    return Credentials(key, url or DEFAULT_API_URL, target)




def connect(config: SandboxConfig, config_dir: Path | None = None, read_secret: SecretReader | None = None) -> Any:
    """A ``daytona.Daytona`` client. It sends nothing yet: a bad key shows on the first request."""
    from daytona import Daytona, DaytonaConfig

    creds = resolve_credentials(config, config_dir, read_secret)
    return Daytona(DaytonaConfig(api_key=creds.api_key, api_url=creds.api_url, target=creds.target))


def sandbox_env(config: SandboxConfig) -> dict[str, str]:
    """The sandbox's environment variables: fixed values, never copied from the host, only what makes
    Python behave."""
    return {"MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1", **{v: str(config.cpus) for v in THREAD_VARS}}


def create_params(config: SandboxConfig, labels: dict[str, str] | None) -> Any:
    """What the SDK sends to create the sandbox: snapshot or image, labels, env, lifetime, network."""
    from daytona import CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams, Resources

    cidrs, domains = config.network_allow
    common: dict[str, Any] = {
        "language": "python",
        "labels": {**{k: str(v) for k, v in (labels or {}).items() if v}, CREATED_BY[0]: CREATED_BY[1]},
        "env_vars": sandbox_env(config),
        "auto_stop_interval": config.auto_stop_minutes,
        "auto_delete_interval": config.auto_delete_minutes,
        "network_block_all": config.network == "block",
        "network_allow_list": ",".join(cidrs) or None,
        "domain_allow_list": ",".join(domains) or None,
        "public": False,
    }
    if config.image:
        gib = 1024**3
        resources = Resources(cpu=config.cpus, memory=math.ceil(config.memory_bytes / gib),
                              disk=math.ceil(parse_size(config.disk) / gib) if config.disk is not None else None)
        return CreateSandboxFromImageParams(image=config.image, resources=resources, **common)
    # From a snapshot, resources are the snapshot's: the API takes none at creation.
    return CreateSandboxFromSnapshotParams(snapshot=config.snapshot, **common)


def translate(exc: BaseException, doing: str) -> SandboxError:
    """An SDK error as a ``SandboxError`` saying what failed and whether trying again may help."""
    from daytona import DaytonaConnectionError, DaytonaError, DaytonaTimeoutError

    status = getattr(exc, "status_code", None)
    detail = str(getattr(exc, "message", "") or exc).strip()
    if status == 401:
        return SandboxError(f"Daytona rejected the API key while {doing} (HTTP 401): {HOW_TO_FIX}")
    if status == 403:
        return SandboxError(f"Daytona refused {doing} (HTTP 403: {detail}): check the API key's permissions "
                            f"and the organization's limits")
    if status == 429:
        return SandboxError(f"Daytona is rate limiting requests (HTTP 429) while {doing}; this is retried with "
                            f"backoff: if it keeps failing, wait or check your plan's limits", transient=True)
    if status is not None and status >= 500:
        return SandboxError(f"Daytona answered HTTP {status} while {doing} ({detail}); this is retried with "
                            f"backoff: if it keeps failing, check https://status.daytona.io", transient=True)
    if isinstance(exc, DaytonaConnectionError) or _dropped_connection(exc):
        return SandboxError(f"the connection to Daytona failed while {doing} ({detail}); this is retried: if "
                            f"it keeps failing, check DAYTONA_API_URL and the network", transient=True)
    if isinstance(exc, DaytonaTimeoutError):
        return SandboxError(f"Daytona timed out while {doing} ({detail})", transient=True)
    if isinstance(exc, DaytonaError) and "error state" in detail and "build_failed" not in detail:
        return SandboxError(f"the Daytona sandbox failed while {doing} ({detail})", transient=True)
    return SandboxError(f"Daytona failed while {doing}: {detail}")


def _dropped_connection(exc: BaseException) -> bool:
    """A transport failure the SDK reports as a plain DaytonaError (e.g. httpx's "Server disconnected
    without sending a response" when a connection drops mid-upload)."""
    import httpx
    import urllib3.exceptions

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (httpx.TransportError, urllib3.exceptions.ProtocolError, ConnectionError)):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
