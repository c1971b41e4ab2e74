"""A Secret block named in the config, read by code that was given no way to read one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.config import ModelConfig, SandboxConfig
from tasks.errors import ModelError, SandboxError
from tasks.models.credentials import anthropic_api_key
from tasks.sandbox.daytona.client import resolve_credentials


def test_the_model_key_names_the_config_key_and_how_to_run(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as caught:
        anthropic_api_key(ModelConfig(api_key_secret="anthropic-key"), tmp_path)
    message = str(caught.value)
    assert not caught.value.transient
    assert message.startswith("model.api_key_secret: names the Prefect Secret block 'anthropic-key'")
    assert "`analyst` CLI" in message and "ANTHROPIC_API_KEY" in message


def test_the_daytona_key_names_the_config_key(tmp_path: Path) -> None:
    config = SandboxConfig(provider="daytona", api_key_secret="daytona-key")
    with pytest.raises(SandboxError, match=r"^sandbox.api_key_secret: names the Prefect Secret block 'daytona-key'"):
        resolve_credentials(config, tmp_path)
