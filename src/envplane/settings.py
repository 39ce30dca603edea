"""Where things live: the matrix, ENVPLANE_HOME, the state database. Read once per command."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MATRIX = "config/environment-matrix.yaml"


@dataclass(frozen=True)
class Settings:
    matrix_path: Path
    home: Path
    database_url: str

    @property
    def environments_dir(self) -> Path:
        return self.home / "environments"

    @property
    def backups_dir(self) -> Path:
        return self.home / "backups"

    @property
    def matrix_cache_dir(self) -> Path:
        """Validated matrices kept to skip reloading an unchanged one (`matrix/cache.py`)."""
        return self.home / "cache" / "matrix"

    def env_dir(self, name: str) -> Path:
        """The directory of one environment; `name` must already be checked."""
        return self.environments_dir / name


def resolve(matrix: str | os.PathLike[str] | None = None) -> Settings:
    """Settings from arguments first, then ENVPLANE_* variables, then defaults."""
    matrix_path = Path(matrix or os.environ.get("ENVPLANE_MATRIX") or DEFAULT_MATRIX)
    matrix_path = matrix_path.absolute()
    home_env = os.environ.get("ENVPLANE_HOME")
    if home_env:
        home = Path(home_env).absolute()
    else:
        # Beside the matrix: `config/environment-matrix.yaml` -> `./.envplane`.
        base = matrix_path.parent
        if base.name == "config":
            base = base.parent
        home = base / ".envplane"
    database_url = os.environ.get("ENVPLANE_DATABASE_URL") or f"sqlite:///{home / 'state.db'}"
    return Settings(matrix_path=matrix_path, home=home, database_url=database_url)
