"""Large matrices for the benchmarks: the Sunday example's three environments turned into
templates, and as many environments as asked for extending them in turn."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sunday"
TEMPLATE_OF = ("development", "staging", "production")


def generated(count: int, environment: Callable[[int, str], list[str]]) -> str:
    """A matrix of `count` environments; `environment(i, template)` gives the lines of the
    i-th (its name and `extends:` included), indented as under `environments:`. The example's
    pipeline, parity and previews sections are left out: they name the example's environments."""
    seed = (EXAMPLE / "config" / "environment-matrix.yaml").read_text()
    head, _, rest = seed.partition("\ndeployment_strategies:")
    body = head.replace("environments:\n", "templates:\n", 1)
    for name in TEMPLATE_OF:
        body = body.replace(f"\n  {name}:\n", f"\n  {name}:\n    template: {name}\n", 1)
    tail = rest.split("# envplane additions", 1)[1]
    tail = tail.split("\nparity:", 1)[0].split("\n# Which differences", 1)[0]
    tail = tail.split("\n# Per-branch previews", 1)[0].split("\npreviews:", 1)[0]
    lines = [body, "environments:"]
    for i in range(count):
        lines += environment(i, TEMPLATE_OF[i % len(TEMPLATE_OF)])
    return "\n".join(lines) + "\n# envplane additions" + tail
