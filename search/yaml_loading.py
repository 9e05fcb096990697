"""Reading YAML written by people: duplicate keys are an error, not the last one winning.

PyYAML's safe loader keeps the last of two equal keys in a mapping, so a config that sets a
key twice silently ignores the first; here it is refused, with the line.

Example:
    >>> try:
    ...     yaml.load("a: 1\\na: 2\\n", Loader=UniqueKeyLoader)
    ... except yaml.YAMLError as e:
    ...     print(yaml_problem(e))
    found duplicate key 'a' (first on line 1) (line 2)
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode


class UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first on line {first})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error in one line: the problem and where."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)
