"""What every benchmark does first."""

from __future__ import annotations

import compileall
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "envplane"


def compile_envplane() -> None:
    """Compile envplane's modules as installing it does (pip writes the bytecode of a wheel):
    with PYTHONDONTWRITEBYTECODE set, or after an edit, every command would otherwise compile
    each edited module from source again, 0.3-0.5 s of CPU that no installed envplane spends."""
    compileall.compile_dir(SRC, quiet=1)
