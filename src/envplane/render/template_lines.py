"""Where a ConfigMap's data key is written in its config template, for what points a person
at a line (parity, explain, the causes of a plan's changes)."""

from __future__ import annotations

import re
from pathlib import Path


def key_lines(path: Path, config_map: str) -> dict[str, int]:
    """Line of each data key of one ConfigMap in its template file: a text scan (the template
    is not YAML before it is rendered). Documents are split at `---`; the ConfigMap is the one
    whose `name:` is `config_map`; its keys are the lines one level under `data:`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    lines: dict[str, int] = {}
    in_doc = in_data = False
    indent: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if line.startswith("---"):
            in_doc = in_data = False
            indent = None
        elif re.fullmatch(rf"name:\s*['\"]?{re.escape(config_map)}['\"]?", stripped):
            in_doc = True
        elif line.startswith("data:"):
            in_data = True
        elif in_data and stripped and not stripped.startswith("#"):
            if line[:1] not in (" ", "\t"):
                in_data = False
                continue
            width = len(line) - len(line.lstrip())
            indent = width if indent is None else indent
            match = re.match(r"['\"]?([A-Za-z0-9._-]+)['\"]?\s*:", stripped)
            if in_doc and width == indent and match:
                lines.setdefault(match.group(1), number)
    return lines
