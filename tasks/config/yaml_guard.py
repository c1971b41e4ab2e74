"""Reading a config's YAML without letting the file decide how much work that is.

Two ways a YAML file can cost far more than its size: it is simply huge (a config holds settings,
not data), or it is an alias bomb ("billion laughs": ten anchors of ten aliases each expand to
10^10 values once anything walks the tree, though PyYAML itself builds it quickly with shared
references). Both are refused before anything walks the tree: the size before reading, the
expansion on PyYAML's node graph, where every anchor is counted once (linear in the file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tasks.errors import ConfigError, Problem

MAX_CONFIG_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 100_000  # values once every alias is expanded; a real config has hundreds


def read_config_yaml(path: Path) -> Any:
    """The YAML document in ``path``; ``ConfigError`` for a file too large or an alias bomb.
    ``yaml.YAMLError`` and ``UnicodeDecodeError`` pass through for the caller to report."""
    file = str(path)
    with path.open("rb") as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem(file, "", f"the file is larger than {MAX_CONFIG_BYTES // 1024} KiB, the most a "
                                             "config may be; a config holds settings: put data in a dataset file "
                                             "and a long prompt in fewer words")])
    loader = yaml.SafeLoader(data.decode("utf-8"))
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node)
        if expanded > MAX_EXPANDED_NODES:
            raise ConfigError([Problem(file, "", f"its aliases (*name) expand to more than {MAX_EXPANDED_NODES:,} "
                                                 "values (a YAML alias bomb?); write the values out, or use fewer "
                                                 "nested aliases")])
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(root: yaml.Node) -> int:
    """How many values the tree holds with every alias expanded, counting each shared node once
    (memoized); ``ConfigError``-free: a cycle (an alias inside its own anchor) counts as unbounded."""
    sizes: dict[int, int] = {}
    unbounded = MAX_EXPANDED_NODES + 1
    # Iterative post-order walk: a deep file must not hit Python's recursion limit here.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            sizes[key] = min(total, unbounded)
            continue
        if key in sizes:
            continue
        if key in on_path:
            return unbounded  # a recursive alias: endless once expanded
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
