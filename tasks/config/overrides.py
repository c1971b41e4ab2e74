"""Overrides on top of a config file: the CLI's ``--set KEY=VALUE`` and the flow's ``overrides`` parameter.

Both forms apply the same way and fail with the same errors:

- dotted keys: ``{"model.max_iterations": 3, "datasets.0.on_invalid": "warn"}`` (what ``--set`` builds);
- nested mappings: ``{"model": {"max_iterations": 3}}`` (what ``prefect deployment run --param
  overrides='{...}'`` and the Prefect UI's JSON editor give).

A mapping merges into the file's mapping at that key (``{"model": {"max_iterations": 3}}`` keeps
the file's ``model.name``); a mapping with item numbers as keys merges into a list
(``{"datasets": {"0": {"on_invalid": "warn"}}}``); anything else replaces the value.
"""

from __future__ import annotations

from typing import Any

import yaml

from tasks.config.yaml_guard import load_yaml_text
from tasks.errors import ConfigError, Problem

FIX = "fix or remove that override (--set, or the flow's overrides parameter)"


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["model.max_iterations=3"]`` -> ``{"model.max_iterations": 3}``; values are YAML scalars."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError([Problem("--set", pair, "expected KEY=VALUE, e.g. model.max_iterations=3")])
        try:
            result[key.strip()] = load_yaml_text(value) if value.strip() else ""
        except yaml.YAMLError:
            result[key.strip()] = value
    return result


def apply_overrides(tree: dict[str, Any], overrides: dict[str, Any] | None,
                    file: str) -> tuple[list[Problem], set[str]]:
    """Apply ``overrides`` to the parsed YAML ``tree`` in place.

    Returns the problems (one per override that cannot apply, naming its key and the fix) and the
    keys that were set, in the form validation errors use (``datasets[0].on_invalid``), so that a
    bad value can be traced back to its override rather than looked for in the file.
    """
    problems: list[Problem] = []
    touched: set[str] = set()
    if overrides is None:
        return problems, touched
    if not isinstance(overrides, dict):
        problems.append(Problem(file, "overrides", (
            f"expected a mapping of keys to values, got {type(overrides).__name__}; "
            "e.g. {\"model.max_iterations\": 3} or {\"model\": {\"max_iterations\": 3}}")))
        return problems, touched
    for key, value in overrides.items():
        _apply(tree, [], str(key), value, file, problems, touched)
    return problems, touched


def _apply(node: Any, done: list[str | int], dotted: str, value: Any, file: str,
           problems: list[Problem], touched: set[str]) -> None:
    parts = dotted.split(".")
    if any(not part.strip() for part in parts):
        problems.append(Problem(file, _shown(done, parts), "empty key in an override: expected dotted keys "
                                f"such as model.max_iterations; {FIX}"))
        return
    path = list(done)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        step = _step(node, path, part, file, problems)
        if step is None:
            return
        if last:
            if isinstance(value, dict) and value and isinstance(node, dict) and node.get(step) is None:
                node[step] = {}  # a mapping for a key the file leaves out: built key by key, dots and all
            if isinstance(value, dict) and value and isinstance(_get(node, step), (dict, list)):
                for sub_key, sub_value in value.items():  # merge, key by key
                    _apply(_get(node, step), [*path, step], str(sub_key), sub_value, file, problems, touched)
            else:
                node[step] = value
                touched.add(_loc([*path, step]))
            return
        child = _get(node, step)
        if child is None and isinstance(node, dict):
            child = node[step] = {}
        if not isinstance(child, (dict, list)):
            kind = type(child).__name__
            problems.append(Problem(file, _shown(path, parts[i:]),
                                    f"'{_loc([*path, step])}' is a {kind}, not a mapping or a list, so it has no "
                                    f"'{parts[i + 1]}'; override '{_loc([*path, step])}' itself, or {FIX}"))
            return
        node, path = child, [*path, step]


def _step(node: Any, path: list[str | int], part: str, file: str, problems: list[Problem]) -> str | int | None:
    """The key or list index ``part`` names in ``node``, or None (with a problem) if it names none."""
    if isinstance(node, dict):
        return part
    try:
        index = int(part)
    except ValueError:
        index = None
    if index is None or not 0 <= index < len(node):
        where = _loc(path) or "(top level)"
        expected = f"an item number from 0 to {len(node) - 1}" if node else "no item number: the list is empty"
        problems.append(Problem(file, _shown(path, [part]), f"'{where}' is a list of {len(node)} item(s): "
                                f"expected {expected} after it, e.g. {where}.0; got {part!r}; {FIX}"))
        return None
    return index


def _get(node: Any, step: str | int) -> Any:
    return node.get(step) if isinstance(node, dict) else node[step]


def _loc(path: list[str | int]) -> str:
    """``["datasets", 0, "path"]`` -> ``datasets[0].path``, as validation errors name keys."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shown(path: list[str | int], rest: list[str]) -> str:
    return ".".join([*(str(p) for p in path), *rest])
