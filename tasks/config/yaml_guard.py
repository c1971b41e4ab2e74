"""Reading a config's YAML without letting the file decide how much work that is.

Two ways a YAML file can cost far more than its size: it is simply huge (a config holds settings,
not data), or it is an alias bomb ("billion laughs": ten anchors of ten aliases each expand to
10^10 values once anything walks the tree). A config needs no aliases, so the loader refuses any
anchor or alias outright, and the size is checked before the file is read. pandera's
``to_yaml()`` writes no aliases, so schema files pass the same guard.

Booleans are YAML 1.2's: ``true`` and ``false`` only. PyYAML follows YAML 1.1, where ``on``, ``off``,
``yes`` and ``no`` are booleans too, so ``notify: [{block: ..., on: [failed]}]`` would read its key
``on`` as True. The config's fields take ``yes``/``no`` strings as booleans where a boolean is expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tasks.errors import ConfigError, Problem

MAX_CONFIG_BYTES = 1024 * 1024


class _AnchorRefused(Exception):
    def __init__(self, line: int):
        self.line = line


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing the first anchor (&name) or alias (*name) it meets."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _AnchorRefused(event.start_mark.line + 1)
        return super().compose_node(parent, index)


_BOOL = "tag:yaml.org,2002:bool"
_NoAliasLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_NoAliasLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_yaml_text(text: str) -> Any:
    """One YAML document as a config reads it (YAML 1.2 booleans, no anchors or aliases). ``yaml.YAMLError``
    for text that is not YAML; an anchor or alias is one too."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader
    except _AnchorRefused as refused:
        raise yaml.YAMLError(f"line {refused.line}: YAML anchors and aliases are not allowed") from None


def read_config_yaml(path: Path) -> Any:
    """The YAML document in ``path``; ``ConfigError`` for a file too large or one with an anchor or alias.
    ``yaml.YAMLError`` and ``UnicodeDecodeError`` pass through for the caller to report."""
    file = str(path)
    with path.open("rb") as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem(file, "", f"the file is larger than {MAX_CONFIG_BYTES // 1024} KiB, the most a "
                                             "config may be; a config holds settings: put data in a dataset file "
                                             "and a long prompt in fewer words")])
    try:
        return yaml.load(data.decode("utf-8"), Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader
    except _AnchorRefused as refused:
        raise ConfigError([Problem(file, "", f"line {refused.line}: YAML anchors and aliases (&name, *name) are "
                                             "not allowed; write the value out in full")]) from None
