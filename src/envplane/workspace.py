"""The library's entry point: settings, the matrix and the state store, opened lazily.

The CLI, and any script, builds one Workspace per command and calls the lifecycle functions
with it; nothing here prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from envplane.errors import BadInput
from envplane.names import check_env_name
from envplane.settings import Settings, resolve

if TYPE_CHECKING:
    from envplane.matrix import Matrix
    from envplane.state.store import StateStore
    from envplane.targets.base import EnvContext, Target

Progress = Callable[[str], None]


def _silent(_message: str) -> None:
    return None


class Workspace:
    def __init__(
        self, settings: Settings | None = None, *, progress: Progress | None = None
    ) -> None:
        self.settings = settings or resolve()
        self.progress: Progress = progress or _silent

    @classmethod
    def from_matrix(
        cls, matrix: str | os.PathLike[str] | None, *, progress: Progress | None = None
    ) -> Workspace:
        return cls(resolve(matrix), progress=progress)

    @cached_property
    def matrix(self) -> Matrix:
        from envplane.matrix import load_matrix

        return load_matrix(self.settings.matrix_path)

    @cached_property
    def store(self) -> StateStore:
        from envplane.state.store import StateStore

        self.settings.home.mkdir(parents=True, exist_ok=True)
        return StateStore.open(self.settings.database_url, self.settings.home)

    def target(self, name: str) -> Target:
        from envplane.targets.registry import get_target

        return get_target(name)

    def env_dir(self, env: str) -> Path:
        return self.settings.env_dir(check_env_name(env))

    def context(self, env: str, ports: dict[str, int], project: str) -> EnvContext:
        from envplane.render.variables import project_root
        from envplane.targets.base import EnvContext

        store = self.store

        def secret(name: str) -> str:
            return store.get_secret(env, name)

        try:
            root = project_root(self.matrix)
        except BadInput:
            root = self.settings.matrix_path.parent  # destroy must work with a broken matrix
        return EnvContext(
            name=env,
            project=project,
            env_dir=self.env_dir(env),
            ports=dict(ports),
            secret=secret,
            matrix_dir=root,
            progress=self.progress,
        )

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
