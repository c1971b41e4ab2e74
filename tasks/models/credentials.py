"""Where the Anthropic API key comes from. The key itself is never logged, printed or put in a message."""

from __future__ import annotations

from pathlib import Path

from tasks.config.loading import dotenv_environment
from tasks.config.schema import ModelConfig
from tasks.errors import ModelError

API_KEY_VARIABLE = "ANTHROPIC_API_KEY"
HOW_TO_FIX = (
    f"set {API_KEY_VARIABLE} in the environment or .env, or name a Prefect Secret block in model.api_key_secret"
)


def anthropic_api_key(config: ModelConfig, config_dir: Path) -> str:
    """The API key: the Prefect Secret block named in ``model.api_key_secret`` when set, else
    ``ANTHROPIC_API_KEY`` from the environment or the nearest ``.env`` (beside the config, then the cwd).

    Raises ``ModelError`` (not transient) when there is none, saying how to provide one.
    """
    if config.api_key_secret:
        return _from_secret_block(config.api_key_secret)
    key = (dotenv_environment(Path(config_dir)).get(API_KEY_VARIABLE) or "").strip()
    if not key:
        raise ModelError(f"no Anthropic API key found: {HOW_TO_FIX}", transient=False)
    return key


def _from_secret_block(name: str) -> str:
    from prefect.blocks.system import Secret

    try:
        # _sync=True: a plain call, even when this runs inside an async flow.
        value = Secret.load(name, _sync=True).get()
    except ValueError as exc:  # Prefect's "Unable to find block document named ..."
        raise ModelError(
            f"model.api_key_secret: no Prefect Secret block named {name!r} ({exc}); create it in the Prefect UI "
            f"(Blocks > Secret) or with Secret(value=...).save({name!r}), or unset model.api_key_secret and "
            f"set {API_KEY_VARIABLE} in the environment or .env",
            transient=False,
        ) from None
    except Exception as exc:  # the Prefect API is unreachable, ...: worth another try later
        raise ModelError(
            f"model.api_key_secret: could not load the Prefect Secret block {name!r} "
            f"({type(exc).__name__}: {exc}); check that the Prefect API is reachable (PREFECT_API_URL)",
            transient=True,
        ) from None
    if not isinstance(value, str) or not value.strip():
        kind = "empty" if isinstance(value, str) or value is None else f"a {type(value).__name__}, not a string"
        raise ModelError(
            f"model.api_key_secret: the Prefect Secret block {name!r} holds {kind}; store the API key itself "
            f"as its value",
            transient=False,
        )
    return value.strip()
