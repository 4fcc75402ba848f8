"""Reading plant.yaml into plain data while remembering where every value was written.

PyYAML's composer gives nodes with their line and column; this module turns them into dicts,
lists and scalars itself, so that (1) every value's position is kept by its path, (2) a key
written twice is an error instead of a silent overwrite, and (3) YAML 1.1 surprises do not
apply: `06:00` stays the text "06:00" (not the number 360) and `no` stays "no" (not false). Only
`true`/`false`, `null`/`~`, decimal integers and decimal numbers are typed; everything else is
text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]

_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$|^[-+]?[0-9]+[eE][-+]?[0-9]+$")
_MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a plant file, where it was written (line and column from 1)."""

    file: str
    line: int
    column: int
    message: str
    path: str = ""

    def __str__(self) -> str:
        where = f" {self.path}:" if self.path else ""
        return f"{self.file}:{self.line}:{self.column}:{where} {self.message}"


@dataclass
class Source:
    """A read plant file: the data, and the position of every path in it."""

    file: str
    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Line and column of the value at `path` (of its key with `key`), or of its nearest parent."""
        table = self.key_positions if key else self.positions
        for length in range(len(path), -1, -1):
            prefix = path[:length]
            if prefix in table:
                return table[prefix]
            if key and prefix in self.positions:
                return self.positions[prefix]
        return (1, 1)

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem:
        line, column = self.position(path, key=key)
        return Problem(self.file, line, column, message, path_text(path))


class SourceError(Exception):
    """The file is not readable YAML (or not a mapping at the top)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def path_text(path: Path) -> str:
    """`sites[0].zones[2].subnets[1]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_source(text: str, file: str, expected: str = "version: 1 and sites:") -> Source:
    """Parse YAML text into a `Source`; `SourceError` with the position when it is not valid YAML,
    empty or not a mapping (`expected`: the top keys the error names, a plant file's by default)."""
    if len(text.encode()) > _MAX_BYTES:
        raise SourceError(Problem(file, 1, 1, f"the file is larger than {_MAX_BYTES // 2**20} MiB"))
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise SourceError(Problem(file, 1, 1, f"nested too deeply (more than {MAX_DEPTH} levels)")) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SourceError(Problem(file, line, column, f"not valid YAML: {error.problem}")) from None
    except yaml.YAMLError as error:
        raise SourceError(Problem(file, 1, 1, f"not valid YAML: {error}")) from None
    if node is None:
        raise SourceError(Problem(file, 1, 1, f"the file is empty: expected {expected}"))
    source = Source(file, None)
    source.data = _convert(node, (), source)
    if not isinstance(source.data, dict):
        raise SourceError(source.problem((), f"the top of the file must be a mapping ({expected})"))
    return source


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node: yaml.Node, path: Path, source: Source, seen: set[int] | None = None) -> Any:
    """Plain data of a node. Anchors and aliases are refused (plant.yaml has no use for them, and
    a few lines of aliases can expand into billions of values), and so is nesting past MAX_DEPTH."""
    seen = set() if seen is None else seen
    if id(node) in seen or getattr(node, "anchor", None):
        raise SourceError(
            Problem(source.file, *_mark(node), "YAML anchors and aliases (&name, *name) are not allowed here")
        )
    seen.add(id(node))
    if len(path) > MAX_DEPTH:
        raise SourceError(
            Problem(source.file, *_mark(node), f"nested too deeply (more than {MAX_DEPTH} levels)")
        )
    source.positions[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        return _mapping(node, path, source, seen)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, index), source, seen) for index, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    return _scalar(node)


def _mapping(node: yaml.MappingNode, path: Path, source: Source, seen: set[int]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise SourceError(Problem(source.file, *_mark(key_node), "a key must be plain text"))
        key = str(key_node.value)
        if key in result:
            line, column = _mark(key_node)
            first = source.key_positions[(*path, key)][0]
            raise SourceError(
                Problem(source.file, line, column, f"key {key!r} is written twice (first on line {first})")
            )
        source.key_positions[(*path, key)] = _mark(key_node)
        result[key] = _convert(value_node, (*path, key), source, seen)
    return result


def _scalar(node: yaml.ScalarNode) -> Any:
    value = str(node.value)
    if node.style in ("'", '"', "|", ">"):
        return value
    lowered = value.lower()
    if lowered in ("", "~", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    return value
