"""Where the Anthropic API key comes from. The key itself is never logged, printed or put in a message."""

from __future__ import annotations

from pathlib import Path

from tasks.config.loading import dotenv_environment
from tasks.config.schema import ModelConfig
from tasks.errors import ModelError
from tasks.secrets import SecretReader, read_named_secret

API_KEY_VARIABLE = "ANTHROPIC_API_KEY"
HOW_TO_FIX = (
    f"set {API_KEY_VARIABLE} in the environment or .env, or name a Prefect Secret block in model.api_key_secret"
)


def anthropic_api_key(config: ModelConfig, config_dir: Path, read_secret: SecretReader | None = None) -> str:
    """The API key: the Prefect Secret block named in ``model.api_key_secret`` when set, else
    ``ANTHROPIC_API_KEY`` from the environment or the nearest ``.env`` (beside the config, then the cwd).

    Raises ``ModelError`` (not transient) when there is none, saying how to provide one.
    """
    if config.api_key_secret:
        return read_named_secret(read_secret, config.api_key_secret, key="model.api_key_secret",
                                 fallback=f"set {API_KEY_VARIABLE} in the environment or .env", error=ModelError)
    key = (dotenv_environment(Path(config_dir)).get(API_KEY_VARIABLE) or "").strip()
    if not key:
        raise ModelError(f"no Anthropic API key found: {HOW_TO_FIX}", transient=False)
    return key
