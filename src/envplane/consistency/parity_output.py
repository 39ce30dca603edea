"""A parity report as JSON (a stable document for CI gates), Markdown (for a pull request) and
the cells a terminal table shows. Pure: no printing here."""

from __future__ import annotations

import json
from typing import Any

from envplane.consistency.parity import Cell, ParityReport, Row

SCHEMA = "envplane.parity/v1"
LEGEND = {
    "scale": "expected to differ by size (instance classes, node counts, replicas, ...)",
    "declared": "a difference the matrix declares, with its reason (`parity: allow`)",
    "undeclared": "a difference nobody declared: fix it or declare it (exit 1)",
    "equal": "the same everywhere (shown with --all)",
}
MARK = {"undeclared": "✗", "declared": "✓", "scale": "≈", "equal": "="}


def shown(value: Any, present: bool = True) -> str:
    """One value as a person reads it: a secret reference is `{secret: NAME}` (a reference,
    never a value), absent is `(not set)`, text as it is, the rest as JSON."""
    if not present:
        return "(not set)"
    if isinstance(value, dict) and set(value) == {"masked"}:
        return "(secret, not shown)"
    if isinstance(value, dict) and set(value) == {"secret"}:
        return f"{{secret: {value['secret']}}}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def cell_texts(row: Row) -> list[str]:
    """Each environment's value in one line: multi-line text (a rendered JSON or nginx file)
    is shown by its first line that differs, with its line number in the value."""
    cells = list(row.cells.values())
    texts = [shown(c.value, c.present) for c in cells]
    if not any("\n" in t for t in texts):
        return texts
    split = [t.splitlines() for t in texts]
    width = max(len(lines) for lines in split)
    for n in range(width):
        at = [lines[n] if n < len(lines) else "" for lines in split]
        if len(set(at)) > 1:
            return [
                f"line {n + 1}: {a.strip()}" if c.present else "(not set)"
                for a, c in zip(at, cells, strict=True)
            ]
    return [t.splitlines()[0] + " …" if t else t for t in texts]


def located(cell: Cell) -> str:
    if cell.where is None:
        return ""
    line = f":{cell.where.line}" if cell.where.line else ""
    default = "" if cell.where.written else " (default)"
    return f"{cell.where.file}{line}{default}"


def to_json(report: ParityReport, *, show_all: bool = False) -> dict[str, Any]:
    rows = [r for r in report.rows if show_all or r.kind != "equal"]
    return {
        "schema": SCHEMA,
        "source": report.source,
        "environments": report.environments,
        "not_created": report.not_created,
        "ok": report.ok,
        "counts": report.counts(),
        "settings": [
            {
                "key": row.key,
                "class": row.kind,
                "reason": row.reason,
                "values": {
                    env: {
                        "value": cell.value,
                        "set": cell.present,
                        "file": cell.where.file if cell.where else None,
                        "line": cell.where.line if cell.where else None,
                        "default": not cell.where.written if cell.where else None,
                    }
                    for env, cell in row.cells.items()
                },
            }
            for row in rows
        ],
    }


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: ParityReport, *, show_all: bool = False) -> str:
    """A pull-request comment: a verdict, counts, one table, the legend."""
    counts = report.counts()
    verdict = (
        "no undeclared difference"
        if report.ok
        else f"**{counts['undeclared']} undeclared difference(s)**"
    )
    what = "what runs" if report.source == "live" else "the matrix"
    lines = [
        f"### Parity of {', '.join(f'`{e}`' for e in report.environments)} ({what}): {verdict}",
        "",
        f"{counts['undeclared']} undeclared · {counts['declared']} declared · "
        f"{counts['scale']} scale · {counts['equal']} equal",
        "",
    ]
    if report.not_created:
        lines += [f"Not created: {', '.join(f'`{e}`' for e in report.not_created)}", ""]
    rows = [r for r in report.rows if show_all or r.kind != "equal"]
    order = {"undeclared": 0, "declared": 1, "scale": 2, "equal": 3}
    rows.sort(key=lambda r: order[r.kind])
    if rows:
        header = ["", "key", *report.environments, "why / where"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in rows:
            values = [f"`{_md(t)}`" for t in cell_texts(row)]
            if row.kind == "undeclared":
                why = "; ".join(
                    f"{env}: {_md(located(c))}" for env, c in row.cells.items() if c.where
                )
            else:
                why = _md(row.reason or "")
            lines.append(
                "| " + " | ".join([MARK[row.kind], f"`{_md(row.key)}`", *values, why]) + " |"
            )
        lines.append("")
    lines.append(
        "Legend: "
        + " · ".join(
            f"{MARK[k]} {k}: {LEGEND[k]}" for k in ("undeclared", "declared", "scale", "equal")
        )
    )
    return "\n".join(lines) + "\n"
