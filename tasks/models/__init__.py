"""Model providers behind one interface: ``anthropic`` (the real one) and ``replay``."""

from __future__ import annotations

from pathlib import Path

from tasks.config import ModelConfig
from tasks.secrets import SecretReader

from .base import ModelProvider, ModelRequest, ModelTurn, Usage
from .tools import run_python_tool, tool_definitions


def create_provider(config: ModelConfig, config_dir: Path, *, replay: str | Path | None = None,
                    read_secret: SecretReader | None = None) -> ModelProvider:
    """``replay`` (the CLI's ``--replay``) wins over the configured provider. ``read_secret`` reads the
    Secret block named in ``model.api_key_secret``."""
    if replay is not None or config.provider == "replay":
        from .replay import ReplayProvider  # noqa: PLC0415 - an import cycle: replay imports tasks.transcript

        path = Path(replay) if replay is not None else config_dir / str(config.transcript)
        return ReplayProvider(path)
    from .anthropic_provider import AnthropicProvider  # noqa: PLC0415 - anthropic takes 1.6 s; a replay needs none

    return AnthropicProvider.from_config(config, config_dir, read_secret)


__all__ = ["ModelProvider", "ModelRequest", "ModelTurn", "Usage", "create_provider", "run_python_tool",
           "tool_definitions"]
