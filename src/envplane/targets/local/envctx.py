"""What every local kind handler works with: the engine's context, the layout, the run user."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from envplane.targets.base import EnvContext
from envplane.targets.local.layout import Layout
from envplane.targets.local.runas import RunUser, run_user


@dataclass(frozen=True)
class LocalEnv:
    ctx: EnvContext
    layout: Layout
    user: RunUser

    @classmethod
    def of(cls, ctx: EnvContext) -> LocalEnv:
        return cls(ctx, Layout(ctx.env_dir), run_user())

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Serialize supervisord config changes of this environment across threads and processes."""
        self.layout.run.mkdir(parents=True, exist_ok=True)
        with open(self.layout.lockfile, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
