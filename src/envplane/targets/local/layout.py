"""Where everything of one local environment lives; all of it under `env_dir`."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from envplane.errors import BadInput
from envplane.targets.local.runas import RunUser

# Paths end up in supervisord's ini files and in command lines: keep them to plain characters.
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9._/+@=-]*$")
# AF_UNIX socket paths are limited to 107 bytes (PostgreSQL appends "/.s.PGSQL.NNNNN").
MAX_SOCKET_DIR = 90


@dataclass(frozen=True)
class Layout:
    env_dir: Path

    @property
    def home(self) -> Path:
        return self.env_dir.parent.parent

    @property
    def cache(self) -> Path:
        return self.home / "cache"

    @property
    def run(self) -> Path:
        return self.env_dir / "run"

    @property
    def log(self) -> Path:
        return self.env_dir / "log"

    @property
    def data(self) -> Path:
        return self.env_dir / "data"

    @property
    def etc(self) -> Path:
        """Generated configuration of the servers (not the app's config: see `config`)."""
        return self.env_dir / "etc"

    @property
    def conf_d(self) -> Path:
        return self.etc / "supervisor.d"

    @property
    def programs(self) -> Path:
        """Launch specs of the programs (argv, env incl. secrets): 0600, run user only."""
        return self.run / "programs"

    @property
    def config(self) -> Path:
        return self.env_dir / "config"

    @property
    def frontend(self) -> Path:
        return self.env_dir / "frontend"

    @property
    def storage(self) -> Path:
        return self.env_dir / "storage"

    @property
    def supervisord_conf(self) -> Path:
        return self.etc / "supervisord.conf"

    @property
    def socket(self) -> Path:
        return self.run / "supervisor.sock"

    @property
    def pidfile(self) -> Path:
        return self.run / "supervisord.pid"

    @property
    def launcher(self) -> Path:
        return self.run / "launch.py"

    @property
    def lockfile(self) -> Path:
        return self.run / "driver.lock"

    # Copies made for this environment before it exists, or before they are swapped in: a
    # clone's early copies, a restore's unpacked cluster.
    STAGED = ("postgres-copy", "redis-copy.rdb", "storage-copy", "postgres-restore")

    def staged(self, what: str) -> Path:
        """Beside env_dir (which may not exist yet), on the same file system: adopting a staged
        copy is a rename."""
        assert what in self.STAGED
        return self.env_dir.parent / f".{self.env_dir.name}.{what}"

    def program_log(self, program: str) -> Path:
        return self.log / f"{program}.log"

    def ensure(self, user: RunUser) -> None:
        """Create the directory tree, owned by the run user; private to it (the environment's
        directory is 0700: as root no other environment's user may enter it)."""
        check_path(self.env_dir, "environment directory")
        if len(str(self.run / "postgres")) > MAX_SOCKET_DIR:
            raise BadInput(
                f"environment directory {self.env_dir} is too long for unix sockets",
                hint="use a shorter ENVPLANE_HOME (sockets live in <env>/run)",
            )
        self.env_dir.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        for path in (
            self.env_dir,
            self.run,
            self.log,
            self.data,
            self.etc,
            self.conf_d,
            self.programs,
            self.config,
        ):
            path.mkdir(exist_ok=True, mode=0o750)
            os.chmod(path, 0o700 if path in (self.env_dir, self.programs) else 0o750)
            user.own(path)


def check_path(path: Path, what: str) -> None:
    if not SAFE_PATH_RE.fullmatch(str(path)):
        raise BadInput(
            f"{what} {str(path)!r} contains characters envplane cannot pass to supervisord safely",
            hint="use a path made of letters, digits and . _ - / only (e.g. set ENVPLANE_HOME)",
        )


def python_interpreter() -> Path:
    """The interpreter that runs supervisord and `{python}` services: ours, with our packages."""
    return Path(sys.executable)


def atomic_write(path: Path, data: str | bytes, *, mode: int, user: RunUser) -> bool:
    """Write aside, fix mode and owner, then rename over; return whether the content changed."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        if path.read_bytes() == raw:
            st = path.stat()
            if st.st_mode & 0o777 != mode:
                os.chmod(path, mode)
            user.own(path)
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.chmod(tmp, mode)
        user.own(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
