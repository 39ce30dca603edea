"""What every local kind handler works with: the engine's context, the layout, the run user."""

from __future__ import annotations

import fcntl
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from envplane.errors import OperationFailed
from envplane.targets.base import EnvContext
from envplane.targets.local.layout import Layout
from envplane.targets.local.runas import RunUser, run_user


@dataclass(frozen=True)
class LocalEnv:
    ctx: EnvContext
    layout: Layout

    @classmethod
    def of(cls, ctx: EnvContext) -> LocalEnv:
        return cls(ctx, Layout(ctx.env_dir))

    @functools.cached_property
    def user(self) -> RunUser:
        """Who the environment's processes run as and own its files. As root, its own system
        user, made here on first use: by the first resource created (or a copy staged for it),
        never by an observation, which does not ask."""
        return run_user(self.ctx.name, self.ctx.env_dir, create=True)

    def planned_user(self) -> RunUser:
        """The user it runs as, or would once created (made by nobody yet: for checks)."""
        return run_user(self.ctx.name, self.ctx.env_dir)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Serialize supervisord config changes of this environment across threads and processes."""
        self.layout.run.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: run/ is writable by the environment's user, and envplane may be root; a
        # symlink planted there must not make root create or truncate a file elsewhere.
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.layout.lockfile, flags, 0o600)
        except OSError as exc:
            raise OperationFailed(
                f"cannot open the lock file {self.layout.lockfile}: {exc.strerror}",
                hint="it must be a plain file; remove whatever is there and retry",
            ) from None
        with os.fdopen(fd, "r+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
