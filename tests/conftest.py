"""Shared fixtures: a private copy of the Sunday example and a way to run the real CLI on it.

Environments run as an unprivileged user when the tests run as root, so every directory they
touch is made under a 0755 base (pytest's own tmp dirs are 0700 and not traversable).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import teardown_project

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sunday"
ENVPLANE = str(Path(sys.executable).parent / "envplane")


def open_tmpdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@dataclass
class Project:
    root: Path
    home: Path
    user: tuple[int, int] | None = None  # (uid, gid) to run the CLI as, instead of ours

    @property
    def matrix(self) -> Path:
        return self.root / "config" / "environment-matrix.yaml"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        # ENVPLANE_WARM=0: never through a warm server a developer left running (test_warm
        # turns it on for its own)
        env.update(ENVPLANE_HOME=str(self.home), NO_COLOR="1", COLUMNS="200", ENVPLANE_WARM="0")
        env.pop("ENVPLANE_DATABASE_URL", None)
        env.update(extra)
        return env

    def run(
        self, *args: str, input: str | None = None, timeout: float = 120, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        as_user: dict[str, object] = {}
        if self.user is not None:
            as_user = {"user": self.user[0], "group": self.user[1], "extra_groups": []}
        return subprocess.run(
            [ENVPLANE, "-f", str(self.matrix), *args],
            env=self.env(**extra),
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            **as_user,  # type: ignore[call-overload]
        )

    def json(self, *args: str) -> object:
        result = self.run(*args, "-o", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def edit_matrix(self, old: str, new: str, count: int = 1) -> None:
        text = self.matrix.read_text()
        assert old in text, f"{old!r} not in matrix"
        self.matrix.write_text(text.replace(old, new, count))

    def make_staging_an_approval_environment(self) -> None:
        """Staging stands in for an approval (production-like) environment: approval_required,
        and the production policies its staging-sized settings do not meet switched off, each
        with that reason."""
        self.edit_matrix(
            "    validation_required: standard\n    approval_required: false",
            "    validation_required: standard\n    approval_required: true",
        )
        why = "staging stands in for an approval environment in this test"
        rules = ("multi-az", "iam-roles-strict", "network-policies", "secondary-region")
        disabled = "".join(f'    {rule}: "{why}"\n' for rule in rules)
        self.edit_matrix("\nvariables:\n", f"\npolicies:\n  disable:\n{disabled}\nvariables:\n")


@pytest.fixture
def project() -> Iterator[Project]:
    base = open_tmpdir("envplane-test-")
    root = base / "sunday"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
    proj = Project(root=base / "sunday", home=base / "home")
    try:
        yield proj
    finally:
        teardown_project(proj)
        shutil.rmtree(base, ignore_errors=True)
