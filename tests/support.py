"""Helpers several test modules share (no tests here), so that no test module imports another's
private names: a scan of /proc, the small matrix of the CLI tests, the teardown of a CLI
project, and the store's record of a resource as the planner reads it."""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envplane.render.model import Resource

if TYPE_CHECKING:  # conftest imports this module: a runtime import would be circular
    from tests.conftest import Project

# One environment with approval required, and nothing but object storage: quick to create.
SMALL_MATRIX = """\
project: shop
environments:
  prod-like:
    regions:
      primary: us-east-1
    storage:
      type: s3
      versioning: enabled
      encryption: AES256
deployment_strategies:
  prod-like:
    primary: blue_green
    alternatives: [canary]
    validation_required: comprehensive
    approval_required: true
# Object storage only, to be quick to create: envplane's policies for production-like
# environments are about sections it does not have, so each is off with its reason.
policies:
  disable:
    multi-az: "no database: a test environment of object storage only"
    backup-retention: "no database: a test environment of object storage only"
    kms-encryption: "no security section: a local test environment"
    secrets-manager: "no security section: a local test environment"
    network-policies: "no security section: a local test environment"
    iam-roles-strict: "no security section: a local test environment"
    prometheus: "no monitoring: quick to create"
    availability-zones: "no networking section: a local test environment"
    secondary-region: "one region: a local test environment"
"""


def processes_under(path: Path) -> list[str]:
    """Every process whose command line names `path`, one line each ("pid: command")."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmd:
            found.append(f"{proc.name}: {cmd}")
    return found


def teardown_project(project: Project) -> None:
    """Destroy whatever the test left running, so no process outlives the test session."""
    db = project.home / "state.db"
    if db.exists():
        listed = project.run("list", "-o", "json")
        if listed.returncode == 0:
            for env in json.loads(listed.stdout):
                if env["status"] not in ("not created", "destroyed"):
                    project.run("destroy", env["name"], "--force")
    # Belt and braces: anything still running for this home (a test that failed midway) is
    # killed — by its command line, or by the ENVPLANE_ENV_DIR marker every supervised
    # program inherits (redis-server's command line does not name its directory).
    marker = f"ENVPLANE_ENV_DIR={project.home}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if str(project.home).encode() in cmdline or marker in environ:
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), 9)
    remove_environment_users(project.home)
    shutil.rmtree(project.root, ignore_errors=True)


def remove_environment_users(home: Path) -> None:
    """As root every environment has a system user of its own, whose comment names its
    directory: those of `home` a failed test left behind go (their processes first)."""
    if os.geteuid() != 0:
        return
    prefix = f"{home}/environments/"
    for entry in pwd.getpwall():
        words = entry.pw_gecos.split(" ")
        if not entry.pw_gecos.startswith("envplane environment ") or not words[-1].startswith(
            prefix
        ):
            continue
        for proc in Path("/proc").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                status = (proc / "status").read_text()
                uid = next(line for line in status.splitlines() if line.startswith("Uid:"))
                if int(uid.split()[1]) == entry.pw_uid:
                    os.kill(int(proc.name), 9)
        subprocess.run(["userdel", entry.pw_name], capture_output=True, check=False)
        with contextlib.suppress(KeyError):
            grp.getgrnam(entry.pw_name)
            subprocess.run(["groupdel", entry.pw_name], capture_output=True, check=False)


@dataclass(frozen=True)
class Recorded:
    """What the state store keeps of an applied resource, as `plan.diff.Recorded` reads it."""

    kind: str
    digest: str
    spec: Mapping[str, Any]


def record(resources: Iterable[Resource]) -> dict[str, Recorded]:
    """The store's view after every one of `resources` was applied as given."""
    return {r.key: Recorded(r.kind, r.digest, r.spec) for r in resources}
