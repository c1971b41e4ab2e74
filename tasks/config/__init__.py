"""The analysis config: schema (pydantic) and loading (YAML, ${VAR}, overrides, paths)."""

from .loading import LoadedConfig, config_warnings, load_config, parse_overrides
from .schema import (
    AnalysisConfig,
    DatasetConfig,
    ModelConfig,
    OutputsConfig,
    SandboxConfig,
    ScheduleConfig,
    parse_duration,
    parse_size,
)

__all__ = [
    "AnalysisConfig",
    "DatasetConfig",
    "LoadedConfig",
    "ModelConfig",
    "OutputsConfig",
    "SandboxConfig",
    "ScheduleConfig",
    "config_warnings",
    "load_config",
    "parse_duration",
    "parse_overrides",
    "parse_size",
]
