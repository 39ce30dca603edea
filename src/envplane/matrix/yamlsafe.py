"""YAML in, plain data and line numbers out; everything that makes YAML unsafe refused.

Built on PyYAML's composer so that every node keeps its position (libyaml's, over ten times
faster, when it is installed; see load_yaml). Only the YAML core types come back
(dict/list/str/int/float/bool/None). Refused, each as a located MatrixError: malformed text,
duplicate keys, non-core tags (``!!python/...``, ``!custom``), merge keys, non-string keys, a
non-mapping document, and alias bombs: the nodes aliases copy (not the document's own, which
the file size already bounds) and the nesting depth are bounded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from envplane.errors import MatrixError

KeyPath = tuple[str | int, ...]
SourceMap = dict[KeyPath, int]

# Nodes built again because an alias (*name) repeats its anchor; the document's own nodes are
# not counted (a 2 MiB file bounds them, and a large honest matrix is no bomb).
MAX_ALIAS_NODES = 20_000
MAX_DEPTH = 64

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}


class _TooDeep(yaml.YAMLError):
    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__(f"nesting deeper than {MAX_DEPTH} levels")
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader whose composer refuses deep nesting before Python's recursion limit does:
    the reference loader, and the one whose messages every refused document gets."""

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


_FastLoader: Callable[[str], Any] | None = None
try:
    from yaml._yaml import CParser, get_version
except ImportError:  # PyYAML built without libyaml: the pure loader does everything
    pass
else:
    if get_version() >= (0, 2, 5):  # libyaml refuses nesting past 1000 levels from 0.2.5 on

        class _CLoader(CParser, Resolver):
            """libyaml's scanner, parser and composer (12-18x faster on a 350 KB matrix) with
            PyYAML's own resolver: the same nodes, with their marks, for a document both
            accept."""

            def __init__(self, text: str) -> None:
                CParser.__init__(self, text)
                Resolver.__init__(self)

        _FastLoader = _CLoader

# Where libyaml accepts what PyYAML refuses (found by comparing the two on mutated matrices):
# control characters (PyYAML's reader refuses them), tabs, a byte order mark inside the text,
# and '?' (PyYAML refuses it in flow plain scalars). A text with any of them takes the pure
# loader, so whether libyaml is installed never changes which matrices load, or what they load as.
_PURE_ONLY = re.compile(f"[\t\ufeff?]|{yaml.reader.Reader.NON_PRINTABLE.pattern}")


def load_yaml(text: str, filename: str) -> tuple[dict[str, Any], SourceMap]:
    """Parse `text`; return the top-level mapping and a map key path -> 1-based line.

    libyaml does the parsing when it is installed and the text has none of _PURE_ONLY; any
    problem then (malformed, too deep, a tag, an alias bomb, ...) is found again by the pure
    loader, so every refusal reads exactly as it always has."""
    if _FastLoader is not None and not _PURE_ONLY.search(text):
        fast = None
        try:
            fast = _FastLoader(text)
            return _plain(fast.get_single_node(), filename)
        except (yaml.YAMLError, MatrixError):
            pass
        finally:
            if fast is not None:
                fast.dispose()
    return _plain(_compose(text, filename), filename)


def _plain(root: Node | None, filename: str) -> tuple[dict[str, Any], SourceMap]:
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
    """Turns composed nodes into plain data, counting every node an alias copies.

    The composer returns an alias as the very node its anchor names, so a node met a second
    time (by identity), and everything under it, is a copy."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: SourceMap = {(): 1}
        self.seen: set[int] = set()  # id() of nodes built once; the root keeps them alive
        self.copies = 0
        # Constructs scalars exactly as yaml.safe_load would (ints, floats, bools, nulls).
        self.scalars = yaml.constructor.SafeConstructor()

    def fail(self, message: str, node: Node, hint: str | None = None) -> MatrixError:
        return MatrixError(message, file=self.filename, line=_line(node), hint=hint)

    def build(self, node: Node, path: KeyPath, depth: int, copy: bool = False) -> Any:
        if not copy:
            copy = id(node) in self.seen
            self.seen.add(id(node))
        if copy:
            self.copies += 1
            if self.copies > MAX_ALIAS_NODES:
                where = f"the value of {path[0]!r}" if path else "the document"
                raise MatrixError(
                    f"{where} expands to more than {MAX_ALIAS_NODES} nodes copied by aliases",
                    file=self.filename,
                    line=self.lines.get(path[:1], _line(node)),
                    hint="each alias (*name) repeats its anchor's content; expand less of it, "
                    "or share settings with `extends:`",
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
                items.append(self.build(child, (*path, index), depth + 1, copy))
            return items
        if isinstance(node, MappingNode):
            self.check_tag(node, f"{_CORE}map")
            return self.mapping(node, path, depth, copy)
        raise self.fail(f"unsupported YAML node {type(node).__name__}", node)

    def mapping(self, node: MappingNode, path: KeyPath, depth: int, copy: bool) -> dict[str, Any]:
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
            out[key] = self.build(value_node, key_path, depth + 1, copy)
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
