"""Read an analysis config: YAML -> --set overrides -> {{ }} for the run's time -> ${VAR} -> pydantic -> paths.

Every problem is collected and reported together as one line each (file, key path, what was
expected), so a user fixes a config in one pass rather than one error per run.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ValidationError

from tasks.errors import ConfigError, Problem

from .overrides import apply_overrides, parse_overrides
from .schema import AnalysisConfig, DatasetConfig, WindowConfig
from .source_schema import is_glob, is_object_store
from .templating import render_strings
from .window import RunTime, parse_as_of, utc_now
from .yaml_guard import read_config_yaml

__all__ = ["LoadedConfig", "config_warnings", "dotenv_environment", "load_config", "parse_overrides"]

# API keys are read where they are used (tasks/models/credentials.py, tasks/sandbox/daytona/client.py),
# never through the config, which is sent to the model, kept in transcripts and shown in Prefect.
SECRET_VARIABLES = frozenset({"ANTHROPIC_API_KEY", "DAYTONA_API_KEY"})
_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class LoadedConfig:
    """A checked config and where it came from; relative paths resolve against ``base_dir``."""

    config: AnalysisConfig
    path: Path
    run_time: RunTime = field(default_factory=lambda: RunTime(utc_now()))

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        return (self.base_dir / os.path.expanduser(relative)).resolve()

    @property
    def outputs_dir(self) -> Path:
        return self.resolve(self.config.outputs.dir)


def load_config(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None, *,
                as_of: datetime | str | None = None) -> LoadedConfig:
    """The checked config for a run at ``as_of`` (default: now), its ``{{ }}`` templates filled in.

    An ``as_of`` text without a UTC offset (``2026-11-02T07:00``) is read in the schedule's time zone.
    """
    path = Path(path).expanduser().resolve()
    file = str(path)
    if not path.is_file():
        raise ConfigError([Problem(file, "", "no such file; expected the path of an analysis YAML config")])
    try:
        raw = read_config_yaml(path)  # refuses a huge file or an alias bomb before anything walks it
    except UnicodeDecodeError:
        raise ConfigError([Problem(file, "", "not UTF-8 text; expected a YAML file")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(file, where, f"invalid YAML: {reason}")]) from None
    if not isinstance(raw, dict):
        raise ConfigError([Problem(file, "", "expected a mapping of keys (name, datasets, prompt, ...) at the top")])

    problems, overridden = apply_overrides(raw, overrides, file)

    env = dotenv_environment(path.parent)
    interpolated = _interpolate(raw, env, file, "", problems)
    if problems:
        raise ConfigError(problems)
    run_time = _run_time(interpolated, as_of or utc_now(), file, problems)  # the window may use ${VAR}
    if run_time is not None:  # else the window, time zone or as_of is wrong, and a check says so
        # {{ }} before ${VAR}: a value from the environment (a password, a URL) is never read as a template.
        interpolated = _interpolate(render_strings(raw, run_time.template_context(), file, "", problems), env, file,
                                    "", [])
    if problems:
        raise ConfigError(problems)
    raw = interpolated

    try:
        config = AnalysisConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_from_overrides(_problems_from(exc, file), overridden)) from None

    assert run_time is not None  # a config that validates has a valid window, time zone and as_of
    loaded = LoadedConfig(config, path, run_time)
    missing = [
        Problem(file, f"datasets[{i}].path", _why_not_a_file(loaded.resolve(local)))
        for i, d in enumerate(config.datasets)
        if (local := _local_file(d)) is not None and not loaded.resolve(local).is_file()
    ]
    missing += [
        Problem(file, f"datasets[{i}].schema", f"schema file not found: {loaded.resolve(d.schema_)}")
        for i, d in enumerate(config.datasets)
        if isinstance(d.schema_, str) and not loaded.resolve(d.schema_).is_file()
    ]
    if missing:
        raise ConfigError(missing)
    return loaded


def _run_time(raw: dict[str, Any], as_of: datetime | str, file: str, problems: list[Problem]) -> RunTime | None:
    """The run's time in the schedule's zone and its window; None when those keys are wrong."""
    schedule = raw.get("schedule")
    tz = str(schedule.get("timezone", "UTC")) if isinstance(schedule, dict) else "UTC"
    try:
        window = WindowConfig.model_validate(raw["window"]) if raw.get("window") is not None else None
        ZoneInfo(tz)
    except (ValidationError, ValueError, LookupError):
        return None  # the full check reports the window or the time zone
    if isinstance(as_of, str):
        try:
            as_of = parse_as_of(as_of, tz)
        except ValueError as exc:
            problems.append(Problem(file, "as_of", f"{exc} (the run's time: --as-of or the flow's as_of)"))
            return None
    return RunTime.for_config(as_of, window, tz)


def _local_file(dataset: DatasetConfig) -> str | None:
    """The path, when it names one file here: not a query, a URL, a bucket or a glob (read at run time)."""
    path = dataset.path
    return path if path is not None and not dataset.is_url and not is_object_store(path) and not is_glob(path) \
        else None


def config_warnings(config: AnalysisConfig) -> list[str]:
    """Things that work today but will not for long, such as a model past its deprecation date."""
    warnings = []
    deprecated: dict[str, str] = {}
    if config.model.provider == "anthropic":  # a replay never imports anthropic (1.6 s)
        try:
            # The SDK's own list, kept current by its releases; private, hence the ImportError fallback.
            from anthropic import _data  # noqa: PLC0415, PLC2701

            deprecated = _data.DEPRECATED_MODELS
        except (ImportError, AttributeError):  # pragma: no cover - a future SDK may move it; a courtesy
            pass
    if config.model.name in deprecated:
        warnings.append(
            f"model.name: {config.model.name!r} is deprecated and reaches end of life on "
            f"{deprecated[config.model.name]}; use a current model such as 'claude-sonnet-5-5'"
        )
    if config.sandbox.isolation == "none":
        warnings.append("sandbox.isolation: 'none' runs model-written code unsandboxed on this machine")
    return warnings


def dotenv_environment(config_dir: Path) -> dict[str, str | None]:
    """The process environment over the nearest ``.env`` files (beside the config, then the cwd).

    Variables already set win over ``.env``, as python-dotenv does by default. The values are only
    read here, not exported, so they never leak into a sandbox started by this process.
    """
    env: dict[str, str | None] = {}
    for start in (Path.cwd(), config_dir):
        found = _find_dotenv_from(start)
        if found:
            env.update(dotenv_values(found))
    env.update(os.environ)
    return env


def _find_dotenv_from(start: Path) -> Path | None:
    return next((f / ".env" for f in (start, *start.parents) if (f / ".env").is_file()), None)


def _interpolate(value: Any, env: dict[str, str | None], file: str, key: str, problems: list[Problem]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, env, file, _join(key, str(k)), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, file, f"{key}[{i}]", problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if name in SECRET_VARIABLES:
            problems.append(Problem(file, key, f"${{{name}}}: an API key cannot be put in the config (it would "
                                    "reach the prompt, the transcript or Prefect); the key is read from the "
                                    "environment, .env or a Secret block by itself, remove the reference"))
            return ""
        found = env.get(name)
        if found is None:
            if default is not None:
                return default
            problems.append(Problem(file, key, f"environment variable {name} is not set; set it or add it to .env"))
            return ""
        return found

    return _VAR.sub(substitute, value)


def _why_not_a_file(path: Path) -> str:
    if path.exists():  # a folder, a device or a pipe (perhaps through a symlink): nothing to read as a table
        return f"not a regular file: {path}; expected a data file"
    return f"file not found: {path}"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _problems_from(exc: ValidationError, file: str) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        # A failed union member shows up as an extra loc element named after its type; drop those.
        type_names = {"str", "dict[str,any]", "int", "float"}
        loc = [p for p in loc if not (isinstance(p, str) and ("[" in p or p in type_names))]
        key = _format_loc(loc)
        if error["type"] == "extra_forbidden":
            problems.append(Problem(file, key, _unknown_key_message(exc, loc)))
        elif error["type"] == "missing":
            problems.append(Problem(file, key, "required key is missing"))
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(Problem(file, key, f"{message} (got {_short(error.get('input'))})"
                                    if error["type"] not in {"value_error", "assertion_error"} else message))
    # Pydantic reports each union member's failure; one line per key is enough.
    unique: dict[tuple[str, str], Problem] = {}
    for problem in problems:
        unique.setdefault((problem.key, problem.message), problem)
    return list(unique.values())


def _from_overrides(problems: list[Problem], overridden: set[str]) -> list[Problem]:
    """Say which problems come from an override: the bad value is not in the file."""
    def from_override(key: str) -> bool:
        return any(key == k or key.startswith((f"{k}.", f"{k}[")) for k in overridden)

    return [Problem(p.file, p.key, f"{p.message} (set by an override, not the file: fix or remove the override)")
            if from_override(p.key) else p for p in problems]


def _format_loc(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _unknown_key_message(exc: ValidationError, loc: list[Any]) -> str:
    model = _model_at(AnalysisConfig, loc[:-1])
    allowed = sorted(f.alias or name for name, f in model.model_fields.items()) if model else []
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key{hint} expected one of: {', '.join(allowed)}" if allowed else "unknown key"


def _model_at(model: type[BaseModel], loc: list[Any]) -> type[BaseModel] | None:
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if nested is None:
            inner = [a for c in candidates for a in getattr(c, "__args__", ())]
            nested = next((c for c in inner if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if nested is None:
            return None
        model = nested
    return model


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
