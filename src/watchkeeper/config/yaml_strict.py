"""Reading the config file's YAML strictly: problems become (line, message), never tracebacks.

Three things plain `yaml.safe_load` lets through are refused here: a key written twice in
one mapping (the first would be dropped silently), bytes that are not UTF-8, and aliases
that expand to more nodes than any real config has (an "alias bomb": a few lines that
become billions of values once the tree is walked, as env expansion and validation do).
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_EXPANDED_NODES = 100_000
"""Nodes the document may have with every alias expanded (a 5,000-check config has ~10⁵)."""


class YamlProblem(Exception):
    """The document cannot be used: `line` (1-based) and `message` say where and why."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def decode(data: bytes) -> str:
    """The file's text; YamlProblem at the line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlProblem(
            line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def check_tree(root: yaml.Node | None) -> None:
    """Refuse duplicate keys and documents whose aliases expand beyond MAX_EXPANDED_NODES."""
    if root is None:
        return
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    # Iterative post-order walk: a deep document must not hit Python's recursion limit.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            visiting.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_EXPANDED_NODES:
                raise YamlProblem(
                    _line(node),
                    f"aliases expand this document beyond {MAX_EXPANDED_NODES} values; "
                    "write the repeated parts out or use fewer aliases",
                )
            continue
        if key in sizes:
            continue
        if key in visiting:
            raise YamlProblem(_line(node), "an alias refers to the node that contains it")
        visiting.add(key)
        if isinstance(node, yaml.MappingNode):
            _refuse_duplicates(node)
        stack.append((node, True))
        for child in _children(node):
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _refuse_duplicates(node: yaml.MappingNode) -> None:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _value in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<` merges may override on purpose; complex keys are not config
        first = seen.get(key_node.value)
        if first is not None:
            raise YamlProblem(
                _line(key_node),
                f"key {key_node.value!r} appears twice in this mapping, at line "
                f"{_line(first)} and line {_line(key_node)}; the first would be ignored",
            )
        seen[key_node.value] = key_node


def load(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for mapping errors to lines) and the data; YamlProblem if refused."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        check_tree(root)
        # Composed again: constructing merges `<<` into the nodes, and `root` must stay as
        # written for line lookups.
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem(line, str(problem)) from None
    except RecursionError:
        raise YamlProblem(1, "the document is nested too deeply") from None
    return root, data
