"""The library's entry point: settings, the matrix and the state store, opened lazily.

The CLI, and any script, builds one Workspace per command and calls the service layer with
it; nothing here prints. Progress goes out as typed events (envplane.events) to the sink the
front door gave: the CLI renders them, the API streams them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from envplane.errors import BadInput
from envplane.events import EventSink, LogLine, discard
from envplane.names import check_env_name
from envplane.settings import Settings, resolve

if TYPE_CHECKING:
    from envplane.matrix import Matrix
    from envplane.state.store import StateStore
    from envplane.targets.base import EnvContext, Target

Progress = Callable[[str], None]


class Workspace:
    def __init__(
        self, settings: Settings | None = None, *, events: EventSink | None = None
    ) -> None:
        self.settings = settings or resolve()
        self.events: EventSink = events or discard

    @classmethod
    def from_matrix(
        cls, matrix: str | os.PathLike[str] | None, *, events: EventSink | None = None
    ) -> Workspace:
        return cls(resolve(matrix), events=events)

    def progress(self, message: str) -> None:
        """A line of progress, as a LogLine event."""
        self.events(LogLine(message))

    @cached_property
    def matrix(self) -> Matrix:
        from envplane.matrix import load_matrix

        return load_matrix(self.settings.matrix_path, cache_dir=self.settings.matrix_cache_dir)

    @cached_property
    def store(self) -> StateStore:
        from envplane.state.store import StateStore

        self.settings.home.mkdir(parents=True, exist_ok=True)
        return StateStore.open(self.settings.database_url, self.settings.home)

    def target(self, name: str) -> Target:
        """The driver of the target called `name` (UnknownTarget when there is none)."""
        from envplane.targets.registry import spec

        return spec(name).driver()

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
