"""``{{ }}`` templates in a config: a run's time and window in paths, URLs, queries, prompts and checks.

Jinja2's sandboxed environment, as Prefect uses for its own templates: ``{{ }}`` cannot be confused
with ``${VAR}`` (substituted first, from the environment), and a template can call no unsafe method.
An unknown variable is an error that names it rather than an empty string in a path or a query.

Variables: ``as_of`` (the run's time) and, when the config has a ``window``, ``window.start``,
``window.end`` (exclusive), ``window.first_day`` and ``window.last_day`` (inclusive, for prose).
Filters: ``date(format)`` (strftime: ``{{ window.start | date('%Y-%m-%d') }}``) and ``iso``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from tasks.errors import ConfigError, Problem

__all__ = ["has_template", "render", "render_strings"]


def _date(value: Any, format: str = "%Y-%m-%d") -> str:  # noqa: A002 - the name a template writes: date(format=...)
    if not isinstance(value, (date, datetime)):
        raise TemplateError(f"the date filter expects a date or a date-time, got {type(value).__name__}")
    return value.strftime(format)


def _iso(value: Any) -> str:
    if not isinstance(value, (date, datetime)):
        raise TemplateError(f"the iso filter expects a date or a date-time, got {type(value).__name__}")
    return value.isoformat()


def _environment() -> SandboxedEnvironment:
    # No autoescape: the output is a path, a URL, SQL or prose, never HTML; keep_trailing_newline so a
    # YAML block scalar (`prompt: |`) keeps its last line end.
    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["date"] = _date
    env.filters["iso"] = _iso
    return env


_ENV = _environment()


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def render(text: str, context: Mapping[str, Any], *, where: tuple[str, str]) -> str:
    """``text`` with its ``{{ }}`` filled from ``context``; ``where`` is (file, key) for the error.

    Raises ConfigError naming the file, the key and the unknown variable or the syntax error.
    """
    if not has_template(text):
        return text
    try:
        return _ENV.from_string(text).render(context)
    except UndefinedError as exc:
        raise ConfigError([Problem(*where, _unknown_variable(exc, context))]) from None
    except TemplateSyntaxError as exc:
        raise ConfigError([Problem(*where, f"template syntax error: {exc.message} (line {exc.lineno}); "
                                   "write a literal '{{' inside {% raw %}...{% endraw %}")]) from None
    except TemplateError as exc:
        raise ConfigError([Problem(*where, f"template error: {exc.message or exc}")]) from None
    except (TypeError, ValueError, ArithmeticError) as exc:  # a filter or method given the wrong argument
        raise ConfigError([Problem(*where, f"template error: {exc}")]) from None


def render_strings(value: Any, context: Mapping[str, Any], file: str, key: str = "",
                   problems: list[Problem] | None = None) -> Any:
    """Every string in a YAML tree rendered; problems are collected into ``problems`` when given."""
    if isinstance(value, dict):
        return {k: render_strings(v, context, file, f"{key}.{k}" if key else str(k), problems)
                for k, v in value.items()}
    if isinstance(value, list):
        return [render_strings(v, context, file, f"{key}[{i}]", problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    try:
        return render(value, context, where=(file, key))
    except ConfigError as exc:
        if problems is None:
            raise
        problems.extend(exc.problems)
        return value


def _unknown_variable(exc: UndefinedError, context: Mapping[str, Any]) -> str:
    known = ", ".join(sorted(context)) or "none"
    hint = ("; add `window:` to the config (e.g. `window: 7d`) to use window.*"
            if "window" not in context and "'window'" in (exc.message or "") else "")
    return f"unknown template variable: {exc.message} (known: {known}){hint}"
