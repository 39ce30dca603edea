"""A rewrite of the parsed template that charges loops, macros, calls and concatenation to
the render's budget."""

from __future__ import annotations

from typing import Any

from jinja2 import (
    Environment,
    nodes,
)
from jinja2.visitor import NodeTransformer


def _literal_size(body: list[nodes.Node]) -> int:
    return sum(len(data.data) for node in body for data in node.find_all(nodes.TemplateData))


def _internal(node: nodes.Expr | None, name: str, *args: Any, lineno: int) -> nodes.Filter:
    consts: list[nodes.Expr] = [nodes.Const(a, lineno=lineno) for a in args]
    return nodes.Filter(node, name, consts, [], None, None, lineno=lineno)


class _Bounds(NodeTransformer):
    """Rewrites a parsed template so that loops, macro bodies, `~` and filter blocks report to
    the render: every loop iterates through a counter, every macro (and `{% call %}` body)
    charges its text when it runs, `~` goes through a size check, and a filter block whose
    filters could bring values into the text becomes one value."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        weight = 1 + _literal_size(node.body)
        node.iter = _internal(node.iter, "envplane-loop", weight, lineno=node.lineno)  # type: ignore[arg-type]
        return node

    def _charged(self, node: nodes.Macro | nodes.CallBlock) -> nodes.Node:
        self.generic_visit(node)
        weight = 1 + _literal_size(node.body)
        charge = _internal(nodes.Const(None), "envplane-charge", weight, lineno=node.lineno)
        node.body.insert(0, nodes.ExprStmt(charge, lineno=node.lineno))
        return node

    visit_Macro = _charged
    visit_CallBlock = _charged

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return _internal(items, "envplane-concat", lineno=node.lineno)

    def visit_FilterBlock(self, node: nodes.FilterBlock) -> nodes.Node:
        self.generic_visit(node)
        node.filter = _internal(node.filter, "envplane-data", lineno=node.lineno)
        return node

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        self.generic_visit(node)
        if node.filter is None:
            node.filter = _internal(None, "envplane-resolve", lineno=node.lineno)
        return node
