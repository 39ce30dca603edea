"""YAML in, plain data and line numbers out; everything that makes YAML unsafe refused.

Built on PyYAML's pure-Python composer so that every node keeps its position. Only the YAML
core types come back (dict/list/str/int/float/bool/None). Refused, each as a located
MatrixError: malformed text, duplicate keys, non-core tags (``!!python/...``, ``!custom``),
merge keys, non-string keys, a non-mapping document, and alias bombs (node count including
alias expansion, and nesting depth, are bounded).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from envplane.errors import MatrixError

KeyPath = tuple[str | int, ...]
SourceMap = dict[KeyPath, int]

MAX_NODES = 20_000
MAX_DEPTH = 64

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}


class _TooDeep(yaml.YAMLError):
    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__(f"nesting deeper than {MAX_DEPTH} levels")
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader whose composer refuses deep nesting before Python's recursion limit does."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str, filename: str) -> tuple[dict[str, Any], SourceMap]:
    """Parse `text`; return the top-level mapping and a map key path -> 1-based line."""
    root = _compose(text, filename)
    if root is None:
        raise MatrixError(
            "the file is empty",
            file=filename,
            line=1,
            hint="start from examples/sunday/config/environment-matrix.yaml",
        )
    if not isinstance(root, MappingNode):
        raise MatrixError(
            "the top level must be a mapping of keys (environments:, ...)",
            file=filename,
            line=_line(root),
        )
    builder = _Builder(filename)
    data = builder.build(root, (), 0)
    assert isinstance(data, dict)
    return data, builder.lines


def _compose(text: str, filename: str) -> Node | None:
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader checks for control characters here
        return loader.get_single_node()
    except _TooDeep as exc:
        raise MatrixError(
            str(exc), file=filename, line=_mark_line(exc.mark) or 1, hint="flatten the structure"
        ) from None
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "malformed YAML"
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
        raise MatrixError(
            f"malformed YAML: {problem}",
            file=filename,
            line=_mark_line(exc.problem_mark or exc.context_mark) or 1,
            hint="check indentation, quotes and brackets near this line",
        ) from None
    except yaml.reader.ReaderError as exc:
        raise MatrixError(
            "malformed YAML: control or special characters are not allowed",
            file=filename,
            line=text.count("\n", 0, max(exc.position, 0)) + 1,
            hint="remove control characters; save the file as UTF-8",
        ) from None
    except yaml.YAMLError as exc:
        raise MatrixError(f"malformed YAML: {exc}", file=filename, line=1) from None
    finally:
        if loader is not None:
            loader.dispose()


def _mark_line(mark: yaml.Mark | None) -> int | None:
    return None if mark is None else mark.line + 1


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


class _Builder:
    """Turns composed nodes into plain data, counting every node an alias re-uses."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: SourceMap = {(): 1}
        self.count = 0
        # Constructs scalars exactly as yaml.safe_load would (ints, floats, bools, nulls).
        self.scalars = yaml.constructor.SafeConstructor()

    def fail(self, message: str, node: Node, hint: str | None = None) -> MatrixError:
        return MatrixError(message, file=self.filename, line=_line(node), hint=hint)

    def build(self, node: Node, path: KeyPath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            where = f"the value of {path[0]!r}" if path else "the document"
            raise MatrixError(
                f"{where} expands to more than {MAX_NODES} nodes",
                file=self.filename,
                line=self.lines.get(path[:1], _line(node)),
                hint="aliases (*name) repeat their content; expand less of it",
            )
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels (recursive alias?)", node)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            self.check_tag(node, f"{_CORE}seq")
            items: list[Any] = []
            for index, child in enumerate(node.value):
                self.lines[(*path, index)] = _line(child)
                items.append(self.build(child, (*path, index), depth + 1))
            return items
        if isinstance(node, MappingNode):
            self.check_tag(node, f"{_CORE}map")
            return self.mapping(node, path, depth)
        raise self.fail(f"unsupported YAML node {type(node).__name__}", node)

    def mapping(self, node: MappingNode, path: KeyPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node)
            key_path = (*path, key)
            if key in out:
                first = self.lines[key_path]
                raise self.fail(
                    f"duplicate key {key!r} (first at line {first}, again at line "
                    f"{_line(key_node)})",
                    key_node,
                    hint="keep one of the two; YAML would silently drop the first",
                )
            self.lines[key_path] = _line(key_node)
            out[key] = self.build(value_node, key_path, depth + 1)
        return out

    def key(self, node: Node) -> str:
        if isinstance(node, ScalarNode) and node.tag == f"{_CORE}merge":
            raise self.fail(
                "merge keys (<<) are not supported",
                node,
                hint="use `extends:` or `templates:` to share settings",
            )
        if not isinstance(node, ScalarNode):
            raise self.fail("a key must be a plain string, not a list or mapping", node)
        value = self.scalar(node)
        if not isinstance(value, str):
            raise self.fail(
                f"key {node.value!r} is read as {type(value).__name__}, not a string",
                node,
                hint=f'quote it: "{node.value}"',
            )
        return value

    def scalar(self, node: ScalarNode) -> Any:
        self.check_tag(node, None)
        if node.tag in (f"{_CORE}str", f"{_CORE}timestamp"):
            # Dates stay text: the matrix has no date fields and str round-trips exactly.
            return str(node.value)
        try:
            return self.scalars.construct_object(node)
        except (ValueError, KeyError, TypeError, yaml.YAMLError):
            raise self.fail(
                f"{node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]}", node
            ) from None

    def check_tag(self, node: Node, expected: str | None) -> None:
        ok = node.tag in _SCALAR_TAGS if expected is None else node.tag == expected
        if not ok:
            shown = node.tag.replace(_CORE, "!!", 1)
            raise self.fail(
                f"tag {shown!r} is not allowed",
                node,
                hint="only plain YAML (strings, numbers, booleans, null, lists, "
                "mappings) is accepted; remove the !tag",
            )
