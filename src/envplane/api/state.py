"""What one server process holds: the settings, one state store (one engine and pool shared
by every request and worker), the matrix while its file is unchanged, the jobs, the sessions
and the sign-in throttle."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, cast

from envplane.events import EventSink
from envplane.settings import Settings
from envplane.state.store import StateStore
from envplane.workspace import Workspace

if TYPE_CHECKING:
    from envplane.api.jobs import Jobs
    from envplane.api.metrics import Metrics
    from envplane.api.sessions import Sessions, Throttle
    from envplane.matrix import Matrix


class MatrixCache:
    """The loaded matrix, kept while the file's size and mtime stay the same: a request does
    not parse YAML, and an edited matrix is seen by the next request."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._matrix: Matrix | None = None

    def get(self) -> Matrix:
        from envplane.matrix import load_matrix

        path = self._settings.matrix_path
        try:
            st = os.stat(path)
            key: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            key = None
        with self._lock:
            if key is None or key != self._key or self._matrix is None:
                # A broken matrix raises, and is not kept; an unchanged one comes from the cache.
                matrix = load_matrix(path, cache_dir=self._settings.matrix_cache_dir)
                self._key, self._matrix = key, matrix
            return self._matrix


class ApiWorkspace(Workspace):
    """A Workspace on the server's shared store, acting as `actor` (the identity's person:
    what operations, decisions and the audit trail record). Closing it leaves the shared
    engine open."""

    def __init__(self, server: ServerState, actor: str, *, events: EventSink | None = None) -> None:
        super().__init__(server.settings, events=events)
        self._server = server
        self._actor = actor

    @cached_property
    def store(self) -> StateStore:
        return cast(StateStore, self._server.store.with_actor(self._actor))

    @cached_property
    def matrix(self) -> Matrix:
        return self._server.matrices.get()

    def close(self) -> None:
        return None


@dataclass
class ServerState:
    settings: Settings
    store: StateStore
    jobs: Jobs
    sessions: Sessions
    throttle: Throttle
    metrics: Metrics
    tls: bool = False
    matrices: MatrixCache = field(init=False)
    # GET /environments: (what it was made from, the JSON document)
    listing: tuple[object, bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.matrices = MatrixCache(self.settings)

    def workspace(self, actor: str, *, events: EventSink | None = None) -> ApiWorkspace:
        return ApiWorkspace(self, actor, events=events)
